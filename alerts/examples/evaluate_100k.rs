//! One evaluation pass over 100k devices with silence rules, in memory (what `bench/alerts.sh` runs): CPU
//! time per pass (from /proc/self/stat, averaged over many passes), wall time, and the memory the index
//! and alerts take (VmRSS before and after building them).
#![allow(clippy::unwrap_used, clippy::print_stdout)]
use bydata_alerts::evaluate::Evaluator;
use bydata_alerts::rule::{RuleBody, compile};
use bydata_schemas::{DeviceId, Domain, OrgId, TagKey, Transport};
use bydata_store::{Device, DeviceStatus, StatusChanges};
use std::collections::BTreeMap;
use std::time::Instant;

const S: i64 = 1_000_000_000;

fn proc_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (clock ticks of 10 ms).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    ticks as f64 / 100.0
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let passes: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let rss0 = proc_kib("VmRSS:");
    let now = 1_800_000_000 * S;
    let org = OrgId::default();
    let devices: Vec<Device> = (0..n)
        .map(|i| Device {
            id: DeviceId::new(format!("sensor-{i:06}")).unwrap(),
            name: format!("sensor {i}"),
            transport: Transport::Mqtt,
            domain: Domain::new("building").unwrap(),
            location: None,
            tags: BTreeMap::from([(
                TagKey::new("type").unwrap(),
                if i % 2 == 0 { "climate" } else { "meter" }.to_owned(),
            )]),
            codec: Default::default(),
            created_at: 0,
            org: org.clone(),
        })
        .collect();
    let mut ev = Evaluator::default();
    ev.index.set_devices(&devices, now);
    // Each device sent every 10 minutes for its last 20 uplinks; 1% stopped 2 hours ago.
    let mut statuses = Vec::with_capacity(n);
    for (i, d) in devices.iter().enumerate() {
        let last = if i % 100 == 0 {
            now - 7200 * S
        } else {
            now - (i as i64 % 600) * S
        };
        let mut s = DeviceStatus {
            last_seen: Some(last),
            received: 20,
            ..DeviceStatus::default()
        };
        s.decoded_with("json", last - 19 * 600 * S);
        for k in 1..20 {
            s.decoded_with("json", last - (19 - k) * 600 * S);
        }
        statuses.push((d.id.clone(), s));
    }
    ev.index.apply(
        &StatusChanges {
            full: true,
            statuses,
            ..StatusChanges::default()
        },
        0,
        now,
    );
    drop(devices);
    for (i, body) in [
        r#"{"name": "quiet climate", "condition": {"kind": "silence", "learn": {}, "every": "1h"}, "select": {"tags": {"type": "climate"}}, "channels": ["ops"]}"#,
        r#"{"name": "quiet meters", "condition": {"kind": "silence", "every": "30m", "intervals": [{"tag": "type=meter", "every": "1h"}]}, "select": {"all": "devices"}, "channels": ["ops"]}"#,
    ]
    .iter()
    .enumerate()
    {
        let body: RuleBody = serde_json::from_str(body).unwrap();
        ev.rules.push(compile(&format!("r{i}"), org.clone(), &body).unwrap());
    }
    let rss_index = proc_kib("VmRSS:");

    let (cpu, wall) = (cpu_secs(), Instant::now());
    let first = ev.pass(now);
    let (first_cpu, first_wall) = (cpu_secs() - cpu, wall.elapsed());
    let firing = first.notifications.len();
    let (cpu, wall) = (cpu_secs(), Instant::now());
    let mut moved = 0;
    for p in 0..passes {
        let out = ev.pass(now + (p as i64 + 1) * 10 * S);
        moved += out.commit.alerts.len();
    }
    let (steady_cpu, steady_wall) = (cpu_secs() - cpu, wall.elapsed());
    let rss_end = proc_kib("VmRSS:");
    println!("devices                      {n}");
    println!(
        "rules                        2 silence rules (learned / by tag), every device watched by one or two"
    );
    println!(
        "first pass (1% silent)       {:.1} ms wall, {:.0} ms CPU, {firing} firing notifications",
        first_wall.as_secs_f64() * 1e3,
        first_cpu * 1e3
    );
    println!(
        "steady pass (mean of {passes})   {:.1} ms wall, {:.1} ms CPU ({moved} alert updates)",
        steady_wall.as_secs_f64() * 1e3 / passes as f64,
        steady_cpu * 1e3 / passes as f64
    );
    println!(
        "memory: index                {:.1} MiB ({} bytes per device)",
        (rss_index - rss0) as f64 / 1024.0,
        (rss_index - rss0) * 1024 / n as u64
    );
    println!(
        "memory: after passes         {:.1} MiB (VmRSS {:.1} MiB, peak {:.1} MiB)",
        (rss_end - rss0) as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        proc_kib("VmHWM:") as f64 / 1024.0
    );
}
