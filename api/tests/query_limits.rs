//! Query limits through `api::router`: refusals that say what a query would cost and how to narrow it, heavy
//! queries waiting for a permit (or told the server is busy) while light ones pass, and the counters.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_api::{AppState, QueryGate, QueryLimits, router};
use common::{ADMIN, call, state};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// 2025-01-01T00:00:00Z in unix seconds.
const START: i64 = 1_735_689_600;

/// 200 series (`sensor=s000…s199`), three readings each, an hour apart from 2025-01-01.
async fn two_hundred_series(s: &AppState) {
    let mut body = String::new();
    for i in 0..200 {
        for h in 0..3 {
            body.push_str(&format!(
                "air,sensor=s{i:03} value={} {}\n",
                i + h,
                START + h * 3600
            ));
        }
    }
    let req = Request::post("/api/v2/write?bucket=city&precision=s")
        .header("authorization", format!("Token {ADMIN}"))
        .body(Body::from(body))
        .unwrap();
    let (code, err, _) = call(s, req).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{err}");
}

fn get(query: &str) -> Request<Body> {
    Request::get(format!("/api/v1/query?measurement=air&{query}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap()
}

/// The same state under other query limits.
fn with_limits(s: &AppState, limits: QueryLimits) -> AppState {
    let mut s = s.clone();
    s.queries = Arc::new(QueryGate::new(limits));
    common::with_own_metrics(s)
}

async fn metrics(s: &AppState) -> String {
    let res = router(s.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The refusal's code and message.
async fn refusal(s: &AppState, query: &str) -> (StatusCode, String, String) {
    let (code, body, _) = call(s, get(query)).await;
    let error = &body["error"];
    (
        code,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn too_many_values_series_or_raw_points_are_refused_with_how_to_narrow_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    two_hundred_series(&s).await;
    // 1,000 days of fifteen-minute buckets for 200 series.
    let (code, error, message) = refusal(
        &s,
        "every=15m&fn=mean&tz=UTC&from=2023-01-01T00:00:00Z&to=2025-09-27T00:00:00Z",
    )
    .await;
    assert_eq!(
        (code, error.as_str()),
        (StatusCode::BAD_REQUEST, "query_too_large")
    );
    assert_eq!(
        message,
        "this query would return 200 series × 96,000 buckets = 19,200,000 values; the limit is 1,000,000. \
         Narrow it: a wider bucket (every=1d gives 1,000 per series), a shorter range (from/to: at most 5,000 \
         buckets of 15m, about 52 days), fewer series (at most 10: device=…, tag.KEY=…) or group_by=KEY."
    );
    // Merged into one group, the same range fits.
    let (code, body, _) = call(
        &s,
        get("every=1d&fn=mean&tz=UTC&group_by=kind&from=2023-01-01T00:00:00Z&to=2025-09-27T00:00:00Z"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    assert!(
        metrics(&s)
            .await
            .contains("bydata_query_refused_total{reason=\"too_large\"} 1\n")
    );

    let s = with_limits(
        &s,
        QueryLimits {
            max_series: 100,
            max_raw_points: 500,
            ..QueryLimits::default()
        },
    );
    let (code, error, message) = refusal(&s, "every=1h").await;
    assert_eq!(
        (code, error.as_str()),
        (StatusCode::BAD_REQUEST, "query_too_large")
    );
    assert_eq!(
        message,
        "this query matches 200 series; the limit is 100. Narrow it to fewer series with device=… or tag.KEY=… \
         (group_by merges series but still reads every one of them)"
    );
    let (code, error, message) = refusal(
        &s,
        "tag.sensor=s001&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z",
    )
    .await;
    assert_eq!((code, error.as_str()), (StatusCode::OK, ""), "{message}");
    let s = with_limits(
        &s,
        QueryLimits {
            max_raw_points: 500,
            ..QueryLimits::default()
        },
    );
    let (code, error, message) =
        refusal(&s, "from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z").await;
    assert_eq!(
        (code, error.as_str()),
        (StatusCode::BAD_REQUEST, "query_too_large")
    );
    assert_eq!(
        message,
        "this query would return about 600 raw points from 200 series; the limit is 500. Narrow it: buckets \
         instead of raw points (every=1d&fn=mean gives 2 per series), a shorter range (from/to) or fewer series \
         (device=…, tag.KEY=…)."
    );
}

#[tokio::test]
async fn heavy_queries_wait_for_a_permit_or_hear_the_server_is_busy_while_light_ones_pass() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_limits(
        &state(dir.path()).await,
        QueryLimits {
            max_values: 10_000_000,
            heavy_work: 1_000,
            heavy_permits: 1,
            queue_timeout_secs: 0,
            ..QueryLimits::default()
        },
    );
    two_hundred_series(&s).await;
    // 200 series × 10,000 buckets: heavy, and eight chunks long. Its body is not read, so its task waits with
    // the permit once the channel is full.
    let heavy = "every=15m&tz=UTC&from=2025-01-01T00:00:00Z&to=2025-04-15T04:00:00Z";
    let held = router(s.clone()).oneshot(get(heavy)).await.unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    assert!(metrics(&s).await.contains("bydata_query_heavy_running 1\n"));

    let (code, body, headers) = call(&s, get(heavy)).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "busy");
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert_eq!(
        body["error"]["message"],
        "the server is already answering as many large queries as it runs at once (1), and this one (200 \
         series × 10,000 buckets) waited 0 s for its turn. Retry in a few seconds, or narrow it below 1,000 \
         series × buckets (or raw points), which never waits: a wider bucket (every=…), a shorter range \
         (from/to) or fewer series (device=…, tag.KEY=…)"
    );
    // A dashboard's query does not wait behind it.
    let (code, body, _) = call(&s, get("tag.sensor=s007&every=1h&fn=max&tz=UTC&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["series"][0]["points"][2]["value"], 9.0);

    // The client that held the permit leaves: the permit comes back.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    while !metrics(&s).await.contains("bydata_query_heavy_running 0\n") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the permit never came back"
        );
        poll.tick().await;
    }
    let (code, _, _) = call(
        &s,
        get("every=1h&tz=UTC&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z"),
    )
    .await;
    assert_eq!(
        code,
        StatusCode::OK,
        "200 series × 24 buckets is heavy here, and has its turn"
    );
    let m = metrics(&s).await;
    assert!(
        m.contains("bydata_query_refused_total{reason=\"busy\"} 1\n"),
        "{m}"
    );
}

#[tokio::test]
async fn a_clipped_aggregate_counts_only_the_points_inside_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    two_hundred_series(&s).await;
    // Readings of s005 at 00:00 (5), 01:00 (6) and 02:00 (7): [00:30, 02:00) holds only the 01:00 one.
    let (code, body, _) = call(
        &s,
        get("tag.sensor=s005&every=1d&fn=sum&tz=UTC&from=2025-01-01T00:30:00Z&to=2025-01-01T02:00:00Z"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        body["series"][0]["points"],
        serde_json::json!([{"time": "2025-01-01T00:00:00+00:00", "value": 6.0, "partial": true}])
    );
    let whole: Value = call(
        &s,
        get("tag.sensor=s005&every=1d&fn=sum&tz=UTC&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z"),
    )
    .await
    .1;
    assert_eq!(
        whole["series"][0]["points"],
        serde_json::json!([{"time": "2025-01-01T00:00:00+00:00", "value": 18.0}])
    );
}
