//! Network-server integrations with real MQTT clients over TCP: a ChirpStack v4 uplink event published into
//! bydata's broker with an integration's credentials, and a The Things Stack v3 uplink read by bydata as an
//! MQTT client of the network server's broker (Mosquitto plays that part here: no ChirpStack or TTS can run
//! on these machines), both become decoded values of the device with that DevEUI.
//!
//! The event bodies are the examples from ChirpStack's and The Things Stack's documentation
//! (`ingest/src/integrations/testdata/`, sources named there), with the payload replaced by a Cayenne LPP
//! reading so the values can be checked: `03 67 01 10` is channel 3, 27.2 °C (and, for TTS, an FPort).
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata, Mqtt, eventually, options};
use serde_json::{Value, json};
use std::time::Duration;

const CAYENNE_27_2: &str = "A2cBEA==";

fn chirpstack_event(data: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(include_str!(
        "../ingest/src/integrations/testdata/chirpstack_up.json"
    ))
    .unwrap();
    v["data"] = json!(data);
    serde_json::to_vec(&v).unwrap()
}

fn tts_event(frm_payload: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(include_str!(
        "../ingest/src/integrations/testdata/tts_up.json"
    ))
    .unwrap();
    v["uplink_message"]["frm_payload"] = json!(frm_payload);
    // The documented example has no f_port (so it reads as a frame without application data); a sensor's
    // uplink has one.
    v["uplink_message"]["f_port"] = json!(1);
    serde_json::to_vec(&v).unwrap()
}

async fn onboard_external(b: &Bydata, id: &str, dev_eui: &str) {
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": id, "name": id, "transport": "lorawan", "domain": "building", "codec": "cayenne",
                    "lorawan": {"activation": "network_server", "dev_eui": dev_eui}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

async fn inbound_integration(b: &Bydata, id: &str, ns: &str) -> String {
    let (code, body) = b
        .post(
            "/api/v1/integrations",
            ADMIN,
            &json!({"id": id, "name": id, "network_server": ns, "mode": "inbound"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["mqtt"]["username"], format!("integration:{id}"));
    body["mqtt"]["password"].as_str().unwrap().to_owned()
}

async fn integration_status(b: &Bydata, id: &str) -> Value {
    let (code, body) = b.get(&format!("/api/v1/integrations/{id}"), ADMIN).await;
    assert_eq!(code, 200, "{body}");
    body["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chirpstack_event_published_into_the_broker_becomes_values() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    onboard_external(&b, "cs-room", "0101010101010101").await;
    let password = inbound_integration(&b, "cs", "chirpstack").await;
    let identity = "integration:cs";
    let mut ns = Mqtt::connect(options(b.mqtt, identity, identity, &password))
        .await
        .unwrap();
    let up = "integrations/cs/application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up";
    ns.publish_acked(up, chirpstack_event(CAYENNE_27_2))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "the ChirpStack uplink's value",
        || async { (b.latest("cs-room", "temperature_3").await? == 27.2).then_some(()) },
    )
    .await;
    // Values are written before the status that counts them is committed: wait for the status too.
    let status = b
        .wait_status("cs-room", "decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(status["decoded_by"][0]["codec"], "cayenne", "{status}");
    assert_eq!(
        status["last_radio"][0]["gateway"], "0016c001f153a14c",
        "{status}"
    );
    assert_eq!(status["last_radio"][0]["rssi"], -36.0, "{status}");

    // Other event types are not errors; an unreadable uplink is explained to the device's owner; an
    // unknown DevEUI is counted on the integration.
    let join = up.replace("/event/up", "/event/join");
    ns.publish_acked(&join, r#"{"deviceInfo":{"devEui":"0101010101010101"}}"#)
        .await
        .unwrap();
    ns.publish_acked(up, chirpstack_event("!!not base64!!"))
        .await
        .unwrap();
    // A device bydata serves itself (ABP, its keys here) is not the integration's to speak for.
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "own-abp", "name": "own", "transport": "lorawan", "domain": "building",
                    "codec": "cayenne", "lorawan": {"activation": "abp", "dev_eui": "0202020202020202",
                    "dev_addr": "26011bda", "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c",
                    "app_s_key": "2b7e151628aed2a6abf7158809cf4f3c"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let stranger = up.replace("0101010101010101", "0202020202020202");
    let mut body: Value = serde_json::from_slice(&chirpstack_event(CAYENNE_27_2)).unwrap();
    body["deviceInfo"]["devEui"] = json!("0202020202020202");
    ns.publish_acked(&stranger, serde_json::to_vec(&body).unwrap())
        .await
        .unwrap();
    let s = eventually(Duration::from_secs(10), "integration counters", || async {
        let s = integration_status(&b, "cs").await;
        (s["events"] == 4).then_some(s)
    })
    .await;
    assert_eq!(s["uplinks"], 1, "{s}");
    assert_eq!(s["ignored"], 1, "{s}");
    assert_eq!(s["invalid"], 1, "{s}");
    assert_eq!(s["unknown_device"], 1, "{s}");
    assert_eq!(
        b.status("own-abp").await["received"],
        0,
        "an integration cannot write for own-abp"
    );
    let status = b
        .wait_status("cs-room", "the refusal", |s| s["rejected"] == 1)
        .await;
    let reason = status["last_error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("integration cs") && reason.contains("base64"),
        "{reason}"
    );

    // The integration is confined to its own topics: a device's topic closes its connection.
    ns.client
        .publish("devices/cs-room/up", rumqttc::QoS::AtLeastOnce, false, "{}")
        .await
        .unwrap();
    assert!(
        ns.publish_acked(up, chirpstack_event(CAYENNE_27_2))
            .await
            .is_err()
    );
}

/// A Mosquitto broker (Debian package `mosquitto`, installed by the test command) on a free port, standing
/// in for The Things Stack's MQTT server; killed when dropped.
struct Mosquitto {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
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
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto runs (scripts/test.sh installs the Debian package)");
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    /// Waits until the broker accepts TCP connections (and has not exited).
    async fn ready(&mut self) {
        let port = self.port;
        eventually(Duration::from_secs(10), "mosquitto listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "mosquitto exited (port {port} taken?)"
        );
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bydata_subscribes_to_a_things_stack_broker_and_its_uplinks_become_values() {
    let mut broker = Mosquitto::start();
    broker.ready().await;
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    onboard_external(&b, "tts-room", "0004A30B001C0530").await;
    let secret = "NNSXS.not-a-real-api-key";
    let (code, body) = b
        .post(
            "/api/v1/integrations",
            ADMIN,
            &json!({"id": "tts", "name": "The Things Stack", "network_server": "tts", "mode": "subscribe",
                    "host": "127.0.0.1", "port": broker.port, "username": "app1@ttn", "password": secret}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert!(
        !body.to_string().contains(secret),
        "the remote password is never shown: {body}"
    );
    let (_, one) = b.get("/api/v1/integrations/tts", ADMIN).await;
    let (_, all) = b.get("/api/v1/integrations", ADMIN).await;
    assert!(!one.to_string().contains(secret) && !all.to_string().contains(secret));
    eventually(
        Duration::from_secs(30),
        "bydata connected to the broker",
        || async {
            (integration_status(&b, "tts").await["client"]["connected"] == true).then_some(())
        },
    )
    .await;

    // The network server publishes its uplink event on its default topic.
    let tts = Mqtt::connect(options(
        std::net::SocketAddr::from(([127, 0, 0, 1], broker.port)),
        "tts-as",
        "tts-as",
        "x",
    ))
    .await
    .unwrap();
    let topic = "v3/app1@ttn/devices/dev1/up";
    // The subscription may land just after the connection: publish until the value arrives.
    eventually(
        Duration::from_secs(20),
        "the TTS uplink's value",
        || async {
            tts.client
                .publish(
                    topic,
                    rumqttc::QoS::AtMostOnce,
                    false,
                    tts_event(CAYENNE_27_2),
                )
                .await
                .ok()?;
            (b.latest("tts-room", "temperature_3").await? == 27.2).then_some(())
        },
    )
    .await;
    let status = b
        .wait_status("tts-room", "decoded", |s| s["decoded"].as_u64() >= Some(1))
        .await;
    assert_eq!(status["last_radio"][0]["gateway"], "gtw1", "{status}");
    let s = integration_status(&b, "tts").await;
    assert!(s["uplinks"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        s["client"]["messages_received"].as_u64().unwrap() >= 1,
        "{s}"
    );
    assert!(
        !b.log().contains(secret),
        "the remote password is never logged"
    );
    drop(tts);
}
