//! LoRaWAN class A downlinks end to end: the real binary, real UDP, `firmware-sim` gateways and devices that
//! listen in RX1/RX2 by the gateway's `tmst`. A queued downlink reaches the device in RX1 through the better
//! of two gateways and its TX_ACK is recorded; a gateway's refusal puts it back in the queue; a downlink too
//! large for the device's data rate fails; confirmed downlinks are acknowledged, retried and failed; a
//! confirmed uplink gets an ACK; NFCntDown survives `kill -9`.
#![allow(clippy::unwrap_used)]
mod common;

use bydata_firmware_sim::lorawan::{
    AbpDevice, AppSKey, ClassAOutcome, DevAddr, NwkSKey, RxParams, RxWindow, SimGateway,
};
use bydata_schemas::Eui64;
use common::{ADMIN, Bydata, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WEAK: &str = "70b3d5fffe0d0001";
const STRONG: &str = "70b3d5fffe0d0002";
const NWK: [u8; 16] = [0x2b; 16];
const APP: [u8; 16] = [0x7e; 16];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An ABP device onboarded as `id` with DevAddr `addr` (both keys fixed).
async fn abp(b: &Bydata, id: &str, addr: u32) -> AbpDevice {
    let dev_eui = format!("70b3d5fffe0e{:04x}", addr & 0xffff);
    b.onboard_abp(id, &dev_eui, &format!("{addr:08x}"), &hex(&NWK), &hex(&APP))
        .await;
    AbpDevice::new(
        Eui64::new(&dev_eui).unwrap(),
        DevAddr::new(addr),
        NwkSKey::new(NWK),
        AppSKey::new(APP),
    )
}

async fn gateway(b: &Bydata, eui: &str, shutdown: &CancellationToken) -> SimGateway {
    let gw = SimGateway::start(Eui64::new(eui).unwrap(), b.lorawan, shutdown.clone())
        .await
        .unwrap();
    gw.connected(Duration::from_secs(10)).await.unwrap();
    gw
}

/// The device heard by `weak` faintly and by `strong` well.
fn radio<'a>(weak: &'a SimGateway, strong: &'a SimGateway) -> [(&'a SimGateway, RxParams); 2] {
    let rx = |rssi, lsnr| RxParams {
        rssi,
        lsnr,
        freq: 868.3,
        datr: "SF9BW125".to_owned(),
        tmst: None,
    };
    [(weak, rx(-112, -6.5)), (strong, rx(-71, 8.0))]
}

fn metric(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_metric(b: &Bydata, key: &str, want: u64) {
    eventually(Duration::from_secs(10), key, || async {
        let (_, text) = b.get("/metrics", ADMIN).await;
        (metric(text.as_str()?, key) == want).then_some(())
    })
    .await;
}

/// The downlink the device took: its payload, FPort, window and gateway.
fn took(outcome: &ClassAOutcome) -> (Vec<u8>, Option<u8>, RxWindow, String) {
    let (d, window, gw) = outcome
        .downlink
        .clone()
        .unwrap_or_else(|| panic!("no downlink taken: {outcome:?}"));
    (d.payload, d.fport, window, gw.to_string())
}

async fn enqueue(b: &Bydata, device: &str, fport: u8, bytes: &[u8], confirmed: bool) -> u64 {
    let (code, body) = b
        .post(
            &format!("/api/v1/devices/{device}/downlinks"),
            ADMIN,
            &json!({"fport": fport, "hex": hex(bytes), "confirmed": confirmed}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["state"], "queued", "{body}");
    body["id"].as_u64().unwrap()
}

/// Downlink `id` of `device` as the API shows it, once `pred` holds.
async fn downlink(b: &Bydata, device: &str, id: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let found = common::eventually_or(Duration::from_secs(10), || async {
        let (_, list) = b
            .get(&format!("/api/v1/devices/{device}/downlinks"), ADMIN)
            .await;
        let d = list["downlinks"]
            .as_array()?
            .iter()
            .find(|d| d["id"] == id)?
            .clone();
        *last.lock().unwrap() = d.clone();
        pred(&d).then_some(d)
    })
    .await;
    found.unwrap_or_else(|| panic!("downlink {id}: last seen {}", last.lock().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_uplinks_are_acknowledged_through_the_better_gateway_and_fcnt_down_survives_kill_9()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "b2".repeat(32);
    let env = [("BYDATA_SECRETS_KEY", key.as_str())];
    let mut b = Bydata::start_with_env(&data, &[], &env).await;
    b.register_gateway(WEAK, "Harbour crane").await;
    b.register_gateway(STRONG, "Dokk1 roof").await;
    let mut device = abp(&b, "pump-1", 0x2601_0001).await;
    let shutdown = CancellationToken::new();
    let (weak, strong) = (
        gateway(&b, WEAK, &shutdown).await,
        gateway(&b, STRONG, &shutdown).await,
    );

    // A confirmed uplink heard by both: one ACK, in RX1, through the gateway that heard it best.
    let outcome = device
        .class_a(&radio(&weak, &strong), 2, b"\x01", true)
        .await
        .unwrap();
    let (payload, fport, window, via) = took(&outcome);
    assert_eq!((payload, fport), (vec![], None), "an empty frame");
    assert_eq!((window, via.as_str()), (RxWindow::Rx1, STRONG));
    assert_eq!(device.acked_uplinks(), 1);
    assert_eq!(device.fcnt_down(), Some(0));
    assert_eq!((weak.stats().downlinks, strong.stats().downlinks), (0, 1));
    wait_metric(&b, "bydata_lorawan_tx_acks_total{outcome=\"ok\"} ", 1).await;
    wait_metric(&b, "bydata_lorawan_downlink_acks_total ", 1).await;

    // An unconfirmed uplink with nothing queued: no downlink in either window.
    let quiet = device
        .class_a(&radio(&weak, &strong), 2, b"\x02", false)
        .await
        .unwrap();
    assert_eq!(quiet.downlink, None, "{quiet:?}");

    // kill -9: the next ACK carries a counter the device has not seen (it would refuse a reused one).
    drop((weak, strong));
    b.kill9();
    let b = Bydata::start_with_env(&data, &[], &env).await;
    let (weak, strong) = (
        gateway(&b, WEAK, &shutdown).await,
        gateway(&b, STRONG, &shutdown).await,
    );
    let after = device
        .class_a(&radio(&weak, &strong), 2, b"\x03", true)
        .await
        .unwrap();
    assert_eq!(took(&after).2, RxWindow::Rx1, "{after:?}");
    assert_eq!(device.fcnt_down(), Some(1), "{after:?}");
    assert_eq!(device.acked_uplinks(), 2);
    shutdown.cancel();
}

fn at<'a>(datr: &str, rx: [(&'a SimGateway, RxParams); 2]) -> [(&'a SimGateway, RxParams); 2] {
    rx.map(|(gw, rx)| {
        (
            gw,
            RxParams {
                datr: datr.to_owned(),
                ..rx
            },
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_downlinks_reach_the_device_and_are_sent_acknowledged_retried_or_failed() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(dir.path(), "[lorawan]\ndownlink_attempts = 2\n").await;
    b.register_gateway(WEAK, "Harbour crane").await;
    b.register_gateway(STRONG, "Dokk1 roof").await;
    let mut valve = abp(&b, "valve-1", 0x2601_0002).await;
    let open = enqueue(&b, "valve-1", 10, b"\x01\x01", false).await;
    let big = enqueue(&b, "valve-1", 10, &[7; 60], false).await;
    let close = enqueue(&b, "valve-1", 11, b"\x01\x00", true).await;
    let shutdown = CancellationToken::new();
    let (weak, strong) = (
        gateway(&b, WEAK, &shutdown).await,
        gateway(&b, STRONG, &shutdown).await,
    );
    let rx = |datr| at(datr, radio(&weak, &strong));

    // The oldest queued downlink, in RX1 (the uplink's tmst + 1 s, its frequency and data rate — checked by
    // the device), through the gateway that heard the uplink best; its TX_ACK recorded.
    let first = valve
        .class_a(&rx("SF9BW125"), 2, b"\x10", false)
        .await
        .unwrap();
    assert_eq!(
        took(&first),
        (vec![1, 1], Some(10), RxWindow::Rx1, STRONG.to_owned()),
        "{first:?}"
    );
    assert_eq!((weak.stats().downlinks, strong.stats().downlinks), (0, 1));
    let d = downlink(&b, "valve-1", open, |d| d["tx_ack"] == "NONE").await;
    assert_eq!(d["state"], "sent", "{d}");
    assert_eq!(d["via"], format!("gateway:{STRONG}"), "{d}");
    assert_eq!((&d["fcnt"], &d["attempts"]), (&json!(0), &json!(1)), "{d}");

    // At SF12 (DR0, 51 bytes) the 60-byte downlink can never go: it fails, and the next one goes instead.
    let second = valve
        .class_a(&rx("SF12BW125"), 2, b"\x11", false)
        .await
        .unwrap();
    let (payload, _, window, _) = took(&second);
    assert_eq!((payload, window), (vec![1, 0], RxWindow::Rx1));
    let d = downlink(&b, "valve-1", big, |d| d["state"] == "failed").await;
    let error = d["error"].as_str().unwrap();
    assert!(
        error.contains("60 bytes") && error.contains("DR0") && error.contains("51"),
        "{error}"
    );
    // The confirmed one stays sent until the device's next uplink carries the ACK.
    downlink(&b, "valve-1", close, |d| {
        d["state"] == "sent" && d["tx_ack"] == "NONE"
    })
    .await;
    assert!(valve.ack_due(), "a confirmed downlink");
    let third = valve
        .class_a(&rx("SF9BW125"), 2, b"\x12", false)
        .await
        .unwrap();
    assert_eq!(third.downlink, None, "nothing left to send: {third:?}");
    let d = downlink(&b, "valve-1", close, |d| d["state"] == "acknowledged").await;
    assert_eq!((&d["attempts"], &d["fcnt"]), (&json!(1), &json!(1)), "{d}");

    // A confirmed downlink the device never acknowledges: sent again (a new frame counter) at the next
    // uplink, then failed after `downlink_attempts` = 2 transmissions.
    let retried = enqueue(&b, "valve-1", 12, b"\x02", true).await;
    let refused = enqueue(&b, "valve-1", 13, b"\x03", false).await;
    for n in 0..2 {
        let got = valve
            .class_a(&rx("SF9BW125"), 2, b"\x20", false)
            .await
            .unwrap();
        let (payload, fport, ..) = took(&got);
        assert_eq!(
            (payload, fport),
            (vec![2], Some(12)),
            "transmission {n}: {got:?}"
        );
        valve.forget_ack();
    }
    assert_eq!(
        valve.fcnt_down(),
        Some(3),
        "each transmission its own counter"
    );
    // That uplink fails it, and the next downlink goes in its RX1 — but the gateway refuses to transmit it
    // (a collision): back in the queue with the gateway's answer, and transmitted at the following uplink.
    strong.refuse_downlinks(Some("COLLISION_PACKET"));
    let collided = valve
        .class_a(&rx("SF9BW125"), 2, b"\x21", false)
        .await
        .unwrap();
    assert_eq!(collided.downlink, None, "{collided:?}");
    let d = downlink(&b, "valve-1", retried, |d| d["state"] == "failed").await;
    assert_eq!(d["attempts"], 2, "{d}");
    assert!(
        d["error"].as_str().unwrap().contains("did not acknowledge"),
        "{d}"
    );
    let d = downlink(&b, "valve-1", refused, |d| {
        d["tx_ack"] == "COLLISION_PACKET"
    })
    .await;
    assert_eq!(d["state"], "queued", "{d}");
    assert!(
        d["error"].as_str().unwrap().contains("COLLISION_PACKET"),
        "{d}"
    );
    strong.refuse_downlinks(None);
    let last = valve
        .class_a(&rx("SF9BW125"), 2, b"\x22", false)
        .await
        .unwrap();
    assert_eq!(took(&last).0, vec![3], "{last:?}");
    let d = downlink(&b, "valve-1", refused, |d| d["tx_ack"] == "NONE").await;
    assert_eq!(
        (&d["state"], &d["attempts"]),
        (&json!("sent"), &json!(2)),
        "{d}"
    );
    wait_metric(&b, "bydata_lorawan_tx_acks_total{outcome=\"error\"} ", 1).await;
    wait_metric(&b, "bydata_lorawan_tx_acks_total{outcome=\"ok\"} ", 5).await;
    wait_metric(
        &b,
        "bydata_lorawan_downlinks_total{outcome=\"acknowledged\"} ",
        1,
    )
    .await;
    shutdown.cancel();
}
