//! The dashboard in a real browser. First, headless Chromium (Debian package `chromium`, installed by the test
//! command) loads `/` of a `--demo` instance with no tile source: the consumption chart drew bars with data,
//! the building's latest readings are listed, the map shows the devices on the plain background, the device
//! list says which are sending, and the page may load images from bydata only; a screenshot goes to
//! `target/test-artifacts/dashboard.png`.
//!
//! Then an analyst steers it through chromedriver, in a browser whose own time zone is New York's so that a
//! time shown in the browser's zone instead of Copenhagen's is caught: measurements offered by kind from what
//! exists, y-axis labels on their grid lines in nice steps, °C rather than `Cel`, a custom range with nothing
//! in it saying "No data", buildings ranked per m² against last year, a building's meters, the CSV and csv-da
//! exports holding exactly the numbers drawn, and the map with street tiles from a loopback tile server (a
//! real HTTP server serving a PNG) — then, the tile server gone, the plain background and a note saying so.
#![allow(clippy::unwrap_used)]
mod common;

use common::browser::browse;
use common::webdriver::Browser;
use common::{ADMIN, Bydata, eventually};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The value of `attr="…"` on the element with `id="…"` in dumped HTML.
fn attr(html: &str, id: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let key = format!("{attr}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    Some(v[..v.find('"')?].to_owned())
}

fn num_attr(html: &str, id: &str, name: &str) -> u64 {
    attr(html, id, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until the demo's backfilled meter readings are stored.
async fn demo_data(b: &Bydata) {
    eventually(Duration::from_secs(60), "demo meter data", || async {
        let (code, body) = b.get("/api/v1/devices/demo-meter-1/latest", ADMIN).await;
        let stored = body["latest"]
            .as_array()?
            .iter()
            .any(|l| l["measurement"] == "energy_kwh");
        (code == 200 && stored).then_some(())
    })
    .await;
}

fn artifacts() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_dashboard_shows_consumption_latest_readings_and_a_plain_map() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with(&dir.path().join("data"), &["--demo"]).await;
    demo_data(&b).await;
    let url = format!("http://{}/#token={ADMIN}", b.http);

    let profile = tempfile::tempdir().unwrap();
    let html = browse(profile.path(), &url, &["--dump-dom"]);
    let bars = num_attr(&html, "chart", "data-bars");
    let rows = num_attr(&html, "latest", "data-rows");
    let points = num_attr(&html, "map", "data-points");
    assert!(bars > 0, "the chart drew no bars with data:\n{html}");
    assert!(rows > 0, "no latest readings listed:\n{html}");
    assert!(points >= 6, "the map shows {points} devices:\n{html}");
    // No tile source configured: the plain background, and not one tile asked for.
    assert_eq!(
        attr(&html, "map", "data-tiles-state").as_deref(),
        Some("none")
    );
    assert!(!html.contains("class=\"tile\""), "{html}");
    assert!(
        html.contains("Rådhuset (demo)"),
        "the building picker is filled"
    );
    // The sensor owners' view: every device with its state.
    let devices = num_attr(&html, "devices", "data-devices");
    let sending = num_attr(&html, "devices", "data-sending");
    assert!(devices >= 6, "{devices} devices listed:\n{html}");
    assert!(sending >= 1, "no device shown as sending:\n{html}");

    // A screenshot as a test artifact.
    let shot = artifacts().join("dashboard.png");
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

    // Every asset comes from bydata itself: the page references nothing off-host, and its policy lets it
    // load images from nowhere else.
    let r = reqwest::get(b.url("/")).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        csp,
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    );
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
}

/// A tile server on loopback: every path answers the same PNG and is recorded.
async fn tile_server() -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    const PNG: &[u8] = include_bytes!("fixtures/tile.png");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.path().to_owned());
            (
                [
                    ("content-type", "image/png"),
                    // So the fallback below is a failed load, not a tile from the browser's cache.
                    ("cache-control", "no-store"),
                    ("connection", "close"),
                ],
                PNG,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, asked, server)
}

/// Runs `js` in the page until it answers something other than null/false/"".
async fn until(browser: &Browser, what: &str, js: &str) -> Value {
    browser
        .wait_for(what, Duration::from_secs(20), js, json!([]))
        .await
}

async fn choose(browser: &Browser, select: &str, value: &str) {
    // Chromium draws a select's options itself, outside the page: set the choice as picking it would.
    browser
        .script(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change'));",
            json!([select, value]),
        )
        .await;
}

/// Waits for the page to have redrawn for the analyst's latest choice.
async fn settled(browser: &Browser) {
    until(
        browser,
        "the page redrawn",
        "return document.querySelector('#status').dataset.state === 'done';",
    )
    .await;
}

/// A `data:` URL's text (percent-decoded).
fn data_url_text(href: &str) -> String {
    let encoded = href.split_once(',').unwrap().1;
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&encoded[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The Web Mercator tile holding `lon`, `lat` at `z`.
fn tile_of(lon: f64, lat: f64, z: u32) -> (i64, i64) {
    let n = f64::from(1u32 << z);
    let s = lat.to_radians().sin();
    let x = (lon + 180.0) / 360.0 * n;
    let y = (0.5 - ((1.0 + s) / (1.0 - s)).ln() / (4.0 * std::f64::consts::PI)) * n;
    (x.floor() as i64, y.floor() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_steers_the_dashboard_and_the_map_has_streets_until_the_tiles_fail() {
    let (tiles, asked, tile_task) = tile_server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bydata.toml");
    std::fs::write(
        &config,
        format!(
            "[dashboard.tiles]\nurl = \"http://{tiles}/{{z}}/{{x}}/{{y}}.png\"\n\
             attribution = \"Tiles: the test's own server\"\n"
        ),
    )
    .unwrap();
    let b = Bydata::start_with(
        &dir.path().join("data"),
        &["--demo", "--config", config.to_str().unwrap()],
    )
    .await;
    demo_data(&b).await;

    // The policy admits images from exactly the configured tile origin.
    let r = reqwest::get(b.url("/")).await.unwrap();
    assert_eq!(
        r.headers()["content-security-policy"].to_str().unwrap(),
        format!("default-src 'self'; img-src 'self' data: http://{tiles}; frame-ancestors 'none'")
    );

    let browser = Browser::start_with_env(&[("TZ", "America/New_York")]).await;
    browser.goto(&format!("{}/#token={ADMIN}", b.url(""))).await;
    until(
        &browser,
        "consumption bars",
        "return document.querySelector('#status').dataset.state === 'done' \
         && Number(document.querySelector('#chart').dataset.bars) > 0;",
    )
    .await;

    // What there is to show, by kind, from what the store holds.
    let offered = browser
        .script(
            "return [...document.querySelectorAll('#measurement optgroup option')]\
             .map(o => [o.parentElement.label, o.value]);",
            json!([]),
        )
        .await;
    let offered: Vec<(String, String)> = serde_json::from_value(offered).unwrap();
    for want in [
        ("Electricity", "energy_kwh"),
        ("Indoor climate", "temperature"),
    ] {
        assert!(
            offered
                .iter()
                .any(|(k, m)| (k.as_str(), m.as_str()) == want),
            "{want:?} not offered: {offered:?}"
        );
    }

    // The y axis: labels on their grid lines, in steps of 1, 2 or 5 × 10^k, enclosing every bar.
    check_ticks(&browser, "#chart").await;
    let unit = browser
        .script(
            "return document.querySelector('#unit').textContent;",
            json!([]),
        )
        .await;
    assert!(unit.as_str().unwrap().contains("kWh"), "{unit}");
    // Which emission factors the CO2e rests on is said, hours on the fallback included.
    let notes = browser
        .script(
            "return document.querySelector('#chart-notes').textContent;",
            json!([]),
        )
        .await;
    assert!(
        notes
            .as_str()
            .unwrap()
            .starts_with("CO2e from emission factors: "),
        "{notes}"
    );

    // Export: exactly the buckets drawn, in both dialects.
    let drawn: Vec<f64> = serde_json::from_value(
        browser
            .script(
                "return [...document.querySelectorAll('#chart rect.bar.now')].map(r => Number(r.dataset.value));",
                json!([]),
            )
            .await,
    )
    .unwrap();
    let href = |id: &str| {
        let browser = &browser;
        let js = format!("return document.querySelector('#{id}').getAttribute('href');");
        async move {
            browser
                .script(&js, json!([]))
                .await
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let plain = data_url_text(&href("export-chart-csv").await);
    let mut lines = plain.lines();
    assert_eq!(lines.next(), Some("time,consumption_kWh,last_year_kWh"));
    let exported: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(1).filter(|v| !v.is_empty()))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(exported, drawn, "{plain}");
    assert!(
        plain.lines().nth(1).unwrap().contains("+0"),
        "times with their Copenhagen offset: {plain}"
    );
    let danish = data_url_text(&href("export-chart-csv-da").await);
    assert!(danish.starts_with('\u{feff}'), "a BOM for Excel");
    let mut lines = danish.trim_start_matches('\u{feff}').lines();
    assert_eq!(
        lines.next(),
        Some("time;utc_offset;consumption_kWh;last_year_kWh")
    );
    let first = lines.next().unwrap();
    let cells: Vec<&str> = first.split(';').collect();
    assert_eq!(cells[0].len(), "2026-12-07 00:00:00".len(), "{first}");
    assert!(cells[1] == "+01:00" || cells[1] == "+02:00", "{first}");
    let exported_da: Vec<f64> = danish
        .lines()
        .skip(1)
        .filter_map(|l| l.split(';').nth(2).filter(|v| !v.is_empty()))
        .map(|v| v.replace(',', ".").parse().unwrap())
        .collect();
    assert_eq!(exported_da, drawn, "{danish}");

    // Buildings ranked per m², highest first, against last year.
    let ranked = until(
        &browser,
        "the ranking",
        "const r = [...document.querySelectorAll('#ranking tbody tr')]; \
         return r.length >= 2 && r.map(tr => [tr.dataset.building, \
           Number(tr.querySelector('.per-m2').dataset.value ?? -1)]);",
    )
    .await;
    let ranked: Vec<(String, f64)> = serde_json::from_value(ranked).unwrap();
    assert!(
        ranked.windows(2).all(|w| w[0].1 >= w[1].1),
        "not highest first: {ranked:?}"
    );
    let ranked_ids: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        ranked_ids.contains(&"b1") && ranked_ids.contains(&"b2"),
        "{ranked:?}"
    );
    let bars = browser
        .script(
            "return document.querySelector('#ranking-chart').dataset.bars;",
            json!([]),
        )
        .await;
    assert_eq!(bars, json!(ranked.len().to_string()));
    let ranking_csv = data_url_text(&href("export-ranking-csv").await);
    assert_eq!(
        ranking_csv.lines().count(),
        ranked.len() + 1,
        "{ranking_csv}"
    );
    assert!(ranking_csv.starts_with("rank,building,name,kind,floor_area_m2,"));

    // Drill-down: a building in the ranking to its meters.
    browser
        .click("#ranking tbody tr[data-building=\"b2\"]")
        .await;
    let meters = until(
        &browser,
        "b2's meters",
        "const t = document.querySelector('#meters-title').textContent; \
         const r = [...document.querySelectorAll('#meters tbody tr')].map(tr => tr.dataset.meter); \
         return t.includes('Dokk1') && r.length > 0 && r;",
    )
    .await;
    let meters: Vec<String> = serde_json::from_value(meters).unwrap();
    assert!(meters.iter().all(|m| m.starts_with("demo-")), "{meters:?}");
    settled(&browser).await;
    browser
        .script(
            "document.querySelector('#ranking-card').scrollIntoView();",
            json!([]),
        )
        .await;
    browser
        .screenshot(&artifacts().join("dashboard-ranking.png"))
        .await;

    // Indoor climate: a level per bucket, in °C as people write it, never `Cel`.
    choose(&browser, "#measurement", "temperature").await;
    until(
        &browser,
        "temperature lines",
        "return document.querySelector('#status').dataset.state === 'done' \
         && Number(document.querySelector('#chart').dataset.series) > 0;",
    )
    .await;
    check_ticks(&browser, "#chart").await;
    let text = browser
        .script("return document.body.innerText;", json!([]))
        .await;
    let text = text.as_str().unwrap();
    assert!(text.contains("°C"), "{text}");
    assert!(
        !text
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "Cel"),
        "{text}"
    );

    // Times in Copenhagen whatever the browser's zone: a latest reading shown at the hour Copenhagen had.
    let (device, shown, utc) = serde_json::from_value::<(String, String, String)>(
        until(
            &browser,
            "a latest temperature",
            "const tr = document.querySelector('#latest tr[data-measurement=\"temperature\"]'); \
             return tr && [tr.dataset.device, tr.lastChild.textContent, tr.lastChild.dataset.time];",
        )
        .await,
    )
    .unwrap();
    // The offset Copenhagen has now, from an answer in its time (readings are minutes old).
    let (_, q) = b
        .get(
            &format!(
                "/api/v1/query?measurement=temperature&tag.device={device}&tz=Europe/Copenhagen"
            ),
            ADMIN,
        )
        .await;
    let local = q["series"][0]["points"][0]["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let offset: i64 = local[local.len() - 6..local.len() - 3].parse().unwrap();
    // The reading's own time, in whatever offset the answer gave it, back to UTC.
    let given: i64 = if utc.ends_with('Z') {
        0
    } else {
        utc[utc.len() - 6..utc.len() - 3].parse().unwrap()
    };
    let hour: i64 = utc[11..13].parse::<i64>().unwrap() - given;
    let hh_mm = format!("{:02}.{}", (hour + offset).rem_euclid(24), &utc[14..16]);
    assert!(
        shown.ends_with(&hh_mm),
        "{shown} for {utc} (Copenhagen: {local})"
    );

    // A custom range with nothing in it says so.
    browser
        .script(
            "document.querySelector('#from').value = '2020-01-01'; \
             document.querySelector('#to').value = '2020-01-31'; \
             document.querySelector('#to').dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    let said = until(
        &browser,
        "a no-data notice",
        "const p = document.querySelector('#no-data'); \
         return document.querySelector('#chart').dataset.empty === '1' && !p.hidden && p.textContent;",
    )
    .await;
    assert!(said.as_str().unwrap().starts_with("No data"), "{said}");

    // The map: street tiles from the configured server, every one loaded, under the devices, attributed.
    choose(&browser, "#measurement", "energy_kwh").await;
    browser.click("[data-preset=\"2d\"]").await;
    settled(&browser).await;
    let map = until(
        &browser,
        "tiles loaded",
        "const m = document.querySelector('#map'); const t = [...m.querySelectorAll('img.tile')]; \
         return m.dataset.tilesState === 'loaded' && t.every(i => i.complete && i.naturalWidth === 256) \
           && [t.length, Number(m.dataset.zoom), m.querySelectorAll('svg circle').length, \
               m.querySelector('.attribution').textContent];",
    )
    .await;
    let (shown_tiles, zoom, circles, attribution) =
        serde_json::from_value::<(usize, u32, u64, String)>(map).unwrap();
    assert!(shown_tiles >= 2, "{shown_tiles} tiles");
    assert!(circles >= 6, "{circles} devices on the map");
    assert_eq!(attribution, "Tiles: the test's own server");
    let (_, geo) = b.get("/api/v1/devices.geojson", ADMIN).await;
    let points: Vec<(i64, i64)> = geo["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let c = &f["geometry"]["coordinates"];
            tile_of(c[0].as_f64().unwrap(), c[1].as_f64().unwrap(), zoom)
        })
        .collect();
    let asked_now = asked.lock().unwrap().clone();
    assert!(asked_now.len() >= shown_tiles, "{asked_now:?}");
    for path in &asked_now {
        let zxy: Vec<i64> = path
            .trim_start_matches('/')
            .trim_end_matches(".png")
            .split('/')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(zxy[0], i64::from(zoom), "{path}");
        // Every tile asked for is around the devices: the projection puts Aarhus where it is.
        assert!(
            points
                .iter()
                .any(|(x, y)| (zxy[1] - x).abs() <= 2 && (zxy[2] - y).abs() <= 2),
            "{path} is not near {points:?}"
        );
    }
    browser
        .screenshot(&artifacts().join("dashboard-steered.png"))
        .await;
    browser
        .script(
            "document.querySelector('#map').scrollIntoView();",
            json!([]),
        )
        .await;
    browser
        .screenshot(&artifacts().join("dashboard-map.png"))
        .await;

    // Dataforsyningen's grid (ETRS89 / UTM 32N): the page's projection against Snyder's series (USGS
    // Professional Paper 1395, computed apart from the test) for Aarhus City Hall and Copenhagen.
    for (lon, lat, e, n) in [
        (10.2039, 56.1535, 574_784.652, 6_223_816.515),
        (12.5683, 55.6761, 724_351.929, 6_175_804.023),
    ] {
        let en: Vec<f64> = serde_json::from_value(
            browser
                .script(
                    "return utm32(arguments[0], arguments[1]);",
                    json!([lon, lat]),
                )
                .await,
        )
        .unwrap();
        assert!(
            (en[0] - e).abs() < 0.01 && (en[1] - n).abs() < 0.01,
            "{en:?} for {lon}, {lat}"
        );
    }

    // The tile server gone: the plain background, every device still drawn, and a note saying why.
    tile_task.abort();
    let _ = tile_task.await;
    browser.goto(&b.url("/")).await;
    let fallback = until(
        &browser,
        "the plain background",
        "const m = document.querySelector('#map'); \
         return m.dataset.tilesState === 'failed' && [m.querySelectorAll('img.tile').length, \
           m.querySelectorAll('.plain').length, m.querySelectorAll('svg circle').length, \
           document.querySelector('#map-note').textContent];",
    )
    .await;
    let (imgs, plain, circles, note) =
        serde_json::from_value::<(u64, u64, u64, String)>(fallback).unwrap();
    assert_eq!((imgs, plain), (0, 1));
    assert!(circles >= 6);
    assert_eq!(
        note,
        format!(
            "Street tiles could not be loaded from http://{tiles}; the plain background is shown."
        )
    );
}

/// The value axis of the chart in `box`: each label on its grid line, evenly spaced values in a nice step,
/// labels that read as their values (Danish: `1.000,5`), and every bar inside the axis.
async fn check_ticks(browser: &Browser, chart: &str) {
    let ticks = browser
        .script(
            "return [...document.querySelectorAll(arguments[0] + ' g.tick')].map(g => [\
               Number(g.dataset.value), g.querySelector('line').getAttribute('y1'), \
               g.querySelector('line').getAttribute('y2'), g.querySelector('text').getAttribute('y'), \
               g.querySelector('text').textContent]);",
            json!([chart]),
        )
        .await;
    let ticks: Vec<(f64, String, String, String, String)> = serde_json::from_value(ticks).unwrap();
    assert!(ticks.len() >= 3, "{ticks:?}");
    for (value, y1, y2, text_y, label) in &ticks {
        assert_eq!((y1, y2), (text_y, text_y), "label {label} off its line");
        let read: f64 = label
            .replace('.', "")
            .replace(',', ".")
            .replace('−', "-")
            .parse()
            .unwrap();
        assert!((read - value).abs() < 1e-9, "label {label} for {value}");
    }
    let step = ticks[1].0 - ticks[0].0;
    let mag = 10f64.powf(step.log10().floor());
    assert!(
        [1.0, 2.0, 5.0]
            .iter()
            .any(|f| ((step / mag) - f).abs() < 1e-6),
        "step {step}"
    );
    for w in ticks.windows(2) {
        assert!(((w[1].0 - w[0].0) - step).abs() < step * 1e-6, "{ticks:?}");
    }
    let (lo, hi) = (ticks[0].0, ticks.last().unwrap().0);
    let values: Vec<f64> = serde_json::from_value(
        browser
            .script(
                "return [...document.querySelectorAll(arguments[0] + ' [data-value]:not(g)')].map(e => Number(e.dataset.value));",
                json!([chart]),
            )
            .await,
    )
    .unwrap();
    assert!(
        values.iter().all(|v| *v >= lo - 1e-9 && *v <= hi + 1e-9),
        "{values:?} outside {lo}..{hi}"
    );
}
