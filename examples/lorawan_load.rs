//! End-to-end LoRaWAN uplinks per second, as a city's traffic reaches bydata: many gateways at once, each on
//! its own source address, pushing Semtech UDP PUSH_DATA without waiting for the previous PUSH_ACK (a window
//! of datagrams in flight per gateway), each datagram carrying the frames the gateway heard since its last
//! push (up to 8 rxpk, the packet forwarder's per-fetch maximum). The frames are real encrypted ABP frames
//! (Cayenne LPP, four values) of many devices, each device heard by one gateway, its counter rising in
//! order. bydata checks, journals, decodes and stores them; the clock runs from the first datagram sent to
//! the moment every device's status counts all of its frames decoded (read through the API).
//!
//! usage: cargo run --release --example lorawan_load -- <http addr> <lorawan addr> <admin token>
//!            [frames, default 100000] [gateways, default 16] [devices, default 256]
//!        (LORAWAN_LOAD_WINDOW: datagrams in flight per gateway, default 4;
//!         LORAWAN_LOAD_RXPK: radio packets per datagram, default 8)
//! (bench/lorawan.sh starts a release bydata on free ports and runs this against it)
use base64::Engine as _;
use bydata_ingest::lorawan::frame::{AppSKey, DevAddr, NwkSKey, Session, build_uplink};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// How long a gateway waits for the PUSH_ACK of its oldest datagram in flight before the run fails (a
/// datagram dropped by the rate limit or the kernel is never acknowledged).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Temperature, humidity, CO2, battery: four values per frame.
const PAYLOAD: [u8; 15] = [
    0x01, 0x67, 0x00, 0xd7, 0x02, 0x68, 0x5a, 0x03, 0x7d, 0x01, 0xc2, 0x04, 0x74, 0x01, 0x4a,
];

struct Plan {
    frames_per_device: u32,
    gateways: u32,
    devices: u32,
    window: usize,
    rxpk: usize,
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(args
        .get(i)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default))
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(std::env::var(name)
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default))
}

// One thread: the load tool shares the machine with bydata, and the gateways' work is only syscalls.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(http), Some(udp), Some(token)) = (args.get(1), args.get(2), args.get(3)) else {
        anyhow::bail!(
            "usage: lorawan_load <http addr> <lorawan addr> <admin token> [frames] [gateways] [devices]"
        );
    };
    let (frames, gateways, devices): (u32, u32, u32) = (
        arg(&args, 4, 100_000)?,
        arg(&args, 5, 16)?,
        arg(&args, 6, 256)?,
    );
    anyhow::ensure!(
        (1..=200).contains(&gateways) && devices >= gateways && frames >= devices,
        "need 1..=200 gateways, at least one device per gateway and one frame per device"
    );
    let plan = Plan {
        frames_per_device: frames / devices,
        gateways,
        devices,
        window: env("LORAWAN_LOAD_WINDOW", 4)?.max(1),
        rxpk: env::<usize>("LORAWAN_LOAD_RXPK", 8)?.clamp(1, 8),
    };
    let frames = plan.frames_per_device * devices;
    let api = Api {
        client: reqwest::Client::new(),
        http: http.clone(),
        token: token.clone(),
    };
    register(&api, &plan).await?;
    let udp: SocketAddr = udp.parse()?;
    let mut pushes = Vec::new();
    for g in 0..gateways {
        // Each gateway its own address, as in a city (the listener's rate limit is per source address).
        let socket = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2 + g as u8), 0)).await?;
        socket.connect(udp).await?;
        pushes.push((socket, datagrams(&plan, g)?));
    }
    let datagrams: usize = pushes.iter().map(|(_, d)| d.len()).sum();
    let started = Instant::now();
    let mut gateways_running = JoinSet::new();
    for (socket, datagrams) in pushes {
        gateways_running.spawn(push(socket, datagrams, plan.window));
    }
    while let Some(done) = gateways_running.join_next().await {
        done??;
    }
    let acked = started.elapsed().as_secs_f64();
    wait_stored(&api, &plan, started).await?;
    let stored = started.elapsed().as_secs_f64();
    let f = f64::from(frames);
    println!(
        "{frames} LoRaWAN uplinks of {devices} devices through {gateways} gateways ({datagrams} datagrams, \
         up to {} rxpk each, {} in flight per gateway): acknowledged by the UDP edge in {acked:.2} s \
         ({:.0}/s); checked, journaled, decoded and stored in {stored:.2} s ({:.0} uplinks/s, {:.0} values/s)",
        plan.rxpk,
        plan.window,
        f / acked,
        f / stored,
        4.0 * f / stored
    );
    Ok(())
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    http: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<()> {
        self.client
            .post(format!("http://{}{path}", self.http))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// How many of `device`'s uplinks are decoded and stored.
    async fn decoded(&self, device: u32) -> anyhow::Result<u64> {
        let status: Value = self
            .client
            .get(format!(
                "http://{}/api/v1/devices/{}/status",
                self.http,
                device_id(device)
            ))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(status["decoded"].as_u64().unwrap_or(0))
    }
}

fn device_id(d: u32) -> String {
    format!("load-sensor-{d:04}")
}

fn gateway_eui(g: u32) -> [u8; 8] {
    (0x0016_c001_ff10_a200_u64 + u64::from(g)).to_be_bytes()
}

/// Device `d`'s ABP session (its own DevAddr and keys).
fn session(d: u32) -> Session {
    let k = d.to_be_bytes();
    Session {
        dev_addr: DevAddr::new(0x2601_0000 + d),
        nwk_s_key: NwkSKey::new([
            0x2b, 0x7e, k[0], k[1], k[2], k[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ]),
        app_s_key: AppSKey::new([
            0x17, 0x5a, k[0], k[1], k[2], k[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        ]),
        fcnt_up: None,
        fcnt_down: 0,
    }
}

/// Registers the gateways and the devices (eight requests at a time; not timed).
async fn register(api: &Api, plan: &Plan) -> anyhow::Result<()> {
    for g in 0..plan.gateways {
        api.post(
            "/api/v1/gateways",
            json!({"eui": hex(&gateway_eui(g)), "name": format!("load gateway {g}")}),
        )
        .await?;
    }
    let mut running = JoinSet::new();
    for d in 0..plan.devices {
        let s = session(d);
        let body = json!({"id": device_id(d), "name": format!("load sensor {d}"), "transport": "lorawan",
            "domain": "building", "codec": "cayenne", "lorawan": {"activation": "abp",
            "dev_eui": format!("70b3d57ed{:07x}", d), "dev_addr": format!("{:08x}", 0x2601_0000 + d),
            "nwk_s_key": hex(s.nwk_s_key.as_bytes()), "app_s_key": hex(s.app_s_key.as_bytes())}});
        let api = api.clone();
        running.spawn(async move { api.post("/api/v1/devices", body).await });
        if running.len() >= 8
            && let Some(done) = running.join_next().await
        {
            done??;
        }
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    Ok(())
}

/// Gateway `g`'s PUSH_DATA datagrams: its devices (every `gateways`-th) each send their frames in counter
/// order, round after round; each datagram carries the next `rxpk` frames the gateway heard.
fn datagrams(plan: &Plan, g: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mine: Vec<(u32, Session)> = (g..plan.devices)
        .step_by(plan.gateways as usize)
        .map(|d| (d, session(d)))
        .collect();
    let mut heard = Vec::new();
    for fcnt in 1..=plan.frames_per_device {
        for (d, s) in &mine {
            let phy = build_uplink(s, fcnt, 2, &PAYLOAD, false)?;
            let tmst = fcnt.wrapping_mul(1_000_003).wrapping_add(*d);
            heard.push(
                json!({"tmst": tmst, "freq": 868.1, "stat": 1, "modu": "LORA",
                "datr": "SF7BW125", "codr": "4/5", "rssi": -60 - (*d % 40) as i32, "lsnr": 7.0,
                "size": phy.len(), "data": b64.encode(&phy)}),
            );
        }
    }
    let eui = gateway_eui(g);
    Ok(heard
        .chunks(plan.rxpk)
        .enumerate()
        .map(|(i, rxpk)| {
            // The token is the datagram's number (mod 2^16); its PUSH_ACK echoes it.
            let token = (i as u16).to_be_bytes();
            let mut d = vec![2, token[0], token[1], 0x00];
            d.extend_from_slice(&eui);
            d.extend_from_slice(json!({ "rxpk": rxpk }).to_string().as_bytes());
            d
        })
        .collect())
}

/// Pushes `datagrams` through `socket`, keeping up to `window` unacknowledged; ends when all are acknowledged.
async fn push(socket: UdpSocket, datagrams: Vec<Vec<u8>>, window: usize) -> anyhow::Result<()> {
    let (mut sent, mut acked) = (0usize, 0usize);
    let mut ack = [0u8; 16];
    while acked < datagrams.len() {
        while sent < datagrams.len() && sent - acked < window {
            socket.send(&datagrams[sent]).await?;
            sent += 1;
        }
        let n = tokio::time::timeout(ACK_TIMEOUT, socket.recv(&mut ack))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no PUSH_ACK for datagram {acked} within {ACK_TIMEOUT:?} (rate-limited or dropped?)"
                )
            })??;
        // PUSH_ACK: version 2, the token, identifier 1. The listener answers in order.
        let token = (acked as u16).to_be_bytes();
        anyhow::ensure!(
            ack.get(..n) == Some(&[2, token[0], token[1], 1][..]),
            "unexpected answer {:?} for datagram {acked}",
            ack.get(..n)
        );
        acked += 1;
    }
    Ok(())
}

/// Waits until every device's status counts all its frames decoded: polls the device that sent last, then
/// checks every device (eight requests at a time) until none is missing a frame.
async fn wait_stored(api: &Api, plan: &Plan, started: Instant) -> anyhow::Result<()> {
    let want = u64::from(plan.frames_per_device);
    let mut missing: Vec<u32> = (0..plan.devices).rev().collect();
    while let Some(&last) = missing.first() {
        if api.decoded(last).await? < want {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "not every frame was decoded within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let mut still = Vec::new();
        for chunk in missing.chunks(8) {
            let mut asked = JoinSet::new();
            for &d in chunk {
                let api = api.clone();
                asked.spawn(async move { api.decoded(d).await.map(|n| (d, n)) });
            }
            while let Some(answer) = asked.join_next().await {
                let (d, n) = answer??;
                if n < want {
                    still.push(d);
                }
            }
        }
        still.sort_unstable_by(|a, b| b.cmp(a));
        missing = still;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
