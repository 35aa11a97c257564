//! End-to-end LoRaWAN uplinks per second: a simulated gateway pushes real encrypted ABP frames (Cayenne LPP)
//! over Semtech UDP to a running bydata, which checks, journals, decodes and stores them; the clock stops
//! when the device status counts every frame decoded.
//!
//! usage: cargo run --release --example lorawan_load -- <http addr> <lorawan addr> <admin token> [frames]
//! (bench/lorawan.sh starts a release bydata on free ports and runs this against it)
use base64::Engine as _;
use bydata_ingest::lorawan::frame::{AppSKey, DevAddr, NwkSKey, Session, build_uplink};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(http), Some(udp), Some(token)) = (args.get(1), args.get(2), args.get(3)) else {
        anyhow::bail!("usage: lorawan_load <http addr> <lorawan addr> <admin token> [frames]");
    };
    let frames: u32 = args
        .get(4)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("http://{http}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    post(
        "/api/v1/gateways",
        json!({"eui": "0016c001ff10a235", "name": "load gateway"}),
    )
    .await?
    .error_for_status()?;
    let nwk = [0x2b; 16];
    let app = [0x17; 16];
    post(
        "/api/v1/devices",
        json!({"id": "load-sensor", "name": "load sensor", "transport": "lorawan", "domain": "building",
            "codec": "cayenne", "lorawan": {"activation": "abp", "dev_eui": "70b3d57ed0000042",
            "dev_addr": "26011bda", "nwk_s_key": hex(&nwk), "app_s_key": hex(&app)}}),
    )
    .await?
    .error_for_status()?;
    let session = Session {
        dev_addr: DevAddr::new(0x2601_1bda),
        nwk_s_key: NwkSKey::new(nwk),
        app_s_key: AppSKey::new(app),
        fcnt_up: None,
        fcnt_down: 0,
    };
    // Temperature, humidity, CO2, battery: four values per frame.
    let payload = [
        0x01, 0x67, 0x00, 0xd7, 0x02, 0x68, 0x5a, 0x03, 0x7d, 0x01, 0xc2, 0x04, 0x74, 0x01, 0x4a,
    ];
    let b64 = base64::engine::general_purpose::STANDARD;
    let datagrams: Vec<Vec<u8>> = (1..=frames)
        .map(|fcnt| {
            let phy = build_uplink(&session, fcnt, 2, &payload, false)?;
            let json = json!({"rxpk": [{"tmst": fcnt, "freq": 868.1, "stat": 1, "modu": "LORA",
                "datr": "SF7BW125", "codr": "4/5", "rssi": -60, "lsnr": 7.0, "size": phy.len(),
                "data": b64.encode(&phy)}]});
            let token = (fcnt as u16).to_be_bytes();
            let mut d = vec![
                2, token[0], token[1], 0x00, 0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x35,
            ];
            d.extend_from_slice(json.to_string().as_bytes());
            Ok(d)
        })
        .collect::<Result<_, bydata_ingest::lorawan::frame::FrameError>>()?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(udp).await?;
    let started = Instant::now();
    let mut ack = [0u8; 16];
    for d in &datagrams {
        // One datagram in flight, as a gateway on a LAN: each waits for its PUSH_ACK.
        socket.send(d).await?;
        tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut ack)).await??;
    }
    let acked = started.elapsed().as_secs_f64();
    loop {
        let status: Value = client
            .get(format!("http://{http}/api/v1/devices/load-sensor/status"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if status["decoded"].as_u64() >= Some(u64::from(frames)) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("not every frame was decoded within 10 minutes: {status}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = started.elapsed().as_secs_f64();
    println!(
        "{frames} LoRaWAN uplinks: acknowledged by the UDP edge in {acked:.2} s ({:.0}/s); checked, journaled, decoded and stored in {stored:.2} s ({:.0} uplinks/s, {:.0} values/s)",
        f64::from(frames) / acked,
        f64::from(frames) / stored,
        4.0 * f64::from(frames) / stored
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
