//! Dataset definitions through `api::router`, and the privacy gate refusing a personal-data dataset whose
//! rules fall short, naming every rule.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ADMIN, call, state};
use serde_json::{Value, json};

fn req(method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json");
    b.body(body.map_or(Body::empty(), |v| Body::from(v.to_string())))
        .unwrap()
}

fn people_counter(id: &str) -> Value {
    json!({
        "id": id,
        "title": {"da": "Personer ved Dokk1", "en": "People at Dokk1"},
        "description": {"da": "Antal personer pr. time", "en": "People counted per hour"},
        "keywords": ["mobilitet"],
        "themes": ["TRAN", "REGI"],
        "licence": "CC-BY-4.0",
        "update_frequency": "DAILY",
        "publisher": {"name": "Aarhus Kommune", "uri": "https://www.aarhus.dk"},
        "contact_point": {"name": "Smart City", "email": "smartcity@aarhus.dk"},
        "selection": {"measurement": "people", "tags": {"site": "dokk1"}},
        "aggregation": {"every": "15m", "fn": "sum"},
        "personal_data": true,
    })
}

#[tokio::test]
async fn a_personal_data_dataset_is_refused_until_its_rules_meet_the_minimums() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let mut d = people_counter("people-dokk1");
    d["privacy"] = json!({"count_measurements": ["people"], "suppress_counts_below": 2});
    let (code, body, _) = call(&s, req("POST", "/api/v1/datasets", Some(d.clone()))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "privacy_refused");
    let message = body["error"]["message"].as_str().unwrap();
    for rule in [
        "location_grid_m to at least 250",
        "suppress_counts_below 2",
        "900 s is finer",
    ] {
        assert!(message.contains(rule), "{rule:?} missing from {message}");
    }

    d["privacy"] = json!({"count_measurements": ["people"], "suppress_counts_below": 5, "location_grid_m": 500});
    d["aggregation"] = json!({"every": "1h", "fn": "sum"});
    let (code, body, _) = call(&s, req("POST", "/api/v1/datasets", Some(d))).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["title"]["da"], "Personer ved Dokk1");

    let (code, body, _) = call(&s, req("GET", "/api/v1/datasets/people-dokk1", None)).await;
    assert_eq!(
        (code, body["licence"].as_str()),
        (StatusCode::OK, Some("CC-BY-4.0"))
    );
    let (_, list, _) = call(&s, req("GET", "/api/v1/datasets", None)).await;
    assert_eq!(list["datasets"].as_array().unwrap().len(), 1);

    // Not personal data: published with whatever rules it has.
    let mut open = people_counter("co2-open");
    open["personal_data"] = json!(false);
    open["themes"] = json!(["ENVI"]);
    let (code, body, _) = call(&s, req("POST", "/api/v1/datasets", Some(open))).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    // Validation says what is wrong.
    let mut wrong = people_counter("bad");
    wrong["licence"] = json!("GPL");
    let (code, body, _) = call(&s, req("POST", "/api/v1/datasets", Some(wrong))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CC0-1.0 or CC-BY-4.0")
    );

    let (code, _, _) = call(&s, req("DELETE", "/api/v1/datasets/co2-open", None)).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _, _) = call(&s, req("GET", "/api/v1/datasets/co2-open", None)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}
