//! Devices pushing uplinks over HTTP (`POST /api/v1/devices/{id}/up`) to the real binary: with HTTP Basic (the
//! device's MQTT password) and with device keys, JSON, SenML and bytes with an FPort through a JavaScript
//! codec; every refusal answered in words and counted on the device's status and in `/metrics`; what was
//! answered 202 survives `kill -9`; a full disk answers 503 with `Retry-After`.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly
mod common;

use common::{ADMIN, Bydata, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BASE_SECS: u64 = 1_763_600_000; // 2025-11-20: every pushed message carries its own time

/// A push as a device sends it: `auth` sets its credentials, `content_type` and `body` the message.
async fn push(
    b: &Bydata,
    path: &str,
    auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let request = b
        .client
        .post(b.url(path))
        .header("content-type", content_type)
        .body(body);
    let r = auth(request).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn basic<'a>(
    id: &'a str,
    password: &'a str,
) -> impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder + 'a {
    move |r| r.basic_auth(id, Some(password))
}

fn bearer(key: &str) -> impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder + '_ {
    move |r| r.bearer_auth(key)
}

async fn latest_is(b: &Bydata, device: &str, measurement: &str, want: f64) {
    eventually(
        Duration::from_secs(20),
        &format!("{device}'s latest {measurement} to be {want}"),
        || async { (b.latest(device, measurement).await == Some(want)).then_some(()) },
    )
    .await;
}

async fn last_error(b: &Bydata, device: &str, contains: &str) -> Value {
    b.wait_status(
        device,
        &format!("{device}'s last error to say {contains:?}"),
        |s| {
            s["last_error"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains(contains))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_push_with_their_own_credentials_and_every_refusal_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let password = b.onboard("door-1", json!({})).await;
    let up = "/api/v1/devices/door-1/up";

    // HTTP Basic with the MQTT password: flat JSON and SenML, each stored.
    let (code, body, _) = push(
        &b,
        up,
        basic("door-1", &password),
        "application/json",
        r#"{"temperature": 21.5}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["device"], "door-1");
    assert!(body["position"].is_u64(), "{body}");
    latest_is(&b, "door-1", "temperature", 21.5).await;
    let senml = r#"[{"bn": "door-1/", "n": "co2", "u": "ppm", "v": 640}]"#;
    let (code, body, _) = push(
        &b,
        up,
        basic("door-1", &password),
        "application/senml+json",
        senml,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    latest_is(&b, "door-1", "co2", 640.0).await;

    // A device key, made by an editor (here the admin), shown once; as a bearer and in X-Device-Key.
    let (code, key) = b
        .post(
            "/api/v1/devices/door-1/keys",
            ADMIN,
            &json!({"name": "gateway script"}),
        )
        .await;
    assert_eq!(code, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("bdk_"), "{key}");
    let (code, body, _) = push(
        &b,
        up,
        bearer(&secret),
        "application/json",
        r#"{"humidity": 40}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let (code, body, _) = push(
        &b,
        up,
        |r| r.header("x-device-key", &secret),
        "application/json",
        r#"{"humidity": 41}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    latest_is(&b, "door-1", "humidity", 41.0).await;
    let (code, list) = b.get("/api/v1/devices/door-1/keys", ADMIN).await;
    assert_eq!(code, 200);
    assert_eq!(list["keys"][0]["state"], "active", "{list}");
    assert!(
        !list.to_string().contains(&secret),
        "the list never shows the key"
    );
    let (code, _) = b
        .delete(
            &format!(
                "/api/v1/devices/door-1/keys/{}",
                key["id"].as_str().unwrap()
            ),
            ADMIN,
        )
        .await;
    assert_eq!(code, 204);
    let (code, body, _) = push(&b, up, bearer(&secret), "application/json", "{}").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.to_string().contains("revoked"), "{body}");
    let (_, audit) = b
        .get("/api/v1/audit?action=device.key.&limit=10", ADMIN)
        .await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 2, "{audit}");
    assert!(!audit.to_string().contains(&secret), "{audit}");

    // A wrong password and an unknown device: the same 401, asking for Basic, without saying which.
    let (code, wrong, headers) =
        push(&b, up, basic("door-1", "guess"), "application/json", "{}").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{wrong}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Basic")
    );
    let (code, unknown, _) = push(
        &b,
        "/api/v1/devices/ghost/up",
        basic("ghost", "guess"),
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong["error"]["message"], unknown["error"]["message"],
        "unknown id and wrong password read alike"
    );
    b.wait_status("door-1", "the wrong password counted", |s| {
        s["unverified_attempts"]["wrong_password"].as_u64() >= Some(1)
    })
    .await;

    // Another device's id with door-1's credentials: 403, and door-1's status says so.
    let door2_password = b.onboard("door-2", json!({})).await;
    let (code, body, _) = push(
        &b,
        "/api/v1/devices/door-2/up",
        basic("door-1", &password),
        "application/json",
        r#"{"temperature": 99}"#,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/devices/door-1/up"),
        "{body}"
    );
    last_error(&b, "door-1", "other_device").await;
    assert_eq!(b.latest("door-2", "temperature").await, None);

    // An API key, even the admin's, is not the device.
    let (code, body, _) = push(
        &b,
        up,
        bearer(ADMIN),
        "application/json",
        r#"{"temperature": 1}"#,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.to_string().contains("device's own credentials"),
        "{body}"
    );

    // Over the broker's max_message_bytes (64 KiB by default): 413, on the status.
    let big = format!(r#"{{"note": "{}"}}"#, "x".repeat(70 * 1024));
    let (code, body, _) = push(&b, up, basic("door-1", &password), "application/json", big).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    last_error(&b, "door-1", "too_large").await;

    // An FPort outside 1-223 and a content type that is neither JSON nor bytes.
    let (code, body, _) = push(
        &b,
        &format!("{up}?fport=224"),
        basic("door-1", &password),
        "application/octet-stream",
        vec![1u8],
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_fport");
    let (code, body, _) = push(&b, up, basic("door-1", &password), "text/plain", "21").await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let status = last_error(&b, "door-1", "unsupported_media_type").await;
    assert!(status["rejected"].as_u64() >= Some(4), "{status}");

    // Bytes with an FPort, decoded by the device's JavaScript codec.
    let script = "function decodeUplink(input) { \
                  return {data: {level: input.bytes[0], port: input.fPort}}; }";
    let (code, body) = b
        .upload_codec(
            "tank",
            script,
            json!([{"fport": 7, "bytes_hex": "2a", "expected": {"level": 42, "port": 7}}]),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, created) = b
        .post(
            "/api/v1/devices",
            ADMIN,
            &json!({"id": "tank-1", "name": "tank", "transport": "mqtt", "domain": "building",
                    "codec": "js:tank"}),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let tank_password = created["mqtt"]["password"].as_str().unwrap();
    let (code, body, _) = push(
        &b,
        "/api/v1/devices/tank-1/up?fport=7",
        basic("tank-1", tank_password),
        "application/octet-stream",
        vec![42u8],
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["fport"].as_u64(), body["body"].as_str()),
        (Some(7), Some("bytes"))
    );
    latest_is(&b, "tank-1", "level", 42.0).await;
    latest_is(&b, "tank-1", "port", 7.0).await;
    // Something that does not decode is accepted (it is in the journal) and explained on the status, as the
    // pipeline explains MQTT messages.
    let (code, _, _) = push(
        &b,
        "/api/v1/devices/door-2/up",
        basic("door-2", &door2_password),
        "application/json",
        "not json",
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let status = b
        .wait_status("door-2", "the undecodable push explained", |s| {
            s["last_error"].is_object()
        })
        .await;
    assert_eq!(
        (status["received"].as_u64(), status["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{status}"
    );

    let metrics = b.client.get(b.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for line in [
        "bydata_http_push_requests_total{outcome=\"accepted\"} 6",
        "bydata_http_push_requests_total{outcome=\"other_device\"} 1",
        "bydata_http_push_requests_total{outcome=\"not_a_device\"} 1",
        "bydata_http_push_requests_total{outcome=\"too_large\"} 1",
        "bydata_http_push_requests_total{outcome=\"unsupported_media_type\"} 1",
        "bydata_http_push_uplinks_journaled_total 6",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

async fn stored_seqs(b: &Bydata, device: &str) -> HashSet<u64> {
    let q = format!(
        "/api/v1/query?measurement=seq&device={device}&from=2025-11-01T00:00:00Z&to=2026-01-01T00:00:00Z"
    );
    let (code, body) = b.get(&q, ADMIN).await;
    assert_eq!(code, 200, "{body}");
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap().iter())
        .map(|p| p["value"].as_f64().unwrap() as u64)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_answered_202_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Bydata::start(&data).await;
    const DEVICES: usize = 4;
    const KILL_AFTER: usize = 400;
    let mut passwords = Vec::new();
    for d in 0..DEVICES {
        passwords.push(b.onboard(&format!("pusher-{d}"), json!({})).await);
    }
    // Each device pushes as fast as it is answered, noting what got a 202, until the connection breaks.
    let acked: Arc<Mutex<Vec<HashSet<u64>>>> = Arc::new(Mutex::new(vec![HashSet::new(); DEVICES]));
    let (enough_tx, mut enough) = tokio::sync::mpsc::channel::<()>(DEVICES);
    let mut pushers = Vec::new();
    for (d, password) in passwords.iter().enumerate() {
        let (client, url, password) = (
            b.client.clone(),
            b.url(&format!("/api/v1/devices/pusher-{d}/up")),
            password.clone(),
        );
        let (acked, enough_tx) = (acked.clone(), enough_tx.clone());
        pushers.push(tokio::spawn(async move {
            for seq in 0u64.. {
                let body = format!(r#"{{"seq": {seq}, "time": {}}}"#, BASE_SECS + seq);
                let sent = client
                    .post(&url)
                    .basic_auth(format!("pusher-{d}"), Some(&password))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::ACCEPTED => {
                        let total: usize = {
                            let mut acked = acked.lock().unwrap();
                            acked[d].insert(seq);
                            acked.iter().map(HashSet::len).sum()
                        };
                        if total == KILL_AFTER {
                            let _ = enough_tx.try_send(());
                        }
                    }
                    Ok(r) => panic!("pusher-{d}: {} {}", r.status(), r.text().await.unwrap()),
                    Err(_) => return seq,
                }
            }
            unreachable!()
        }));
    }
    enough.recv().await.unwrap();
    b.kill9();
    for p in pushers {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.iter().map(HashSet::len).sum::<usize>() >= KILL_AFTER);

    let b = Bydata::start(&data).await;
    for (d, acked) in acked.iter().enumerate() {
        let device = format!("pusher-{d}");
        let stored = eventually(
            Duration::from_secs(30),
            &format!("every push of {device} answered 202 stored after the restart"),
            || async {
                let stored = stored_seqs(&b, &device).await;
                acked.is_subset(&stored).then_some(stored)
            },
        )
        .await;
        assert!(stored.len() >= acked.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_with_retry_after_and_says_so_on_the_status() {
    let dir = tempfile::tempdir().unwrap();
    // A reserve no disk has: the disk watcher closes the intake gate at its first look.
    let b = Bydata::start_with_config(
        dir.path(),
        "[store]\nmin_free_bytes = 1000000000000000000\n[supervise]\ncheck_ms = 50\n",
    )
    .await;
    let password = b.onboard("door-9", json!({})).await;
    let (body, headers) = eventually(
        Duration::from_secs(20),
        "the push to be refused",
        || async {
            let (code, body, headers) = push(
                &b,
                "/api/v1/devices/door-9/up",
                basic("door-9", &password),
                "application/json",
                r#"{"temperature": 20}"#,
            )
            .await;
            (code == StatusCode::SERVICE_UNAVAILABLE).then_some((body, headers))
        },
    )
    .await;
    assert_eq!(body["error"]["code"], "not_accepting", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{body}"
    );
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    last_error(&b, "door-9", "disk full").await;
    assert_eq!(b.latest("door-9", "temperature").await, None);
}
