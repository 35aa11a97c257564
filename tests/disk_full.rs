//! A full disk loses nothing acknowledged. The data directory is a small tmpfs; while two devices publish
//! over MQTT and a client writes line protocol over HTTP, a filler file takes the free space below the reserve
//! (`[store] min_free_bytes`). bydata then refuses new data with the reason (no PUBACK and "disk full" on the
//! device status; 507 with the JSON error body), keeps answering queries, says so once in the log, in
//! `/ready` and in `/metrics`, and accepts again by itself once the filler is deleted. Every message
//! acknowledged before, during and after is stored exactly once, and `bydata store verify` passes.
//!
//! Mounting needs root (CI runs as root); without it the test says so and does nothing.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, Mqtt, eventually, options};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BASE_SECS: u64 = 1_763_600_000; // 2025-11-20: every message has its own time
const MIB: u64 = 1024 * 1024;
const RESERVE: u64 = 16 * MIB;
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

#[path = "support/tmpfs.rs"]
mod tmpfs;
use tmpfs::{Tmpfs, is_root};

/// Bytes available on the filesystem holding `path` (`stat -f`).
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    it.next().unwrap() * it.next().unwrap()
}

/// Acknowledged sequence numbers, each with the phase it was acknowledged in.
type Acks = Arc<Mutex<Vec<(u64, u8)>>>;

/// A device that keeps every message until it is acknowledged (as a real one does): publishes `seq` at QoS 1
/// and, on a refusal (the connection closes without a PUBACK), reconnects and sends the same message again.
async fn device(
    addr: std::net::SocketAddr,
    id: String,
    password: String,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    acks: Acks,
    refusals: Arc<Mutex<u64>>,
) {
    let mut seq = 0u64;
    let mut mqtt: Option<Mqtt> = None;
    // Paced retries after a refusal (the interval's first tick is at once; later ones 50 ms apart).
    let mut retry = tokio::time::interval(Duration::from_millis(50));
    while !stop.load(Ordering::Relaxed) {
        if mqtt.is_none() {
            retry.tick().await;
            mqtt = Mqtt::connect(options(addr, &id, &id, &password)).await.ok();
            if mqtt.is_none() {
                continue;
            }
        }
        let payload = format!(r#"{{"seq": {seq}, "time": {}}}"#, BASE_SECS + seq);
        match mqtt
            .as_mut()
            .unwrap()
            .publish_acked(&format!("devices/{id}/up"), payload)
            .await
        {
            Ok(()) => {
                acks.lock()
                    .unwrap()
                    .push((seq, phase.load(Ordering::Relaxed)));
                seq += 1;
            }
            Err(_) => {
                *refusals.lock().unwrap() += 1;
                mqtt = None;
            }
        }
    }
}

/// A line-protocol client: batches of 20 points with their own times; a refused batch is sent again.
async fn writer(
    b: Arc<BydataHandle>,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    acks: Acks,
    refused: Arc<Mutex<Vec<Value>>>,
) {
    let mut batch = 0u64;
    // One request every 10 ms at most, whatever the answer.
    let mut pace = tokio::time::interval(Duration::from_millis(10));
    while !stop.load(Ordering::Relaxed) {
        pace.tick().await;
        let body: String = (0..20)
            .map(|i| {
                let n = batch * 20 + i;
                format!("flow,site=harbour n={n} {}\n", BASE_SECS + n)
            })
            .collect();
        let r = b
            .client
            .post(format!(
                "http://{}/api/v2/write?bucket=city&precision=s",
                b.http
            ))
            .bearer_auth(ADMIN)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 204 {
            acks.lock()
                .unwrap()
                .push((batch, phase.load(Ordering::Relaxed)));
            batch += 1;
        } else {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            refused
                .lock()
                .unwrap()
                .push(json!({"status": status, "body": body}));
        }
    }
}

struct BydataHandle {
    client: reqwest::Client,
    http: std::net::SocketAddr,
}

async fn ready(b: &Bydata) -> (u16, Value) {
    let r = b.client.get(b.url("/ready")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn stored(b: &Bydata, query: &str) -> Vec<f64> {
    let (code, body) = b
        .get(
            &format!("/api/v1/query?{query}&from=2025-11-01T00:00:00Z&to=2026-06-01T00:00:00Z"),
            ADMIN,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap().iter())
        .map(|p| p["value"].as_f64().unwrap())
        .collect()
}

fn by_phase(acks: &[(u64, u8)]) -> [usize; 3] {
    let mut out = [0; 3];
    for (_, p) in acks {
        out[*p as usize] += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_data_and_loses_nothing_acknowledged() {
    if !is_root() {
        eprintln!("SKIPPED: mounting the small tmpfs this test fills needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _mount = Tmpfs::mount(&data, "64m");
    let config = format!(
        "[store]\nmin_free_bytes = {RESERVE}\ncompact_when_idle_ms = 500\n[supervise]\ncheck_ms = 50\n"
    );
    let mut b = Bydata::start_with_config(dir.path(), &config).await;
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let stop = Arc::new(AtomicBool::new(false));

    let mut device_acks: HashMap<String, Acks> = HashMap::new();
    let mut device_refusals: Vec<Arc<Mutex<u64>>> = Vec::new();
    let mut tasks = Vec::new();
    for id in ["tide-1", "tide-2"] {
        let pw = b.onboard(id, json!({})).await;
        let acks: Acks = Arc::default();
        device_acks.insert(id.to_owned(), acks.clone());
        let refusals = Arc::new(Mutex::new(0u64));
        device_refusals.push(refusals.clone());
        tasks.push(tokio::spawn(device(
            b.mqtt,
            id.to_owned(),
            pw,
            phase.clone(),
            stop.clone(),
            acks,
            refusals,
        )));
    }
    let http_acks: Acks = Arc::default();
    let http_refused = Arc::new(Mutex::new(Vec::new()));
    tasks.push(tokio::spawn(writer(
        Arc::new(BydataHandle {
            client: b.client.clone(),
            http: b.http,
        }),
        phase.clone(),
        stop.clone(),
        http_acks.clone(),
        http_refused.clone(),
    )));
    // Every client has had messages acknowledged before the disk fills.
    let acked_in = |acks: &Acks, phase: u8| by_phase(&acks.lock().unwrap())[phase as usize];
    let all_acked = |phase: u8, each: usize| {
        acked_in(&http_acks, phase) >= each / 5
            && device_acks.values().all(|a| acked_in(a, phase) >= each)
    };
    eventually(
        Duration::from_secs(20),
        "acknowledgements before",
        || async { all_acked(BEFORE, 100).then_some(()) },
    )
    .await;

    // Fill the disk to half the reserve: below it, but room left to finish what was accepted.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; MIB as usize];
        while free_bytes(&data) > RESERVE / 2 + MIB {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    let (code, body) = eventually(
        Duration::from_secs(10),
        "readiness to say disk full",
        || async {
            let (code, body) = ready(&b).await;
            (body["disk"]["full"] == true).then_some((code, body))
        },
    )
    .await;
    // A request that passed the gate just before it closed is still answered; then nothing more is: the
    // phase turns once every client has been refused (each sends one message at a time).
    let refusals_now =
        || -> Vec<u64> { device_refusals.iter().map(|r| *r.lock().unwrap()).collect() };
    let http_507s = || {
        http_refused
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == 507)
            .count()
    };
    let (mqtt_at_full, http_at_full) = (refusals_now(), http_507s());
    eventually(Duration::from_secs(10), "every client refused", || async {
        let refused_each = refusals_now()
            .iter()
            .zip(&mqtt_at_full)
            .all(|(n, at)| n > at);
        (refused_each && http_507s() > http_at_full).then_some(())
    })
    .await;
    phase.store(DURING, Ordering::Relaxed);
    let full_at = Instant::now();
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["accepting"], false, "{body}");
    assert!(
        body["refusal"].as_str().unwrap().starts_with("disk full: "),
        "{body}"
    );

    // While full: 507 with the reason, no PUBACK with the reason on the status, queries answered, metrics.
    let refused = eventually(Duration::from_secs(10), "a 507", || async {
        http_refused
            .lock()
            .unwrap()
            .iter()
            .find(|r| r["status"] == 507)
            .cloned()
    })
    .await;
    assert_eq!(
        refused["body"]["error"]["code"], "insufficient_storage",
        "{refused}"
    );
    assert!(
        refused["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("disk full: "),
        "{refused}"
    );
    let status = b
        .wait_status("tide-1", "disk full on the device status", |s| {
            s["last_error"]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("disk full: "))
        })
        .await;
    assert!(
        status["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("min_free_bytes")
    );
    assert!(
        !stored(&b, "measurement=seq&device=tide-1").await.is_empty(),
        "queries answer"
    );
    let (code, metrics) = {
        let r = b.client.get(b.url("/metrics")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(code, 200);
    assert!(metrics.contains("\nbydata_disk_full 1\n"), "{metrics}");
    assert!(metrics.contains("\nbydata_accepting 0\n"), "{metrics}");
    // Held full while every client is refused a few more times.
    let (mqtt_during, http_during) = (refusals_now(), http_507s());
    eventually(
        Duration::from_secs(10),
        "more refusals while full",
        || async {
            let each = refusals_now()
                .iter()
                .zip(&mqtt_during)
                .all(|(n, at)| *n >= at + 3);
            (each && http_507s() >= http_during + 3).then_some(())
        },
    )
    .await;
    let held = full_at.elapsed();

    // Space returns: bydata resumes by itself.
    let acked_during = by_phase(&http_acks.lock().unwrap())[DURING as usize];
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    phase.store(AFTER, Ordering::Relaxed);
    eventually(
        Duration::from_secs(10),
        "acknowledgements again",
        || async {
            let http = by_phase(&http_acks.lock().unwrap())[AFTER as usize];
            let mqtt: usize = device_acks
                .values()
                .map(|a| by_phase(&a.lock().unwrap())[AFTER as usize])
                .sum();
            (http > 0 && mqtt > 0).then_some(())
        },
    )
    .await;
    let resumed = freed.elapsed();
    assert_eq!(ready(&b).await.0, 200);
    eventually(
        Duration::from_secs(20),
        "acknowledgements after",
        || async { all_acked(AFTER, 100).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // Every acknowledged message stored exactly once.
    eventually(
        Duration::from_secs(20),
        "the ingest lag to reach zero",
        || async {
            let (_, body) = ready(&b).await;
            (body["ingest_lag"]["bytes"] == 0).then_some(())
        },
    )
    .await;
    let mut report = Vec::new();
    for (id, acks) in &device_acks {
        let acks = acks.lock().unwrap().clone();
        let values = stored(&b, &format!("measurement=seq&device={id}")).await;
        let distinct: BTreeSet<u64> = values.iter().map(|v| *v as u64).collect();
        assert_eq!(distinct.len(), values.len(), "{id}: a message stored twice");
        for (seq, _) in &acks {
            assert!(
                distinct.contains(seq),
                "{id}: acknowledged message {seq} not stored"
            );
        }
        let phases = by_phase(&acks);
        assert_eq!(
            phases[DURING as usize], 0,
            "{id}: a PUBACK while the disk was full"
        );
        assert!(
            phases[BEFORE as usize] > 0 && phases[AFTER as usize] > 0,
            "{id}: {phases:?}"
        );
        report.push(format!("{id}: acked {phases:?} (before/during/after)"));
    }
    let http = http_acks.lock().unwrap().clone();
    let values = stored(&b, "measurement=flow&field=n").await;
    let distinct: BTreeSet<u64> = values.iter().map(|v| *v as u64).collect();
    assert_eq!(
        distinct.len(),
        values.len(),
        "a line-protocol point stored twice"
    );
    for (batch, _) in &http {
        for n in batch * 20..batch * 20 + 20 {
            assert!(distinct.contains(&n), "acknowledged point {n} not stored");
        }
    }
    assert_eq!(acked_during, 0, "no 204 while the disk was full");
    let phases = by_phase(&http);
    assert!(
        phases[BEFORE as usize] > 0 && phases[AFTER as usize] > 0,
        "{phases:?}"
    );
    eprintln!(
        "disk full held {held:?}; resumed {resumed:?} after the filler was deleted; HTTP batches of 20 acked {phases:?} \
         (before/during/after), {} refused; {}; MQTT refusals {}",
        http_refused.lock().unwrap().len(),
        report.join("; "),
        refusals_now().iter().sum::<u64>()
    );

    // Logged once; a clean stop; the files verify.
    let log = b.log();
    let full_lines = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("disk full: "))
        .count();
    assert_eq!(full_lines, 1, "disk full logged once at ERROR:\n{log}");
    assert!(b.terminate().await.success());
    let out = Command::new(env!("CARGO_BIN_EXE_bydata"))
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
}
