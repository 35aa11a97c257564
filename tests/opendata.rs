//! Open data (issue 6) against the real binary: people counters send over MQTT, a personal-data dataset is
//! published through the privacy gate, and its files, versions, checksums and catalogs are checked, including a
//! scan of everything public for any registered device identifier.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../opendata/tests/fake_ckan/mod.rs"]
mod fake_ckan;

use common::{ADMIN, Bydata, Mqtt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

const PUBLIC_URL: &str = "https://data.example.dk";
/// Distinctive identifiers, so a scan of the published bytes cannot match by accident.
const COUNTERS: [&str; 2] = ["cnt-dokk1-qx7f", "cnt-dokk1-zw3k"];
/// The counters' radio serials, kept as a `label` tag as migrated fleets often do; the first is the DevEUI of a
/// registered LoRaWAN device written the way a vendor's sticker shows it.
const SERIALS: [&str; 2] = ["A8-40-41-00-01-81-C0-DE", "a84041000181f00d"];
const LORA_DEV_EUI: &str = "a84041000181c0de";
const LORA_DEV_ADDR: &str = "26011bcd";
const GATEWAY_EUI: &str = "b827ebfffe61c0fe";

/// A fixed public-id secret and a fixed public URL: published files and URLs are then the same on every run,
/// which the snapshots need.
fn prepare(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("opendata")).unwrap();
    std::fs::write(dir.join("opendata/public-id.key"), [7u8; 32]).unwrap();
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "[opendata]\npublic_url = \"{PUBLIC_URL}\"\npublisher_name = \"Aarhus Kommune\"\npublisher_uri = \"https://www.aarhus.dk\"\nschedule_secs = 3600\n"
        ),
    )
    .unwrap();
    config.display().to_string()
}

async fn start(dir: &Path, config: &str) -> Bydata {
    Bydata::start_with(dir, &["--config", config]).await
}

/// Hourly people counts on 2 and 3 March 2026 (Copenhagen is UTC+1 then): 0, 1, 2, … 47 for the first
/// counter, twice that for the second; SenML with base time, so the readings keep their own times.
async fn send_counts(b: &Bydata, id: &str, password: &str, factor: f64) {
    let mut mqtt = Mqtt::device(b.mqtt, id, password).await;
    let base = 1_772_406_000_i64; // 2026-03-02T00:00:00+01:00
    let pack: Vec<Value> = (0..48)
        .map(|h| {
            let mut r =
                json!({"n": "people", "u": "count", "v": f64::from(h) * factor, "t": h * 3600});
            if h == 0 {
                r["bt"] = json!(base);
            }
            r
        })
        .collect();
    mqtt.publish_acked(
        &format!("devices/{id}/up"),
        serde_json::to_vec(&pack).unwrap(),
    )
    .await
    .expect("counts acknowledged");
}

fn people_dataset(id: &str, extra: Value) -> Value {
    let mut d = json!({
        "id": id,
        "title": {"da": "Personer ved Dokk1", "en": "People at Dokk1"},
        "description": {"da": "Antal personer i timen ved Dokk1.", "en": "People per hour at Dokk1."},
        "keywords": ["dokk1", "personer"],
        "themes": ["SOCI", "TRAN"],
        "licence": "CC-BY-4.0",
        "update_frequency": "DAILY",
        "publisher": {"name": "Aarhus Kommune", "uri": "https://www.aarhus.dk"},
        "contact_point": {"name": "Open data team", "email": "opendata@example.dk"},
        "spatial": "https://api.dataforsyningen.dk/kommuner/0751",
        "temporal": {"from": "2026-03-01T00:00:00+01:00", "to": "2026-04-01T00:00:00+02:00"},
        "selection": {"measurement": "people", "tags": {"zone": "dokk1"}, "publish_tags": ["zone"]},
        "aggregation": {"every": "1h", "fn": "sum"},
        "personal_data": true,
        "privacy": {"location_grid_m": 250, "suppress_counts_below": 5, "count_measurements": ["people"]},
    });
    if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            d.insert(k.clone(), v.clone());
        }
    }
    d
}

/// Publishes now (`{}`: every due period, `{"period": …}`: that one).
async fn publish(b: &Bydata, id: &str, body: Value) -> (u16, Value) {
    b.post(&format!("/api/v1/datasets/{id}/publish"), ADMIN, &body)
        .await
}

async fn fetch(b: &Bydata, path: &str) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    let r = reqwest::get(b.url(path)).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.bytes().await.unwrap().to_vec(), headers)
}

/// The path part of a published URL (they carry the configured public URL, not the test's port).
fn local(url: &str) -> &str {
    url.strip_prefix(PUBLIC_URL).expect("a public URL")
}

fn snapshot(name: &str, bytes: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/opendata")
        .join(name);
    if std::env::var("BYDATA_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (BYDATA_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    assert!(
        want == bytes,
        "{name} differs from its snapshot {} (BYDATA_UPDATE_SNAPSHOTS=1 rewrites it after review):\n--- got ---\n{}",
        path.display(),
        String::from_utf8_lossy(bytes)
    );
}

fn assert_no_identifier(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    for id in COUNTERS.iter().chain(&SERIALS).chain(&[
        LORA_DEV_EUI,
        LORA_DEV_ADDR,
        GATEWAY_EUI,
        "lora-meter-9q",
        "a8404100",
    ]) {
        assert!(
            !text.contains(&id.to_lowercase()),
            "{what} contains the registered identifier {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_people_counting_dataset_is_published_through_the_privacy_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config = prepare(&dir);
    let mut b = start(&dir, &config).await;

    // Two people counters (MQTT, with their radio serials as tags, as migrated fleets often have), a LoRaWAN
    // device and a gateway: every identifier the published files must never contain.
    let mut passwords = Vec::new();
    for (i, id) in COUNTERS.iter().enumerate() {
        let password = b
            .onboard(id, json!({"zone": "dokk1", "label": SERIALS[i]}))
            .await;
        send_counts(&b, id, &password, (i + 1) as f64).await;
        passwords.push(password);
    }
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({
                "id": "lora-meter-9q", "name": "heat meter", "transport": "lorawan", "domain": "energy",
                "lorawan": {"activation": "abp", "dev_eui": LORA_DEV_EUI, "dev_addr": LORA_DEV_ADDR,
                    "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c", "app_s_key": "2b7e151628aed2a6abf7158809cf4f3d"},
            }),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = b
        .post(
            "/api/v1/gateways",
            ADMIN,
            &json!({"eui": GATEWAY_EUI, "name": "Dokk1 roof"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    for id in COUNTERS {
        b.wait_status(id, "48 decoded readings", |s| s["decoded"] == 1)
            .await;
    }

    // The gate refuses what would identify a person, and says why.
    for (name, extra, says) in [
        (
            "people-exact",
            json!({"privacy": {"suppress_counts_below": 5, "count_measurements": ["people"]}}),
            "location_grid_m",
        ),
        (
            "people-deveui",
            json!({"selection": {"measurement": "people", "publish_tags": ["dev_eui"]}}),
            "dev_eui",
        ),
        (
            "people-sum",
            json!({"privacy": {"location_grid_m": 250}}),
            "count_measurements",
        ),
        (
            "people-serial",
            json!({"selection": {"measurement": "people", "publish_tags": ["Serial-Number"]}}),
            "Serial-Number",
        ),
        (
            "people-weekly",
            json!({"aggregation": {"every": "1w", "fn": "sum"}}),
            "straddle",
        ),
    ] {
        let (code, body) = b
            .post("/api/v1/datasets", ADMIN, &people_dataset(name, extra))
            .await;
        assert_eq!(code, 400, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {body}");
        if name != "people-weekly" {
            assert_eq!(body["error"]["code"], "privacy_refused", "{name}");
        }
    }
    // A tag whose values are DevEUIs under another name and in another spelling is caught when the run looks
    // at what it would publish.
    let (code, body) = b
        .post(
            "/api/v1/datasets",
            ADMIN,
            &people_dataset(
                "people-serials",
                json!({"selection": {"measurement": "people", "publish_tags": ["label"]}}),
            ),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = publish(&b, "people-serials", json!({})).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "privacy_refused", "{body}");
    let (_, status) = b.get("/api/v1/datasets/people-serials", ADMIN).await;
    assert_eq!(status["publication"]["last_run"]["ok"], false, "{status}");
    assert!(
        status["publication"]["last_run"]["error"]
            .as_str()
            .unwrap()
            .contains("identifier"),
        "{status}"
    );
    let (code, _, _) = fetch(&b, "/opendata/datasets/people-serials").await;
    assert_eq!(code, 404, "a refused dataset publishes nothing");

    // The dataset that passes.
    let (code, body) = b
        .post(
            "/api/v1/datasets",
            ADMIN,
            &people_dataset("people-dokk1", json!({})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, run) = publish(&b, "people-dokk1", json!({})).await;
    assert_eq!(code, 200, "{run}");
    let periods = run["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1, "only March 2026 is covered: {run}");
    assert_eq!(periods[0]["period"], "2026-03");
    assert_eq!(periods[0]["outcome"], "new_version");
    assert_eq!(periods[0]["version"], 1);

    // Each file: served at its URL with the checksum the run reported, and free of identifiers.
    let mut first = Vec::new();
    for f in periods[0]["files"].as_array().unwrap() {
        let url = f["url"].as_str().unwrap();
        let (code, bytes, headers) = fetch(&b, local(url)).await;
        assert_eq!(code, 200, "{url}");
        let sha = hex::encode(Sha256::digest(&bytes));
        assert_eq!(f["sha256"], sha, "{url}");
        assert_eq!(headers["etag"].to_str().unwrap(), format!("\"{sha}\""));
        assert_no_identifier(url, &bytes);
        first.push((url.to_owned(), bytes));
    }
    let csv = String::from_utf8(first[0].1.clone()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,device,domain,zone,measurement,value,unit,suppressed"
    );
    // 2 counters × 743 hours: March 2026 in Copenhagen loses an hour on the 29th.
    assert_eq!(lines.len(), 1 + 2 * 743);
    // Small counts are suppressed, larger ones published; empty hours stay empty and are not "suppressed".
    // The two counters' rows of one hour, past the public id and tags.
    let hour = |time: &str| -> Vec<String> {
        let mut tails: Vec<String> = lines
            .iter()
            .filter(|l| l.starts_with(time))
            .filter_map(|l| l.split_once(",dokk1,").map(|(_, t)| t.to_owned()))
            .collect();
        tails.sort();
        tails
    };
    assert_eq!(
        hour("2026-03-02T01:00:00+01:00"),
        ["people,,count,true", "people,,count,true"],
        "counts of 1 and 2 are suppressed"
    );
    assert_eq!(
        hour("2026-03-02T05:00:00+01:00"),
        ["people,10,count,false", "people,5,count,false"],
        "counts of 5 and 10 are published"
    );
    assert_eq!(
        hour("2026-03-10T00:00:00+01:00"),
        ["people,,count,false", "people,,count,false"],
        "an hour without data is empty, not suppressed"
    );
    for l in &lines[1..] {
        let value = l.split(',').nth(5).unwrap();
        if let Ok(v) = value.parse::<f64>() {
            assert!(v >= 5.0, "a count below 5 was published: {l}");
        }
    }
    // GeoJSON: longitude first, snapped to the 250 m grid (the devices sit at 56.1572, 10.2107).
    let geo: Value = serde_json::from_slice(&first[2].1).unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    let features = geo["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    for f in features {
        let c = f["geometry"]["coordinates"].as_array().unwrap();
        let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!((lon - 10.2107).abs() < 0.01 && (lat - 56.1572).abs() < 0.01);
        assert!(
            lon != 10.2107 && lat != 56.1572,
            "the exact location was published"
        );
        assert!(
            f["properties"]["device"]
                .as_str()
                .unwrap()
                .starts_with("d-")
        );
    }
    for (url, bytes) in &first {
        snapshot(url.rsplit('/').next().unwrap(), bytes);
    }

    // Re-running the period gives the same bytes and checksums, and no new version.
    let (code, again) = publish(&b, "people-dokk1", json!({"period": "2026-03"})).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["periods"][0]["outcome"], "unchanged");
    let checksums = |run: &Value| -> Vec<(Value, Value)> {
        run["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["sha256"].clone(), f["bytes"].clone()))
            .collect()
    };
    assert_eq!(checksums(&again["periods"][0]), checksums(&periods[0]));

    // The catalogs list the dataset and its files; nothing public names a device.
    let (code, catalog, headers) = fetch(&b, "/opendata/catalog").await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "application/ld+json");
    assert_no_identifier("the catalog", &catalog);
    let catalog_text = String::from_utf8(catalog.clone()).unwrap();
    for (url, _) in &first {
        assert!(catalog_text.contains(url.as_str()), "catalog lists {url}");
    }
    let validated = common::dcat::validate_dcat(&catalog_text);
    assert!(validated.contains("\n0 violations,"), "{validated}");
    let (code, turtle, _) = fetch(&b, "/opendata/catalog?format=ttl").await;
    assert_eq!(code, 200);
    assert_no_identifier("the Turtle catalog", &turtle);
    let (code, data_json, _) = fetch(&b, "/opendata/data.json").await;
    assert_eq!(code, 200);
    assert_no_identifier("data.json", &data_json);
    // ckanext-dcat's data.json harvester asks for ?page=2, 3, … until the answer repeats: it must repeat.
    let (code, page_2, _) = fetch(&b, "/opendata/data.json?page=2").await;
    assert_eq!(code, 200);
    assert_eq!(page_2, data_json);
    let data_json: Value = serde_json::from_slice(&data_json).unwrap();
    assert!(data_json.to_string().contains("people-dokk1"));
    let (code, landing, _) = fetch(&b, "/opendata/datasets/people-dokk1").await;
    assert_eq!(code, 200);
    assert_no_identifier("the dataset page", &landing);

    // The same, as pages for people, in a real browser: the index links the dataset, whose page lists the
    // period's files with their checksums and links that download exactly those bytes.
    let profile = tempfile::tempdir().unwrap();
    let index = common::browser::browse(profile.path(), &b.url("/opendata"), &["--dump-dom"]);
    assert!(
        index.contains("href=\"opendata/datasets/people-dokk1\""),
        "{index}"
    );
    assert!(index.contains("Personer ved Dokk1"));
    assert_no_identifier("the index page", index.as_bytes());
    let page = common::browser::browse(
        profile.path(),
        &b.url("/opendata/datasets/people-dokk1"),
        &["--dump-dom"],
    );
    assert!(page.contains("id=\"period-2026-03\""), "{page}");
    assert!(page.contains("CC BY 4.0"));
    assert_no_identifier("the dataset page", page.as_bytes());
    let hrefs: Vec<&str> = page
        .split("class=\"file\" href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(hrefs.len(), 3, "{page}");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("opendata-dataset.png");
    common::browser::browse(
        profile.path(),
        &b.url("/opendata/datasets/people-dokk1"),
        &[&format!("--screenshot={}", shot.display())],
    );
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000));
    for (href, (_, bytes)) in hrefs.iter().zip(&first) {
        // Relative to the page, as the browser resolves them.
        let (code, got, _) = fetch(&b, &format!("/opendata/datasets/{href}")).await;
        assert_eq!(code, 200, "{href}");
        assert_eq!(&got, bytes, "{href}");
        assert!(page.contains(&hex::encode(Sha256::digest(bytes))));
    }

    // After a restart (same secret on disk) the same period gives the same files.
    b.terminate().await;
    let mut b = start(&dir, &config).await;
    let (code, again) = publish(&b, "people-dokk1", json!({"period": "2026-03"})).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["periods"][0]["outcome"], "unchanged", "{again}");

    // Late data changes the bytes: version 2 appears, version 1 stays as it was.
    let mut mqtt = Mqtt::device(b.mqtt, COUNTERS[0], &passwords[0]).await;
    mqtt.publish_acked(
        &format!("devices/{}/up", COUNTERS[0]),
        r#"[{"bt": 1773000000, "n": "people", "u": "count", "v": 40}]"#,
    )
    .await
    .unwrap();
    b.wait_status(COUNTERS[0], "the late reading", |s| s["decoded"] == 2)
        .await;
    let (code, late) = publish(&b, "people-dokk1", json!({"period": "2026-03"})).await;
    assert_eq!(code, 200, "{late}");
    assert_eq!(late["periods"][0]["outcome"], "new_version");
    assert_eq!(late["periods"][0]["version"], 2);
    let (_, v1, _) = fetch(
        &b,
        "/opendata/datasets/people-dokk1/2026-03/v1/people-dokk1_2026-03.csv",
    )
    .await;
    assert_eq!(v1, first[0].1, "version 1 never changes");
    let (_, current, _) = fetch(
        &b,
        "/opendata/datasets/people-dokk1/2026-03/people-dokk1_2026-03.csv",
    )
    .await;
    assert_ne!(current, first[0].1, "the current file is version 2");
    assert_eq!(
        late["periods"][0]["files"][0]["sha256"],
        hex::encode(Sha256::digest(&current))
    );

    // What a run answered is on disk: after kill -9 the same URLs serve the same bytes.
    b.kill9();
    let mut b = start(&dir, &config).await;
    for f in late["periods"][0]["files"].as_array().unwrap() {
        let (code, bytes, _) = fetch(&b, local(f["url"].as_str().unwrap())).await;
        assert_eq!(code, 200, "{f}");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), f["sha256"], "{f}");
    }
    let (_, v1_again, _) = fetch(
        &b,
        "/opendata/datasets/people-dokk1/2026-03/v1/people-dokk1_2026-03.csv",
    )
    .await;
    assert_eq!(v1_again, first[0].1);

    // A coverage that starts and ends mid-month: only the buckets wholly inside it.
    let (code, body) = b
        .post(
            "/api/v1/datasets",
            ADMIN,
            &people_dataset(
                "people-noon",
                json!({"temporal": {"from": "2026-03-02T12:00:00+01:00", "to": "2026-03-03T12:00:00+01:00"}}),
            ),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, noon) = publish(&b, "people-noon", json!({})).await;
    assert_eq!(code, 200, "{noon}");
    let (_, csv, _) = fetch(
        &b,
        local(noon["periods"][0]["files"][0]["url"].as_str().unwrap()),
    )
    .await;
    let csv = String::from_utf8(csv).unwrap();
    let times: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(times.len(), 24, "{csv}");
    assert_eq!(times.first().copied(), Some("2026-03-02T12:00:00+01:00"));
    assert_eq!(times.last().copied(), Some("2026-03-03T11:00:00+01:00"));

    // Nothing outside the dataset's temporal coverage is published, even on demand.
    let (code, body) = publish(&b, "people-dokk1", json!({"period": "2026-04"})).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("temporal coverage")
    );

    // Deleting a dataset withdraws its files; the same id defined again starts with none.
    let (code, _) = b.delete("/api/v1/datasets/people-dokk1", ADMIN).await;
    assert_eq!(code, 204);
    assert!(dir.join("opendata/datasets").exists());
    assert!(!dir.join("opendata/datasets/people-dokk1").exists());
    assert!(dir.join("opendata/public-id.key").exists());
    let (code, _, _) = fetch(
        &b,
        "/opendata/datasets/people-dokk1/2026-03/v1/people-dokk1_2026-03.csv",
    )
    .await;
    assert_eq!(code, 404);
    let (code, body) = b
        .post(
            "/api/v1/datasets",
            ADMIN,
            &people_dataset("people-dokk1", json!({})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, _, _) = fetch(&b, "/opendata/datasets/people-dokk1").await;
    assert_eq!(code, 404, "a new dataset shows no old files");
    b.terminate().await;
}

/// The scheduler publishes a due dataset by itself: the running month appears as a replaceable file with no
/// version, devices keep their exact location when the dataset is not personal data, and a dataset that asks
/// for a CKAN push on an instance without a CKAN site says so in its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_publishes_the_running_period() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config = prepare(&dir);
    std::fs::write(
        &config,
        format!("[opendata]\npublic_url = \"{PUBLIC_URL}\"\nschedule_secs = 1\n"),
    )
    .unwrap();
    let b = start(&dir, &config).await;
    let password = b.onboard("meter-hq-4x", json!({"building": "hq"})).await;
    let mut mqtt = Mqtt::device(b.mqtt, "meter-hq-4x", &password).await;
    mqtt.publish_acked("devices/meter-hq-4x/up", r#"{"energy_kwh": 1234.5}"#)
        .await
        .unwrap();
    let mut d = people_dataset("energy-hq", json!({}));
    d["title"] = json!({"da": "Energi i hovedkontoret", "en": "Energy at headquarters"});
    d["licence"] = json!("CC0-1.0");
    d["themes"] = json!(["ENER"]);
    d["selection"] = json!({"measurement": "energy_kwh", "tags": {"building": "hq"}, "publish_tags": ["building"]});
    d["aggregation"] = json!({"every": "1d", "fn": "last"});
    d["personal_data"] = json!(false);
    d["ckan"] = json!(true);
    if let Some(o) = d.as_object_mut() {
        o.remove("privacy");
        o.remove("temporal");
    }
    let (code, body) = b.post("/api/v1/datasets", ADMIN, &d).await;
    assert_eq!(code, 201, "{body}");

    let page: Value = common::eventually(
        std::time::Duration::from_secs(30),
        "the scheduler's first publication",
        || async {
            let (code, bytes, _) = fetch(&b, "/opendata/datasets/energy-hq").await;
            (code == 200).then(|| serde_json::from_slice(&bytes).unwrap())
        },
    )
    .await;
    let period = &page["periods"][0];
    assert_eq!(period["complete"], false, "{page}");
    assert!(period["current"]["version"].is_null(), "{page}");
    assert_eq!(period["versions"], json!([]));
    let files = period["current"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    let geojson = files.iter().find(|f| f["format"] == "geojson").unwrap();
    let (code, bytes, headers) = fetch(&b, local(geojson["url"].as_str().unwrap())).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "application/geo+json");
    assert_eq!(hex::encode(Sha256::digest(&bytes)), geojson["sha256"]);
    let geo: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        geo["features"][0]["geometry"]["coordinates"],
        json!([10.2107, 56.1572]),
        "not personal data: the exact location, longitude first"
    );
    assert_no_identifier("the running file", &bytes);
    assert!(!String::from_utf8_lossy(&bytes).contains("meter-hq-4x"));

    // The push follows the run: its status appears a moment after the files.
    let status = common::eventually(
        std::time::Duration::from_secs(30),
        "the CKAN status",
        || async {
            let (_, status) = b.get("/api/v1/datasets/energy-hq", ADMIN).await;
            (!status["publication"]["ckan"].is_null()).then_some(status)
        },
    )
    .await;
    assert_eq!(status["publication"]["last_run"]["ok"], true, "{status}");
    assert_eq!(status["publication"]["ckan"]["ok"], false, "{status}");
    assert!(
        status["publication"]["ckan"]["error"]
            .as_str()
            .unwrap()
            .contains("no CKAN site configured"),
        "{status}"
    );
}

/// A dataset with `"ckan": true` is pushed after its run to the configured CKAN site (a fake speaking the
/// Action API over TCP, `opendata/tests/fake_ckan`): the package and one resource per file, with the SHA-256; the
/// status says so; a run that changes nothing pushes nothing; the token is in no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_is_pushed_to_ckan() {
    let (fake, ckan_url) = fake_ckan::Fake::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config = prepare(&dir);
    std::fs::write(
        &config,
        format!(
            "[opendata]\npublic_url = \"{PUBLIC_URL}\"\nschedule_secs = 3600\n[opendata.ckan]\nurl = \"{ckan_url}\"\norganization = \"{}\"\n",
            fake_ckan::ORG
        ),
    )
    .unwrap();
    let b = Bydata::start_with_env(
        &dir,
        &["--config", &config],
        &[("BYDATA_CKAN_TOKEN", fake_ckan::TOKEN)],
    )
    .await;
    let password = b.onboard(COUNTERS[0], json!({"zone": "dokk1"})).await;
    send_counts(&b, COUNTERS[0], &password, 1.0).await;
    b.wait_status(COUNTERS[0], "the counts", |s| s["decoded"] == 1)
        .await;
    let mut d = people_dataset("people-dokk1", json!({}));
    d["ckan"] = json!(true);
    let (code, body) = b.post("/api/v1/datasets", ADMIN, &d).await;
    assert_eq!(code, 201, "{body}");
    let (code, run) = publish(&b, "people-dokk1", json!({})).await;
    assert_eq!(code, 200, "{run}");
    assert_eq!(run["ckan"]["ok"], true, "{run}");
    assert_eq!(run["ckan"]["report"]["package"], "created", "{run}");
    let package = fake
        .package("people-dokk1")
        .expect("the package was created");
    assert_eq!(package["title"], "Personer ved Dokk1");
    let resources = package["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 3, "{package}");
    for (r, f) in resources
        .iter()
        .zip(run["periods"][0]["files"].as_array().unwrap())
    {
        // The resource points at the period's stable URL; the run reports the version's.
        assert_eq!(r["url"], f["url"].as_str().unwrap().replace("/v1/", "/"));
        assert_eq!(r["hash"], f["sha256"]);
    }
    assert_no_identifier("the CKAN package", package.to_string().as_bytes());
    let (_, status) = b.get("/api/v1/datasets/people-dokk1", ADMIN).await;
    assert_eq!(status["publication"]["ckan"]["ok"], true, "{status}");

    // Nothing changed: nothing is written to CKAN.
    fake.clear_log();
    let (code, again) = publish(&b, "people-dokk1", json!({"period": "2026-03"})).await;
    assert_eq!(code, 200, "{again}");
    assert!(fake.writes().is_empty(), "{:?}", fake.actions());
    assert!(
        fake.log()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(fake_ckan::TOKEN))
    );
    assert!(
        !b.log().contains(fake_ckan::TOKEN),
        "the CKAN token was logged"
    );

    // Deleting the dataset withdraws it from CKAN too.
    let (code, _) = b.delete("/api/v1/datasets/people-dokk1", ADMIN).await;
    assert_eq!(code, 204);
    assert!(
        fake.package("people-dokk1").is_none(),
        "{:?}",
        fake.actions()
    );
    assert!(!b.log().contains(fake_ckan::TOKEN));
}
