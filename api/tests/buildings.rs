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

async fn create_building(s: &bydata_api::AppState, id: &str, area: f64) {
    let (code, body) = send(
        s,
        Request::post("/api/v1/buildings")
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"id": id, "name": id.to_uppercase(), "floor_area_m2": area, "kind": "office"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

async fn write(s: &bydata_api::AppState, lines: String) {
    let (code, body) = send(
        s,
        Request::post("/api/v2/write?bucket=city&precision=s")
            .header("authorization", format!("Token {ADMIN}"))
            .body(Body::from(lines))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn ranking_orders_buildings_per_m2_with_interval_meters_and_states_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    create_building(&s, "dokk1", 1000.0).await;
    create_building(&s, "radhus", 500.0).await;
    create_building(&s, "empty", 100.0).await;
    let new_year = secs("2026-01-01T00:00:00+01:00");
    let february = secs("2026-02-01T00:00:00+01:00");
    let mut lines = String::new();
    // Dokk1: a cumulative meter read every hour, 2 kWh an hour in 2025 and 1 kWh an hour in 2026.
    let mut value = 0.0;
    for t in (secs("2024-12-31T00:00:00Z")..secs("2026-03-01T00:00:00Z")).step_by(3600) {
        value += if t > new_year { 1.0 } else { 2.0 };
        lines.push_str(&format!(
            "energy_kwh,building=dokk1,meter=m1 value={value} {t}\n"
        ));
    }
    // The town hall: Eloverblik's hourly quantities (1 kWh in each hour of January 2026), nothing a year
    // earlier.
    for t in (new_year..february).step_by(3600) {
        lines.push_str(&format!(
            "energy_kwh,building=radhus,metering_point=571313,source=eloverblik,reading=interval value=1 {t}\n"
        ));
    }
    write(&s, lines).await;

    let (code, r) = send(
        &s,
        get("/api/v1/buildings/ranking?measurement=energy_kwh&field=value&from=2026-01-01T00:00:00%2B01:00&to=2026-02-01T00:00:00%2B01:00&tz=Europe/Copenhagen"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["fn"], &r["tz"], &r["from"], &r["to"]),
        (
            &json!("consumption"),
            &json!("Europe/Copenhagen"),
            &json!("2026-01-01T00:00:00+01:00"),
            &json!("2026-02-01T00:00:00+01:00")
        ),
        "{r}"
    );
    let b = r["buildings"].as_array().unwrap();
    let ids: Vec<&str> = b.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["radhus", "dokk1", "empty"], "{r}");
    // 744 hours of 1 kWh on 500 m².
    assert_eq!(b[0]["consumption"], 744.0, "{r}");
    assert_eq!((&b[0]["per_m2"], &b[0]["rank"]), (&json!(1.488), &json!(1)));
    assert_eq!(b[0]["last_year"], Value::Null);
    let gaps = b[0]["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{r}");
    assert_eq!(gaps[0]["period"], "last_year");
    assert_eq!(gaps[0]["from"], "2025-01-01T00:00:00+01:00");
    assert_eq!(gaps[0]["meter"]["metering_point"], "571313");
    // The cumulative meter: exact to the boundary (the reading at midnight closes December).
    assert_eq!(b[1]["consumption"], 744.0, "{r}");
    assert_eq!(b[1]["per_m2"], 0.744);
    assert_eq!(b[1]["last_year"], 1488.0);
    assert_eq!(b[1]["last_year_per_m2"], 1.488);
    assert_eq!(b[1]["change_pct"], -50.0);
    assert_eq!((&b[1]["rank"], &b[1]["meters"]), (&json!(2), &json!(1)));
    assert_eq!(b[1]["gaps"], json!([]));
    // No meters: last, without a rank.
    assert_eq!(
        (&b[2]["rank"], &b[2]["meters"], &b[2]["consumption"]),
        (&Value::Null, &json!(0), &Value::Null)
    );
    assert_eq!(b[2]["kind"], "office");
    assert_eq!(b[2]["floor_area_m2"], 100.0);

    let (code, body) = send(&s, get("/api/v1/buildings/ranking?every=1mo")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn kpis_add_interval_meters_and_take_the_best_emission_factor_per_hour() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    create_building(&s, "skole", 1000.0).await;
    let day = secs("2026-01-10T00:00:00+01:00");
    let mut lines = String::new();
    // A cumulative meter read every hour (1 kWh an hour) and an Eloverblik meter (2 kWh in each hour).
    for h in -2..=26 {
        let t = day + h * 3600;
        lines.push_str(&format!(
            "energy_kwh,building=skole,meter=heat value={} {t}\n",
            1000 + h
        ));
        if (0..24).contains(&h) {
            lines.push_str(&format!(
                "energy_kwh,building=skole,metering_point=5713,reading=interval value=2 {t}\n"
            ));
        }
    }
    // Emission factors every 5 minutes: measured (100) and a prognosis (999) for hours 0-11, only the
    // prognosis (200) for 12-17, a hand import (300) for 18-20, nothing for 21-23.
    for m in (0..24 * 60).step_by(5) {
        let (t, h) = (day + m * 60, m / 60);
        if h < 12 {
            lines.push_str(&format!(
                "emission_factor,area=DK1,source=CO2Emis value=100 {t}\n"
            ));
        }
        if h < 18 {
            let g = if h < 12 { 999 } else { 200 };
            lines.push_str(&format!(
                "emission_factor,area=DK1,source=CO2EmisProg value={g} {t}\n"
            ));
        } else if h < 21 {
            lines.push_str(&format!(
                "emission_factor,area=DK1,source=manual value=300 {t}\n"
            ));
        }
    }
    write(&s, lines).await;
    let (code, k) = send(
        &s,
        get("/api/v1/buildings/skole/kpis?every=1d&from=2026-01-10T00:00:00%2B01:00&to=2026-01-11T00:00:00%2B01:00"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{k}");
    assert_eq!((&k["fn"], &k["meters"]), (&json!("consumption"), &json!(2)));
    // 24 hours of 1 + 2 kWh.
    assert_eq!(k["buckets"][0]["consumption"], 72.0, "{k}");
    // 3 kWh an hour × (12 × 100 + 6 × 200 + 3 × 300 + 3 × 150 fallback) g.
    assert_eq!(k["buckets"][0]["co2e_kg"], 11.25, "{k}");
    let ef = &k["emission_factor"];
    assert_eq!(
        ef["hours_by_source"],
        json!({"CO2Emis": 12, "CO2EmisProg": 6, "manual": 3}),
        "{k}"
    );
    assert_eq!(ef["hours_on_fallback"], 3);
    // No readings a year earlier: both meters' gaps say so.
    let gaps = k["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2, "{k}");
    assert!(gaps.iter().all(|g| g["period"] == "last_year"), "{k}");
    assert_eq!(k["buckets"][0]["last_year"], Value::Null);
}
