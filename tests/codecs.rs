//! JavaScript codecs end to end: uploaded with example vectors through the API (refused when an example
//! fails), attached to a device, run on its uplinks from a real MQTT client; a codec that loops forever,
//! allocates without bound or throws is stopped within its limits, the device's status says why, and the
//! platform carries on. Every decode is traced to the codec version that produced it. (Examples and the codec
//! test: `codec_examples.rs`.)
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata};
use serde_json::{Value, json};

const CLIMATE: &str = include_str!("../ingest/src/codec/script/testdata/climate.js");
/// 22.9 °C, 45 %RH, 300 lx, 450 ppm, 3 V.
const CLIMATE_BYTES: [u8; 14] = [
    0x01, 0x00, 0xe5, 0x02, 0x2d, 0x04, 0x01, 0x2c, 0x06, 0x01, 0xc2, 0x07, 0x0b, 0xb8,
];

fn climate_example() -> Value {
    json!({"fport": 1, "bytes_hex": "0100e5022d04012c0601c2070bb8",
           "expected": {"temperature": 22.9, "humidity": 45, "light": 300, "co2": 450, "vdd": 3}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_codec_decodes_uplinks_and_each_decode_names_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;

    // An example that does not hold refuses the upload, saying which and why.
    let mut wrong = climate_example();
    wrong["expected"]["temperature"] = json!(23.0);
    let (code, body) = b.upload_codec("climate", CLIMATE, json!([wrong])).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "codec_rejected", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("temperature") && message.contains("22.9"),
        "{message}"
    );
    let (code, body) = b
        .upload_codec(
            "broken",
            "function decodeUplink( {",
            json!([climate_example()]),
        )
        .await;
    assert_eq!(code, 400, "{body}");

    let (code, body) = b
        .upload_codec("climate", CLIMATE, json!([climate_example()]))
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["codec"], "js:climate@1", "{body}");
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);

    // A device may only name a codec that exists.
    let (code, body) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "x", "name": "x", "transport": "mqtt", "domain": "building", "codec": "js:nope"}),
        )
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("unknown_codec")),
        "{body}"
    );

    let mut dev = b.codec_device("room-js", "js:climate").await;
    dev.publish_acked("devices/room-js/up", CLIMATE_BYTES.to_vec())
        .await
        .unwrap();
    let status = b
        .wait_status("room-js", "decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(status["decoded_by"][0]["codec"], "js:climate@1", "{status}");
    assert_eq!(b.latest("room-js", "temperature").await, Some(22.9));
    assert_eq!(b.latest("room-js", "vdd").await, Some(3.0));

    // A low battery is a warning on the status, and the values are stored.
    let mut low = CLIMATE_BYTES;
    low[12..14].copy_from_slice(&2400u16.to_be_bytes());
    dev.publish_acked("devices/room-js/up", low.to_vec())
        .await
        .unwrap();
    let status = b
        .wait_status("room-js", "warned", |s| s["decoded"] == 2)
        .await;
    let warning = status["last_warning"]["reason"].as_str().unwrap();
    assert!(warning.contains("battery low"), "{status}");

    // Version 2 takes over new uplinks; the runs say which version decoded what.
    let v2 = CLIMATE.replace("const LOW_BATTERY_V = 2.5;", "const LOW_BATTERY_V = 2.0;");
    let (code, body) = b
        .upload_codec("climate", &v2, json!([climate_example()]))
        .await;
    assert_eq!((code, body["version"].as_u64()), (201, Some(2)), "{body}");
    // The pipeline looks up a codec's newest version at most once a second: send until v2 decodes one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let runs = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no decode by version 2"
        );
        let sent = b.status("room-js").await["received"].as_u64().unwrap() + 1;
        dev.publish_acked("devices/room-js/up", CLIMATE_BYTES.to_vec())
            .await
            .unwrap();
        let s = b
            .wait_status("room-js", "decoded", |s| {
                s["received"].as_u64() >= Some(sent)
            })
            .await;
        let runs = s["decoded_by"].as_array().unwrap().clone();
        if runs.last().unwrap()["codec"] == "js:climate@2" {
            break runs;
        }
    };
    assert_eq!(runs[0]["codec"], "js:climate@1", "{runs:?}");
    assert!(runs[0]["uplinks"].as_u64() >= Some(2), "{runs:?}");
    assert_eq!(runs[1]["uplinks"], 1, "{runs:?}");
    let (code, list) = b.get("/api/v1/codecs", ADMIN).await;
    assert_eq!(code, 200);
    assert_eq!(list["codecs"].as_array().unwrap().len(), 2, "{list}");
    let (code, v1) = b.get("/api/v1/codecs/climate/1", ADMIN).await;
    assert_eq!((code, v1["script"].as_str()), (200, Some(CLIMATE)));
}

/// Behaves on ordinary bytes (so its examples pass) and misbehaves on a trigger byte.
const HOSTILE: &str = r#"
function decodeUplink(input) {
  const b = input.bytes;
  if (b[0] === 0xff) { while (true) {} }
  if (b[0] === 0xfe) { const hoard = []; while (true) { hoard.push(new Array(100000).fill(b.length)); } }
  if (b[0] === 0xfd) { throw new Error("sensor sent garbage"); }
  if (b[0] === 0xfc) { function deeper(n) { return deeper(n + 1) + 1; } return { data: { x: deeper(0) } }; }
  return { data: { level: b[0] } };
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codec_that_loops_hoards_or_throws_is_stopped_and_the_platform_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let example = json!({"fport": 1, "bytes_hex": "07", "expected": {"level": 7}});
    let (code, body) = b.upload_codec("hostile", HOSTILE, json!([example])).await;
    assert_eq!(code, 201, "{body}");
    let mut dev = b.codec_device("victim", "js:hostile").await;
    let mut bystander = b.codec_device("bystander", "auto").await;

    let cases: [(u8, &str); 4] = [
        (0xff, "time_limit"),
        (0xfe, "memory_limit"),
        (0xfd, "sensor sent garbage"),
        (0xfc, "stack"),
    ];
    for (n, (trigger, why)) in cases.into_iter().enumerate() {
        let started = std::time::Instant::now();
        dev.publish_acked("devices/victim/up", vec![trigger])
            .await
            .unwrap();
        let status = b
            .wait_status("victim", why, |s| s["rejected"] == n as u64 + 1)
            .await;
        let reason = status["last_error"]["reason"]
            .as_str()
            .unwrap()
            .to_lowercase();
        assert!(
            reason.contains(&why.replace('_', " ")) || reason.contains(why),
            "{trigger:#x}: {reason}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{trigger:#x} stopped in {:?}",
            started.elapsed()
        );
        // The codec recovers, and other devices were never held up.
        dev.publish_acked("devices/victim/up", vec![n as u8])
            .await
            .unwrap();
        b.wait_status("victim", "decoded again", |s| s["decoded"] == n as u64 + 1)
            .await;
        bystander
            .publish_acked("devices/bystander/up", format!("{{\"co2\": {}}}", 400 + n))
            .await
            .unwrap();
        b.wait_status("bystander", "bystander decoded", |s| {
            s["decoded"] == n as u64 + 1
        })
        .await;
    }
    assert_eq!(b.latest("victim", "level").await, Some(3.0));

    // Three limit hits in a row suspend the codec: its next uplinks are refused at once, saying so.
    for _ in 0..3 {
        dev.publish_acked("devices/victim/up", vec![0xff])
            .await
            .unwrap();
    }
    dev.publish_acked("devices/victim/up", vec![1])
        .await
        .unwrap();
    let status = b
        .wait_status("victim", "suspended", |s| s["rejected"] == 8)
        .await;
    let reason = status["last_error"]["reason"].as_str().unwrap();
    assert!(reason.contains("suspended"), "{reason}");
    let (code, _) = b.get("/health", ADMIN).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redecoding_a_range_replaces_what_the_old_version_produced_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let v1 = "function decodeUplink(i) { return { data: { temp: i.bytes[0] } }; }";
    let v2 = "function decodeUplink(i) { return { data: { temperature: i.bytes[0] / 2 } }; }";
    let ex = |expected: Value| json!([{"fport": 1, "bytes_hex": "14", "expected": expected}]);
    let (code, body) = b.upload_codec("scale", v1, ex(json!({"temp": 20}))).await;
    assert_eq!(code, 201, "{body}");
    let mut dev = b.codec_device("meter-js", "js:scale").await;
    let mut other = b.codec_device("other-js", "js:scale").await;
    for v in [10u8, 20] {
        dev.publish_acked("devices/meter-js/up", vec![v])
            .await
            .unwrap();
    }
    other
        .publish_acked("devices/other-js/up", vec![30])
        .await
        .unwrap();
    b.wait_status("meter-js", "two decoded", |s| s["decoded"] == 2)
        .await;
    b.wait_status("other-js", "one decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(b.latest("meter-js", "temp").await, Some(20.0));

    let (code, body) = b
        .upload_codec("scale", v2, ex(json!({"temperature": 10})))
        .await;
    assert_eq!(code, 201, "{body}");
    let from = "2000-01-01T00:00:00Z";
    let to = "2100-01-01T00:00:00Z";
    // A re-decode covers uplinks received at least 2 s ago: ask until both are in.
    let report = common::eventually(
        std::time::Duration::from_secs(20),
        "both uplinks re-decoded",
        || async {
            let (code, report) = b
                .post(
                    "/api/v1/devices/meter-js/redecode",
                    ADMIN,
                    &json!({"from": from, "to": to}),
                )
                .await;
            assert_eq!(code, 200, "{report}");
            (report["uplinks"] == 2).then_some(report)
        },
    )
    .await;
    assert_eq!(report["codec"], "js:scale@2", "{report}");
    assert_eq!(report["values_written"], 2, "{report}");

    // The old version's values are gone, the new ones are there, the other device is untouched.
    assert_eq!(b.latest("meter-js", "temp").await, None);
    assert_eq!(b.latest("meter-js", "temperature").await, Some(10.0));
    assert_eq!(b.latest("other-js", "temp").await, Some(30.0));
    let status = b.status("meter-js").await;
    let runs = status["decoded_by"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{status}");
    assert_eq!(runs[0]["codec"], "js:scale@2", "{status}");

    let (code, body) = b
        .post(
            "/api/v1/devices/meter-js/redecode",
            ADMIN,
            &json!({"from": to, "to": from}),
        )
        .await;
    assert_eq!(code, 400, "{body}");

    // A version that fails on some stored uplinks changes nothing, unless forced.
    let v3 = "function decodeUplink(i) { if (i.bytes[0] === 20) throw new Error('no'); return { data: { t3: 1 } }; }";
    let v3_examples = json!([{"fport": 1, "bytes_hex": "01", "expected": {"t3": 1}}]);
    let (code, body) = b.upload_codec("scale", v3, v3_examples).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) =
        common::eventually(std::time::Duration::from_secs(10), "v3 in use", || async {
            let (code, body) = b
                .post(
                    "/api/v1/devices/meter-js/redecode",
                    ADMIN,
                    &json!({"from": from, "to": to}),
                )
                .await;
            (body["error"]["message"].as_str()?.contains("js:scale@3")).then_some((code, body))
        })
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 of 2 uplinks"),
        "{body}"
    );
    assert_eq!(
        b.latest("meter-js", "temperature").await,
        Some(10.0),
        "nothing changed"
    );
}
