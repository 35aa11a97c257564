//! `POST /api/v2/write` (InfluxDB v2 line protocol) through `api::router`, then read back through the query API.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_api::AppState;
use bydata_store::{NewToken, OrgId, Role};
use common::{ADMIN, call, state};
use serde_json::Value;
use std::io::Write;

fn write(token: &str, query: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(format!("/api/v2/write?{query}"))
        .header("authorization", format!("Token {token}"))
        .body(body.into())
        .unwrap()
}

async fn query(state: &AppState, q: &str) -> Value {
    let req = Request::get(format!("/api/v1/query?{q}&tz=UTC"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (code, body, _) = call(state, req).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn lines_are_written_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let body = "# Telegraf-style batch\n\
        cpu,host=web\\ 1,cpu=cpu-total usage_idle=97.5,usage_user=1.25 1763800000\n\
        cpu,host=web\\ 1,cpu=cpu-total usage_idle=96,usage_user=2i 1763800010\r\n\
        system,host=web\\ 1 uptime=12345u,load1=0.5,up=true,uptime_format=\"3 days\" 1763800010\n";
    let (code, err, headers) =
        call(&s, write(ADMIN, "bucket=city&org=aarhus&precision=s", body)).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{err}");
    assert_eq!(headers["x-bydata-skipped-string-fields"], "1");

    let answer = query(&s, "measurement=cpu&field=usage_idle&tag.host=web%201&from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z").await;
    let points = answer["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{answer}");
    assert_eq!(points[0]["time"], "2025-11-22T08:26:40+00:00");
    assert_eq!(points[0]["value"], 97.5);
    assert_eq!(answer["series"][0]["tags"]["cpu"], "cpu-total");
    let answer = query(
        &s,
        "measurement=system&field=up&from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z",
    )
    .await;
    assert_eq!(answer["series"][0]["points"][0]["value"], 1.0);
}

#[tokio::test]
async fn one_bad_line_refuses_the_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let body = "meter,building=b7 energy_kwh=10 1763800000000000000\n\
                meter,building=b7 energy_kwh=11 1763800060000000000\n\
                meter,building=b7 energy_kwh=twelve 1763800120000000000\n";
    let (code, err, _) = call(&s, write(ADMIN, "bucket=city", body)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_line_protocol");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("line 3:"), "{message}");
    let answer = query(
        &s,
        "measurement=meter&field=energy_kwh&from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z",
    )
    .await;
    assert_eq!(
        answer["series"].as_array().unwrap().len(),
        0,
        "nothing of a refused request is written: {answer}"
    );
}

#[tokio::test]
async fn auth_gzip_precision_and_device_series() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    // No token, a read token: refused. A write token: accepted.
    let req = Request::post("/api/v2/write?bucket=b")
        .body(Body::from("m f=1"))
        .unwrap();
    assert_eq!(call(&s, req).await.0, StatusCode::UNAUTHORIZED);
    let (_, read) = s
        .registry
        .create_token(
            NewToken::new("dash", Some(OrgId::default()), Role::Viewer),
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        call(&s, write(&read, "bucket=b", "m f=1")).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, writer) = s
        .registry
        .create_token(
            NewToken::new("telegraf", Some(OrgId::default()), Role::Editor),
            0,
        )
        .await
        .unwrap();

    // gzip, as Telegraf sends by default; millisecond precision.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"heat,building=dokk1 kwh=5.5 1763800000123\n")
        .unwrap();
    let req = Request::post("/api/v2/write?bucket=b&precision=ms")
        .header("authorization", format!("Token {writer}"))
        .header("content-encoding", "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let (code, err, _) = call(&s, req).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{err}");
    let answer = query(
        &s,
        "measurement=heat&field=kwh&from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z",
    )
    .await;
    assert_eq!(
        answer["series"][0]["points"][0]["time"],
        "2025-11-22T08:26:40.123+00:00"
    );

    // A line without a timestamp gets the receive time.
    assert_eq!(
        call(&s, write(&writer, "bucket=b", "now_m v=1")).await.0,
        StatusCode::NO_CONTENT
    );
    let answer = query(
        &s,
        "measurement=now_m&field=v&from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z",
    )
    .await;
    assert_eq!(
        answer["series"][0]["points"][0]["time"],
        "2025-11-22T08:26:40+00:00"
    );

    // Missing bucket, unknown precision, unknown parameter: clear 400s.
    for (q, code) in [
        ("", "missing_parameter"),
        ("bucket=b&precision=h", "invalid_parameter"),
        ("bucket=b&buckett=c", "unknown_parameter"),
    ] {
        let (status, err, _) = call(&s, write(&writer, q, "m f=1")).await;
        assert_eq!(
            (status, err["error"]["code"].as_str().unwrap()),
            (StatusCode::BAD_REQUEST, code),
            "{q}"
        );
    }

    // A registered device's series cannot be forged through line protocol.
    let device: bydata_store::Device = serde_json::from_value(serde_json::json!({
        "id": "b7-co2", "name": "x", "transport": "mqtt", "domain": "building", "location": null, "created_at": 0
    }))
    .unwrap();
    s.registry.create_device(device).await.unwrap();
    let (code, err, _) = call(
        &s,
        write(
            &writer,
            "bucket=b",
            "co2,device=b7-co2,domain=building value=400",
        ),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "reserved_series");
    // Other `device` tags (Telegraf's disk plugin uses device=sda1) are fine.
    assert_eq!(
        call(
            &s,
            write(&writer, "bucket=b", "disk,device=sda1 used_percent=41.5")
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn lines_repeating_a_series_keep_every_value_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    // One series over several lines, its fields in another order, another series between them, a field given
    // twice (the last value wins) and a string field (skipped, counted).
    let body = "m,site=a,device=sda1 x=1,y=2i 1763800000\n\
                m,site=b x=5 1763800000\n\
                m,device=sda1,site=a y=3,x=4,note=\"s\" 1763800010\n\
                m,site=a,device=sda1 x=6,x=7 1763800020\n";
    let (code, err, headers) = call(&s, write(ADMIN, "bucket=b&precision=s", body)).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{err}");
    assert_eq!(headers["x-bydata-skipped-string-fields"], "1");
    let range = "from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z";
    for (filter, want) in [
        ("field=x&tag.site=a", vec![1.0, 4.0, 7.0]),
        ("field=y&tag.site=a", vec![2.0, 3.0]),
        ("field=x&tag.site=b", vec![5.0]),
    ] {
        let answer = query(&s, &format!("measurement=m&{filter}&{range}")).await;
        assert_eq!(answer["series"].as_array().unwrap().len(), 1, "{answer}");
        let values: Vec<f64> = answer["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect();
        assert_eq!(values, want, "{filter}");
    }
}

#[tokio::test]
async fn every_line_of_a_repeated_series_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let refused = |body: &'static str| {
        let s = s.clone();
        async move {
            let (code, err, _) = call(&s, write(ADMIN, "bucket=b", body)).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
            (
                err["error"]["code"].as_str().unwrap().to_owned(),
                err["error"]["message"].as_str().unwrap().to_owned(),
            )
        }
    };
    // A field name that is not valid, on the third line of a series the first two made known.
    let (code, message) = refused("m,site=a x=1 1\nm,site=a x=2 2\nm,site=a bad!=3 3\n").await;
    assert_eq!(code, "invalid_line_protocol");
    assert!(message.starts_with("line 3:"), "{message}");

    // A registered device's tag: the first line naming it, whatever tag set it comes with.
    let device: bydata_store::Device = serde_json::from_value(serde_json::json!({
        "id": "b7-co2", "name": "x", "transport": "mqtt", "domain": "building", "location": null, "created_at": 0
    }))
    .unwrap();
    s.registry.create_device(device).await.unwrap();
    let (code, message) = refused(
        "disk,device=sda1 u=1\nco2,device=b7-co2,x=1 value=1\nco2,device=b7-co2 value=2\n\
         co2,device=b7-co2,x=1 value=3",
    )
    .await;
    assert_eq!(code, "reserved_series");
    assert!(message.starts_with("line 2:"), "{message}");
}
