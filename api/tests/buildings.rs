//! Buildings and KPIs through `api::router`: monthly consumption from a cumulative meter, per m², against the
//! same months a year earlier, and CO2e from stored hourly emission factors with a stated fallback.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_schemas::parse_rfc3339;
use common::{ADMIN, call, state};
use serde_json::{Value, json};

fn secs(t: &str) -> i64 {
    parse_rfc3339(t).unwrap() / 1_000_000_000
}

async fn send(s: &bydata_api::AppState, req: Request<Body>) -> (StatusCode, Value) {
    let (code, body, _) = call(s, req).await;
    (code, body)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn kpis_give_consumption_per_m2_last_year_and_co2e() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (code, body) = send(
        &s,
        Request::post("/api/v1/buildings")
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"id": "dokk1", "name": "Dokk1", "floor_area_m2": 1000.0, "kind": "Library"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "library");
    assert_eq!(body["price_area"], "DK1");

    // An hourly meter reading; each reading adds 2 kWh while it is 2025 in Copenhagen and 1 kWh in 2026.
    let new_year = secs("2026-01-01T00:00:00+01:00");
    let mut lines = String::new();
    let mut value = 0.0;
    for t in (secs("2024-12-31T00:00:00Z")..secs("2026-03-01T00:00:00Z")).step_by(3600) {
        value += if t >= new_year { 1.0 } else { 2.0 };
        lines.push_str(&format!(
            "energy_kwh,building=dokk1,meter=m1 value={value} {t}\n"
        ));
    }
    // Hourly emission factors for January 2026 only (100 g/kWh); February falls back.
    for t in (new_year..secs("2026-02-01T00:00:00+01:00")).step_by(3600) {
        lines.push_str(&format!("emission_factor,area=DK1 value=100 {t}\n"));
    }
    let (code, body) = send(
        &s,
        Request::post("/api/v2/write?bucket=city&precision=s")
            .header("authorization", format!("Token {ADMIN}"))
            .body(Body::from(lines))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");

    let (code, k) = send(
        &s,
        get("/api/v1/buildings/dokk1/kpis?every=1mo&from=2026-01-01T00:00:00%2B01:00&to=2026-03-01T00:00:00%2B01:00"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{k}");
    let b = k["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 2, "{k}");
    assert_eq!(b[0]["time"], "2026-01-01T00:00:00+01:00");
    // January: 744 hourly readings of 1 kWh; a year earlier 744 of 2 kWh.
    assert_eq!(b[0]["consumption"], 744.0, "{k}");
    assert_eq!(b[0]["per_m2"], 0.744);
    assert_eq!(b[0]["last_year"], 1488.0);
    assert_eq!(b[0]["change_pct"], -50.0);
    // 744 kWh at 100 g/kWh, summed hour by hour, rounded: no float noise.
    assert_eq!(b[0]["co2e_kg"], 74.4, "{k}");
    assert_eq!(
        k["measurement"], "energy_kwh",
        "the default is what meters write"
    );
    assert_eq!(
        (k["meters"].as_u64(), k.get("notice")),
        (Some(1), Some(&Value::Null))
    );
    // February: 672 kWh, no stored factors: the fallback (150 g/kWh), and the answer says so.
    assert_eq!(b[1]["consumption"], 672.0);
    assert_eq!(b[1]["co2e_kg"], 100.8, "{k}");
    assert_eq!(k["emission_factor"]["hours_on_fallback"], 672);
    assert_eq!(k["totals"]["consumption"], 1416.0);

    // A stated fallback for the year being reported.
    let (_, k) = send(
        &s,
        get("/api/v1/buildings/dokk1/kpis?every=1mo&from=2026-02-01T00:00:00%2B01:00&to=2026-03-01T00:00:00%2B01:00&emission_factor_g_per_kwh=50"),
    )
    .await;
    assert!(
        (k["buckets"][0]["co2e_kg"].as_f64().unwrap() - 33.6).abs() < 1e-9,
        "{k}"
    );

    // No meters: the answer says so, and what exists near the name.
    let (code, k) = send(
        &s,
        get("/api/v1/buildings/dokk1/kpis?measurement=energy_kw&every=1mo&from=2026-01-01T00:00:00%2B01:00&to=2026-03-01T00:00:00%2B01:00"),
    )
    .await;
    assert_eq!(
        (code, k["meters"].as_u64()),
        (StatusCode::OK, Some(0)),
        "{k}"
    );
    assert_eq!(
        k["notice"],
        "no series matched measurement=\"energy_kw\" tag.building=\"dokk1\"; did you mean measurement \"energy_kwh\"? GET /api/v1/measurements lists what exists"
    );

    let (code, _) = send(&s, get("/api/v1/buildings/nope/kpis")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, body) = send(&s, get("/api/v1/buildings/dokk1/kpis?typo=1")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, list) = send(&s, get("/api/v1/buildings")).await;
    assert_eq!(
        (code, list["buildings"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
}
