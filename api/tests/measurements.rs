//! What there is to query, and what an empty answer says, through `api::router`: `GET /api/v1/measurements`
//! lists measurements, fields, units, tag values and series counts; a query that matches nothing answers
//! `"series": []` with a notice naming the nearest names (a header too, for CSV); aggregates carry no float
//! noise in JSON, CSV and csv-da.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ADMIN, NOW, call, state};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap()
}

async fn text(s: &bydata_api::AppState, path: &str) -> (StatusCode, String) {
    let res = bydata_api::router(s.clone())
        .oneshot(get(path))
        .await
        .unwrap();
    let code = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8_lossy(&bytes).into_owned())
}

async fn seeded(dir: &std::path::Path) -> bydata_api::AppState {
    let s = state(dir).await;
    let t = NOW / 1_000_000_000 - 3600;
    // Readings whose sum is 100.52100000000064 in floats, and a few series to list.
    let mut lines = String::new();
    for (i, v) in [12.345, 0.001, 7.7, 80.475].iter().enumerate() {
        lines.push_str(&format!("meter,building=b1 kwh={v} {}\n", t + i as i64));
    }
    lines.push_str(&format!("co2,room=r1,building=b1 value=640 {t}\n"));
    lines.push_str(&format!("co2,room=r2,building=b2 value=650 {t}\n"));
    lines.push_str(&format!(
        "climate,room=r1 temperature=21.5,humidity=40 {t}\n"
    ));
    let res = bydata_api::router(s.clone())
        .oneshot(
            Request::post("/api/v2/write?bucket=city&precision=s")
                .header("authorization", format!("Token {ADMIN}"))
                .body(Body::from(lines))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    s
}

#[tokio::test]
async fn measurements_list_what_exists_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path()).await;
    let (code, all, _) = call(&s, get("/api/v1/measurements")).await;
    assert_eq!(code, StatusCode::OK, "{all}");
    let names: Vec<&str> = all["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["climate", "co2", "meter"]);
    assert_eq!(all["series"], 5);
    let climate = &all["measurements"][0];
    assert_eq!(
        climate["fields"],
        serde_json::json!(["humidity", "temperature"])
    );
    assert_eq!(climate["series"], 2);
    let co2 = &all["measurements"][1];
    assert_eq!(
        co2["tags"]["room"]["values"],
        serde_json::json!(["r1", "r2"])
    );
    assert_eq!(co2["tags"]["room"]["count"], 2);

    for (query, series) in [
        ("measurement=co2", 2),
        ("tag.building=b1", 2),
        ("tag.room=r1&search=CLI", 2),
        ("search=nothing", 0),
    ] {
        let (code, body, _) = call(&s, get(&format!("/api/v1/measurements?{query}"))).await;
        assert_eq!(
            (code, body["series"].as_u64()),
            (StatusCode::OK, Some(series)),
            "{query}: {body}"
        );
    }
    let (code, body, _) = call(&s, get("/api/v1/measurements?measurment=co2")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_parameter");
    let res = bydata_api::router(s.clone())
        .oneshot(
            Request::get("/api/v1/measurements")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "read-authorised like queries"
    );
}

#[tokio::test]
async fn an_empty_answer_says_nothing_matched_and_what_is_near() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path()).await;
    let (code, body, headers) = call(&s, get("/api/v1/query?measurement=co22&tag.room=r1")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["series"], serde_json::json!([]));
    let notice = "no series matched measurement=\"co22\" tag.room=\"r1\"; did you mean measurement \"co2\"? GET /api/v1/measurements lists what exists";
    assert_eq!(body["notice"], notice);
    assert_eq!(headers["x-bydata-notice"], notice);

    let (_, body, _) = call(
        &s,
        get("/api/v1/query?measurement=co2&tag.room=r3&every=1h"),
    )
    .await;
    assert!(
        body["notice"]
            .as_str()
            .unwrap()
            .contains("did you mean tag.room \"r1\" or \"r2\"?"),
        "{body}"
    );
    // A query that matches keeps its answer as it was: no notice.
    let (_, body, headers) = call(&s, get("/api/v1/query?measurement=co2&tag.room=r1")).await;
    assert_eq!(
        (body.get("notice"), headers.get("x-bydata-notice")),
        (None, None),
        "{body}"
    );
    // Series that match but hold no point in the range: said too, with where their newest point is.
    let (_, body, _) = call(
        &s,
        get("/api/v1/query?measurement=co2&tag.room=r1&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z&every=1h"),
    )
    .await;
    let notice = body["notice"].as_str().unwrap();
    assert!(
        notice.starts_with("1 series matched, but none has a point from 2020-01-01T01:00:00+01:00 to 2020-01-02T01:00:00+01:00; the newest is at 2025-11-22T"),
        "{body}"
    );
    // CSV has no place for it but the header.
    let res = bydata_api::router(s.clone())
        .oneshot(get("/api/v1/query?measurement=meter&field=kWh&format=csv"))
        .await
        .unwrap();
    assert!(
        res.headers()["x-bydata-notice"]
            .to_str()
            .unwrap()
            .contains("did you mean field \"kwh\"?"),
        "{:?}",
        res.headers()
    );
}

#[tokio::test]
async fn aggregates_carry_no_float_noise() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path()).await;
    assert_ne!(
        12.345 + 0.001 + 7.7 + 80.475,
        100.521,
        "the sum is noisy in floats"
    );
    let q = "/api/v1/query?measurement=meter&field=kwh&every=1d&fn=sum";
    let (_, body, _) = call(&s, get(q)).await;
    let values: Vec<&Value> = body["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["value"])
        .filter(|v| !v.is_null())
        .collect();
    assert_eq!(values, [&serde_json::json!(100.521)], "{body}");
    let (_, csv) = text(&s, &format!("{q}&format=csv")).await;
    assert!(csv.contains(",100.521,"), "{csv}");
    let (_, da) = text(&s, &format!("{q}&format=csv-da")).await;
    assert!(da.contains(";100,521;"), "{da}");
    // Raw points are what was written.
    let (_, raw, _) = call(&s, get("/api/v1/query?measurement=meter&field=kwh")).await;
    assert_eq!(raw["series"][0]["points"][1]["value"], 0.001, "{raw}");
}
