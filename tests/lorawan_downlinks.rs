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
    assert!(code == 201 || code == 202, "{code} {body}");
    body["id"].as_u64().unwrap()
}

/// Downlink `id` of `device` once `pred` holds.
async fn wait_downlink(b: &Bydata, device: &str, id: u64, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(Duration::from_secs(10), "downlink state", || async {
        let (_, list) = b
            .get(&format!("/api/v1/devices/{device}/downlinks"), ADMIN)
            .await;
        let d = list["downlinks"]
            .as_array()?
            .iter()
            .find(|d| d["id"] == id)?
            .clone();
        pred(&d).then_some(d)
    })
    .await
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
