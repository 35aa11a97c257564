//! Decodes per second of JavaScript (TS013) codecs in bydata's QuickJS sandbox, on one core: the indoor
//! climate codec of the tests (a TLV format, 16-byte payload) and Cayenne LPP written in JavaScript (15 bytes),
//! each with its load time. A decode here includes the hand-over to the codec's thread, the input object, the
//! JSON result and its flattening into readings.
//!
//! usage: cargo run --release -p bydata-ingest --example js_codec [-- decodes, default 20000]
use bydata_ingest::codec::DecodeContext;
use bydata_ingest::codec::script::{Limits, ScriptCodec, readings};
use std::time::{Duration, Instant};

const CLIMATE: &str = include_str!("../src/codec/script/testdata/climate.js");
const LPP: &str = include_str!("../src/codec/script/testdata/lpp.js");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let climate = [
        0x01, 0x00, 0xe5, 0x02, 0x2d, 0x04, 0x01, 0x2c, 0x05, 0x03, 0x06, 0x01, 0xc2, 0x07, 0x0b,
        0xb8,
    ];
    // Temperature, humidity, CO2 concentration and battery voltage, as in the lorawan_frames example.
    let lpp = [
        0x01, 0x67, 0x00, 0xd7, 0x02, 0x68, 0x5a, 0x03, 0x7d, 0x01, 0xc2, 0x04, 0x74, 0x01, 0x4a,
    ];
    println!(
        "{n} decodes per codec; the caller and the codec's thread take turns (each polls ~100 µs for the other \
         before sleeping), so CPU time is counted for the whole process"
    );
    println!(
        "{:<12} {:>7} {:>10} {:>12} {:>10} {:>16}",
        "codec", "script", "load", "decodes/s", "µs/decode", "decodes/CPU-s"
    );
    for (name, source, payload) in [
        ("climate", CLIMATE, &climate[..]),
        ("cayenne-js", LPP, &lpp[..]),
    ] {
        let started = Instant::now();
        let mut codec = ScriptCodec::new(source, Limits::default())?;
        let load = started.elapsed();
        let ctx = DecodeContext::new(1_790_000_000_000_000_000);
        let mut values = 0usize;
        let started = Instant::now();
        let cpu_before = process_cpu_seconds();
        for i in 0..n {
            let output = codec.decode_uplink(1, payload, ctx.received_at + i64::from(i))?;
            values += readings(&output, &ctx)?.readings.len();
        }
        let elapsed = started.elapsed().max(Duration::from_nanos(1));
        let cpu = (process_cpu_seconds() - cpu_before).max(1e-9);
        println!(
            "{:<12} {:>5} B {:>7.1} ms {:>12.0} {:>10.1} {:>16.0}   ({values} readings)",
            name,
            source.len(),
            load.as_secs_f64() * 1e3,
            f64::from(n) / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / f64::from(n),
            f64::from(n) / cpu,
        );
    }
    Ok(())
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in clock ticks of 1/100 s).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime
    // the 13th of those.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
