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
    let s = state(dir.path());
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
    let s = state(dir.path());
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
    assert!(id.starts_with("traffic-counter-n-rrebrogade-"), "{id}");
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
