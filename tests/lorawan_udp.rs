//! The Semtech UDP edge over real UDP: a registered gateway is acknowledged and its activity shows in its
//! status; an unregistered gateway and garbage are counted and dropped, unanswered.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, eventually};
use serde_json::json;
use std::time::Duration;
use tokio::net::UdpSocket;

const GATEWAY: [u8; 8] = [0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35];

/// An upstream datagram: version 2, token, identifier, gateway EUI, then the JSON (if any).
fn datagram(token: u16, identifier: u8, gateway: [u8; 8], json: &str) -> Vec<u8> {
    let mut out = vec![2, (token >> 8) as u8, token as u8, identifier];
    out.extend_from_slice(&gateway);
    out.extend_from_slice(json.as_bytes());
    out
}

async fn answer(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    buf[..n].to_vec()
}

async fn register_gateway(b: &Bydata, eui: &str, name: &str) {
    let (code, body) = b
        .post(
            "/api/v1/gateways",
            ADMIN,
            &json!({"eui": eui, "name": name}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

async fn metric(b: &Bydata, line: &str) -> Option<()> {
    let (_, text) = b.get("/metrics", ADMIN).await;
    text.as_str()?.contains(line).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_gateways_are_heard_and_others_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    register_gateway(&b, "0016c001ff10a235", "Dokk1 roof").await;

    let gw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(b.lorawan).await.unwrap();
    // Two radio packets, one with data that is not base64: the other is still read.
    let push = r#"{"rxpk":[{"tmst":3512348611,"freq":868.1,"chan":0,"rfch":0,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-35,"lsnr":5.1,"size":5,"data":"QAEBAQE="},{"tmst":1,"freq":868.3,"stat":1,"modu":"LORA","datr":"SF9BW125","codr":"4/5","rssi":-90,"lsnr":-2.0,"size":3,"data":"!!!"}]}"#;
    gw.send(&datagram(0xbeef, 0x00, GATEWAY, push))
        .await
        .unwrap();
    assert_eq!(
        answer(&gw).await,
        vec![2, 0xbe, 0xef, 0x01],
        "PUSH_ACK with the token"
    );
    gw.send(&datagram(0x1234, 0x02, GATEWAY, "")).await.unwrap();
    assert_eq!(
        answer(&gw).await,
        vec![2, 0x12, 0x34, 0x04],
        "PULL_ACK with the token"
    );

    let status = eventually(Duration::from_secs(10), "gateway status", || async {
        let (_, g) = b.get("/api/v1/gateways/0016c001ff10a235", ADMIN).await;
        (g["status"]["pull_data"] == 1).then_some(g)
    })
    .await;
    let s = &status["status"];
    assert_eq!(s["push_data"], 1, "{status}");
    assert_eq!(s["rx_packets"], 2, "{status}");
    // Both refused: the first parses but its frame is from a DevAddr no device has, the second is not base64.
    assert_eq!(s["rx_rejected"], 2, "{status}");
    assert!(s["last_seen"].is_string(), "{status}");
    assert!(
        s["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_base64"),
        "{status}"
    );

    // An unregistered gateway, and bytes that are no datagram at all: counted, never answered.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger.connect(b.lorawan).await.unwrap();
    stranger
        .send(&datagram(7, 0x00, [0xaa; 8], r#"{"rxpk":[]}"#))
        .await
        .unwrap();
    stranger.send(b"\x02\x00").await.unwrap();
    stranger.send(&[0xff; 300]).await.unwrap();
    eventually(Duration::from_secs(10), "unknown gateway counted", || {
        metric(
            &b,
            "bydata_lorawan_datagrams_total{outcome=\"unknown_gateway\"} 1",
        )
    })
    .await;
    eventually(Duration::from_secs(10), "garbage counted", || {
        metric(&b, "bydata_lorawan_datagrams_total{outcome=\"invalid\"} 2")
    })
    .await;
    let mut buf = [0u8; 16];
    assert!(
        stranger.try_recv(&mut buf).is_err(),
        "nothing answers an unregistered gateway"
    );
    assert!(
        metric(&b, "bydata_lorawan_datagrams_total{outcome=\"accepted\"} 2")
            .await
            .is_some()
    );
    // The platform carries on: the registered gateway is still answered.
    gw.send(&datagram(0x0001, 0x02, GATEWAY, "")).await.unwrap();
    assert_eq!(answer(&gw).await, vec![2, 0x00, 0x01, 0x04]);
}

fn push(gateway: [u8; 8], token: u16, phy: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(phy);
    let json = json!({"rxpk": [{"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
        "codr": "4/5", "rssi": -60, "lsnr": 7.5, "size": phy.len(), "data": data}]});
    datagram(token, 0x00, gateway, &json.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abp_frames_become_values_once_and_replays_and_forgeries_are_refused() {
    use bydata_ingest::lorawan::frame::{AppSKey, DevAddr, NwkSKey, Session, build_uplink};
    let dir = tempfile::tempdir().unwrap();
    let secrets_key = "a1".repeat(32);
    let mut b = Bydata::start_with_env(
        &dir.path().join("data"),
        &[],
        &[("BYDATA_SECRETS_KEY", &secrets_key)],
    )
    .await;
    let second: [u8; 8] = [0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x36];
    register_gateway(&b, "0016c001ff10a235", "Dokk1 roof").await;
    register_gateway(&b, "0016c001ff10a236", "Godsbanen").await;
    let nwk = "2b7e151628aed2a6abf7158809cf4f3c";
    let app = "000102030405060708090a0b0c0d0e0f";
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "lora-room", "name": "LoRaWAN room sensor", "transport": "lorawan",
                "domain": "building", "codec": "cayenne",
                "lorawan": {"activation": "abp", "dev_eui": "70b3d57ed0000001", "dev_addr": "26011bda",
                    "nwk_s_key": nwk, "app_s_key": app}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["lorawan"]["dev_addr"], "26011bda");
    let (code, refused) = b
        .post("/api/v1/devices/lora-room/credentials", ADMIN, &json!({}))
        .await;
    assert_eq!(
        code, 400,
        "a LoRaWAN device gets no MQTT credentials: {refused}"
    );
    let (_, listed) = b.get("/api/v1/devices/lora-room", ADMIN).await;
    for text in [body.to_string(), listed.to_string()] {
        assert!(
            !text.contains(nwk) && !text.contains(app),
            "keys are never shown: {text}"
        );
    }

    let key = |hex: &str| -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    };
    let session = Session {
        dev_addr: DevAddr::new(0x2601_1bda),
        nwk_s_key: NwkSKey::new(key(nwk)),
        app_s_key: AppSKey::new(key(app)),
        fcnt_up: None,
        fcnt_down: 0,
    };
    // Cayenne LPP: 27.2 °C on channel 3.
    let first = build_uplink(&session, 1, 1, &[0x03, 0x67, 0x01, 0x10], false).unwrap();
    let gw_a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw_a.connect(b.lorawan).await.unwrap();
    let gw_b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw_b.connect(b.lorawan).await.unwrap();
    // The same frame through two gateways: stored once.
    gw_a.send(&push(GATEWAY, 1, &first)).await.unwrap();
    assert_eq!(answer(&gw_a).await[3], 0x01);
    gw_b.send(&push(second, 2, &first)).await.unwrap();
    assert_eq!(answer(&gw_b).await[3], 0x01);
    b.wait_status("lora-room", "first frame decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(b.latest("lora-room", "temperature_3").await, Some(27.2));
    eventually(Duration::from_secs(10), "duplicate counted", || {
        metric(&b, "bydata_lorawan_frames_total{outcome=\"duplicate\"} 1")
    })
    .await;

    // A newer frame, then the old one replayed: refused and explained.
    let second_frame = build_uplink(&session, 2, 1, &[0x03, 0x67, 0x00, 0xff], false).unwrap();
    gw_a.send(&push(GATEWAY, 3, &second_frame)).await.unwrap();
    answer(&gw_a).await;
    b.wait_status("lora-room", "second frame decoded", |s| s["decoded"] == 2)
        .await;
    gw_a.send(&push(GATEWAY, 4, &first)).await.unwrap();
    answer(&gw_a).await;
    let s = b
        .wait_status("lora-room", "replay refused", |s| s["rejected"] == 1)
        .await;
    assert!(
        s["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{s}"
    );
    // A forged frame (one MIC byte changed): anyone with a radio can send one, so it is refused as bad_mic
    // on the gateway and counted for the device in memory only — nothing about it is written.
    let mut forged = build_uplink(&session, 3, 1, &[0x03, 0x67, 0x7f, 0xff], false).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    gw_a.send(&push(GATEWAY, 5, &forged)).await.unwrap();
    answer(&gw_a).await;
    let s = b
        .wait_status("lora-room", "forgery counted", |s| {
            s["unverified_attempts"]["unverified_frames"] == 1
        })
        .await;
    assert_eq!(s["rejected"], 1, "{s}");
    assert!(
        s["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{s}"
    );
    eventually(
        Duration::from_secs(10),
        "the gateway's status names the forgery",
        || async {
            let (_, g) = b.get("/api/v1/gateways/0016c001ff10a235", ADMIN).await;
            g["status"]["last_error"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("bad_mic"))
                .then_some(())
        },
    )
    .await;
    assert_eq!(s["decoded"], 2, "nothing of the refused frames was stored");
    assert_eq!(b.latest("lora-room", "temperature_3").await, Some(25.5));
    eventually(Duration::from_secs(10), "refusals counted", || {
        metric(&b, "bydata_lorawan_frames_total{outcome=\"rejected\"} 2")
    })
    .await;
    // A frame from an address nobody has: counted.
    let stranger = Session {
        dev_addr: DevAddr::new(0x2601_0000),
        ..session.clone()
    };
    let unknown = build_uplink(&stranger, 1, 1, &[0x03, 0x67, 0x00, 0x01], false).unwrap();
    gw_a.send(&push(GATEWAY, 6, &unknown)).await.unwrap();
    answer(&gw_a).await;
    eventually(Duration::from_secs(10), "unknown DevAddr counted", || {
        metric(
            &b,
            "bydata_lorawan_frames_total{outcome=\"unknown_device\"} 1",
        )
    })
    .await;

    // At rest the keys are sealed: the registry holds them in no form, and another key (or none) is refused.
    assert!(b.terminate().await.success());
    let file = std::fs::read(dir.path().join("data/registry.redb")).unwrap();
    for hex in [nwk, app] {
        for needle in [
            key(hex).to_vec(),
            hex.as_bytes().to_vec(),
            hex.to_uppercase().into_bytes(),
        ] {
            assert!(
                !file.windows(needle.len()).any(|w| w == needle),
                "registry.redb holds {hex}"
            );
        }
    }
    let empty_config = tempfile::tempdir().unwrap();
    for (env, says) in [
        (
            Some("b2".repeat(32)),
            "the secrets key does not open the stored LoRaWAN keys",
        ),
        (None, "no secrets key"),
    ] {
        let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_bydata"));
        serve
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--mqtt-addr",
                "127.0.0.1:0",
            ])
            .args(["--lorawan-addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("XDG_CONFIG_HOME", empty_config.path())
            .env_remove("BYDATA_SECRETS_KEY");
        if let Some(key) = &env {
            serve.env("BYDATA_SECRETS_KEY", key);
        }
        let out = serve.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{stderr}");
        assert!(
            stderr.contains("BYDATA_SECRETS_KEY or [registry] secrets_key_file"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(empty_config.path()).unwrap().count(),
        0,
        "no key file made up for a data dir that has one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otaa_device_joins_through_a_gateway_and_its_uplinks_become_values() {
    use base64::Engine as _;
    use bydata_ingest::lorawan::frame::{AppKey, DevAddr, build_uplink, derive_session};
    use lorawan::creator::JoinRequestCreator;
    use lorawan::parser::DecryptedJoinAcceptPayload;
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    register_gateway(&b, "0016c001ff10a235", "Dokk1 roof").await;
    let app_key_hex = "5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d";
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "otaa-room", "name": "OTAA room sensor", "transport": "lorawan",
                "domain": "building", "codec": "cayenne",
                "lorawan": {"activation": "otaa", "dev_eui": "0004a30b001f2c3d",
                    "join_eui": "70b3d57ed0000001", "app_key": app_key_hex}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert!(
        !body.to_string().contains(app_key_hex),
        "the AppKey is never shown"
    );

    // The device's JoinRequest (EUIs least significant byte first on air).
    let mut creator = JoinRequestCreator::new();
    let mut join_eui = [0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 1];
    join_eui.reverse();
    let mut dev_eui = [0, 4, 0xa3, 0x0b, 0, 0x1f, 0x2c, 0x3d];
    dev_eui.reverse();
    let dev_nonce: u16 = 0xbeef;
    creator
        .set_app_eui(&join_eui)
        .set_dev_eui(&dev_eui)
        .set_dev_nonce(&dev_nonce.to_le_bytes());
    let join = creator
        .build(&lorawan::keys::AppKey::from([0x5d; 16]))
        .to_vec();

    let gw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(b.lorawan).await.unwrap();
    gw.send(&datagram(0x0101, 0x02, GATEWAY, "")).await.unwrap();
    assert_eq!(
        answer(&gw).await[3],
        0x04,
        "PULL_ACK: the downlink route is open"
    );
    let json = json!({"rxpk": [{"tmst": 1_000_000u32, "freq": 868.3, "stat": 1, "modu": "LORA",
        "datr": "SF9BW125", "codr": "4/5", "rssi": -70, "lsnr": 6.0, "size": join.len(),
        "data": base64::engine::general_purpose::STANDARD.encode(&join)}]});
    gw.send(&datagram(0x0202, 0x00, GATEWAY, &json.to_string()))
        .await
        .unwrap();
    // A PULL_RESP with the JoinAccept (and the PUSH_ACK), in either order.
    let mut resp = None;
    for _ in 0..2 {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), gw.recv(&mut buf))
            .await
            .expect("answers within 10 s")
            .unwrap();
        if buf[3] == 0x03 {
            resp = Some(buf[..n].to_vec());
        }
    }
    let resp = resp.expect("a PULL_RESP");
    let txpk: serde_json::Value = serde_json::from_slice(&resp[4..]).unwrap();
    let txpk = &txpk["txpk"];
    assert_eq!(txpk["tmst"], 6_000_000, "RX1: 5 s after the JoinRequest");
    assert_eq!(txpk["datr"], "SF9BW125");
    assert_eq!(txpk["ipol"], true);
    let mut accept = base64::engine::general_purpose::STANDARD
        .decode(txpk["data"].as_str().unwrap())
        .unwrap();
    let plain =
        DecryptedJoinAcceptPayload::new(&mut accept[..], &lorawan::keys::AppKey::from([0x5d; 16]))
            .expect("the JoinAccept's MIC holds under the device's AppKey");
    let mut app_nonce = [0u8; 3];
    app_nonce.copy_from_slice(plain.app_nonce().as_ref());
    let mut net_id = [0u8; 3];
    net_id.copy_from_slice(plain.net_id().as_ref());
    let mut addr = [0u8; 4];
    addr.copy_from_slice(plain.dev_addr().as_ref());
    let session = derive_session(
        &AppKey::new([0x5d; 16]),
        app_nonce,
        net_id,
        dev_nonce,
        DevAddr::from_wire(addr),
    );

    // The joined device's uplink (Cayenne LPP, 21.5 °C on channel 1) becomes a value.
    let up = build_uplink(&session, 0, 2, &[0x01, 0x67, 0x00, 0xd7], false).unwrap();
    gw.send(&push(GATEWAY, 0x0303, &up)).await.unwrap();
    b.wait_status("otaa-room", "uplink decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(b.latest("otaa-room", "temperature_1").await, Some(21.5));

    // The JoinRequest replayed later (its DevNonce used): refused and explained, no new session.
    let replayer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    replayer.connect(b.lorawan).await.unwrap();
    let replay = datagram(0x0404, 0x00, GATEWAY, &json.to_string());
    let s = eventually(
        Duration::from_secs(20),
        "reused DevNonce refused",
        || async {
            replayer.send(&replay).await.unwrap();
            let s = b.status("otaa-room").await;
            (s["rejected"].as_u64() >= Some(1)).then_some(s)
        },
    )
    .await;
    assert!(
        s["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("dev_nonce_reused"),
        "{s}"
    );
    let again = build_uplink(&session, 1, 2, &[0x01, 0x67, 0x00, 0xd8], false).unwrap();
    gw.send(&push(GATEWAY, 0x0505, &again)).await.unwrap();
    b.wait_status("otaa-room", "the session still holds", |s| {
        s["decoded"] == 2
    })
    .await;
}
