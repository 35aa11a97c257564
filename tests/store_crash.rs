//! Crash test of the store: batches of line protocol are written while bydata is killed with `kill -9` at
//! seeded random moments — with compaction made frequent so kills also land inside compactions. After every
//! restart, every acknowledged batch is there exactly once, every other batch is there whole or not at all,
//! and `bydata store verify` finds every journal record and series block intact.
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata, eventually};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SERIES: u64 = 50;
const PER_SERIES: u64 = 20;
const BASE_NS: i64 = 1_700_000_000_000_000_000;

fn batch_body(batch: u64) -> String {
    let mut body = String::new();
    for s in 0..SERIES {
        for i in 0..PER_SERIES {
            let t = BASE_NS + ((batch * PER_SERIES + i) as i64) * 60_000_000_000;
            body.push_str(&format!("crash,building=b{s} batch={batch} {t}\n"));
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_kill_9_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bydata.toml");
    std::fs::write(
        &config,
        "[store]\nblock_points = 64\ncompact_after_points = 3000\ncompact_when_idle_ms = 50\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let mut b = Bydata::start_with(&data, &["--config", &config]).await;

    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut attempted: BTreeSet<u64> = BTreeSet::new();
    let mut next_batch = 0u64;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _round in 0..4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 2 + seed % 10;
        let done = Arc::new(AtomicU64::new(0));
        let (url, client, start, counter) = (
            b.url("/api/v2/write?bucket=crash"),
            b.client.clone(),
            next_batch,
            done.clone(),
        );
        let writer = tokio::spawn(async move {
            let (mut ok, mut tried) = (Vec::new(), Vec::new());
            for batch in start..start + 1000 {
                tried.push(batch);
                let response = client
                    .post(&url)
                    .header("authorization", format!("Token {ADMIN}"))
                    .body(batch_body(batch))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 204 => {
                        ok.push(batch);
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            (ok, tried)
        });
        let counted = done.clone();
        eventually(
            Duration::from_secs(60),
            "batches to be acknowledged",
            || {
                let n = counted.load(Ordering::SeqCst);
                async move { (n >= kill_after).then_some(()) }
            },
        )
        .await;
        b.kill9();
        let (ok, tried) = writer.await.unwrap();
        assert!((ok.len() as u64) < 1000, "the kill must cut the writer off");
        next_batch = tried.last().map_or(next_batch, |b| b + 1);
        acked.extend(ok);
        attempted.extend(tried);
        b = Bydata::start_with(&data, &["--config", &config]).await;
    }

    // A clean stop, then the checksum verification of every file, then the contents.
    let status = b.terminate().await;
    assert!(status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bydata"))
        .args(["store", "verify", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    let verified = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{verified}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verified.starts_with("ok:"), "{verified}");

    let b = Bydata::start_with(&data, &["--config", &config]).await;
    let (code, answer) = b
        .get("/api/v1/query?measurement=crash&field=batch&from=2023-11-01T00:00:00Z&to=2024-01-01T00:00:00Z", ADMIN)
        .await;
    assert_eq!(code, 200, "{answer}");
    let mut per_batch: BTreeMap<u64, u64> = BTreeMap::new();
    let mut times: BTreeSet<(String, String)> = BTreeSet::new();
    for series in answer["series"].as_array().unwrap() {
        let building = series["tags"]["building"].as_str().unwrap().to_owned();
        for p in series["points"].as_array().unwrap() {
            *per_batch
                .entry(p["value"].as_f64().unwrap() as u64)
                .or_default() += 1;
            assert!(
                times.insert((building.clone(), p["time"].as_str().unwrap().to_owned())),
                "a point stored twice"
            );
        }
    }
    let whole = SERIES * PER_SERIES;
    for batch in &acked {
        assert_eq!(
            per_batch.get(batch),
            Some(&whole),
            "acknowledged batch {batch} is not whole"
        );
    }
    for (batch, count) in &per_batch {
        assert!(attempted.contains(batch), "batch {batch} was never sent");
        assert_eq!(
            *count, whole,
            "batch {batch} is partly stored: {count} of {whole} points"
        );
    }
}
