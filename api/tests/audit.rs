//! The audit log through the API: each change recorded once with who, what, which object and before/after;
//! an organisation's admins see only its entries; pages and filters; never a secret.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bydata_api::AppState;
use common::{ADMIN, state};
use serde_json::{Value, json};

async fn as_key(
    s: &AppState,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let (code, body, _) = common::call(s, req).await;
    (code, body)
}

async fn entries(s: &AppState, key: &str, query: &str) -> Vec<Value> {
    let (code, body) = as_key(s, key, "GET", &format!("/api/v1/audit{query}"), None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// Two organisations, each with an admin key (made by the platform admin); answers the keys' (id, secret).
async fn two_orgs(s: &AppState) -> [(String, String); 2] {
    let mut keys = Vec::new();
    for org in ["a", "b"] {
        let (code, _) = as_key(
            s,
            ADMIN,
            "POST",
            "/api/v1/orgs",
            Some(&json!({"id": org, "name": org})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
        let (code, key) = as_key(
            s,
            ADMIN,
            "POST",
            "/api/v1/tokens",
            Some(&json!({"name": format!("{org}-admin"), "role": "admin", "org": org})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{key}");
        keys.push((
            key["id"].as_str().unwrap().to_owned(),
            key["token"].as_str().unwrap().to_owned(),
        ));
    }
    [keys[0].clone(), keys[1].clone()]
}

#[tokio::test]
async fn changes_are_recorded_with_who_what_and_before_after_and_admins_see_their_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let [(a_id, a_key), (_, b_key)] = two_orgs(&s).await;

    let (code, created) = as_key(
        &s,
        &a_key,
        "POST",
        "/api/v1/devices",
        Some(&json!({"id": "room-1", "name": "Room 1", "transport": "mqtt", "domain": "building"})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let (code, _) = as_key(&s, &a_key, "DELETE", "/api/v1/devices/room-1", None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    // A refused change (the device is gone) leaves no entry.
    let (code, _) = as_key(&s, &a_key, "DELETE", "/api/v1/devices/room-1", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, key) = as_key(
        &s,
        &a_key,
        "POST",
        "/api/v1/tokens",
        Some(&json!({"name": "reader", "role": "viewer"})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let key_id = key["id"].as_str().unwrap();
    let (code, _) = as_key(
        &s,
        &a_key,
        "DELETE",
        &format!("/api/v1/tokens/{key_id}"),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    let seen_by_a = entries(&s, &a_key, "").await;
    let summary: Vec<(&str, &str)> = seen_by_a
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["object"].as_str().unwrap()))
        .collect();
    let token_object = format!("token:{key_id}");
    let a_admin = format!("token:{a_id}");
    assert_eq!(
        summary,
        [
            ("token.revoke", token_object.as_str()),
            ("token.create", token_object.as_str()),
            ("device.delete", "device:room-1"),
            ("device.create", "device:room-1"),
            // The platform admin made this organisation's admin key: an entry of organisation a.
            ("token.create", a_admin.as_str()),
        ]
    );
    let create = &seen_by_a[3];
    assert_eq!(create["actor"], format!("key:{a_id}"));
    assert_eq!(create["actor_name"], "a-admin");
    assert_eq!(create["org"], "a");
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"]["id"], "room-1");
    assert_eq!(create["after"]["org"], "a");
    assert!(create["seq"].as_u64().unwrap() > 0);
    assert_eq!(seen_by_a[2]["before"]["name"], "Room 1");
    assert_eq!(seen_by_a[2]["after"], Value::Null);
    assert_eq!(seen_by_a[0]["before"]["state"], "active");
    assert_eq!(seen_by_a[0]["after"]["state"], "revoked");
    assert_eq!(seen_by_a[1]["after"]["role"], "viewer");

    // Organisation b's admin sees none of a's, and may not ask for them.
    let seen_by_b = entries(&s, &b_key, "").await;
    assert!(seen_by_b.iter().all(|e| e["org"] == "b"), "{seen_by_b:?}");
    assert_eq!(seen_by_b.len(), 1);
    let (code, _) = as_key(&s, &b_key, "GET", "/api/v1/audit?org=a", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // The platform admin sees everything, platform entries (organisations) included.
    let all = entries(&s, ADMIN, "").await;
    assert_eq!(all.len(), 8);
    assert_eq!(
        all.iter()
            .filter(|e| e["action"] == "org.create" && e["org"].is_null())
            .count(),
        2
    );
    assert_eq!(all[7]["actor"], "key:bootstrap");
}

#[tokio::test]
async fn pages_follow_the_cursor_and_filters_narrow() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    for i in 0..5 {
        let (code, _) = as_key(
            &s,
            ADMIN,
            "POST",
            "/api/v1/devices",
            Some(&json!({"id": format!("d-{i}"), "name": "D", "transport": "mqtt", "domain": "building"})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
    }
    let (code, _) = as_key(&s, ADMIN, "DELETE", "/api/v1/devices/d-0", None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    let mut seen = Vec::new();
    let mut query = "?limit=2&action=device.".to_owned();
    loop {
        let (code, page) = as_key(&s, ADMIN, "GET", &format!("/api/v1/audit{query}"), None).await;
        assert_eq!(code, StatusCode::OK);
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().map(|e| e["seq"].as_u64().unwrap()));
        match page["next"].as_u64() {
            Some(next) => query = format!("?limit=2&action=device.&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    assert_eq!(entries(&s, ADMIN, "?action=device.delete").await.len(), 1);
    assert_eq!(entries(&s, ADMIN, "?object=device:d-0").await.len(), 2);
    assert_eq!(
        entries(&s, ADMIN, "?actor=key:bootstrap&org=default")
            .await
            .len(),
        6
    );
    assert_eq!(
        entries(&s, ADMIN, "?from=2099-01-01T00:00:00Z").await.len(),
        0
    );
    assert_eq!(
        entries(&s, ADMIN, "?to=2099-01-01T00:00:00Z").await.len(),
        6
    );
    for bad in [
        "?nope=1",
        "?limit=0",
        "?limit=1001",
        "?before=x",
        "?from=yesterday",
    ] {
        let (code, body) = as_key(&s, ADMIN, "GET", &format!("/api/v1/audit{bad}"), None).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
        common::assert_error_shape(&body, bad);
    }
    // Not for editors.
    let (_, key) = as_key(
        &s,
        ADMIN,
        "POST",
        "/api/v1/tokens",
        Some(&json!({"name": "ed", "role": "editor", "org": "default"})),
    )
    .await;
    let (code, _) = as_key(
        &s,
        key["token"].as_str().unwrap(),
        "GET",
        "/api/v1/audit",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_secret_is_ever_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let mut secrets: Vec<String> = vec![ADMIN.to_owned()];
    let (_, mqtt) = as_key(
        &s,
        ADMIN,
        "POST",
        "/api/v1/devices",
        Some(&json!({"id": "m", "name": "M", "transport": "mqtt", "domain": "building"})),
    )
    .await;
    secrets.push(mqtt["mqtt"]["password"].as_str().unwrap().to_owned());
    let (_, rotated) = as_key(&s, ADMIN, "POST", "/api/v1/devices/m/credentials", None).await;
    secrets.push(rotated["mqtt"]["password"].as_str().unwrap().to_owned());
    let (nwk, app) = (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "3c4fcf098815f7aba6d2ae2816157e2b",
    );
    let (code, body) = as_key(
        &s,
        ADMIN,
        "POST",
        "/api/v1/devices",
        Some(&json!({"id": "l", "name": "L", "transport": "lorawan", "domain": "building",
                     "lorawan": {"activation": "abp", "dev_eui": "70b3d57ed0000001", "dev_addr": "26011bda",
                                 "nwk_s_key": nwk, "app_s_key": app}})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let app_key = "000102030405060708090a0b0c0d0e0f";
    let (code, body) = as_key(
        &s,
        ADMIN,
        "POST",
        "/api/v1/devices",
        Some(
            &json!({"id": "o", "name": "O", "transport": "lorawan", "domain": "building",
                     "lorawan": {"activation": "otaa", "dev_eui": "70b3d57ed0000002",
                                 "join_eui": "70b3d57ed0000000", "app_key": app_key}}),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    secrets.extend([nwk, app, app_key].map(str::to_owned));
    let (_, key) = as_key(
        &s,
        ADMIN,
        "POST",
        "/api/v1/tokens",
        Some(&json!({"name": "k", "role": "editor", "org": "default"})),
    )
    .await;
    secrets.push(key["token"].as_str().unwrap().to_owned());

    let log = entries(&s, ADMIN, "?limit=1000").await;
    assert_eq!(log.len(), 5);
    let text = serde_json::to_string(&log).unwrap().to_lowercase();
    for secret in &secrets {
        assert!(
            !text.contains(&secret.to_lowercase()),
            "a secret is in the audit log: {secret}"
        );
    }
    assert!(text.contains("device.rotate_credentials"));
    eprintln!(
        "audit entries: {} bytes of JSON each on average",
        text.len() / log.len()
    );
}
