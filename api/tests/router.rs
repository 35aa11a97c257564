//! HTTP behaviour of `api::router` without sockets (`tower::ServiceExt::oneshot`).
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_api::AppState;
use common::{ADMIN, state};
use serde_json::{Value, json};

async fn send(state: &AppState, req: Request<Body>) -> (StatusCode, Value) {
    let (status, body, _) = common::call(state, req).await;
    (status, body)
}

#[tokio::test]
async fn errors_have_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (code, body) = send(&s, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (code, body) = send(
        &s,
        Request::get("/api/v1/devices").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    let req = Request::post("/api/v1/devices")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (code, body) = send(&s, req).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_body");
}

#[tokio::test]
async fn onboarding_shows_the_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let req = Request::post("/api/v1/devices")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"name": "Traffic counter Nørrebrogade", "transport": "mqtt", "domain": "mobility"}).to_string(),
        ))
        .unwrap();
    let (code, created) = send(&s, req).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("traffic-counter-noerrebrogade-"), "{id}");
    let password = created["mqtt"]["password"].as_str().unwrap().to_owned();
    let req = Request::get(format!("/api/v1/devices/{id}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (code, fetched) = send(&s, req).await;
    assert_eq!(code, StatusCode::OK);
    assert!(!fetched.to_string().contains(&password));
    assert!(fetched.get("mqtt").is_none());
    let req = Request::get(format!("/api/v1/devices/{id}/status"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (code, status) = send(&s, req).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(status["received"], 0);
    assert_eq!(status["last_error"], Value::Null);
}

#[tokio::test]
async fn gateways_are_registered_listed_and_removed_by_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let admin = format!("Bearer {ADMIN}");
    let new = |body: Value, auth: Option<&str>| {
        let mut req = Request::post("/api/v1/gateways").header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.body(Body::from(body.to_string())).unwrap()
    };
    let body = json!({"eui": "0016C001FF10A235", "name": "Dokk1 roof", "location": {"lat": 56.153, "lon": 10.214}});
    let (code, _) = send(&s, new(body.clone(), None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, created) = send(&s, new(body.clone(), Some(&admin))).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["eui"], "0016c001ff10a235", "one spelling per EUI");
    assert_eq!(created["status"]["rx_packets"], 0);
    let (code, again) = send(&s, new(body, Some(&admin))).await;
    assert_eq!(code, StatusCode::CONFLICT, "{again}");
    let (code, bad) = send(&s, new(json!({"eui": "00-16", "name": "x"}), Some(&admin))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16 hex digits"),
        "{bad}"
    );
    let get = |path: &str| {
        Request::get(path)
            .header("authorization", &admin)
            .body(Body::empty())
            .unwrap()
    };
    let (code, list) = send(&s, get("/api/v1/gateways")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["gateways"].as_array().unwrap().len(), 1);
    let (code, one) = send(&s, get("/api/v1/gateways/0016c001ff10a235")).await;
    assert_eq!(
        (code, one["name"].as_str()),
        (StatusCode::OK, Some("Dokk1 roof"))
    );
    let (code, _) = send(&s, get("/api/v1/gateways/not-an-eui")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let del = Request::delete("/api/v1/gateways/0016c001ff10a235")
        .header("authorization", &admin)
        .body(Body::empty())
        .unwrap();
    let (code, _) = send(&s, del).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = send(&s, get("/api/v1/gateways/0016c001ff10a235")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}
