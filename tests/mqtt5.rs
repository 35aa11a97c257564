//! MQTT 5 and MQTT over WebSockets on the device listener, with real clients against the real binary: paho-mqtt 2
//! (PyPI, through `common::python_venv`) over TCP and WebSockets, and `mosquitto_pub -V mqttv5` (Debian's
//! `mosquitto-clients`, installed by `scripts/test.sh`). The same identity, topic confinement, size limit and
//! journal-before-PUBACK as 3.1.1; refusals come back as reason codes and land on the device's status.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, eventually};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const PAHO: &str = "paho-mqtt==2.1.0";

fn python() -> PathBuf {
    common::python_venv("paho-venv", &[PAHO]).join("bin/python")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mqtt5/paho_client.py")
}

/// How the paho client reaches bydata.
#[derive(Clone, Copy)]
struct Client<'a> {
    addr: SocketAddr,
    transport: &'a str,
    version: &'a str,
    id: &'a str,
    password: &'a str,
}

impl Client<'_> {
    fn args(&self, steps: &Value) -> Vec<String> {
        vec![
            script().display().to_string(),
            self.addr.ip().to_string(),
            self.addr.port().to_string(),
            self.transport.to_owned(),
            self.version.to_owned(),
            self.id.to_owned(),
            self.id.to_owned(),
            self.password.to_owned(),
            steps.to_string(),
        ]
    }

    /// Runs `steps` in one connection; what the broker answered, one JSON object per answer.
    async fn run(&self, steps: Value) -> Vec<Value> {
        let args = self.args(&steps);
        let out = tokio::task::spawn_blocking(move || {
            Command::new(python()).args(&args).output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answers: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            answers.iter().all(|a| a["event"] != "timeout"),
            "{answers:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        answers
    }
}

fn connect() -> Value {
    json!({"op": "connect"})
}

fn publish(topic: &str, payload: &str) -> Value {
    json!({"op": "publish", "topic": topic, "payload": payload, "qos": 1})
}

/// The `(event, code)` of each answer.
fn codes(answers: &[Value]) -> Vec<(String, u64)> {
    answers
        .iter()
        .map(|a| {
            let code = a["code"].as_u64().unwrap_or_else(|| {
                // A SUBACK's codes, as one number per filter: 1 and 0x87 become 1_135.
                a["codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .fold(0, |n, c| n * 1000 + c.as_u64().unwrap())
            });
            (a["event"].as_str().unwrap().to_owned(), code)
        })
        .collect()
}

fn ev(event: &str, code: u64) -> (String, u64) {
    (event.to_owned(), code)
}

async fn wait_latest(b: &Bydata, id: &str, measurement: &str, want: f64) {
    eventually(Duration::from_secs(20), "the uplink stored", || async {
        (b.latest(id, measurement).await == Some(want)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_and_websocket_clients_get_the_same_rules_with_reason_codes() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let pw = b.onboard("meter-5", json!({})).await;
    b.onboard("other-1", json!({})).await;
    let tcp = Client {
        addr: b.mqtt,
        transport: "tcp",
        version: "5",
        id: "meter-5",
        password: &pw,
    };

    // A v5 uplink is journaled and acknowledged; the CONNACK says what bydata grants.
    let answers = tcp
        .run(json!([
            connect(),
            publish("devices/meter-5/up", r#"{"co2": 611}"#)
        ]))
        .await;
    assert_eq!(
        codes(&answers),
        [ev("connack", 0), ev("puback", 0)],
        "{answers:?}"
    );
    assert_eq!(answers[0]["topic_alias_max"], 16);
    assert_eq!(answers[0]["max_packet"], 64 * 1024 + 4);
    wait_latest(&b, "meter-5", "co2", 611.0).await;

    // A wrong password: CONNACK 0x86, seen by the client.
    let wrong = Client {
        password: "not-the-password",
        ..tcp
    };
    let answers = wrong.run(json!([connect()])).await;
    assert_eq!(codes(&answers), [ev("connack", 0x86)], "{answers:?}");

    // Another device's topic: PUBACK 0x87 with a reason, and the connection stays open for the right topic.
    // Topic aliases resolve before the check: an alias to a foreign topic is refused every time it is used.
    let answers = tcp
        .run(json!([
            connect(),
            publish("devices/other-1/up", r#"{"co2": 1}"#),
            {"op": "publish", "topic": "devices/meter-5/up", "payload": r#"{"co2": 612}"#, "alias": 1},
            {"op": "publish", "topic": "", "payload": r#"{"co2": 613}"#, "alias": 1},
            {"op": "publish", "topic": "devices/other-1/up", "payload": r#"{"co2": 2}"#, "alias": 2},
            {"op": "publish", "topic": "", "payload": r#"{"co2": 3}"#, "alias": 2},
            {"op": "publish", "topic": "devices/meter-5/up", "payload": r#"{"co2": 4}"#, "user_properties": 40},
            {"op": "subscribe", "filters": ["devices/meter-5/down", "devices/other-1/#"]},
            {"op": "publish", "topic": "", "payload": r#"{"co2": 5}"#, "alias": 99},
        ]))
        .await;
    assert_eq!(
        codes(&answers),
        [
            ev("connack", 0),
            ev("puback", 0x87),
            ev("puback", 0),
            ev("puback", 0),
            ev("puback", 0x87),
            ev("puback", 0x87),
            ev("puback", 0x97),
            ev("suback", 1_135),
            ev("disconnect", 0x94),
        ],
        "{answers:?}"
    );
    assert!(
        answers[1]["reason"]
            .as_str()
            .unwrap()
            .contains("devices/meter-5/up"),
        "{answers:?}"
    );
    wait_latest(&b, "meter-5", "co2", 613.0).await;
    // Every refusal is counted on the device's status, with the code the client got.
    let s = b
        .wait_status("meter-5", "the refusals", |s| s["rejected"] == 6)
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(reason.contains("0x94"), "{s}");
    assert_eq!(b.status("other-1").await["received"], 0);

    // Too large: DISCONNECT 0x95. A QoS 0 PUBLISH to a foreign topic has no PUBACK: DISCONNECT 0x87.
    let big = "x".repeat(70_000);
    let answers = tcp
        .run(json!([connect(), publish("devices/meter-5/up", &big)]))
        .await;
    assert_eq!(
        codes(&answers),
        [ev("connack", 0), ev("disconnect", 0x95)],
        "{answers:?}"
    );
    let answers = tcp
        .run(json!([connect(),
            {"op": "publish", "topic": "devices/other-1/up", "payload": "{}", "qos": 0, "expect_disconnect": true}]))
        .await;
    assert_eq!(
        codes(&answers),
        [ev("connack", 0), ev("disconnect", 0x87)],
        "{answers:?}"
    );

    // MQTT 5 and 3.1.1 over WebSockets, the same rules.
    for (version, co2) in [("5", 700.0), ("311", 701.0)] {
        let ws = Client {
            addr: b.ws,
            transport: "websockets",
            version,
            ..tcp
        };
        let answers = ws
            .run(json!([
                connect(),
                publish("devices/meter-5/up", &format!(r#"{{"co2": {co2}}}"#))
            ]))
            .await;
        assert_eq!(
            codes(&answers),
            [ev("connack", 0), ev("puback", 0)],
            "{answers:?}"
        );
        wait_latest(&b, "meter-5", "co2", co2).await;
        let wrong = Client {
            password: "nope",
            ..ws
        };
        // paho reports 3.1.1's CONNACK 4 as its MQTT 5 equivalent, 0x86.
        assert_eq!(
            codes(&wrong.run(json!([connect()])).await),
            [ev("connack", 0x86)]
        );
    }

    // mosquitto_pub -V mqttv5: stored; a wrong password is told in words.
    let mosquitto = |password: &str, message: &str| {
        Command::new("mosquitto_pub")
            .args([
                "-V",
                "mqttv5",
                "-h",
                "127.0.0.1",
                "-p",
                &b.mqtt.port().to_string(),
            ])
            .args(["-q", "1", "-i", "meter-5", "-u", "meter-5", "-P", password])
            .args(["-t", "devices/meter-5/up", "-m", message])
            .stdin(Stdio::null())
            .output()
            .expect("mosquitto_pub (apt-get install mosquitto-clients)")
    };
    let out = mosquitto(&pw, r#"{"co2": 702}"#);
    assert!(out.status.success(), "{out:?}");
    wait_latest(&b, "meter-5", "co2", 702.0).await;
    let out = mosquitto("nope", "{}");
    let said = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        !out.status.success() && said.contains("bad user name or password"),
        "{said}"
    );

    // The broker's listeners and versions are named for onboarding and in /metrics.
    let (_, info) = b.get("/api/v1/broker", ADMIN).await;
    assert_eq!(info["ws_port"], b.ws.port(), "{info}");
    assert_eq!(info["mqtt_versions"], json!(["3.1.1", "5"]));
    let (_, metrics) = b.get("/metrics", ADMIN).await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(r#"bydata_mqtt_sessions_total{kind="v5"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bydata_mqtt_sessions_total{kind="websocket"} 4"#),
        "{metrics}"
    );
}

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

/// What a v5 client was acknowledged (over WebSockets, the longer path) survives `kill -9` of bydata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Bydata::start(&data).await;
    let pw = b.onboard("counter-5", json!({})).await;
    let client = Client {
        addr: b.ws,
        transport: "websockets",
        version: "5",
        id: "counter-5",
        password: &pw,
    };
    let args = client.args(
        &json!([connect(), {"op": "stream", "topic": "devices/counter-5/up", "count": 100_000}]),
    );
    let mut child = Command::new(python())
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(64);
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx
                .blocking_send(serde_json::from_str(&line).unwrap())
                .is_err()
            {
                break;
            }
        }
    });
    let mut acked = HashSet::new();
    let killed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(answer) = rx.recv().await {
            if let Some(seq) = answer["seq"].as_u64() {
                acked.insert(seq);
                if acked.len() == 300 {
                    b.kill9();
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(killed, Ok(true), "300 acknowledgements before the kill");
    // Whatever was acknowledged before the socket died counts too.
    while let Some(answer) = rx.recv().await {
        if let Some(seq) = answer["seq"].as_u64() {
            acked.insert(seq);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();

    let b = Bydata::start(&data).await;
    let seqs = eventually(
        Duration::from_secs(30),
        "every acknowledged message stored",
        || async {
            let seqs = stored_seqs(&b, "counter-5").await;
            (seqs.len() >= acked.len()).then_some(seqs)
        },
    )
    .await;
    let stored: HashSet<u64> = seqs.into_iter().collect();
    let missing: Vec<_> = acked.iter().filter(|s| !stored.contains(s)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
