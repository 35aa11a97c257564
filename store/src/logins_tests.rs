//! The gate's rules, with a real registry and real Argon2 checks.
use super::*;
use bydata_schemas::{Codec, Domain, Transport};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts what the gate reports, as an edge's metrics do.
#[derive(Debug, Default)]
struct Counted {
    argon2: AtomicU64,
    remembered: AtomicU64,
}

impl GateCounters for Counted {
    fn argon2(&self) {
        self.argon2.fetch_add(1, Ordering::Relaxed);
    }
    fn remembered(&self) {
        self.remembered.fetch_add(1, Ordering::Relaxed);
    }
}

async fn gate() -> (tempfile::TempDir, Arc<Gate>, Arc<Counted>, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let registry = crate::RedbRegistry::open(
        &dir.path().join("r.redb"),
        crate::SecretKey::from_bytes([1; 32]),
    )
    .expect("open")
    .shared();
    let (_, creds) = registry
        .create_device(crate::Device {
            org: Default::default(),
            id: DeviceId::new("meter-1").expect("id"),
            name: "m".into(),
            transport: Transport::Mqtt,
            domain: Domain::new("energy").expect("domain"),
            location: None,
            tags: Default::default(),
            codec: Codec::Auto,
            created_at: 0,
        })
        .await
        .expect("create");
    let counted = Arc::new(Counted::default());
    let gate = Gate::new(
        registry,
        counted.clone(),
        GateConfig {
            checks: 2,
            queue_wait: Duration::from_secs(5),
            remember: Duration::from_secs(60),
        },
    )
    .expect("gate");
    (dir, gate, counted, creds.password)
}

/// The address of a device that never fails.
fn here() -> IpAddr {
    IpAddr::from([198, 51, 100, 9])
}

fn device(id: &str) -> Identity {
    Identity::Device(DeviceId::new(id).expect("id"))
}

#[tokio::test]
async fn valid_logins_are_remembered_and_rotation_ends_them() {
    let (_dir, gate, counted, password) = gate().await;
    let who = device("meter-1");
    assert_eq!(gate.check(here(), &who, &password).await, Verdict::Valid);
    let checks = counted.argon2.load(Ordering::Relaxed);
    assert_eq!(gate.check(here(), &who, &password).await, Verdict::Valid);
    assert_eq!(
        counted.argon2.load(Ordering::Relaxed),
        checks,
        "the second login is answered from memory"
    );
    assert_eq!(counted.remembered.load(Ordering::Relaxed), 1);
    // Another edge's handle shares what was verified, and counts into its own counters.
    let other = Arc::new(Counted::default());
    let http = gate.counting(other.clone());
    assert_eq!(http.check(here(), &who, &password).await, Verdict::Valid);
    assert_eq!(
        (
            other.argon2.load(Ordering::Relaxed),
            other.remembered.load(Ordering::Relaxed)
        ),
        (0, 1)
    );
    let Identity::Device(id) = &who else {
        unreachable!()
    };
    gate.shared
        .registry
        .rotate_credentials(id)
        .await
        .expect("rotate");
    assert_eq!(gate.check(here(), &who, &password).await, Verdict::Wrong);
}

#[tokio::test]
async fn failures_back_off_per_identity_and_source_but_remembered_logins_pass() {
    let (_dir, gate, _, password) = gate().await;
    let who = device("meter-1");
    assert_eq!(gate.check(here(), &who, &password).await, Verdict::Valid);
    let attacker: IpAddr = "192.0.2.7".parse().expect("ip");
    for _ in 0..ID_FREE_FAILURES {
        assert_eq!(gate.check(attacker, &who, "guess").await, Verdict::Wrong);
    }
    assert_eq!(gate.check(attacker, &who, "guess").await, Verdict::Backoff);
    // The device itself, already verified, still gets in.
    let device_ip: IpAddr = "198.51.100.1".parse().expect("ip");
    assert_eq!(gate.check(device_ip, &who, &password).await, Verdict::Valid);
    // Unknown ids are refused like wrong passwords, and back off the same way.
    let ghost = device("ghost");
    for _ in 0..ID_FREE_FAILURES {
        assert_eq!(gate.check(here(), &ghost, "x").await, Verdict::Unknown);
    }
    assert_eq!(gate.check(here(), &ghost, "x").await, Verdict::Backoff);
    // A source that fails on many ids is blocked as a source.
    for i in 0..SOURCE_FREE_FAILURES {
        let _ = gate.check(attacker, &device(&format!("id-{i}")), "x").await;
    }
    assert_eq!(
        gate.check(attacker, &device("fresh-id"), "x").await,
        Verdict::Backoff
    );
}

#[test]
fn backoff_doubles_up_to_its_cap_and_is_forgotten() {
    let mut map = HashMap::new();
    let t0 = Instant::now();
    for _ in 0..ID_FREE_FAILURES {
        add_failure(&mut map, "k", t0, ID_FREE_FAILURES, ID_MAX_BLOCK);
    }
    assert_eq!(map["k"].blocked_until, Some(t0 + Duration::from_secs(1)));
    add_failure(&mut map, "k", t0, ID_FREE_FAILURES, ID_MAX_BLOCK);
    assert_eq!(map["k"].blocked_until, Some(t0 + Duration::from_secs(2)));
    for _ in 0..40 {
        add_failure(&mut map, "k", t0, ID_FREE_FAILURES, ID_MAX_BLOCK);
    }
    assert_eq!(map["k"].blocked_until, Some(t0 + ID_MAX_BLOCK));
    let later = t0 + FORGET_AFTER + Duration::from_secs(1);
    add_failure(&mut map, "k", later, ID_FREE_FAILURES, ID_MAX_BLOCK);
    assert_eq!(map["k"].failures, 1);
}
