//! Downlinks end to end, on the real binary: queued through the API, delivered by the embedded broker to a real
//! MQTT client (rumqttc) on `devices/{id}/down/{fport}` (raw) or `devices/{id}/down` (JSON envelope), the state
//! following the device's PUBACK; kept while the device is offline and across a restart; JSON encoded by a
//! JavaScript codec's `encodeDownlink`; refusals in the user's words; another organisation's device unseen.
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata, Mqtt, eventually};
use rumqttc::{Event, Incoming, QoS};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The next PUBLISH the client receives: (topic, payload).
async fn next_publish(m: &mut Mqtt) -> (String, Vec<u8>) {
    tokio::time::timeout(WAIT, async {
        while let Some(e) = m.events.recv().await {
            if let Ok(Event::Incoming(Incoming::Publish(p))) = e {
                return (p.topic, p.payload.to_vec());
            }
        }
        panic!("the connection ended before a downlink arrived")
    })
    .await
    .expect("a downlink arrives")
}

async fn subscribe(m: &mut Mqtt, filter: &str, qos: QoS) {
    m.client.subscribe(filter, qos).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while let Some(e) = m.events.recv().await {
            if let Ok(Event::Incoming(Incoming::SubAck(_))) = e {
                return;
            }
        }
    })
    .await
    .expect("SUBACK");
}

/// Waits until downlink `id` of `device` is in `state`; answers it.
async fn wait_state(b: &Bydata, device: &str, id: u64, state: &str) -> Value {
    eventually(WAIT, &format!("downlink {id} {state}"), || async {
        let (code, list) = b
            .get(&format!("/api/v1/devices/{device}/downlinks"), ADMIN)
            .await;
        assert_eq!(code, 200, "{list}");
        list["downlinks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id && d["state"] == state)
            .cloned()
    })
    .await
}

async fn enqueue(b: &Bydata, device: &str, body: Value) -> Value {
    let (code, d) = b
        .post(&format!("/api/v1/devices/{device}/downlinks"), ADMIN, &body)
        .await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["state"], "queued", "{d}");
    d
}

#[tokio::test]
async fn a_connected_device_gets_its_downlink_and_acknowledges_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let password = b.onboard("valve-1", json!({})).await;
    let mut m = Mqtt::device(b.mqtt, "valve-1", &password).await;
    subscribe(&mut m, "devices/valve-1/down/#", QoS::AtLeastOnce).await;

    let d = enqueue(
        &b,
        "valve-1",
        json!({"fport": 10, "hex": "0102", "confirmed": true}),
    )
    .await;
    let (topic, payload) = next_publish(&mut m).await;
    assert_eq!(
        (topic.as_str(), payload.as_slice()),
        ("devices/valve-1/down/10", &[1u8, 2][..])
    );
    let done = wait_state(&b, "valve-1", d["id"].as_u64().unwrap(), "acknowledged").await;
    assert_eq!(
        (done["attempts"].clone(), done["via"].clone()),
        (json!(1), json!("mqtt")),
        "{done}"
    );

    // FIFO: two more go out in order, each after the previous one's PUBACK.
    let first = enqueue(&b, "valve-1", json!({"fport": 1, "bytes": "AQ=="})).await;
    let second = enqueue(&b, "valve-1", json!({"fport": 2, "bytes": "Ag=="})).await;
    assert_eq!(
        next_publish(&mut m).await,
        ("devices/valve-1/down/1".to_owned(), vec![1])
    );
    assert_eq!(
        next_publish(&mut m).await,
        ("devices/valve-1/down/2".to_owned(), vec![2])
    );
    for d in [first, second] {
        wait_state(&b, "valve-1", d["id"].as_u64().unwrap(), "acknowledged").await;
    }

    // A device subscribed at QoS 0 sends no PUBACK: an unconfirmed downlink ends sent.
    let password = b.onboard("lamp-1", json!({})).await;
    let mut lamp = Mqtt::device(b.mqtt, "lamp-1", &password).await;
    subscribe(&mut lamp, "devices/lamp-1/down/+", QoS::AtMostOnce).await;
    let d = enqueue(&b, "lamp-1", json!({"fport": 3, "hex": "ff"})).await;
    assert_eq!(next_publish(&mut lamp).await.1, vec![0xff]);
    wait_state(&b, "lamp-1", d["id"].as_u64().unwrap(), "sent").await;
}

#[tokio::test]
async fn an_offline_device_gets_its_queue_after_connecting_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Bydata::start(&data).await;
    let password = b.onboard("sign-1", json!({})).await;
    let d = enqueue(
        &b,
        "sign-1",
        json!({"fport": 7, "hex": "cafe", "confirmed": true}),
    )
    .await;
    let id = d["id"].as_u64().unwrap();
    // A second one is cancelled while queued: it stays in the history as failed, and goes nowhere.
    let gone = enqueue(&b, "sign-1", json!({"fport": 8, "hex": "00"})).await;
    let gone_id = gone["id"].as_u64().unwrap();
    let (code, c) = b
        .delete(
            &format!("/api/v1/devices/sign-1/downlinks/{gone_id}"),
            ADMIN,
        )
        .await;
    assert_eq!((code, c["state"].clone()), (200, json!("failed")), "{c}");
    assert!(c["error"].as_str().unwrap().starts_with("cancelled"), "{c}");
    let (code, again) = b
        .delete(
            &format!("/api/v1/devices/sign-1/downlinks/{gone_id}"),
            ADMIN,
        )
        .await;
    assert_eq!(code, 409, "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only a queued downlink"),
        "{again}"
    );

    b.terminate().await;
    let b = Bydata::start(&data).await;
    wait_state(&b, "sign-1", id, "queued").await;

    // Subscribed to exactly devices/{id}/down: the JSON envelope, which carries the FPort.
    let mut m = Mqtt::device(b.mqtt, "sign-1", &password).await;
    subscribe(&mut m, "devices/sign-1/down", QoS::AtLeastOnce).await;
    let (topic, payload) = next_publish(&mut m).await;
    assert_eq!(topic, "devices/sign-1/down");
    let envelope: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        envelope,
        json!({"id": id, "fport": 7, "confirmed": true, "bytes": "yv4=", "hex": "cafe"})
    );
    wait_state(&b, "sign-1", id, "acknowledged").await;
    // The cancelled one was never sent.
    let cancelled = wait_state(&b, "sign-1", gone_id, "failed").await;
    assert_eq!(cancelled["attempts"], 0, "{cancelled}");
}

const VALVE_CODEC: &str = r#"
function decodeUplink(input) { return { data: { open: input.bytes[0] === 1 } }; }
function encodeDownlink(input) {
  if (typeof input.data.open !== "boolean") return { errors: ["open must be true or false"] };
  return { bytes: [input.data.open ? 1 : 0], fPort: 20 };
}
"#;

#[tokio::test]
async fn json_goes_through_the_codecs_encode_downlink_and_refusals_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let examples = json!([{"fport": 1, "bytes_hex": "01", "expected": {"open": true}}]);
    let (code, body) = b.upload_codec("valve", VALVE_CODEC, examples.clone()).await;
    assert_eq!(code, 201, "{body}");
    let mut m = b.codec_device("valve-2", "js:valve").await;
    subscribe(&mut m, "devices/valve-2/down/#", QoS::AtLeastOnce).await;
    let d = enqueue(&b, "valve-2", json!({"fport": 5, "json": {"open": true}})).await;
    assert_eq!(
        (d["hex"].clone(), d["fport"].clone()),
        (json!("01"), json!(20)),
        "{d}"
    );
    assert_eq!(
        next_publish(&mut m).await,
        ("devices/valve-2/down/20".to_owned(), vec![1])
    );

    // The codec's own error, named.
    let (code, e) = b
        .post(
            "/api/v1/devices/valve-2/downlinks",
            ADMIN,
            &json!({"fport": 5, "json": {"open": "yes"}}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("open must be true or false"),
        "{e}"
    );

    // A codec without encodeDownlink: 422 naming what to add.
    let decode_only =
        "function decodeUplink(input) { return { data: { open: input.bytes[0] === 1 } }; }";
    let (code, body) = b.upload_codec("reader", decode_only, examples).await;
    assert_eq!(code, 201, "{body}");
    drop(b.codec_device("meter-1", "js:reader").await);
    let (code, e) = b
        .post(
            "/api/v1/devices/meter-1/downlinks",
            ADMIN,
            &json!({"fport": 1, "json": {"x": 1}}),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("encodeDownlink(input)"), "{message}");
    assert!(
        message.contains("\"hex\""),
        "says what to send instead: {message}"
    );

    // Bad requests: FPort, hex, two payloads, too large.
    for (body, needle) in [
        (json!({"fport": 0, "hex": "01"}), "fport"),
        (json!({"fport": 1, "hex": "0g"}), "hex"),
        (
            json!({"fport": 1, "hex": "01", "bytes": "AQ=="}),
            "not several",
        ),
        (json!({"fport": 1, "hex": "00".repeat(70_000)}), "at most"),
    ] {
        let (code, e) = b
            .post("/api/v1/devices/valve-2/downlinks", ADMIN, &body)
            .await;
        assert_eq!(code, 400, "{body}: {e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[tokio::test]
async fn another_organisations_device_is_not_found_and_viewers_only_list() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    for org in ["a", "b"] {
        let (code, body) = b
            .post("/api/v1/orgs", ADMIN, &json!({"id": org, "name": org}))
            .await;
        assert_eq!(code, 201, "{body}");
    }
    let body =
        json!({"id": "pump-a", "name": "pump", "transport": "mqtt", "domain": "water", "org": "a"});
    let (code, created) = b.post("/api/v1/devices", ADMIN, &body).await;
    assert_eq!(code, 201, "{created}");
    let (b_editor, a_viewer) = (key(&b, "b", "editor").await, key(&b, "a", "viewer").await);
    let path = "/api/v1/devices/pump-a/downlinks";
    let (code, e) = b
        .post(path, &b_editor, &json!({"fport": 1, "hex": "01"}))
        .await;
    assert_eq!(code, 404, "{e}");
    assert_eq!(b.get(path, &b_editor).await.0, 404);
    let (code, e) = b
        .post(path, &a_viewer, &json!({"fport": 1, "hex": "01"}))
        .await;
    assert_eq!(code, 403, "{e}");
    let (code, list) = b.get(path, &a_viewer).await;
    assert_eq!((code, list["open"].clone()), (200, json!(0)), "{list}");
    // The queue is audited.
    enqueue(&b, "pump-a", json!({"fport": 1, "hex": "01"})).await;
    let (code, audit) = b.get("/api/v1/audit?action=downlink.", ADMIN).await;
    assert_eq!(code, 200, "{audit}");
    assert!(audit.to_string().contains("downlink.enqueue"), "{audit}");
}

async fn key(b: &Bydata, org: &str, role: &str) -> String {
    let body = json!({"name": format!("{org}-{role}"), "role": role, "org": org});
    let (code, t) = b.post("/api/v1/tokens", ADMIN, &body).await;
    assert_eq!(code, 201, "{t}");
    t["token"].as_str().unwrap().to_owned()
}
