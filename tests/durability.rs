//! What bydata acknowledged survives `kill -9`, exactly once; a restart keeps devices, credentials, the
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
//! journal position and the data.
mod common;

use common::{ADMIN, Bydata, Mqtt, eventually, options, publish_tracking_acks};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const BASE_SECS: u64 = 1_763_600_000; // 2025-11-20, a fixed past time so every message has its own timestamp

async fn stored_seqs(b: &Bydata, device: &str) -> Vec<u64> {
    let q = format!(
        "/api/v1/query?measurement=seq&device={device}&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z"
    );
    let (code, body) = b.get(&q, ADMIN).await;
    assert_eq!(code, 200, "{body}");
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap().iter())
        .map(|p| p["value"].as_f64().unwrap() as u64)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Bydata::start(&data).await;
    let pw = b.onboard("counter-1", json!({})).await;
    let mut acked: HashSet<u64> = HashSet::new();
    let mut sent: HashSet<u64> = HashSet::new();

    // Three rounds: publish as fast as acknowledgements come, kill -9 bydata mid-stream once some number of
    // messages is acknowledged, restart over the same data directory. Each round numbers its own messages.
    for (round, kill_after) in [(0u64, 300u64), (1, 57), (2, 801)] {
        let offset = round * 1_000_000;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let publisher = tokio::spawn(publish_tracking_acks(
            options(b.mqtt, "counter-1", "counter-1", &pw),
            "devices/counter-1/up",
            1_000_000,
            move |seq| {
                let seq = offset + seq;
                format!(r#"{{"seq": {seq}, "time": {}}}"#, BASE_SECS + seq).into_bytes()
            },
            Some((kill_after, tx)),
        ));
        rx.await.unwrap();
        b.kill9();
        let tracker = publisher.await.unwrap();
        assert!(tracker.acked.len() as u64 >= kill_after);
        assert!(
            tracker.published < 1_000_000,
            "the kill must cut the publisher off"
        );
        acked.extend(tracker.acked.iter().map(|s| offset + s));
        sent.extend((0..tracker.published).map(|s| offset + s));
        b = Bydata::start(&data).await;
    }

    let seqs = eventually(
        Duration::from_secs(30),
        "every acknowledged message stored",
        || async {
            let seqs = stored_seqs(&b, "counter-1").await;
            (seqs.len() >= acked.len()).then_some(seqs)
        },
    )
    .await;
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for s in &seqs {
        *counts.entry(*s).or_default() += 1;
    }
    let missing: Vec<_> = acked.iter().filter(|s| !counts.contains_key(s)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(
        counts.values().all(|c| *c == 1),
        "a message was stored twice"
    );
    assert!(
        counts.keys().all(|s| sent.contains(s)),
        "a message that was never sent was stored"
    );
    // The status counted every journaled message once, none twice.
    let status = b.status("counter-1").await;
    assert_eq!(
        status["decoded"].as_u64().unwrap(),
        seqs.len() as u64,
        "{status}"
    );
    assert_eq!(status["rejected"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_devices_credentials_position_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Bydata::start(&data).await;
    let pw = b.onboard("heat-dokk1", json!({"building": "dokk1"})).await;
    let mut dev = Mqtt::device(b.mqtt, "heat-dokk1", &pw).await;
    for (i, kwh) in [100.0, 104.5, 109.25].iter().enumerate() {
        let payload = format!(
            r#"{{"heat_kwh": {kwh}, "time": {}}}"#,
            BASE_SECS + 3600 * i as u64
        );
        dev.publish_acked("devices/heat-dokk1/up", payload)
            .await
            .unwrap();
    }
    b.wait_status("heat-dokk1", "3 decoded", |s| s["decoded"] == 3)
        .await;
    drop(dev);
    let code = b.terminate().await;
    assert!(code.success(), "SIGTERM must exit 0, got {code:?}");

    let b = Bydata::start(&data).await;
    // The device and its data are there; nothing was re-ingested (position kept: counts unchanged).
    let (code, device) = b.get("/api/v1/devices/heat-dokk1", ADMIN).await;
    assert_eq!(code, 200, "{device}");
    assert_eq!(device["tags"]["building"], "dokk1");
    assert_eq!(b.latest("heat-dokk1", "heat_kwh").await, Some(109.25));
    let status = b.status("heat-dokk1").await;
    assert_eq!(
        (status["received"].clone(), status["decoded"].clone()),
        (json!(3), json!(3)),
        "{status}"
    );
    let (_, usage) = b
        .get(
            "/api/v1/query?measurement=heat_kwh&tag.building=dokk1&from=2025-11-19T00:00:00Z&to=2025-11-21T00:00:00Z&every=1d&fn=increase&tz=UTC",
            ADMIN,
        )
        .await;
    let total: f64 = usage["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p: &Value| p["value"].as_f64())
        .sum();
    assert!((total - 9.25).abs() < 1e-9, "{usage}");

    // The old password still works, and a new message is counted once on top.
    let mut dev = Mqtt::device(b.mqtt, "heat-dokk1", &pw).await;
    dev.publish_acked(
        "devices/heat-dokk1/up",
        format!(r#"{{"heat_kwh": 111, "time": {}}}"#, BASE_SECS + 4 * 3600),
    )
    .await
    .unwrap();
    b.wait_status("heat-dokk1", "4 decoded", |s| {
        s["decoded"] == 4 && s["received"] == 4
    })
    .await;

    // Rotating the credentials retires the old password.
    let (code, rotated) = b
        .post("/api/v1/devices/heat-dokk1/credentials", ADMIN, &json!({}))
        .await;
    assert_eq!(code, 200, "{rotated}");
    let new_pw = rotated["mqtt"]["password"].as_str().unwrap();
    assert!(
        Mqtt::connect(options(b.mqtt, "heat-dokk1", "heat-dokk1", &pw))
            .await
            .is_err()
    );
    Mqtt::device(b.mqtt, "heat-dokk1", new_pw).await;
}
