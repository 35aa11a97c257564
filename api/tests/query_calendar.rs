//! Calendar-correct queries through `api::router`: daily, hourly and monthly buckets in Europe/Copenhagen
//! across both daylight-saving changes of 2026 (29 March: 23 hours; 25 October: 25 hours), `increase` across a
//! counter reset and a gap, and the CSV that Danish Excel opens.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_api::{AppState, router};
use bydata_schemas::parse_rfc3339;
use common::{ADMIN, call, state};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const HOUR: i64 = 3600;

/// Writes `meter,building=b1 value=…` at every given (unix seconds, value).
async fn write(s: &AppState, points: impl Iterator<Item = (i64, f64)>) {
    let body: String = points
        .map(|(t, v)| format!("meter,building=b1 value={v} {t}\n"))
        .collect();
    let req = Request::post("/api/v2/write?bucket=city&precision=s")
        .header("authorization", format!("Token {ADMIN}"))
        .body(Body::from(body))
        .unwrap();
    let (code, err, _) = call(s, req).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{err}");
}

/// Hourly readings (value 1) from `from` to `to` (RFC 3339), every UTC hour.
async fn hourly(s: &AppState, from: &str, to: &str) {
    let (a, b) = (secs(from), secs(to));
    write(s, (a..b).step_by(HOUR as usize).map(|t| (t, 1.0))).await;
}

fn secs(t: &str) -> i64 {
    parse_rfc3339(t).unwrap() / 1_000_000_000
}

async fn query(s: &AppState, q: &str) -> Value {
    let req = Request::get(format!("/api/v1/query?measurement=meter&{q}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (code, body, _) = call(s, req).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// (bucket time, value) of the first series.
fn buckets(answer: &Value) -> Vec<(String, Option<f64>)> {
    answer["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["time"].as_str().unwrap().to_owned(), p["value"].as_f64()))
        .collect()
}

fn owned(v: &[(&str, Option<f64>)]) -> Vec<(String, Option<f64>)> {
    v.iter().map(|(t, x)| ((*t).to_owned(), *x)).collect()
}

#[tokio::test]
async fn days_hours_and_months_follow_copenhagen_through_both_dst_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    hourly(&s, "2026-02-28T23:00:00Z", "2026-04-30T22:00:00Z").await;
    hourly(&s, "2026-10-23T22:00:00Z", "2026-10-27T23:00:00Z").await;
    let tz = "tz=Europe/Copenhagen";

    // 1d: the spring day has 23 hours, the autumn day 25, and each is one bucket starting at local midnight.
    let spring = query(
        &s,
        &format!(
            "{tz}&every=1d&fn=count&from=2026-03-28T00:00:00%2B01:00&to=2026-03-31T00:00:00%2B02:00"
        ),
    )
    .await;
    assert_eq!(
        buckets(&spring),
        owned(&[
            ("2026-03-28T00:00:00+01:00", Some(24.0)),
            ("2026-03-29T00:00:00+01:00", Some(23.0)),
            ("2026-03-30T00:00:00+02:00", Some(24.0)),
        ])
    );
    let autumn = query(
        &s,
        &format!(
            "{tz}&every=1d&fn=count&from=2026-10-24T00:00:00%2B02:00&to=2026-10-27T00:00:00%2B01:00"
        ),
    )
    .await;
    assert_eq!(
        buckets(&autumn),
        owned(&[
            ("2026-10-24T00:00:00+02:00", Some(24.0)),
            ("2026-10-25T00:00:00+02:00", Some(25.0)),
            ("2026-10-26T00:00:00+01:00", Some(24.0)),
        ])
    );

    // 1h on the spring day: 23 buckets, 02:00 local never happens.
    let hours = buckets(&query(&s, &format!("{tz}&every=1h&fn=count&from=2026-03-29T00:00:00%2B01:00&to=2026-03-30T00:00:00%2B02:00")).await);
    assert_eq!(hours.len(), 23, "{hours:?}");
    assert_eq!(hours[1].0, "2026-03-29T01:00:00+01:00");
    assert_eq!(hours[2].0, "2026-03-29T03:00:00+02:00");
    assert!(hours.iter().all(|(_, v)| *v == Some(1.0)));
    // …and 25 on the autumn day, 02:00 local twice (first in summer time, then in winter time).
    let hours = buckets(&query(&s, &format!("{tz}&every=1h&fn=count&from=2026-10-25T00:00:00%2B02:00&to=2026-10-26T00:00:00%2B01:00")).await);
    assert_eq!(hours.len(), 25, "{hours:?}");
    assert_eq!(hours[2].0, "2026-10-25T02:00:00+02:00");
    assert_eq!(hours[3].0, "2026-10-25T02:00:00+01:00");

    // 1mo: March has 743 local hours (31 × 24 − 1), April 720; months start at local midnight of the 1st.
    let months = query(&s, &format!("{tz}&every=1mo&fn=count&from=2026-03-01T00:00:00%2B01:00&to=2026-05-01T00:00:00%2B02:00")).await;
    assert_eq!(
        buckets(&months),
        owned(&[
            ("2026-03-01T00:00:00+01:00", Some(743.0)),
            ("2026-04-01T00:00:00+02:00", Some(720.0)),
        ])
    );
}

#[tokio::test]
async fn increase_turns_a_meter_into_consumption_across_a_reset_and_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let day = |d: i64, h: i64| secs("2026-11-01T00:00:00Z") + d * 86_400 + h * HOUR;
    let mut points = Vec::new();
    // Day 0: 100 → 123 kWh, one kWh an hour.
    points.extend((0..24).map(|h| (day(0, h), 100.0 + h as f64)));
    // Day 1: 124 → 130 until 06:00, then the meter is replaced (reset to 0) and counts 0 → 16.
    points.extend((0..7).map(|h| (day(1, h), 124.0 + h as f64)));
    points.extend((7..24).map(|h| (day(1, h), (h - 7) as f64)));
    // Day 2: no readings at all (the gateway was down). Day 3: 20 → 23.
    points.extend((0..4).map(|h| (day(3, h), 20.0 + h as f64)));
    write(&s, points.into_iter()).await;

    let answer = query(
        &s,
        "tz=UTC&every=1d&fn=increase&from=2026-11-01T00:00:00Z&to=2026-11-05T00:00:00Z",
    )
    .await;
    assert_eq!(
        buckets(&answer),
        owned(&[
            // 23 rises within the day.
            ("2026-11-01T00:00:00+00:00", Some(23.0)),
            // 1 from the day before, 6 to the reset, 0 for the reset's first reading, 16 after it.
            ("2026-11-02T00:00:00+00:00", Some(23.0)),
            // No data is null, never 0.
            ("2026-11-03T00:00:00+00:00", None),
            // 4 across the gap (16 → 20, counted when it is seen) and 3 within the day.
            ("2026-11-04T00:00:00+00:00", Some(7.0)),
        ]),
        "{answer}"
    );
}

#[tokio::test]
async fn csv_da_opens_in_danish_excel() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    write(
        &s,
        [
            (secs("2026-03-29T00:30:00Z"), 0.5),
            (secs("2026-03-29T01:30:00Z"), 1234.25),
        ]
        .into_iter(),
    )
    .await;
    let req = Request::get(
        "/api/v1/query?measurement=meter&tz=Europe/Copenhagen&format=csv-da&from=2026-03-29T00:00:00Z&to=2026-03-30T00:00:00Z",
    )
    .header("authorization", format!("Bearer {ADMIN}"))
    .body(Body::empty())
    .unwrap();
    let res = router(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.starts_with('\u{feff}'),
        "a BOM tells Excel the file is UTF-8"
    );
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], "time;utc_offset;building;value;unit");
    // Local date-times Excel recognises, the offset beside them, decimal commas.
    assert_eq!(lines[1], "2026-03-29 01:30:00;+01:00;b1;0,5;");
    assert_eq!(lines[2], "2026-03-29 03:30:00;+02:00;b1;1234,25;");
}
