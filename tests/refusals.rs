//! Identity, topic authorisation and bad input: each gets a clear, counted outcome, nothing crashes, and the
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
//! device's status says why.
mod common;

use common::{ADMIN, Bydata, Mqtt, options};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_publish_or_subscribe_as_another() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let pw_a = b.onboard("sensor-a", json!({})).await;
    let pw_b = b.onboard("sensor-b", json!({})).await;

    let mut dev_b = Mqtt::device(b.mqtt, "sensor-b", &pw_b).await;
    dev_b
        .publish_acked("devices/sensor-b/up", r#"{"temperature": 20.0}"#)
        .await
        .unwrap();
    b.wait_status("sensor-b", "b's reading", |s| s["decoded"] == 1)
        .await;

    // A publishes on B's topic: no PUBACK, connection closed, B's data unchanged.
    let mut dev_a = Mqtt::device(b.mqtt, "sensor-a", &pw_a).await;
    let refused = dev_a
        .publish_acked("devices/sensor-b/up", r#"{"temperature": -99}"#)
        .await;
    assert!(
        refused.is_err(),
        "a foreign publish must not be acknowledged"
    );
    let status_a = b
        .wait_status("sensor-a", "a's refusal on its status", |s| {
            s["rejected"] == 1
        })
        .await;
    let reason = status_a["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("devices/sensor-b/up") && reason.contains("refused"),
        "{reason}"
    );
    assert_eq!(b.latest("sensor-b", "temperature").await, Some(20.0));
    let status_b = b.status("sensor-b").await;
    assert_eq!(
        (status_b["received"].clone(), status_b["rejected"].clone()),
        (json!(1), json!(0))
    );

    // Logging in as B with A's password, or as B with A's username, fails (the latter, A's own login under
    // another client id, with CONNACK 2 and a refusal on A's status).
    assert!(
        Mqtt::connect(options(b.mqtt, "sensor-b", "sensor-b", &pw_a))
            .await
            .is_err()
    );
    assert!(
        Mqtt::connect(options(b.mqtt, "sensor-b", "sensor-a", &pw_a))
            .await
            .is_err()
    );

    // Subscribing outside its subtree (a wildcard, or B's topics) closes the connection too.
    for filter in ["#", "devices/+/up", "devices/sensor-b/#"] {
        let mut dev = Mqtt::device(b.mqtt, "sensor-a", &pw_a).await;
        dev.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        dev.closed().await;
    }
    b.wait_status("sensor-a", "three subscribe refusals", |s| {
        s["rejected"] == 5
    })
    .await;
    // Its own subtree is fine, and B's data is still only B's.
    let mut dev = Mqtt::device(b.mqtt, "sensor-a", &pw_a).await;
    dev.client
        .subscribe("devices/sensor-a/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    dev.publish_acked("devices/sensor-a/up", r#"{"temperature": 19.0}"#)
        .await
        .unwrap();
    b.wait_status("sensor-a", "a's own reading", |s| s["decoded"] == 1)
        .await;
    assert_eq!(b.latest("sensor-b", "temperature").await, Some(20.0));

    let (_, metrics) = b.get("/metrics", ADMIN).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("bydata_mqtt_refused_total{reason=\"publish_denied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bydata_mqtt_refused_total{reason=\"subscribe_denied\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_counted_explained_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let pw = b.onboard("meter-7", json!({"building": "b7"})).await;
    let topic = "devices/meter-7/up";

    // Wrong password: refused with CONNACK 4 and counted for the device in memory only — an unauthenticated
    // attempt writes nothing (not the journal, not the stored status).
    let wrong = Mqtt::connect(options(b.mqtt, "meter-7", "meter-7", "not-the-password")).await;
    assert!(wrong.err().unwrap().contains("BadUserNamePassword"));
    let s = b.status("meter-7").await;
    assert_eq!(s["unverified_attempts"]["wrong_password"], 1, "{s}");
    assert_eq!(
        (s["received"].clone(), s["rejected"].clone()),
        (json!(0), json!(0))
    );

    // Unknown device: refused, counted in the broker metrics (there is no device to attach it to).
    assert!(
        Mqtt::connect(options(b.mqtt, "ghost", "ghost", "whatever"))
            .await
            .is_err()
    );
    let (_, metrics) = b.get("/metrics", ADMIN).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("bydata_mqtt_auth_failures_total{reason=\"unknown_device\"} 1")
    );

    // Payloads that cannot be stored: each acknowledged (it is journaled) and then rejected with its reason.
    let future = "2100-01-01T00:00:00Z";
    let cases: [(&str, String, &str); 5] = [
        (
            "malformed JSON",
            r#"{"energy_kwh": 12.5,"#.to_owned(),
            "malformed JSON",
        ),
        ("NaN", r#"{"energy_kwh": NaN}"#.to_owned(), "NaN"),
        ("binary", "\u{1}\u{2}garbage".to_owned(), "not JSON"),
        (
            "nothing to keep",
            r#"{"energy_kwh": null}"#.to_owned(),
            "nothing bydata keeps",
        ),
        (
            "a far-future time",
            format!(r#"{{"energy_kwh": 12.5, "time": "{future}"}}"#),
            "in the future",
        ),
    ];
    let mut dev = Mqtt::device(b.mqtt, "meter-7", &pw).await;
    for (i, (what, payload, needle)) in cases.iter().enumerate() {
        dev.publish_acked(topic, payload.as_bytes().to_vec())
            .await
            .unwrap();
        let want = 1 + i as u64;
        let s = b
            .wait_status("meter-7", what, |s| s["rejected"].as_u64() == Some(want))
            .await;
        let reason = s["last_error"]["reason"].as_str().unwrap();
        assert!(
            reason.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: {reason}"
        );
    }

    // Oversized: the connection is closed without a PUBACK, and the status says how big and what the limit is.
    let big = format!(r#"{{"energy_kwh": 1, "pad": "{}"}}"#, "x".repeat(70 * 1024));
    assert!(dev.publish_acked(topic, big).await.is_err());
    let s = b
        .wait_status("meter-7", "the oversize refusal", |s| s["rejected"] == 6)
        .await;
    let reason = s["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("exceeds the limit of 65536 bytes"),
        "{reason}"
    );

    // Nothing was stored from any of it, and the device (and bydata) carry on.
    assert_eq!(b.latest("meter-7", "energy_kwh").await, None);
    let mut dev = Mqtt::device(b.mqtt, "meter-7", &pw).await;
    dev.publish_acked(topic, r#"{"energy_kwh": 1234.5}"#)
        .await
        .unwrap();
    let s = b
        .wait_status("meter-7", "a good reading after the bad", |s| {
            s["decoded"] == 1
        })
        .await;
    assert_eq!(s["received"], 7);
    assert_eq!(b.latest("meter-7", "energy_kwh").await, Some(1234.5));
    let (code, _) = b.get("/health", ADMIN).await;
    assert_eq!(code, 200);
}

/// Arbitrary bytes on the MQTT port (random blobs, a CONNECT whose client id holds wildcards, a CONNECT with no
/// password, a huge announced length): each connection is dropped and bydata carries on serving devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_mqtt_port_harms_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let pw = b.onboard("robust-1", json!({})).await;

    // MQTT 3.1.1 CONNECT (spec §3.1) with client id "a/#", user "a/#", password "x".
    let wildcard_connect: Vec<u8> = vec![
        0x10, 22, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30, 0, 3, b'a', b'/', b'#', 0, 3, b'a',
        b'/', b'#', 0, 1, b'x',
    ];
    // CONNECT without username/password flags, client id "robust-1".
    let anonymous_connect: Vec<u8> = vec![
        0x10, 20, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 8, b'r', b'o', b'b', b'u', b's',
        b't', b'-', b'1',
    ];
    let huge_length: Vec<u8> = vec![0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, b'a'];
    let mut blobs = vec![wildcard_connect, anonymous_connect, huge_length];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15; // xorshift: deterministic "random" blobs
    for len in [1usize, 2, 5, 17, 64, 300, 4096] {
        let mut blob = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            blob.push(x as u8);
        }
        blobs.push(blob);
    }
    for blob in &blobs {
        let mut s = tokio::net::TcpStream::connect(b.mqtt).await.unwrap();
        let _ = s.write_all(blob).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        // The broker must end the conversation (close, or answer and close) rather than hang or crash.
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(15), s.read_to_end(&mut sink))
                .await;
        assert!(
            read.is_ok(),
            "connection with {} garbage bytes left hanging",
            blob.len()
        );
    }
    let mut dev = Mqtt::device(b.mqtt, "robust-1", &pw).await;
    dev.publish_acked("devices/robust-1/up", r#"{"temperature": 20.5}"#)
        .await
        .unwrap();
    b.wait_status("robust-1", "the reading after the garbage", |s| {
        s["decoded"] == 1
    })
    .await;
    let (code, _) = b.get("/health", ADMIN).await;
    assert_eq!(code, 200);
}
