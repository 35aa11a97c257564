use super::*;
use crate::registry::Registry;

fn target(id: &str) -> Target {
    Target {
        id: TargetId::new(id).expect("id"),
        org: OrgId::default(),
        name: "city webhook".into(),
        kind: TargetKind::Http {
            url: "http://127.0.0.1:9/in".into(),
            auth: HttpAuth::Bearer,
            headers: vec!["x-api-key".into()],
        },
        filter: TargetFilter::default(),
        batch_size: 100,
        max_delay_ms: 1000,
        max_attempts: 5,
        enabled: true,
        created_at: 1,
        updated_at: 1,
    }
}

fn delivery(n: u64) -> TargetDelivery {
    TargetDelivery {
        seq: 0,
        time: n as i64,
        kind: DeliveryKind::Batch,
        outcome: DeliveryOutcome::Delivered,
        batch: format!("b{n}"),
        readings: 1,
        attempt: 1,
        status: Some(200),
        answer: None,
        reason: None,
        duration_ms: 1,
    }
}

fn letter(n: u64) -> DeadLetter {
    DeadLetter {
        id: 0,
        created_at: 1,
        batch: format!("b{n}"),
        readings: vec![serde_json::json!({"key": format!("k{n}")})],
        first_position: n,
        end_position: n + 1,
        attempts: 1,
        status: Some(400),
        reason: "refused".into(),
        replay: false,
    }
}

#[test]
fn targets_keep_their_secrets_sealed_and_their_cursor_log_and_dead_letters_apart() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.redb");
    let id = TargetId::new("hook").expect("id");
    {
        let reg = Registry::open(&path).expect("open");
        let secrets = TargetSecrets {
            secret: Some("s3cret-token".into()),
            headers: BTreeMap::from([("x-api-key".into(), "k3y".into())]),
        };
        reg.create_target(target("hook"), secrets.clone(), 42)
            .expect("create");
        assert!(matches!(
            reg.create_target(target("hook"), TargetSecrets::default(), 0),
            Err(Error::Conflict { .. })
        ));
        assert_eq!(reg.target_secrets(&id).expect("read"), Some(secrets));
        assert!(!format!("{:?}", reg.target_secrets(&id)).contains("s3cret"));
        assert_eq!(reg.target_cursor(&id).expect("cursor"), Some(42));
    }
    let reg = Registry::open(&path).expect("reopen");
    // The secret is sealed: its bytes are not in the file.
    let raw = std::fs::read(&path).expect("file");
    assert!(!raw.windows(12).any(|w| w == b"s3cret-token"));

    // A delivery log bounded per target, newest first, and dead letters kept apart.
    for n in 1..=5 {
        assert!(
            reg.commit_target(
                &id,
                TargetCommit {
                    cursor: Some(100 + n),
                    deliveries: vec![delivery(n)],
                    dead_letters: if n % 2 == 0 { vec![letter(n)] } else { vec![] },
                    keep_deliveries: 3,
                    ..TargetCommit::default()
                },
            )
            .expect("commit")
        );
    }
    assert_eq!(reg.target_cursor(&id).expect("cursor"), Some(105));
    let log = reg.target_deliveries(&id, 10).expect("log");
    assert_eq!(
        log.iter().map(|d| d.batch.as_str()).collect::<Vec<_>>(),
        ["b5", "b4", "b3"]
    );
    let (total, letters) = reg.dead_letters(&id, 10).expect("dead");
    assert_eq!(total, 2);
    assert_eq!(letters[0].batch, "b2");
    assert_eq!(reg.replay_dead_letters(&id, None).expect("replay"), 2);
    assert_eq!(reg.replay_dead_letters(&id, None).expect("replay"), 0);
    let (first, second) = (letters[0].id, letters[1].id);
    reg.commit_target(
        &id,
        TargetCommit {
            replayed: vec![first],
            failed_replays: vec![(second, Some(500), "still failing".into())],
            ..TargetCommit::default()
        },
    )
    .expect("commit");
    let (total, letters) = reg.dead_letters(&id, 10).expect("dead");
    assert_eq!(total, 1);
    assert_eq!(letters[0].attempts, 2);
    assert!(!letters[0].replay);
    assert_eq!(reg.discard_dead_letters(&id).expect("discard"), 1);

    // Updating keeps the secrets unless new ones are given; deleting removes everything.
    let mut changed = target("hook");
    changed.enabled = false;
    assert!(reg.update_target(changed, None).expect("update").is_some());
    assert!(reg.target_secrets(&id).expect("read").is_some());
    assert!(
        reg.update_target(target("other"), None)
            .expect("update")
            .is_none()
    );
    reg.commit_target(
        &id,
        TargetCommit {
            dead_letters: vec![letter(9)],
            ..TargetCommit::default()
        },
    )
    .expect("commit");
    assert!(reg.delete_target(&id).expect("delete"));
    assert_eq!(reg.target_cursor(&id).expect("cursor"), None);
    assert_eq!(reg.target_deliveries(&id, 10).expect("log").len(), 0);
    assert_eq!(reg.dead_letters(&id, 10).expect("dead").0, 0);
    assert!(
        !reg.commit_target(&id, TargetCommit::default())
            .expect("commit")
    );
}
