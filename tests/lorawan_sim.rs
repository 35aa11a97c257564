//! The simulated LoRaWAN side (`firmware-sim`) against the real binary over real UDP: gateways speaking
//! Semtech UDP, an OTAA device that joins through bydata and an ABP device, each frame heard by two gateways
//! — stored once, with both gateways' signal — and a replayed frame and a forged MIC refused and counted.
#![allow(clippy::unwrap_used)]
mod common;

use bydata_firmware_sim::lorawan::{
    AppKey, LorawanFleetConfig, OtaaDevice, PayloadFormat, RxParams, SimGateway, run_lorawan_fleet,
};
use bydata_schemas::Eui64;
use common::{ADMIN, Bydata, eventually};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn metric(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_fleet_joins_and_every_frame_is_stored_once_with_every_gateways_signal() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let report = run_lorawan_fleet(
        LorawanFleetConfig {
            api_url: b.url(""),
            admin_token: ADMIN.to_owned(),
            udp_server: b.lorawan,
            gateways: 2,
            abp_devices: 1,
            otaa_devices: 1,
            interval: Duration::from_millis(300),
            prefix: "t".to_owned(),
            seed: 7,
            payload: PayloadFormat::Cayenne,
            codec: None,
            duration: None,
            uplinks_per_device: Some(3),
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.joins, 1, "{report:?}");
    assert_eq!(report.frames, 6, "{report:?}");
    assert_eq!(
        report.forwarded, 12,
        "each frame through both gateways: {report:?}"
    );

    for id in ["t-lora-abp-1", "t-lora-otaa-1"] {
        let status = b
            .wait_status(id, "three uplinks decoded", |s| s["decoded"] == 3)
            .await;
        assert_eq!(status["received"], 3, "two gateways, stored once: {status}");
        assert_eq!(status["rejected"], 0, "{status}");
        assert_eq!(
            status["last_radio"].as_array().unwrap().len(),
            2,
            "{status}"
        );
        assert_eq!(status["decoded_by"][0]["codec"], "cayenne", "{status}");
        let t = b.latest(id, "temperature_1").await.expect("a temperature");
        assert!((5.0..40.0).contains(&t), "{t}");
        // Each gateway's RSSI is a series of its own.
        let (code, q) = b
            .get(
                &format!("/api/v1/query?measurement=lorawan_rssi&device={id}&fn=count&every=1h&group_by=gateway"),
                ADMIN,
            )
            .await;
        assert_eq!(code, 200, "{q}");
        let series = q["series"].as_array().unwrap();
        assert_eq!(series.len(), 2, "one series per gateway: {q}");
        for s in series {
            let n: f64 = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["value"].as_f64())
                .sum();
            assert_eq!(n, 3.0, "every frame's signal from every gateway: {q}");
        }
    }
    let (_, text) = b.get("/metrics", ADMIN).await;
    let text = text.as_str().unwrap();
    assert_eq!(
        metric(text, "bydata_lorawan_frames_total{outcome=\"accepted\"} "),
        6,
        "{text}"
    );
    assert_eq!(
        metric(text, "bydata_lorawan_frames_total{outcome=\"duplicate\"} "),
        6,
        "{text}"
    );
    assert_eq!(
        metric(
            text,
            "bydata_lorawan_frames_total{outcome=\"join_accepted\"} "
        ),
        1,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_frame_and_a_forged_mic_from_the_simulated_gateway_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let gw_eui = Eui64::new("70b3d5fffe000001").unwrap();
    let (code, body) = b
        .post(
            "/api/v1/gateways",
            ADMIN,
            &json!({"eui": gw_eui, "name": "Rådhus"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let app_key = [
        0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f,
        0x3c,
    ];
    let dev_eui = Eui64::new("70b3d5fffe0000aa").unwrap();
    let join_eui = Eui64::new("70b3d5fffe000000").unwrap();
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "otaa-1", "name": "otaa-1", "transport": "lorawan", "domain": "building",
                    "codec": "cayenne", "lorawan": {"activation": "otaa", "dev_eui": dev_eui,
                    "join_eui": join_eui, "app_key": hex(&app_key)}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");

    let shutdown = CancellationToken::new();
    let gateway = SimGateway::start(gw_eui, b.lorawan, shutdown.clone())
        .await
        .unwrap();
    gateway.connected(Duration::from_secs(10)).await.unwrap();
    let mut device = OtaaDevice::new(dev_eui, join_eui, AppKey::new(app_key), 42);
    device
        .join(&gateway, Duration::from_secs(10))
        .await
        .unwrap();

    let reading = PayloadFormat::Cayenne;
    let sample =
        bydata_firmware_sim::lorawan::ClimateSensor::new(1).reading(1_767_225_600_000_000_000);
    let mut frames = Vec::new();
    for _ in 0..3 {
        let phy = device
            .uplink(reading.fport(), &reading.encode(&sample))
            .unwrap();
        gateway.uplink(&phy, RxParams::default()).await.unwrap();
        frames.push(phy);
    }
    b.wait_status("otaa-1", "three uplinks", |s| s["decoded"] == 3)
        .await;

    // The first frame again (an older counter: a replay), and a fresh frame whose MIC was tampered with.
    gateway
        .uplink(&frames[0], RxParams::default())
        .await
        .unwrap();
    let mut forged = device
        .uplink(reading.fport(), &reading.encode(&sample))
        .unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    gateway.uplink(&forged, RxParams::default()).await.unwrap();

    // The replay verifies as the device's (its MIC holds): on its status. The forgery could come from anyone:
    // only counted, in memory.
    let status = b
        .wait_status("otaa-1", "both refusals", |s| {
            s["rejected"] == 1 && s["unverified_attempts"]["unverified_frames"] == 1
        })
        .await;
    assert_eq!(status["decoded"], 3, "nothing else stored: {status}");
    let reason = status["last_error"]["reason"].as_str().unwrap();
    assert!(reason.contains("replay"), "{reason}");
    eventually(Duration::from_secs(10), "refusals counted", || async {
        let (_, text) = b.get("/metrics", ADMIN).await;
        (metric(
            text.as_str()?,
            "bydata_lorawan_frames_total{outcome=\"rejected\"} ",
        ) == 2)
            .then_some(())
    })
    .await;
    shutdown.cancel();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
