//! Arbitrary bytes into the real UDP listener: thousands of seeded random and half-valid datagrams from a
//! registered gateway (random PUSH_DATA JSON, random radio frames of every message type, truncated and
//! oversized packets) never take the listener down — afterwards it still answers, counts, and the
//! platform is healthy.
#![allow(clippy::unwrap_used)]
mod common;

use base64::Engine as _;
use common::{ADMIN, Bydata, eventually};
use serde_json::json;
use std::time::Duration;
use tokio::net::UdpSocket;

const GATEWAY: [u8; 8] = [0x00, 0x16, 0xc0, 0x01, 0xff, 0x10, 0xa2, 0x36];
const DEV_ADDR: u32 = 0x2601_1bda;

/// xorshift64*: seeded, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn header(token: u16, identifier: u8) -> Vec<u8> {
    let mut out = vec![2, (token >> 8) as u8, token as u8, identifier];
    out.extend_from_slice(&GATEWAY);
    out
}

/// One hostile datagram of a random shape.
fn hostile(rng: &mut Rng) -> Vec<u8> {
    let token = rng.next() as u16;
    match rng.below(6) {
        // Pure noise, of any length up to a jumbo datagram.
        0 => {
            let n = rng.below(2000) as usize;
            rng.bytes(n)
        }
        // A valid header of a random type, then noise.
        1 => {
            let mut d = header(token, rng.below(8) as u8);
            let n = rng.below(300) as usize;
            d.extend(rng.bytes(n));
            d
        }
        // PUSH_DATA with a radio frame of random type and length (joins, data up with random DevAddr, …).
        2 | 3 => {
            let len = rng.below(64) as usize;
            let mut phy = rng.bytes(len);
            if let Some(m) = phy.first_mut() {
                *m = (rng.below(8) as u8) << 5;
            }
            // Half of them name the registered device's DevAddr, so they reach the MIC check and the
            // frame-holding code rather than stopping at "unknown DevAddr".
            if phy.len() >= 5 && rng.below(2) == 0 {
                phy[1..5].copy_from_slice(&DEV_ADDR.to_le_bytes());
            }
            let data = base64::engine::general_purpose::STANDARD.encode(&phy);
            let stat = [1, -1, 0][rng.below(3) as usize];
            let rxpk = json!({"tmst": rng.next() as u32, "freq": 868.1, "stat": stat,
                "modu": "LORA", "datr": "SF7BW125", "codr": "4/5", "rssi": -(rng.below(140) as i64),
                "lsnr": 5.5, "size": phy.len(), "data": data});
            let mut d = header(token, 0x00);
            d.extend(json!({"rxpk": [rxpk]}).to_string().into_bytes());
            d
        }
        // PUSH_DATA with JSON of the wrong shapes.
        4 => {
            let bodies = [
                r#"{"rxpk": 5}"#,
                r#"{"rxpk": [null, 1, "x", {"data": 7}]}"#,
                r#"{"stat": {"rxnb": -1, "time": 12}}"#,
                r#"{"rxpk": [{"data": "QAEBAQE=", "tmst": -1, "freq": "x"}]}"#,
                "[]",
                "{",
                "\u{0}\u{1}",
            ];
            let mut d = header(token, 0x00);
            d.extend(bodies[rng.below(bodies.len() as u64) as usize].as_bytes());
            d
        }
        // Truncated valid datagrams.
        _ => {
            let mut d = header(token, 0x02);
            d.truncate(rng.below(d.len() as u64) as usize);
            d
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_datagrams_never_take_the_listener_down() {
    let dir = tempfile::tempdir().unwrap();
    // The flood comes from one address, faster than the per-source rate a real gateway needs: lift the rate
    // limit so every datagram reaches the parser (the limit itself is tested in `abuse.rs`).
    let b = Bydata::start_with_config(dir.path(), "[lorawan]\ndatagrams_per_sec = 1000000\n").await;
    b.register_gateway("0016c001ff10a236", "fuzz").await;
    b.onboard_abp(
        "fuzzed",
        "0000000000000001",
        &format!("{DEV_ADDR:08x}"),
        "2b7e151628aed2a6abf7158809cf4f3c",
        "2b7e151628aed2a6abf7158809cf4f3c",
    )
    .await;
    let gw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(b.lorawan).await.unwrap();
    let mut rng = Rng(0x5eed_0fb7_da7a);
    let sent = 3000u64;
    let mut pulls = 0u64;
    for i in 0..sent {
        gw.send(&hostile(&mut rng)).await.unwrap();
        // Every 50 datagrams, a PULL_DATA whose PULL_ACK must come back: the listener is alive, and the
        // socket buffer never overflows (so every datagram is counted).
        if i % 50 == 49 {
            pulls += 1;
            let token = (0xa000 + pulls) as u16;
            gw.send(&header(token, 0x02)).await.unwrap();
            let ack = [2, (token >> 8) as u8, token as u8, 0x04];
            let mut buf = [0u8; 64];
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    let n = gw.recv(&mut buf).await.unwrap();
                    if buf[..n] == ack {
                        break;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no PULL_ACK after {i} hostile datagrams"));
        }
    }
    let (code, _) = b.get("/health", ADMIN).await;
    assert_eq!(code, 200);
    let count = |text: &str, outcome: &str| -> u64 {
        let key = format!("bydata_lorawan_datagrams_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let text = eventually(
        Duration::from_secs(10),
        "every datagram counted",
        || async {
            let (_, metrics) = b.get("/metrics", ADMIN).await;
            let text = metrics.as_str()?.to_owned();
            let seen = count(&text, "accepted")
                + count(&text, "invalid")
                + count(&text, "unknown_gateway");
            (seen == sent + pulls).then_some(text)
        },
    )
    .await;
    assert!(count(&text, "invalid") > 0, "{text}");
    // Frames with the device's DevAddr reached the MIC check and were refused there: counted for the device
    // in memory, never written to its status.
    let status = b
        .wait_status("fuzzed", "MIC refusals", |s| {
            s["unverified_attempts"]["unverified_frames"].as_u64() > Some(0)
        })
        .await;
    assert_eq!(
        (status["decoded"].clone(), status["rejected"].clone()),
        (json!(0), json!(0)),
        "{status}"
    );
}
