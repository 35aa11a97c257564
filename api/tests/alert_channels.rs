//! An alert rule names notification channels of its organisation: a channel it does not have (or another
//! organisation's, which looks the same) is refused, naming it, on create and on replace — a rule that
//! would tell nobody is not stored as if it would.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{assert_error_shape, send, state};
use serde_json::{Value, json};

fn rule(channels: &[&str]) -> Value {
    json!({"name": "quiet", "condition": {"kind": "silence", "every": "1h"},
           "select": {"all": "devices"}, "channels": channels})
}

#[tokio::test]
async fn a_rule_naming_a_channel_its_organisation_lacks_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (code, body) = send(
        &s,
        "POST",
        "/api/v1/notification-channels",
        &json!({"id": "ops", "name": "Ops", "kind": "email", "to": ["ops@example.dk"]}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    let (code, body) = send(&s, "POST", "/api/v1/alert-rules", &rule(&["ops", "pager"])).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_error_shape(&body, "unknown channel");
    let problems = body["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(problems[0]["field"], "channels[1]");
    let message = problems[0]["message"].as_str().unwrap();
    assert!(message.contains("\"pager\""), "{message}");
    assert!(message.contains("notification-channels"), "{message}");

    let (code, body) = send(&s, "POST", "/api/v1/alert-rules", &rule(&["ops"])).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/alert-rules/{id}");
    let (code, body) = send(&s, "PUT", &path, &rule(&["ops", "gone"])).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["problems"][0]["field"], "channels[1]");
    let (code, body) = send(&s, "GET", &path, &Value::Null).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        body["channels"],
        json!(["ops"]),
        "the refused change left the rule as it was"
    );
}
