//! Data targets end to end, with real parts: devices publish through bydata's MQTT listener; an HTTP
//! receiver on loopback (an axum server in the test, turned off and on, answering what the test says) and
//! Mosquitto as an outside broker with a real subscriber (rumqttc) receive the forwarded readings.
//!
//! - an HTTP target gets every reading once, in order per device, with its idempotency key, through an
//!   outage of its receiver (the journal is the buffer, the cursor waits); another organisation's readings
//!   never reach it; a test message arrives marked as one; the token is sent but never shown;
//! - a receiver that refuses (422) turns batches into dead letters at once, and a replay after the fix
//!   delivers them with the same keys;
//! - `kill -9` of bydata while it forwards: after a restart every acknowledged reading arrives, duplicates
//!   only with the same key;
//! - an MQTT target publishes each reading at QoS 1 to Mosquitto, on its topic template.
#![allow(clippy::unwrap_used)]
mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{ADMIN, Bydata, Mqtt, eventually, free_port};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FORWARD_CONFIG: &str = "[forward]\nreload_ms = 200\nbackoff_initial_ms = 100\nbackoff_max_ms = 400\nrequest_timeout_ms = 3000\nidle_commit_ms = 200\n";

/// What the receiver saw: each request's headers and body, and the status it answered.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(HeaderMap, Value, u16)>>,
    status: AtomicU16,
    /// Once this many requests are seen (0: never), further ones wait unanswered until `release`.
    hold_after: AtomicU64,
    released: std::sync::atomic::AtomicBool,
    release: tokio::sync::Notify,
}

impl Seen {
    fn holding(&self) -> bool {
        let after = self.hold_after.load(Ordering::SeqCst);
        after > 0
            && !self.released.load(Ordering::SeqCst)
            && self.requests.lock().unwrap().len() as u64 >= after
    }

    /// Answers held requests and lets later ones through.
    fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }
}

/// A webhook receiver on a fixed loopback port that can be turned off (connection refused) and on.
struct Receiver {
    port: u16,
    seen: Arc<Seen>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn hook(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    loop {
        // Created before the check, so a release between the two still wakes it.
        let released = seen.release.notified();
        if !seen.holding() {
            break;
        }
        released.await;
    }
    let status = seen.status.load(Ordering::Relaxed);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.requests.lock().unwrap().push((headers, body, status));
    // No keep-alive: a receiver turned off must be off for bydata too.
    let mut out = HeaderMap::new();
    out.insert("connection", "close".parse().unwrap());
    (
        StatusCode::from_u16(status).unwrap(),
        out,
        format!("answered {status}"),
    )
}

impl Receiver {
    fn new() -> Receiver {
        let seen = Arc::new(Seen::default());
        seen.status.store(200, Ordering::Relaxed);
        let mut r = Receiver {
            port: free_port(),
            seen,
            task: None,
        };
        r.on();
        r
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn on(&mut self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(self.seen.clone());
        self.task = Some(tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        }));
    }

    fn off(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    fn answer(&self, status: u16) {
        self.seen.status.store(status, Ordering::Relaxed);
    }

    /// The readings of the batches it accepted (2xx), test messages left out, in arrival order.
    fn accepted(&self) -> Vec<Value> {
        self.seen
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b, status)| *status < 300 && b["test"] != true)
            .flat_map(|(_, b, _)| b["readings"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn requests(&self) -> Vec<(HeaderMap, Value, u16)> {
        self.seen.requests.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.off();
    }
}

/// Milliseconds since the epoch, an hour ago: readings carry their own times from there on.
fn base_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() - 3_600_000
}

/// Publishes `n` readings `{"temperature": i, "time": base + i s}` (i from `from`), each acknowledged.
async fn publish(device: &mut Mqtt, id: &str, base: i64, from: u64, n: u64) {
    for i in from..from + n {
        let payload = json!({"temperature": i as f64, "time": base + i as i64 * 1000});
        device
            .publish_acked(&format!("devices/{id}/up"), payload.to_string())
            .await
            .unwrap();
    }
}

async fn create_target(b: &Bydata, body: Value) -> Value {
    let (code, answer) = b.post("/api/v1/targets", ADMIN, &body).await;
    assert_eq!(code, 201, "{answer}");
    answer
}

/// Each device's readings in arrival order, first arrival of each key only; and whether any key came twice
/// with a different body.
fn by_device(readings: &[Value]) -> BTreeMap<String, Vec<f64>> {
    let mut first: HashMap<String, Value> = HashMap::new();
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in readings {
        let key = r["key"].as_str().unwrap().to_owned();
        match first.get(&key) {
            Some(earlier) => assert_eq!(earlier, r, "a duplicate key with another reading"),
            None => {
                first.insert(key, r.clone());
                out.entry(r["device"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(r["value"].as_f64().unwrap());
            }
        }
    }
    out
}

async fn target_status(b: &Bydata, id: &str) -> Value {
    let (code, body) = b.get(&format!("/api/v1/targets/{id}"), ADMIN).await;
    assert_eq!(code, 200, "{body}");
    body["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_target_gets_every_reading_in_order_through_an_outage() {
    let mut receiver = Receiver::new();
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(dir.path(), FORWARD_CONFIG).await;
    let base = base_ms();
    let mut devices = Vec::new();
    for id in ["fw-a", "fw-b"] {
        let password = b.onboard(id, json!({"floor": "2"})).await;
        devices.push((id, Mqtt::device(b.mqtt, id, &password).await));
    }
    // Another organisation's device: its readings are never this target's.
    let (code, body) = b
        .post(
            "/api/v1/orgs",
            ADMIN,
            &json!({"id": "other", "name": "Other"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "fw-other", "name": "other", "transport": "mqtt", "domain": "building", "org": "other"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let mut other = Mqtt::device(
        b.mqtt,
        "fw-other",
        body["mqtt"]["password"].as_str().unwrap(),
    )
    .await;

    let token = "receiver-token-0123";
    let created = create_target(
        &b,
        json!({"id": "hook", "name": "City webhook", "kind": "http", "url": receiver.url(),
               "auth": {"type": "bearer", "token": token}, "headers": {"X-Api-Key": "header-secret"},
               "batch_size": 20, "max_delay_ms": 200, "filter": {"tags": {"floor": "2"}}}),
    )
    .await;
    assert!(!created.to_string().contains(token), "{created}");
    assert!(!created.to_string().contains("header-secret"), "{created}");
    assert_eq!(created["headers"], json!(["x-api-key"]));

    for (id, device) in &mut devices {
        publish(device, id, base, 0, 30).await;
    }
    publish(&mut other, "fw-other", base, 0, 5).await;
    eventually(
        Duration::from_secs(20),
        "60 readings at the receiver",
        || async {
            (by_device(&receiver.accepted())
                .values()
                .map(Vec::len)
                .sum::<usize>()
                >= 60)
                .then_some(())
        },
    )
    .await;
    let (headers, _, _) = receiver.requests()[0].clone();
    assert_eq!(headers["authorization"], format!("Bearer {token}"));
    assert_eq!(headers["x-api-key"], "header-secret");
    assert!(
        headers["x-bydata-batch"]
            .to_str()
            .unwrap()
            .starts_with("hook:")
    );

    // The receiver goes away; readings keep coming; it comes back: nothing lost, order kept.
    receiver.off();
    for (id, device) in &mut devices {
        publish(device, id, base, 30, 30).await;
    }
    let status = eventually(Duration::from_secs(20), "the target retrying", || async {
        let s = target_status(&b, "hook").await;
        (s["state"] == "retrying" && s["lag_entries"].as_u64().unwrap_or(0) > 0).then_some(s)
    })
    .await;
    assert!(
        status["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{status}"
    );
    receiver.on();
    let seen = eventually(
        Duration::from_secs(30),
        "120 readings at the receiver",
        || async {
            let seen = by_device(&receiver.accepted());
            (seen.values().map(Vec::len).sum::<usize>() >= 120).then_some(seen)
        },
    )
    .await;
    let expected: Vec<f64> = (0..60).map(|i| i as f64).collect();
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["fw-a", "fw-b"]);
    for (device, values) in &seen {
        assert_eq!(values, &expected, "{device}: every reading, in order");
    }
    let sample = &receiver.accepted()[0];
    assert_eq!(sample["org"], "default");
    assert_eq!(sample["tags"]["floor"], "2");
    assert!(
        sample["key"].as_str().unwrap().ends_with(":temperature"),
        "{sample}"
    );

    // A test message, marked as one; the log shows deliveries and the outage.
    let (code, body) = b.post("/api/v1/targets/hook/test", ADMIN, &json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["delivery"]["outcome"], "delivered", "{body}");
    assert!(
        receiver
            .requests()
            .iter()
            .any(|(h, body, _)| body["test"] == true && h["x-bydata-test"] == "true")
    );
    let (code, log) = b.get("/api/v1/targets/hook/deliveries", ADMIN).await;
    assert_eq!(code, 200, "{log}");
    let outcomes: HashSet<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains("delivered") && outcomes.contains("failed"),
        "{log}"
    );
    let status = eventually(Duration::from_secs(10), "the target caught up", || async {
        let s = target_status(&b, "hook").await;
        (s["lag_entries"] == 0).then_some(s)
    })
    .await;
    assert_eq!(status["state"], "idle", "{status}");
    let (_, metrics) = b.get("/metrics", ADMIN).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("bydata_forward_readings_total{kind=\"http\"}"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("forward"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!b.log().contains(token), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_makes_dead_letters_that_replay_after_the_fix() {
    let receiver = Receiver::new();
    receiver.answer(422);
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(dir.path(), FORWARD_CONFIG).await;
    let password = b.onboard("dl-1", json!({})).await;
    let mut device = Mqtt::device(b.mqtt, "dl-1", &password).await;
    create_target(
        &b,
        json!({"id": "strict", "name": "Strict", "kind": "http", "url": receiver.url(),
               "batch_size": 5, "max_delay_ms": 100}),
    )
    .await;
    let base = base_ms();
    publish(&mut device, "dl-1", base, 0, 10).await;
    let letters = eventually(Duration::from_secs(20), "dead letters", || async {
        let (_, body) = b.get("/api/v1/targets/strict/dead-letters", ADMIN).await;
        let n: usize = body["dead_letters"]
            .as_array()?
            .iter()
            .map(|l| l["readings"].as_array().map_or(0, Vec::len))
            .sum();
        (n == 10).then_some(body)
    })
    .await;
    assert_eq!(letters["dead_letters"][0]["status"], 422, "{letters}");
    // Refused for good: the cursor moved on (not waiting on a batch that will never be accepted).
    let status = eventually(Duration::from_secs(10), "the cursor past them", || async {
        let s = target_status(&b, "strict").await;
        (s["lag_entries"] == 0).then_some(s)
    })
    .await;
    assert_eq!(status["dead_letters"], letters["total"], "{status}");
    let keys: HashSet<String> = letters["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["readings"].as_array().unwrap().iter())
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();

    receiver.answer(200);
    let (code, body) = b
        .post(
            "/api/v1/targets/strict/dead-letters/replay",
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    eventually(Duration::from_secs(20), "the replayed readings", || async {
        let got: HashSet<String> = receiver
            .accepted()
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_owned())
            .collect();
        (got == keys).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "no dead letters left", || async {
        let (_, body) = b.get("/api/v1/targets/strict/dead-letters", ADMIN).await;
        (body["total"] == 0).then_some(())
    })
    .await;
    let (code, audit) = b.get("/api/v1/audit?action=target.", ADMIN).await;
    assert_eq!(code, 200, "{audit}");
    assert!(audit.to_string().contains("target.replay"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_forwarding_loses_nothing_and_repeats_only_with_the_same_key() {
    let receiver = Receiver::new();
    // The receiver takes 50 readings, then answers nothing more until released: the kill lands mid-way.
    receiver.seen.hold_after.store(5, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bydata::start_with_config(dir.path(), FORWARD_CONFIG).await;
    let password = b.onboard("k9", json!({})).await;
    create_target(
        &b,
        json!({"id": "k9-hook", "name": "Hook", "kind": "http", "url": receiver.url(),
               "batch_size": 10, "max_delay_ms": 50}),
    )
    .await;
    let mut device = Mqtt::device(b.mqtt, "k9", &password).await;
    let base = base_ms();
    publish(&mut device, "k9", base, 0, 200).await;
    eventually(Duration::from_secs(20), "forwarding under way", || async {
        (receiver.accepted().len() >= 50).then_some(())
    })
    .await;
    b.kill9();
    drop(device);
    let before = receiver.accepted().len();
    assert!(before < 200, "the kill came mid-way ({before} delivered)");
    receiver.seen.release();
    let b = Bydata::start_with_config(dir.path(), FORWARD_CONFIG).await;
    let seen = eventually(
        Duration::from_secs(30),
        "all 200 after the restart",
        || async {
            let seen = by_device(&receiver.accepted());
            (seen.get("k9").map_or(0, Vec::len) >= 200).then_some(seen)
        },
    )
    .await;
    let expected: Vec<f64> = (0..200).map(|i| i as f64).collect();
    assert_eq!(seen["k9"], expected);
    drop(b);
}

/// A Mosquitto broker (Debian package `mosquitto`, installed by the test command) on a free port.
struct Mosquitto {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    async fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("mosquitto");
        let mut child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto runs (scripts/test.sh installs the Debian package)");
        eventually(Duration::from_secs(10), "mosquitto listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        assert!(child.try_wait().unwrap().is_none(), "mosquitto exited");
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_target_publishes_each_reading_at_qos1_to_an_outside_broker() {
    let broker = Mosquitto::start().await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], broker.port));
    let mut subscriber = Mqtt::connect(common::options(addr, "city-sub", "city-sub", ""))
        .await
        .unwrap();
    subscriber
        .client
        .subscribe("city/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = subscriber.events.recv().await {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Incoming::SubAck(_))) = e {
                return;
            }
        }
    })
    .await
    .expect("the SUBACK");
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(dir.path(), FORWARD_CONFIG).await;
    let password = b.onboard("mq-1", json!({})).await;
    let mut device = Mqtt::device(b.mqtt, "mq-1", &password).await;
    let created = create_target(
        &b,
        json!({"id": "broker", "name": "City broker", "kind": "mqtt", "host": "127.0.0.1",
               "port": broker.port, "topic": "city/{org}/{device}/{measurement}",
               "batch_size": 4, "max_delay_ms": 100}),
    )
    .await;
    assert_eq!(created["kind"], "mqtt", "{created}");
    let base = base_ms();
    publish(&mut device, "mq-1", base, 0, 10).await;
    let mut got: Vec<(String, Value)> = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.len() < 10 {
            if let Some(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p)))) =
                subscriber.events.recv().await
            {
                assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce, "forwarded at QoS 1");
                got.push((p.topic.clone(), serde_json::from_slice(&p.payload).unwrap()));
            }
        }
    })
    .await
    .expect("10 readings at the subscriber");
    let mut values: Vec<f64> = Vec::new();
    let mut keys = HashSet::new();
    for (topic, r) in &got {
        assert_eq!(topic, "city/default/mq-1/temperature");
        keys.insert(r["key"].as_str().unwrap().to_owned());
        values.push(r["value"].as_f64().unwrap());
    }
    assert_eq!(keys.len(), 10);
    assert_eq!(values, (0..10).map(|i| i as f64).collect::<Vec<_>>());
    let (code, body) = b
        .post("/api/v1/targets/broker/test", ADMIN, &json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["delivery"]["outcome"], "delivered", "{body}");
    let (code, body) = b
        .get("/api/v1/targets/broker/deliveries?limit=5", ADMIN)
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["deliveries"][0]["kind"], "test", "{body}");
}
