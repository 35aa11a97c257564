//! Organisations own series: a device's through the device (so moving it moves its history), line protocol's
//! through the writing key's organisation; each organisation's viewers query only their own.
#![allow(clippy::unwrap_used)]
mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_api::AppState;
use bydata_schemas::{MeasurementName, OrgId, Point, Role, SeriesKey};
use bydata_store::NewToken;
use common::{NOW, call, send};
use serde_json::{Value, json};
use std::collections::BTreeMap;

async fn key(s: &AppState, org: &str, role: Role) -> String {
    let (_, secret) = s
        .registry
        .create_token(
            NewToken::new("k", Some(OrgId::new(org).unwrap()), role),
            NOW,
        )
        .await
        .unwrap();
    secret
}

async fn get(s: &AppState, path: &str, key: &str) -> (StatusCode, Value) {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let (code, body, _) = call(s, request).await;
    (code, body)
}

/// How many points of `measurement`'s `field` the key's query finds.
async fn points(s: &AppState, key: &str, measurement: &str, field: &str) -> usize {
    let (code, body) = get(
        s,
        &format!("/api/v1/query?measurement={measurement}&field={field}&from=2025-01-01T00:00:00Z"),
        key,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["points"].as_array().unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_moved_device_takes_its_history_and_line_protocol_belongs_to_the_writers_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::state(dir.path()).await;
    for id in ["a", "b"] {
        let (code, body) = send(&s, "POST", "/api/v1/orgs", &json!({"id": id, "name": id})).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (code, body) = send(
        &s,
        "POST",
        "/api/v1/devices",
        &json!({"id": "meter-1", "name": "meter", "transport": "mqtt", "domain": "energy", "org": "a"}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    s.writer
        .write(vec![Point {
            series: SeriesKey {
                measurement: MeasurementName::new("energy_kwh").unwrap(),
                tags: BTreeMap::from([("device".to_owned(), "meter-1".to_owned())]),
                field: MeasurementName::new("value").unwrap(),
            },
            unit: None,
            time: NOW - 1_000_000_000,
            value: 7.0,
        }])
        .await
        .unwrap();
    let (a, b) = (
        key(&s, "a", Role::Viewer).await,
        key(&s, "b", Role::Viewer).await,
    );
    assert_eq!(points(&s, &a, "energy_kwh", "value").await, 1);
    assert_eq!(points(&s, &b, "energy_kwh", "value").await, 0);
    assert_eq!(
        get(&s, "/api/v1/devices/meter-1/latest", &b).await.0,
        StatusCode::NOT_FOUND
    );

    // An admin of only one of the two organisations may not move it; the platform admin may.
    let a_admin = key(&s, "a", Role::Admin).await;
    let request = Request::patch("/api/v1/devices/meter-1")
        .header("authorization", format!("Bearer {a_admin}"))
        .body(Body::from(json!({"org": "b"}).to_string()))
        .unwrap();
    let (code, body, _) = call(&s, request).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "b is not a's admin's: {body}");
    let (code, body) = send(&s, "PATCH", "/api/v1/devices/meter-1", &json!({"org": "b"})).await;
    assert_eq!(
        (code, body["org"].as_str()),
        (StatusCode::OK, Some("b")),
        "{body}"
    );
    assert_eq!(
        points(&s, &b, "energy_kwh", "value").await,
        1,
        "the history moved along"
    );
    assert_eq!(points(&s, &a, "energy_kwh", "value").await, 0);
    let (code, body) = get(&s, "/api/v1/devices/meter-1/latest", &b).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["latest"][0]["value"], 7.0);

    // Line protocol written with A's editor key is A's, and may not claim to be B's.
    let a_editor = key(&s, "a", Role::Editor).await;
    let write = |body: &'static str| {
        Request::post("/api/v2/write?bucket=city&precision=s")
            .header("authorization", format!("Token {a_editor}"))
            .body(Body::from(body))
            .unwrap()
    };
    let (code, body, _) = call(&s, write("heat,site=x kwh=1 1763799000")).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, body, _) = call(&s, write("heat,site=y,org=b kwh=1 1763799000")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("org tag")
    );
    assert_eq!(points(&s, &a, "heat", "kwh").await, 1);
    assert_eq!(points(&s, &b, "heat", "kwh").await, 0);
    let (_, catalog) = get(&s, "/api/v1/measurements", &b).await;
    assert!(
        !catalog.to_string().contains("heat"),
        "B's catalog names nothing of A's: {catalog}"
    );
}
