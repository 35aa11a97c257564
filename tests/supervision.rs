//! An essential component that fails stops bydata honestly: the store writer loses its write-ahead log
//! directory while it runs (a real fault: the directory is moved away and a file put in its place), and from
//! then on nothing is acknowledged — no PUBACK on MQTT, no 204 on line protocol —, `/ready` answers 503
//! naming the store writer, and the process shuts down in order with a non-zero exit and the cause logged
//! once at ERROR. Also: a clean stop leaves no write-ahead log behind.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, Mqtt, eventually};
use serde_json::{Value, json};
use std::time::Duration;

async fn write_lp(b: &Bydata, body: &str) -> u16 {
    b.client
        .post(b.url("/api/v2/write?bucket=city&precision=s"))
        .bearer_auth(ADMIN)
        .body(body.to_owned())
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

async fn ready(b: &Bydata) -> Option<(u16, Value)> {
    let r = b.client.get(b.url("/ready")).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

const CONFIG: &str = "[supervise]\nlinger_ms = 4000\ncheck_ms = 50\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_store_writer_stops_acknowledgements_and_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bydata::start_with_config(dir.path(), CONFIG).await;

    let (code, body) = eventually(Duration::from_secs(10), "readiness 200", || async {
        let (code, body) = ready(&b).await?;
        (code == 200).then_some((code, body))
    })
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let names: Vec<&str> = body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "MQTT broker",
        "HTTP server",
        "ingest pipeline",
        "journal",
        "store writer",
        "store merger",
        "LoRaWAN listener",
        "integrations",
        "open-data scheduler",
        "refusals flusher",
    ] {
        assert!(names.contains(&expected), "{expected} missing in {body}");
    }

    let pw = b.onboard("sup-1", json!({})).await;
    let mut mqtt = Mqtt::device(b.mqtt, "sup-1", &pw).await;
    mqtt.publish_acked("devices/sup-1/up", r#"{"temperature": 20.5}"#)
        .await
        .unwrap();
    assert_eq!(write_lp(&b, "air,site=a co2=400 1763600000").await, 204);

    // The fault: the WAL directory is moved away and a file takes its place.
    let series = b.data_dir.join("series");
    std::fs::rename(series.join("wal"), series.join("wal.moved")).unwrap();
    std::fs::write(series.join("wal"), b"not a directory").unwrap();

    // The next write finds its segment gone: it is refused, and the writer stops.
    assert_ne!(write_lp(&b, "air,site=a co2=401 1763600001").await, 204);
    let (code, body) = eventually(Duration::from_secs(10), "readiness 503", || async {
        let (code, body) = ready(&b).await?;
        (code == 503).then_some((code, body))
    })
    .await;
    assert_eq!(code, 503);
    let writer = body["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store writer")
        .unwrap();
    assert_eq!(writer["state"], "down", "{body}");
    assert!(
        writer["cause"]
            .as_str()
            .unwrap()
            .contains("write-ahead log cannot be written"),
        "{body}"
    );
    assert_eq!(body["accepting"], false, "{body}");
    assert!(
        body["refusal"].as_str().unwrap().contains("store writer"),
        "{body}"
    );

    // No acknowledgement after the failure: no 204, no PUBACK.
    let code = write_lp(&b, "air,site=a co2=402 1763600002").await;
    assert_ne!(code, 204);
    let refused = mqtt
        .publish_acked("devices/sup-1/up", r#"{"temperature": 21.5}"#)
        .await;
    assert!(refused.is_err(), "a PUBACK after the store writer failed");
    if let Ok(mut again) = Mqtt::connect(common::options(b.mqtt, "sup-1", "sup-1", &pw)).await {
        assert!(
            again
                .publish_acked("devices/sup-1/up", r#"{"temperature": 22.5}"#)
                .await
                .is_err()
        );
    }

    // The process stops on its own, non-zero, with the cause logged once at ERROR.
    let child = &mut b.child;
    let status = eventually(Duration::from_secs(30), "bydata to exit", || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(!status.success(), "exit status {status}");
    let log = b.log();
    let cause_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("write-ahead log cannot be written"))
        .collect();
    assert_eq!(cause_lines.len(), 1, "the cause once at ERROR:\n{log}");
    assert!(
        cause_lines[0].contains("store writer"),
        "{}",
        cause_lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_no_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    // Writes never pause long enough for the idle flush: only the stop can flush them.
    let mut b =
        Bydata::start_with_config(dir.path(), "[store]\ncompact_when_idle_ms = 3600000\n").await;
    let lines: String = (0..5_000)
        .map(|i| format!("air,site=b co2={} {}\n", 400 + i % 50, 1_763_600_000 + i))
        .collect();
    assert_eq!(write_lp(&b, &lines).await, 204);
    let wal = b.data_dir.join("series/wal");
    let wal_bytes = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    assert!(
        wal_bytes(&wal) > 0,
        "the points wait in the WAL while running"
    );
    assert!(b.terminate().await.success());
    assert_eq!(
        wal_bytes(&wal),
        0,
        "a clean stop flushes the WAL into a part"
    );
    let parts = std::fs::read_dir(b.data_dir.join("series/parts"))
        .unwrap()
        .count();
    assert!(parts >= 1);

    // And the points are all there after a restart.
    let b = Bydata::start_with_config(dir.path(), "").await;
    let (code, body) = b
        .get(
            "/api/v1/query?measurement=air&field=co2&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z&every=1y&fn=count&tz=UTC",
            ADMIN,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let total: f64 = body["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap().iter())
        .filter_map(|p| p["value"].as_f64())
        .sum();
    assert_eq!(total, 5_000.0, "{body}");
}
