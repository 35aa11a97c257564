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

async fn metric(b: &Bydata, line: &str) -> Option<()> {
    let (_, text) = b.get("/metrics", ADMIN).await;
    text.as_str()?.contains(line).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_gateways_are_heard_and_others_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let (code, body) = b
        .post(
            "/api/v1/gateways",
            ADMIN,
            &json!({"eui": "0016c001ff10a235", "name": "Dokk1 roof"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");

    let gw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(b.lorawan).await.unwrap();
    // Two radio packets, one with data that is not base64: the good one still counts as received.
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
    assert_eq!(s["rx_rejected"], 1, "{status}");
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
