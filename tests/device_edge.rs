//! The device edge, as a table over real MQTT against one bydata: every message a device sends ends up stored
//! or explained — a wrong topic (QoS 1 and 0), fields that are text, time keys, an FPort in the topic, a client
//! id that is not the device id. Each row shows the stored values or the explanation on the device's status.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, Mqtt, options};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whole seconds since the epoch, `ago` seconds before now.
fn epoch_secs(ago: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - ago
}

/// RFC 3339 (UTC) of epoch seconds, by civil-from-days (no date library in the tests).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The device's raw `measurement` points stored at exactly `secs` (a one-second range).
async fn values_at(b: &Bydata, device: &str, measurement: &str, secs: u64) -> Vec<f64> {
    let path = format!(
        "/api/v1/query?measurement={measurement}&device={device}&from={}&to={}",
        rfc3339(secs),
        rfc3339(secs + 1)
    );
    let (code, body) = b.get(&path, ADMIN).await;
    assert_eq!(code, 200, "{path}: {body}");
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap().clone())
        .filter_map(|p| p["value"].as_f64())
        .collect()
}

async fn latest(b: &Bydata, device: &str) -> Value {
    let (code, body) = b
        .get(&format!("/api/v1/devices/{device}/latest"), ADMIN)
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn metric(b: &Bydata, line: &str) -> u64 {
    let (_, text) = b.get("/metrics", ADMIN).await;
    let text = text.as_str().unwrap().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in /metrics"))
}

const PUBLISH_DENIED: &str = "bydata_mqtt_refused_total{reason=\"publish_denied\"}";

/// A JavaScript codec that shows the FPort it was given.
const PORT_CODEC: &str = "function decodeUplink(input) { return { data: { port: input.fPort } }; }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_stored_or_explained() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;

    // Wrong topic at QoS 1: no PUBACK, the connection closes, the status and /metrics say why.
    let pw = b.onboard("edge-topic1", json!({})).await;
    let mut dev = Mqtt::device(b.mqtt, "edge-topic1", &pw).await;
    let denied_before = metric(&b, PUBLISH_DENIED).await;
    let refused = dev
        .publish_acked("devices/edge-topic1/data", r#"{"co2": 1}"#)
        .await;
    assert!(refused.is_err(), "row /data QoS 1: acknowledged");
    let s = b
        .wait_status("edge-topic1", "row /data QoS 1: the refusal", |s| {
            s["rejected"] == 1
        })
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"devices/edge-topic1/data\"")
            && reason.contains("devices/edge-topic1/up"),
        "row /data QoS 1: {reason}"
    );
    assert_eq!(metric(&b, PUBLISH_DENIED).await, denied_before + 1);

    // Wrong topic at QoS 0: no PUBACK to withhold, but the same explanation and count.
    let pw = b.onboard("edge-topic0", json!({})).await;
    let mut dev = Mqtt::device(b.mqtt, "edge-topic0", &pw).await;
    dev.client
        .publish(
            "devices/edge-topic0/data",
            rumqttc::QoS::AtMostOnce,
            false,
            br#"{"co2": 1}"#.to_vec(),
        )
        .await
        .unwrap();
    dev.closed().await;
    let s = b
        .wait_status("edge-topic0", "row /data QoS 0: the refusal", |s| {
            s["rejected"] == 1
        })
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("devices/edge-topic0/up"),
        "row /data QoS 0: {reason}"
    );
    assert_eq!(metric(&b, PUBLISH_DENIED).await, denied_before + 2);

    // Payload rows: (device, payload, measurement, stored value, its time in epoch seconds or None = now).
    let hour_ago = epoch_secs(3600);
    let rows: Vec<(&str, String, &str, f64, Option<u64>)> = vec![
        (
            "edge-ts",
            json!({"co2": 656, "ts": hour_ago}).to_string(),
            "co2",
            656.0,
            Some(hour_ago),
        ),
        (
            "edge-timestamp",
            json!({"co2": 657, "timestamp": rfc3339(hour_ago)}).to_string(),
            "co2",
            657.0,
            Some(hour_ago),
        ),
        (
            "edge-millis",
            json!({"co2": 658, "time": hour_ago * 1000}).to_string(),
            "co2",
            658.0,
            Some(hour_ago),
        ),
        (
            "edge-mixed",
            json!({"co2": 655, "firmware": "1.2.3"}).to_string(),
            "co2",
            655.0,
            None,
        ),
    ];
    for (device, payload, measurement, value, at) in &rows {
        let pw = b.onboard(device, json!({})).await;
        let mut dev = Mqtt::device(b.mqtt, device, &pw).await;
        dev.publish_acked(&format!("devices/{device}/up"), payload.clone())
            .await
            .unwrap_or_else(|e| panic!("row {device}: {e}"));
        b.wait_status(device, &format!("row {device}: decoded"), |s| {
            s["decoded"] == 1
        })
        .await;
        let l = latest(&b, device).await;
        let stored: Vec<&str> = l["latest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["measurement"].as_str().unwrap())
            .collect();
        assert_eq!(stored, [*measurement], "row {device}: no time key stored");
        assert_eq!(
            b.latest(device, measurement).await,
            Some(*value),
            "row {device}"
        );
        if let Some(at) = at {
            assert_eq!(
                values_at(&b, device, measurement, *at).await,
                [*value],
                "row {device}: stored at the message's time"
            );
        }
    }
    // The mixed message: co2 stored, firmware kept as text state, and the status says so.
    let l = latest(&b, "edge-mixed").await;
    assert_eq!(l["state"]["firmware"]["value"], "1.2.3", "{l}");
    assert!(
        l["state"]["firmware"]["time"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let s = b.status("edge-mixed").await;
    assert_eq!(s["state_fields"], json!(["firmware"]), "{s}");
    assert_eq!(s["rejected"], 0, "{s}");
    let warning = s["last_warning"]["reason"].as_str().unwrap();
    assert!(
        warning.contains("kept as text state") && warning.contains("firmware"),
        "{warning}"
    );

    // A message of text only is decoded, its text kept.
    let pw = b.onboard("edge-button", json!({})).await;
    let mut dev = Mqtt::device(b.mqtt, "edge-button", &pw).await;
    dev.publish_acked("devices/edge-button/up", r#"{"button": "open"}"#)
        .await
        .unwrap();
    let s = b
        .wait_status("edge-button", "row text only: decoded", |s| {
            s["decoded"] == 1
        })
        .await;
    assert_eq!(
        (s["rejected"].clone(), s["values_stored"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        latest(&b, "edge-button").await["state"]["button"]["value"],
        "open"
    );

    // devices/{id}/up/{fport} gives the FPort to the device's JavaScript codec.
    let (code, body) = b
        .post(
            "/api/v1/codecs",
            ADMIN,
            &json!({"name": "port-echo", "description": "shows its FPort", "script": PORT_CODEC,
                    "examples": [{"fport": 100, "bytes_hex": "01", "expected": {"port": 100}}]}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "edge-fport", "name": "water meter", "transport": "mqtt",
                    "domain": "water", "codec": "js:port-echo"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let pw = body["mqtt"]["password"].as_str().unwrap();
    let mut dev = Mqtt::device(b.mqtt, "edge-fport", pw).await;
    dev.publish_acked("devices/edge-fport/up/100", vec![1u8])
        .await
        .unwrap();
    dev.publish_acked("devices/edge-fport/up", vec![1u8])
        .await
        .unwrap();
    b.wait_status("edge-fport", "row fport: decoded", |s| s["decoded"] == 2)
        .await;
    let s = b.status("edge-fport").await;
    assert_eq!(s["rejected"], 0, "{s}");
    let (code, body) = b
        .get("/api/v1/query?measurement=port&device=edge-fport", ADMIN)
        .await;
    assert_eq!(code, 200, "{body}");
    let ports: Vec<f64> = body["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .collect();
    assert_eq!(ports, [100.0, 1.0], "row fport: {body}");
    // An FPort outside 1–223 is not an uplink topic.
    let refused = dev
        .publish_acked("devices/edge-fport/up/0", vec![1u8])
        .await;
    assert!(refused.is_err(), "row fport 0: acknowledged");

    // Client id ≠ username. With a wrong password: CONNACK 4 and nothing written (a stranger cannot write a
    // device's status); its refusal would be recorded before its CONNACK, so before the next attempt's.
    let pw = b.onboard("edge-client", json!({})).await;
    let refused = Mqtt::connect(options(b.mqtt, "stranger", "edge-client", "not-it")).await;
    let refused = refused.err().unwrap();
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    // With the right password: CONNACK 2 (identifier rejected) and the reason on the device's status.
    let refused = Mqtt::connect(options(b.mqtt, "my-sensor", "edge-client", &pw)).await;
    let refused = refused.err().unwrap();
    assert!(refused.contains("BadClientId"), "{refused}");
    let s = b
        .wait_status("edge-client", "row client id: the reason", |s| {
            s["last_error"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("\"my-sensor\""))
        })
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("client id and username"),
        "row client id: {reason}"
    );
    assert_eq!(
        (s["received"].clone(), s["rejected"].clone()),
        (json!(1), json!(1)),
        "row client id: only the verified attempt is on the status: {s}"
    );
    assert_eq!(s["unverified_attempts"]["wrong_password"], 1, "{s}");
    // And the device itself, with its id, still connects.
    let mut dev = Mqtt::device(b.mqtt, "edge-client", &pw).await;
    dev.publish_acked("devices/edge-client/up", r#"{"co2": 1}"#)
        .await
        .unwrap();
    drop(dev);

    // The text state survives a restart, and goes with its device.
    let mut b = b;
    assert!(b.terminate().await.success());
    let b = Bydata::start(&dir.path().join("data")).await;
    let l = latest(&b, "edge-mixed").await;
    assert_eq!(
        l["state"]["firmware"]["value"], "1.2.3",
        "after a restart: {l}"
    );
    let (code, _) = b.delete("/api/v1/devices/edge-mixed", ADMIN).await;
    assert_eq!(code, 204);
    b.onboard("edge-mixed", json!({})).await;
    let l = latest(&b, "edge-mixed").await;
    assert_eq!(l["state"], json!({}), "a new device of the same id: {l}");
}
