//! Frames per second through bydata's LoRaWAN uplink path on one core: MIC check with the full frame
//! counter, FRMPayload decryption, and Cayenne LPP decoding (issue 4's figure).
//!
//! usage: cargo run --release -p bydata-ingest --example lorawan_frames [seconds, default 3]
use bydata_ingest::codec::cayenne;
use bydata_ingest::lorawan::frame::{
    AppSKey, DevAddr, NwkSKey, Session, build_uplink, decode_uplink,
};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let session = Session {
        dev_addr: DevAddr::new(0x2601_1bda),
        nwk_s_key: NwkSKey::new([0x2b; 16]),
        app_s_key: AppSKey::new([0x17; 16]),
        fcnt_up: None,
        fcnt_down: 0,
    };
    // A typical room sensor: temperature, humidity, CO2 concentration and battery voltage (15 bytes).
    let payload = [
        0x01, 0x67, 0x00, 0xd7, 0x02, 0x68, 0x5a, 0x03, 0x7d, 0x01, 0xc2, 0x04, 0x74, 0x01, 0x4a,
    ];
    let frames: Vec<Vec<u8>> = (1..=4096u32)
        .map(|fcnt| build_uplink(&session, fcnt, 2, &payload, false))
        .collect::<Result<_, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let (mut done, mut values) = (0u64, 0u64);
    while Instant::now() < deadline {
        for (i, phy) in frames.iter().enumerate() {
            // Each frame is checked against the counter just before it, as a live session would be.
            let s = Session {
                fcnt_up: Some(i as u32),
                ..session.clone()
            };
            let up = decode_uplink(phy, &s)?;
            values += cayenne::decode(&up.payload)?.len() as u64;
            done += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{done} frames in {secs:.2} s on one core: {:.0} frames/s through MIC + decrypt + Cayenne LPP ({:.0} values/s)",
        done as f64 / secs,
        values as f64 / secs
    );
    Ok(())
}
