//! A vendor's codec is accepted with its own partial, TTN-shaped examples (which compare on what bydata stores,
//! so the `unit: null` the codec leaves out does not matter); wrong examples are refused with every difference
//! named in one answer; an identical upload is the same version; `POST /api/v1/codecs/test` runs a script or a
//! stored codec on given bytes and answers what bydata would store, saving nothing.
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata};
use serde_json::{Value, json};

/// A vendor's codec and its own examples, from TTN's device repository (see the fixture's header).
const DL_MBX: &str = include_str!("fixtures/codecs/decentlab-dl-mbx.js");
const DL_MBX_EXAMPLES: &str = include_str!("fixtures/codecs/decentlab-dl-mbx-examples.json");
/// DL-MBX example 1: device 303, 1234 mm from 1 valid sample, 2.993 V.
const DL_MBX_HEX: &str = "02012f000304d200010bb1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_codec_is_accepted_with_its_own_examples_and_wrong_examples_are_all_named() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let examples: Value = serde_json::from_str(DL_MBX_EXAMPLES).unwrap();

    // Two wrong values in one example, an unknown key in another: every problem is named in one answer.
    let mut wrong = examples.clone();
    wrong[0]["output"]["data"]["distance"]["value"] = json!(1235);
    wrong[0]["output"]["data"]["battery_voltage"]["value"] = json!(3.1);
    let (code, body) = b.upload_codec("dl-mbx", DL_MBX, wrong).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("codec_rejected")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    for part in [
        "2 problems",
        "example 1 (\"Example 1\"), data.battery_voltage.value: expected 3.1, got 2.993",
        "example 1 (\"Example 1\"), data.distance.value: expected 1235, got 1234",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let mut unknown = examples.clone();
    unknown[1]["comment"] = json!("kept but never checked");
    let (code, body) = b.upload_codec("dl-mbx", DL_MBX, unknown).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{body}"
    );
    assert_eq!(
        body["error"]["problems"][0]["field"], "examples[1].comment",
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "examples[1].comment: unknown key; an example has: description, input, output"
        ),
        "{message}"
    );

    // A key the codec sets to undefined is absent, and the answer says why.
    let undefined = "function decodeUplink(i) { return {data: {level: i.bytes[0] ? i.bytes[0] : undefined, \
                     vdd: 3}}; }";
    let ts013 = json!([
        {"fport": 1, "bytes_hex": "00", "expected": {"data": {"level": 0, "vdd": 3}, "errors": [], "warnings": []}},
    ]);
    let (code, body) = b.upload_codec("level", undefined, ts013).await;
    assert_eq!(code, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "data.level: expected 0, but the key is absent: the codec set level to undefined, and \
                          JavaScript's undefined is dropped by JSON"
        ),
        "{message}"
    );

    // The vendor's own examples pass as they are (TTN's shape, `unit: null` where the codec leaves it out).
    let (code, body) = b.upload_codec("dl-mbx", DL_MBX, examples.clone()).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["codec"], "js:dl-mbx@1", "{body}");
    // Stored in bydata's shape, with only what is checked.
    assert_eq!(body["examples"][1]["fport"], 1, "{body}");
    assert_eq!(body["examples"][1]["bytes_hex"], "02012f00020bb1", "{body}");
    assert_eq!(body["examples"][1]["description"], "Example 2", "{body}");
    assert_eq!(body["examples"][1]["expected"]["device_id"], 303, "{body}");

    // The same upload again is the same version: 200, nothing new.
    let (code, again) = b.upload_codec("dl-mbx", DL_MBX, examples.clone()).await;
    assert_eq!((code, again["version"].as_u64()), (200, Some(1)), "{again}");
    assert_eq!(again["created_at"], body["created_at"], "{again}");
    let (_, list) = b.get("/api/v1/codecs", ADMIN).await;
    assert_eq!(list["codecs"].as_array().unwrap().len(), 1, "{list}");

    // A device following it stores the vendor's numbers.
    let mut dev = b.codec_device("level-1", "js:dl-mbx").await;
    let payload: Vec<u8> = (0..DL_MBX_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&DL_MBX_HEX[i..i + 2], 16).unwrap())
        .collect();
    dev.publish_acked("devices/level-1/up", payload)
        .await
        .unwrap();
    b.wait_status("level-1", "decoded", |s| s["decoded"] == 1)
        .await;
    assert_eq!(b.latest("level-1", "distance_value").await, Some(1234.0));
    assert_eq!(
        b.latest("level-1", "battery_voltage_value").await,
        Some(2.993)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codec_test_runs_a_script_on_given_bytes_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let examples: Value = serde_json::from_str(DL_MBX_EXAMPLES).unwrap();
    let (code, body) = b.upload_codec("dl-mbx", DL_MBX, examples).await;
    assert_eq!(code, 201, "{body}");
    let b = &b;
    let test = |body: Value| async move { b.post("/api/v1/codecs/test", ADMIN, &body).await };

    // A stored codec, by name: its output and what bydata would store.
    let (code, t) = test(json!({"codec": "js:dl-mbx", "bytes_hex": DL_MBX_HEX, "recv_time": "2026-05-01T12:00:00+02:00"})).await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(
        (t["codec"].as_str(), t["ok"].as_bool()),
        (Some("js:dl-mbx@1"), Some(true)),
        "{t}"
    );
    assert_eq!(t["recv_time"], "2026-05-01T10:00:00Z", "{t}");
    assert_eq!(
        t["data"]["distance"],
        json!({"displayName": "Distance", "unit": "mm", "value": 1234}),
        "{t}"
    );
    let reading = |name: &str| {
        t["readings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["measurement"] == name)
            .cloned()
    };
    assert_eq!(reading("distance_value").unwrap()["value"], 1234.0, "{t}");
    assert_eq!(
        reading("battery_voltage_value").unwrap()["value"],
        2.993,
        "{t}"
    );
    assert_eq!(t["state"]["distance_displayName"], "Distance", "{t}");
    assert_eq!(t["errors"], json!([]), "{t}");

    // A script from the form, on FPort 100, bytes as base64.
    let script = "function decodeUplink(i) { if (i.fPort !== 100) return {errors: ['not a meter frame']}; \
                  return {data: {volume_m3: (i.bytes[0] << 8 | i.bytes[1]) / 1000, unit: undefined}}; }";
    let (code, t) = test(json!({"script": script, "fport": 100, "bytes_base64": "MDk="})).await;
    assert_eq!((code, t["ok"].as_bool()), (200, Some(true)), "{t}");
    assert_eq!(t["bytes_hex"], "3039", "{t}");
    assert_eq!(t["readings"][0]["value"], 12.345, "{t}");
    assert_eq!(t["data"], json!({"volume_m3": 12.345}), "{t}");
    // The codec's failures are answers, not request errors.
    let (code, t) = test(json!({"script": script, "fport": 1, "bytes_hex": "3039"})).await;
    assert_eq!((code, t["ok"].as_bool()), (200, Some(false)), "{t}");
    assert_eq!(t["errors"], json!(["not a meter frame"]), "{t}");
    let (code, t) =
        test(json!({"script": "function decodeUplink(i) { while (true) {} }", "bytes_hex": ""}))
            .await;
    assert_eq!((code, t["ok"].as_bool()), (200, Some(false)), "{t}");
    assert!(t["errors"][0].as_str().unwrap().contains("limit"), "{t}");

    // A request that cannot be run says every problem; an unknown codec is 404.
    let (code, body) = test(json!({"bytes_hex": "zz", "recv_time": "yesterday"})).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("3 problems: bytes_hex: not hex"),
        "{message}"
    );
    assert!(
        message.contains("recv_time: must be an RFC 3339 time")
            && message.contains("script: give the script"),
        "{message}"
    );
    let (code, body) = test(json!({"codec": "js:nope@3", "bytes_hex": ""})).await;
    assert_eq!(code, 404, "{body}");
    // The path still shows a codec named `test` (there is none here).
    let (code, body) = b.get("/api/v1/codecs/test", ADMIN).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    // Nothing was saved: still one codec version, and no device or value came of it.
    let (_, list) = b.get("/api/v1/codecs", ADMIN).await;
    assert_eq!(list["codecs"].as_array().unwrap().len(), 1, "{list}");
    let (_, devices) = b.get("/api/v1/devices", ADMIN).await;
    assert_eq!(devices["devices"], json!([]), "{devices}");
}
