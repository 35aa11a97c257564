//! The official InfluxDB v2 Python client (PyPI `influxdb-client`) writes to bydata's `/api/v2/write` over
//! real HTTP, unchanged: gzip on, `Authorization: Token …`, seconds precision, and a refused batch surfaces
//! as the client's own error. The client is installed into a venv under cargo's test tmp dir when missing.
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const CLIENT: &str = "influxdb-client==1.50.0";

fn python_with_client() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("influx-venv");
    let python = venv.join("bin/python");
    let has_client = || {
        Command::new(&python)
            .args(["-c", "import influxdb_client"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_client() {
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "python3 -m venv failed (Debian: apt-get install python3-venv)"
        );
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", CLIENT])
            .status()
            .unwrap();
        assert!(ok.success(), "pip install {CLIENT} failed");
        assert!(has_client());
    }
    python
}

const SCRIPT: &str = r#"
import sys, datetime
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

url, token = sys.argv[1], sys.argv[2]
with InfluxDBClient(url=url, token=token, org="aarhus", enable_gzip=True) as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    t = datetime.datetime(2026, 11, 20, 10, 0, tzinfo=datetime.timezone.utc)
    write.write("city", record=[
        Point("climate").tag("building", "b7").tag("room", "1.12 north").field("temperature", 21.5).time(t, WritePrecision.S),
        Point("climate").tag("building", "b7").tag("room", "1.12 north").field("temperature", 22.0).time(t + datetime.timedelta(minutes=15), WritePrecision.S),
    ], write_precision=WritePrecision.S)
    write.write("city", record="heat,building=dokk1 kwh=120.5 1763632800", write_precision=WritePrecision.S)
    try:
        write.write("city", record="heat,building=dokk1 kwh=oops 1763632800", write_precision=WritePrecision.S)
        print("bad batch accepted")
        sys.exit(1)
    except ApiException as e:
        print(f"refused {e.status}: {e.body}")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_influxdb_client_writes_unchanged() {
    let python = python_with_client();
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let (code, token) = b
        .post(
            "/api/v1/tokens",
            ADMIN,
            &json!({"name": "influx client", "role": "editor"}),
        )
        .await;
    assert_eq!(code, 201);
    let out = Command::new(python)
        .args(["-c", SCRIPT, &b.url(""), token["token"].as_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("refused 400") && stdout.contains("line 1:"),
        "{stdout}"
    );

    let (_, answer) = b
        .get(
            "/api/v1/query?measurement=climate&field=temperature&tag.room=1.12%20north&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&every=1h&fn=mean&tz=UTC",
            ADMIN,
        )
        .await;
    let values: Vec<f64> = answer["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .collect();
    assert_eq!(values, vec![21.75], "{answer}");
    let (_, heat) = b
        .get("/api/v1/query?measurement=heat&field=kwh&tag.building=dokk1&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z", ADMIN)
        .await;
    assert_eq!(heat["series"][0]["points"][0]["value"], 120.5, "{heat}");
}
