//! The InfluxDB adapter against real servers.
//!
//! - `write_path_against_victoria_metrics`: VictoriaMetrics accepts the InfluxDB v2 write request
//!   (`/api/v2/write`, line protocol) unchanged, so the write path runs for real: the test starts
//!   `/usr/bin/victoria-metrics` (installing the Debian package `victoria-metrics` if it is missing) on a free
//!   port with a temporary data directory, writes through `InfluxStore`, and reads the points back with
//!   VictoriaMetrics' own `/api/v1/export`. VictoriaMetrics names a metric `{measurement}_{field}`, turns tags
//!   into labels and keeps milliseconds, so the test writes whole milliseconds.
//! - `live_influxdb2_round_trip`: both traits (writes, reads and a delete) against a real InfluxDB 2 when
//!   `BYDATA_TEST_INFLUX_URL` (and `_TOKEN`, `_ORG`, `_BUCKET`) are set; otherwise it says so in one line and
//!   passes.
#![allow(clippy::unwrap_used)]

use bydata_schemas::{MeasurementName, Point, SeriesKey, Unit, UnixNanos};
use bydata_store::series::influx::{InfluxConfig, InfluxStore};
use bydata_store::{SeriesFilter, SeriesInfo, SeriesReader, SeriesWriter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VM_BIN: &str = "/usr/bin/victoria-metrics";

fn key(measurement: &str, tags: &[(&str, &str)], field: &str) -> SeriesKey {
    SeriesKey {
        measurement: MeasurementName::new(measurement).unwrap(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        field: MeasurementName::new(field).unwrap(),
    }
}

/// Installs VictoriaMetrics from Debian when the binary is missing (`apt-get update` only if the first try
/// fails). Never skips: a machine without it fails here, saying why.
fn ensure_victoria_metrics() {
    if Path::new(VM_BIN).exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "victoria-metrics"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let updated = Command::new("apt-get")
            .arg("update")
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            updated,
            "apt-get update failed; cannot install victoria-metrics"
        );
        assert!(install(), "apt-get install -y victoria-metrics failed");
    }
    assert!(
        Path::new(VM_BIN).exists(),
        "victoria-metrics installed but {VM_BIN} is missing"
    );
}

/// A running VictoriaMetrics, killed on drop.
struct Victoria {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Victoria {
    async fn start(http: &reqwest::Client) -> Self {
        ensure_victoria_metrics();
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("vm.log")).unwrap();
        let child = Command::new(VM_BIN)
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            // The test writes 2024 timestamps; the default retention (1 month) would drop them.
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let vm = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let health = format!("{}/health", vm.base);
        eventually(
            Duration::from_secs(30),
            "VictoriaMetrics /health",
            || async {
                let r = http.get(&health).send().await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
        vm
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("vm.log")).unwrap_or_default()
    }
}

/// Polls `f` every 50 ms until it returns `Some`; panics with `what` after `timeout`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

type Exported = BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>;

/// Every series VictoriaMetrics holds, by label set, with its (ms, value) points in time order.
async fn export(http: &reqwest::Client, base: &str) -> Option<Exported> {
    http.get(format!("{base}/internal/force_flush"))
        .send()
        .await
        .ok()?;
    let text = http
        .post(format!("{base}/api/v1/export"))
        .form(&[("match[]", "{__name__!=\"\"}"), ("start", "0")])
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut out = Exported::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let labels: BTreeMap<String, String> = v["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let times = v["timestamps"].as_array().unwrap();
        let values = v["values"].as_array().unwrap();
        let points = out.entry(labels).or_default();
        for (t, x) in times.iter().zip(values) {
            points.push((t.as_i64().unwrap(), x.as_f64().unwrap()));
        }
        points.sort_by_key(|&(t, _)| t);
    }
    Some(out)
}

fn labels(key: &SeriesKey) -> BTreeMap<String, String> {
    let mut l = key.tags.clone();
    l.insert(
        "__name__".to_owned(),
        format!("{}_{}", key.measurement, key.field),
    );
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_path_against_victoria_metrics() {
    let http = reqwest::Client::new();
    let vm = Victoria::start(&http).await;
    let store = InfluxStore::new(InfluxConfig {
        url: vm.base.clone(),
        org: "city".to_owned(),
        bucket: "iot".to_owned(),
        token: "not-checked-by-victoria".to_owned(),
    })
    .unwrap();

    const T0_MS: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    let plain = key(
        "temperature",
        &[("device", "b7"), ("domain", "building")],
        "value",
    );
    let tricky = key(
        "energy",
        &[
            ("a key", "a value"),
            ("comma,key", "comma,value"),
            ("eq=key", "eq=value"),
            ("slash", "ends in backslash\\"),
            ("unicode", "Århus ☀"),
        ],
        "kwh",
    );
    // More than one request's worth (5,000 lines), so the batching runs for real.
    let mut points: Vec<Point> = (0..6_000)
        .map(|i| Point {
            series: plain.clone(),
            unit: Unit::for_measurement("temperature"),
            time: (T0_MS + i * 1_000) * 1_000_000,
            value: 20.0 + (i % 40) as f64 * 0.25,
        })
        .collect();
    points.extend((0..3).map(|i| Point {
        series: tricky.clone(),
        unit: Unit::new("kWh").ok(),
        time: (T0_MS + i * 60_000) * 1_000_000,
        value: 1_000.5 + i as f64,
    }));
    store.write(points.clone()).await.unwrap();

    let mut expected: Exported = BTreeMap::new();
    for p in &points {
        expected
            .entry(labels(&p.series))
            .or_default()
            .push((p.time / 1_000_000, p.value));
    }
    let got = eventually(
        Duration::from_secs(30),
        "the written points in /api/v1/export",
        || async {
            let all = export(&http, &vm.base).await?;
            let ours: Exported = all
                .into_iter()
                .filter(|(l, _)| expected.contains_key(l))
                .collect();
            let complete = expected
                .iter()
                .all(|(l, p)| ours.get(l).is_some_and(|q| q.len() >= p.len()));
            complete.then_some(ours)
        },
    )
    .await;
    assert_eq!(got, expected, "VictoriaMetrics log:\n{}", vm.log());

    // The unit rides along as a string field; VictoriaMetrics keeps such a field as a metric of zeros.
    let all = export(&http, &vm.base).await.unwrap();
    assert!(
        all.keys()
            .any(|l| l.get("__name__").map(String::as_str) == Some("temperature_value#unit")),
        "{:?}",
        all.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn live_influxdb2_round_trip() {
    let Ok(url) = std::env::var("BYDATA_TEST_INFLUX_URL") else {
        println!(
            "live InfluxDB 2 test not run: BYDATA_TEST_INFLUX_URL is not set (set it with \
             BYDATA_TEST_INFLUX_TOKEN, _ORG and _BUCKET to run it)"
        );
        return;
    };
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} must be set when BYDATA_TEST_INFLUX_URL is"))
    };
    let store = InfluxStore::new(InfluxConfig {
        url,
        org: var("BYDATA_TEST_INFLUX_ORG"),
        bucket: var("BYDATA_TEST_INFLUX_BUCKET"),
        token: var("BYDATA_TEST_INFLUX_TOKEN"),
    })
    .unwrap();

    const S: i64 = 1_000_000_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    // A fresh measurement per run, an hour back on a whole second, so runs never see each other's points.
    let run = now.as_nanos() as i64;
    let t0: UnixNanos = (now.as_secs() as i64 - 3_600) * S;
    let measurement = format!("bydata_test_{run}");
    let exact = key(
        &measurement,
        &[("a key", "v,1=2\\"), ("device", "t1")],
        "value",
    );
    let wider = key(
        &measurement,
        &[("a key", "v,1=2\\"), ("device", "t1"), ("floor", "2")],
        "value",
    );
    let mut points: Vec<Point> = (0..10)
        .map(|i| Point {
            series: exact.clone(),
            unit: Unit::new("Cel").ok(),
            time: t0 + i * S,
            value: 20.0 + i as f64 / 4.0,
        })
        .collect();
    points.push(Point {
        series: wider.clone(),
        unit: None,
        time: t0 + 3 * S + 500,
        value: 99.0,
    });
    store.write(points).await.unwrap();

    let range = store.range(&exact, t0 + 2 * S, t0 + 5 * S).await.unwrap();
    assert_eq!(
        range,
        [(t0 + 2 * S, 20.5), (t0 + 3 * S, 20.75), (t0 + 4 * S, 21.0)]
    );
    assert_eq!(
        store.last_before(&exact, t0 + 5 * S).await.unwrap(),
        Some((t0 + 4 * S, 21.0))
    );
    assert_eq!(
        store.last_before(&exact, i64::MAX).await.unwrap(),
        Some((t0 + 9 * S, 22.25))
    );
    assert_eq!(store.last_before(&exact, t0).await.unwrap(), None);
    let filter = SeriesFilter {
        scope: None,
        measurement: Some(MeasurementName::new(&measurement).unwrap()),
        field: None,
        tags: BTreeMap::new(),
    };
    assert_eq!(
        store.series(&filter).await.unwrap(),
        [
            SeriesInfo {
                key: exact.clone(),
                unit: Unit::new("Cel").ok(),
            },
            SeriesInfo {
                key: wider.clone(),
                unit: None,
            },
        ]
    );

    // A re-decode: delete the device's points in [2 s, 5 s) — the wider series' too, tags match by equality —
    // and write one back at a deleted time. The point at 5 s stays (InfluxDB's stop is inclusive; the
    // adapter sends end - 1 ns).
    let device = SeriesFilter {
        scope: None,
        measurement: Some(MeasurementName::new(&measurement).unwrap()),
        field: None,
        tags: BTreeMap::from([("device".to_owned(), "t1".to_owned())]),
    };
    store
        .delete_range(&device, t0 + 2 * S, t0 + 5 * S)
        .await
        .unwrap();
    store
        .write(vec![Point {
            series: exact.clone(),
            unit: Unit::new("Cel").ok(),
            time: t0 + 3 * S,
            value: -1.5,
        }])
        .await
        .unwrap();
    let kept: Vec<(UnixNanos, f64)> = (0..10)
        .filter(|i| !(2..5).contains(i))
        .map(|i| (t0 + i * S, 20.0 + i as f64 / 4.0))
        .chain([(t0 + 3 * S, -1.5)])
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    assert_eq!(store.range(&exact, t0, t0 + 10 * S).await.unwrap(), kept);
    assert_eq!(store.range(&wider, t0, t0 + 10 * S).await.unwrap(), []);
}
