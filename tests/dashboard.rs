//! The dashboard in a real browser: headless Chromium (Debian package `chromium`, installed by the test
//! command) loads `/` of a `--demo` instance and runs its script against the API; the test checks that the
//! consumption chart drew bars with data, the building's latest readings are listed, the map shows the
//! devices and the device list says which are sending — not only that the page loads — and saves a
//! screenshot to `target/test-artifacts/dashboard.png`.
#![allow(clippy::unwrap_used)]
mod common;

use common::browser::browse;
use common::{ADMIN, Bydata, eventually};
use std::path::Path;
use std::time::Duration;

/// The value of `attr="…"` on the element with `id="…"` in dumped HTML.
fn attr(html: &str, id: &str, attr: &str) -> Option<u64> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let key = format!("{attr}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    v[..v.find('"')?].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_dashboard_shows_consumption_latest_readings_and_a_map() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with(&dir.path().join("data"), &["--demo"]).await;
    // The demo backfills a day of meter readings: wait until they are stored.
    eventually(Duration::from_secs(60), "demo meter data", || async {
        let (code, body) = b.get("/api/v1/devices/demo-meter-1/latest", ADMIN).await;
        let stored = body["latest"]
            .as_array()?
            .iter()
            .any(|l| l["measurement"] == "energy_kwh");
        (code == 200 && stored).then_some(())
    })
    .await;
    let url = format!("http://{}/#token={ADMIN}", b.http);

    let profile = tempfile::tempdir().unwrap();
    let html = browse(profile.path(), &url, &["--dump-dom"]);
    let bars = attr(&html, "chart", "data-bars").unwrap_or(0);
    let rows = attr(&html, "latest", "data-rows").unwrap_or(0);
    let points = attr(&html, "map", "data-points").unwrap_or(0);
    assert!(bars > 0, "the chart drew no bars with data:\n{html}");
    assert!(rows > 0, "no latest readings listed:\n{html}");
    assert!(points >= 6, "the map shows {points} devices:\n{html}");
    assert!(
        html.contains("Rådhuset (demo)"),
        "the building picker is filled"
    );
    // The sensor owners' view: every device with its state.
    let devices = attr(&html, "devices", "data-devices").unwrap_or(0);
    let sending = attr(&html, "devices", "data-sending").unwrap_or(0);
    assert!(devices >= 6, "{devices} devices listed:\n{html}");
    assert!(sending >= 1, "no device shown as sending:\n{html}");

    // A screenshot as a test artifact.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    browse(
        profile.path(),
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot of {size} bytes at {}",
        shot.display()
    );

    // Every asset comes from bydata itself: the page references nothing off-host.
    let (_, page) = (
        200,
        reqwest::get(b.url("/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
}
