//! Class A downlink figures: many ABP devices, each with a downlink queued through the API, send an uplink
//! at once through two simulated gateways (Semtech UDP) and listen in RX1/RX2 (`firmware-sim`'s class A
//! exchange). Printed: downlinks taken in RX1, RX2 or not at all, and the lead — how long before RX1 opened
//! the PULL_RESP reached the gateway (the margin bydata leaves; below ~30 ms a real forwarder says TOO_LATE).
//!
//! usage: cargo run --release --example lorawan_downlinks -- <http addr> <lorawan addr> <admin token>
//!            [devices, default 100] [rounds, default 3]
//! (bench/lorawan_downlinks.sh starts a release bydata on free ports and runs this against it)
use bydata_firmware_sim::lorawan::{
    AbpDevice, AppSKey, DevAddr, GatewayOptions, NwkSKey, RxParams, RxWindow, SimGateway,
};
use bydata_schemas::Eui64;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const GATEWAYS: [&str; 2] = ["70b3d5fffe0b0001", "70b3d5fffe0b0002"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (http, udp, token) = match &args[..] {
        [_, http, udp, token, ..] => (http.clone(), udp.parse()?, token.clone()),
        _ => anyhow::bail!(
            "usage: lorawan_downlinks <http addr> <lorawan addr> <admin token> [devices] [rounds]"
        ),
    };
    let devices: u32 = args.get(4).map_or(Ok(100), |a| a.parse())?;
    let rounds: u32 = args.get(5).map_or(Ok(3), |a| a.parse())?;
    let client = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let request = client
            .post(format!("http://{http}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = request.send().await?;
            anyhow::ensure!(r.status().is_success(), "{path}: {}", r.text().await?);
            Ok::<_, anyhow::Error>(())
        }
    };
    for (i, eui) in GATEWAYS.iter().enumerate() {
        post(
            "/api/v1/gateways".into(),
            json!({"eui": eui, "name": format!("bench {i}")}),
        )
        .await?;
    }
    let shutdown = CancellationToken::new();
    let mut gateways = Vec::new();
    for eui in GATEWAYS {
        let options = GatewayOptions {
            downlink_queue: 4096,
            ..GatewayOptions::default()
        };
        let gw = SimGateway::start_with(Eui64::new(eui)?, udp, options, shutdown.clone()).await?;
        gw.connected(Duration::from_secs(10)).await?;
        gateways.push(gw);
    }
    let gateways = Arc::new(gateways);
    let mut fleet = Vec::new();
    for n in 0..devices {
        let addr = 0x2602_0000 + n;
        let (nwk, app) = ([n as u8; 16], [!(n as u8); 16]);
        let id = format!("bench-dl-{n}");
        let dev_eui = format!("70b3d5fffe0c{:04x}", n & 0xffff);
        let hex = |k: [u8; 16]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
        post(
            "/api/v1/devices".into(),
            json!({"id": id, "name": id, "transport": "lorawan", "domain": "building", "codec": "cayenne",
                   "lorawan": {"activation": "abp", "dev_eui": dev_eui, "dev_addr": format!("{addr:08x}"),
                   "nwk_s_key": hex(nwk), "app_s_key": hex(app)}}),
        )
        .await?;
        let device = AbpDevice::new(
            Eui64::new(&dev_eui)?,
            DevAddr::new(addr),
            NwkSKey::new(nwk),
            AppSKey::new(app),
        );
        fleet.push((id, device));
    }
    let (mut rx1, mut rx2, mut none) = (0u32, 0u32, 0u32);
    let mut leads = Vec::new();
    let started = Instant::now();
    for round in 0..rounds {
        for (id, _) in &fleet {
            post(
                format!("/api/v1/devices/{id}/downlinks"),
                json!({"fport": 10, "hex": format!("{round:08x}")}),
            )
            .await?;
        }
        let mut tasks = JoinSet::new();
        for (i, (id, mut device)) in fleet.drain(..).enumerate() {
            let gateways = Arc::clone(&gateways);
            tasks.spawn(async move {
                // Each device heard by both gateways, better by one of them.
                let rx = |rssi| RxParams {
                    rssi,
                    lsnr: (f64::from(rssi) + 112.0) / 3.0,
                    ..RxParams::default()
                };
                let good = i % 2;
                let radio = [
                    (&gateways[0], rx(if good == 0 { -70 } else { -105 })),
                    (&gateways[1], rx(if good == 1 { -70 } else { -105 })),
                ];
                let outcome = device.class_a(&radio, 2, &[1, 2, 3], false).await;
                (id, device, outcome)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (id, device, outcome) = done?;
            let outcome = outcome?;
            match &outcome.downlink {
                Some((_, RxWindow::Rx1, _)) => rx1 += 1,
                Some((_, RxWindow::Rx2, _)) => rx2 += 1,
                None => none += 1,
            }
            leads.extend(outcome.lead);
            fleet.push((id, device));
        }
    }
    let elapsed = started.elapsed();
    leads.sort();
    let pick = |q: f64| {
        leads
            .get(((leads.len() as f64 - 1.0) * q).round() as usize)
            .map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()))
    };
    println!(
        "class A downlinks: {devices} devices × {rounds} rounds, all at once through 2 gateways, in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!("  taken in RX1: {rx1}, in RX2: {rx2}, not taken: {none}");
    println!(
        "  lead before the window opened (PULL_RESP at the gateway): min {}, p10 {}, p50 {}, max {}",
        pick(0.0),
        pick(0.1),
        pick(0.5),
        pick(1.0)
    );
    shutdown.cancel();
    Ok(())
}
