//! Issue 12, item 3 — query answers are bounded — against the real binary: a read token asking for 200 series ×
//! 96,000 buckets is refused before any work (fast, no memory growth), a raw query over the point limit is
//! refused from the index before its points are loaded, and an aggregate cut by `from`/`to` counts only the
//! points inside and says its bucket is partial.
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn write(b: &Bydata, lines: String) {
    let r = b
        .client
        .post(b.url("/api/v2/write?bucket=city&precision=s"))
        .header("Authorization", format!("Token {ADMIN}"))
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
}

/// The status, the time it took, and the JSON body.
async fn timed_get(b: &Bydata, path: &str, token: &str) -> (u16, Duration, Value) {
    let start = Instant::now();
    let (code, body) = b.get(path, token).await;
    (code, start.elapsed(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_queries_are_refused_before_they_cost_anything() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let (code, token) = b
        .post(
            "/api/v1/tokens",
            ADMIN,
            &json!({"name": "attacker", "role": "viewer"}),
        )
        .await;
    assert_eq!(code, 201, "{token}");
    let read = token["token"].as_str().unwrap().to_owned();

    // 200 series, three readings each on 1 January 2025: 10:00, 10:35 and 11:00 UTC.
    let day = 1_735_689_600; // 2025-01-01T00:00:00Z
    let mut lines = String::new();
    for i in 0..200 {
        for (minute, value) in [(600, 1.0), (635, 10.0), (660, 100.0)] {
            lines.push_str(&format!(
                "air,sensor=s{i:03} value={} {}\n",
                value * f64::from(i + 1),
                day + minute * 60
            ));
        }
    }
    write(&b, lines).await;
    // One sensor with 250,000 readings, one a second: more raw points than a query may return.
    for chunk in 0..5 {
        let lines: String = (0..50_000)
            .map(|i| {
                format!(
                    "vibration,sensor=v1 value={i} {}\n",
                    day + chunk * 50_000 + i
                )
            })
            .collect();
        write(&b, lines).await;
    }

    // 200 series × 96,000 fifteen-minute buckets (1,000 days): refused before any work.
    let (rss, peak) = (b.memory("VmRSS"), b.memory("VmHWM"));
    let (code, took, body) = timed_get(
        &b,
        "/api/v1/query?measurement=air&every=15m&fn=mean&from=2023-01-01T00:00:00Z&to=2025-09-27T00:00:00Z",
        &read,
    )
    .await;
    let (rss_after, peak_after) = (b.memory("VmRSS"), b.memory("VmHWM"));
    println!(
        "200 × 96,000 buckets: {code} in {took:?}; RSS {} → {} kB, peak {} → {} kB",
        rss / 1024,
        rss_after / 1024,
        peak / 1024,
        peak_after / 1024
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "query_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "this query would return 200 series × 96,000 buckets = 19,200,000 values; the limit is 1,000,000. Narrow it: a wider bucket (every=1d gives 1,001 per series)"
        ),
        "{message}"
    );
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    assert!(
        rss_after.saturating_sub(rss) < 50 << 20 && peak_after.saturating_sub(peak) < 50 << 20,
        "memory grew: RSS {rss} → {rss_after}, peak {peak} → {peak_after}"
    );

    // Raw points over the limit: refused from the index, before the 250,000 points are read.
    let (code, took, body) = timed_get(
        &b,
        "/api/v1/query?measurement=vibration&from=2025-01-01T00:00:00Z&to=2025-01-05T00:00:00Z",
        &read,
    )
    .await;
    println!("250,000 raw points: {code} in {took:?}");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "query_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "this query would return about 250,000 raw points from 1 series; the limit is 200,000."
        ),
        "{message}"
    );
    assert!(took < Duration::from_secs(1), "refused after {took:?}");

    // A day bucket cut to 10:30–10:40 sums only the 10:35 reading, at the day's start, marked partial.
    let (code, body) = b
        .get(
            "/api/v1/query?measurement=air&tag.sensor=s001&every=1d&fn=sum&tz=UTC&from=2025-01-01T10:30:00Z&to=2025-01-01T10:40:00Z",
            &read,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["series"][0]["points"],
        json!([{"time": "2025-01-01T00:00:00+00:00", "value": 20.0, "partial": true}])
    );
    // The whole day: every reading, not partial.
    let (code, body) = b
        .get(
            "/api/v1/query?measurement=air&tag.sensor=s001&every=1d&fn=sum&tz=UTC&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z",
            &read,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["series"][0]["points"],
        json!([{"time": "2025-01-01T00:00:00+00:00", "value": 222.0}])
    );

    // Both refusals are counted.
    let metrics = b
        .client
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("bydata_query_refused_total{reason=\"too_large\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bydata_query_heavy_running 0\n"),
        "{metrics}"
    );
}
