//! Replay protection across `kill -9`, over real UDP: ABP devices' frames are accepted (their counters
//! committed), bydata is killed at once — some frames still in their collection window — and restarted on
//! the same data directory; every frame sent before, and every older counter, is refused when sent again
//! (none stored twice, none counted as accepted), and a higher counter is accepted.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use base64::Engine as _;
use bydata_ingest::lorawan::frame::{AppSKey, DevAddr, NwkSKey, Session, build_uplink};
use common::{ADMIN, Bydata, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const GATEWAY: [u8; 8] = [0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35];

struct Device {
    id: &'static str,
    session: Session,
}

fn devices() -> [Device; 2] {
    let device = |id, addr, key| Device {
        id,
        session: Session {
            dev_addr: DevAddr::new(addr),
            nwk_s_key: NwkSKey::new([key; 16]),
            app_s_key: AppSKey::new([key ^ 0xff; 16]),
            fcnt_up: None,
            fcnt_down: 0,
        },
    };
    [
        device("lora-a", 0x2601_1bda, 0x2b),
        device("lora-b", 0x2601_1bdb, 0x3c),
    ]
}

async fn onboard(b: &Bydata, d: &Device, n: u8) {
    b.onboard_abp(
        d.id,
        &format!("70b3d57ed00000{n:02x}"),
        &d.session.dev_addr.to_string(),
        &d.session.nwk_s_key.to_hex(),
        &d.session.app_s_key.to_hex(),
    )
    .await;
}

/// The device's frame `fcnt`: Cayenne LPP temperature on channel 1, `fcnt` °C, so each stored value names
/// its frame.
fn frame(d: &Device, fcnt: u32) -> Vec<u8> {
    let tenths = (fcnt * 10) as u16;
    let [hi, lo] = tenths.to_be_bytes();
    build_uplink(&d.session, fcnt, 1, &[0x01, 0x67, hi, lo], false).unwrap()
}

/// Sends one PUSH_DATA carrying `phy` and waits for its PUSH_ACK.
async fn push_acked(gw: &UdpSocket, token: u16, phy: &[u8]) {
    let data = base64::engine::general_purpose::STANDARD.encode(phy);
    let rxpk = json!({"rxpk": [{"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
        "codr": "4/5", "rssi": -60, "lsnr": 7.5, "size": phy.len(), "data": data}]});
    let mut datagram = vec![2, (token >> 8) as u8, token as u8, 0x00];
    datagram.extend_from_slice(&GATEWAY);
    datagram.extend_from_slice(rxpk.to_string().as_bytes());
    gw.send(&datagram).await.unwrap();
    let mut ack = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), gw.recv(&mut ack))
        .await
        .expect("a PUSH_ACK within 10 s")
        .unwrap();
    assert_eq!(
        ack[..n],
        [2, (token >> 8) as u8, token as u8, 0x01],
        "PUSH_ACK"
    );
}

async fn gateway(b: &Bydata) -> UdpSocket {
    let gw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(b.lorawan).await.unwrap();
    gw
}

/// `bydata_lorawan_frames_total{outcome=…}`.
async fn frames(b: &Bydata, outcome: &str) -> u64 {
    let (_, text) = b.get("/metrics", ADMIN).await;
    let prefix = format!("bydata_lorawan_frames_total{{outcome=\"{outcome}\"}} ");
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap()
        .parse()
        .unwrap()
}

/// The stored temperatures of a device, in time order.
async fn stored(b: &Bydata, id: &str) -> Vec<f64> {
    let (code, body) = b
        .get(
            &format!("/api/v1/query?measurement=temperature_1&device={id}&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"),
            ADMIN,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_frame_accepted_before_a_kill_9_is_accepted_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let devices = devices();
    let mut b = Bydata::start(&data).await;
    b.register_gateway("0016c001ff10a235", "Dokk1 roof").await;
    for (n, d) in devices.iter().enumerate() {
        onboard(&b, d, n as u8).await;
    }
    let gw = gateway(&b).await;
    let mut token = 0u16;
    let mut next_token = || {
        token = token.wrapping_add(1);
        token
    };

    // Frames 1–10 of each device: stored.
    for fcnt in 1..=10 {
        for d in &devices {
            push_acked(&gw, next_token(), &frame(d, fcnt)).await;
        }
    }
    for d in &devices {
        b.wait_status(d.id, "frames 1-10 decoded", |s| s["decoded"] == 10)
            .await;
    }
    // Frames 11–15: bydata is killed the moment their counters are committed, before most of them leave
    // their collection window for the journal.
    for fcnt in 11..=15 {
        for d in &devices {
            push_acked(&gw, next_token(), &frame(d, fcnt)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while frames(&b, "accepted").await < 30 {
        assert!(Instant::now() < deadline, "30 frames accepted within 20 s");
    }
    b.kill9();

    let b = Bydata::start(&data).await;
    let gw = gateway(&b).await;
    // Every frame sent before, so every counter up to the highest accepted, is refused as a replay.
    for fcnt in 1..=15 {
        for d in &devices {
            push_acked(&gw, next_token(), &frame(d, fcnt)).await;
        }
    }
    eventually(Duration::from_secs(20), "30 replays refused", || async {
        (frames(&b, "rejected").await == 30).then_some(())
    })
    .await;
    assert_eq!(frames(&b, "accepted").await, 0, "no old frame accepted");
    assert_eq!(frames(&b, "duplicate").await, 0);
    for d in &devices {
        let s = b
            .wait_status(d.id, "replays on the device's status", |s| {
                s["rejected"] == 15
            })
            .await;
        assert!(
            s["last_error"]["reason"]
                .as_str()
                .unwrap()
                .contains("replay"),
            "{s}"
        );
    }
    // A higher counter is accepted, and stored after everything journaled before the kill.
    for d in &devices {
        push_acked(&gw, next_token(), &frame(d, 16)).await;
    }
    for d in &devices {
        eventually(Duration::from_secs(20), "frame 16 stored", || async {
            (b.latest(d.id, "temperature_1").await == Some(16.0)).then_some(())
        })
        .await;
    }
    assert_eq!(frames(&b, "accepted").await, 2);
    for d in &devices {
        let values = stored(&b, d.id).await;
        let status: Value = b.status(d.id).await;
        // Each frame stored at most once: a frame accepted twice would be a second point (its value
        // again, at another receive time).
        let mut distinct = values.clone();
        distinct.dedup();
        assert_eq!(distinct, values, "{}: {values:?}", d.id);
        assert_eq!(
            status["decoded"].as_u64(),
            Some(values.len() as u64),
            "{status}"
        );
        // Frames 1–10 were journaled before the kill; of 11–15 whatever had left its window; then 16.
        let expected_prefix: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(values[..10], expected_prefix[..], "{}: {values:?}", d.id);
        assert_eq!(values.last(), Some(&16.0), "{}: {values:?}", d.id);
        assert!(
            values[10..values.len() - 1]
                .iter()
                .zip(11..)
                .all(|(v, n)| *v == f64::from(n)),
            "{}: {values:?}",
            d.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_device_and_a_replaced_session_take_no_frame_after_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    b.register_gateway("0016c001ff10a235", "Dokk1 roof").await;
    let [old, _] = devices();
    onboard(&b, &old, 1).await;
    let gw = gateway(&b).await;
    // The session is in the listener's cache once a frame has been checked against it.
    push_acked(&gw, 1, &frame(&old, 1)).await;
    b.wait_status(old.id, "frame 1 decoded", |s| s["decoded"] == 1)
        .await;

    let (code, body) = b
        .delete(&format!("/api/v1/devices/{}", old.id), ADMIN)
        .await;
    assert_eq!(code, 204, "{body}");
    push_acked(&gw, 2, &frame(&old, 2)).await;
    eventually(
        Duration::from_secs(10),
        "the deleted device's frame refused",
        || async { (frames(&b, "unknown_device").await == 1).then_some(()) },
    )
    .await;

    // The DevAddr given to a new device with other keys: the old session's frames fail their MIC, the
    // new session starts from its own counter.
    let new = Device {
        id: "lora-new",
        session: Session {
            nwk_s_key: NwkSKey::new([0x5a; 16]),
            app_s_key: AppSKey::new([0xa5; 16]),
            ..old.session.clone()
        },
    };
    onboard(&b, &new, 2).await;
    push_acked(&gw, 3, &frame(&old, 3)).await;
    push_acked(&gw, 4, &frame(&new, 1)).await;
    b.wait_status(new.id, "the new session's frame decoded", |s| {
        s["decoded"] == 1
    })
    .await;
    assert_eq!(frames(&b, "accepted").await, 2);
    eventually(
        Duration::from_secs(10),
        "the old session's frame refused",
        || async { (frames(&b, "rejected").await == 1).then_some(()) },
    )
    .await;
    assert_eq!(stored(&b, new.id).await, [1.0]);
    let s = b.status(new.id).await;
    assert_eq!(
        s["unverified_attempts"]["unverified_frames"], 1,
        "the old keys' frame counts as unverified for the DevAddr's device now: {s}"
    );
}
