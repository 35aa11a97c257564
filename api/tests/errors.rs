//! One error shape and one time format, through `api::router`: every path's unknown sub-path and unsupported
//! method answer in the documented error shape (walking the OpenAPI document); tokens are listed like every
//! other list, with RFC 3339 times; ids made from names read like the names; unknown domains are refused with
//! the list while stored devices of any domain still load.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{NOW, assert_error_shape, call, req, send, state};
use serde_json::json;

/// Whether a concrete path fits a documented template (`{…}` matches one segment).
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[tokio::test]
async fn every_path_answers_unknown_sub_paths_and_methods_in_the_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (_, doc, _) = call(&s, req("GET", "/api/openapi.json", "", "")).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 30);
    for template in paths.keys() {
        let path = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let unknown = format!("{}/zz-unknown/a/b/c", path.trim_end_matches('/'));
        let (code, body, _) = call(&s, req("GET", &unknown, "", "")).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{unknown}: {body}");
        assert_error_shape(&body, &unknown);
        assert_eq!(body["error"]["code"], "not_found");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&unknown) && message.contains("/api"),
            "{message}"
        );

        // The methods of every documented path this one fits (`/api/v1/codecs/test` is also `{name}`).
        let documented: Vec<String> = paths
            .iter()
            .filter(|(other, _)| fits(other, &path))
            .flat_map(|(_, item)| item.as_object().unwrap().keys())
            .map(|m| m.to_uppercase())
            .collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.iter().any(|m| m == method) {
                continue;
            }
            let (code, body, headers) = call(&s, req(method, &path, "", "")).await;
            let context = format!("{method} {path}");
            assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED, "{context}: {body}");
            let allow = headers["allow"].to_str().unwrap();
            let message = if path == "/query" {
                // InfluxDB 1.x's shape, as the document says for /query (InfluxError): its clients show it.
                assert_eq!(
                    body.as_object().unwrap().keys().collect::<Vec<_>>(),
                    ["error"],
                    "{context}: {body}"
                );
                body["error"].as_str().unwrap()
            } else {
                assert_error_shape(&body, &context);
                assert_eq!(body["error"]["code"], "method_not_allowed");
                body["error"]["message"].as_str().unwrap()
            };
            for m in &documented {
                assert!(allow.contains(m.as_str()), "{context}: Allow {allow}");
                assert!(message.contains(m.as_str()), "{context}: {message}");
            }
        }
    }
    // The document says so, for clients and schemathesis alike.
    assert!(doc["components"]["responses"]["NotFoundResponse"].is_object());
    assert!(doc["components"]["responses"]["MethodNotAllowedResponse"].is_object());
    assert!(doc["components"]["schemas"]["ErrorDetail"]["properties"]["problems"].is_object());
}

#[tokio::test]
async fn tokens_are_listed_like_every_list_with_rfc3339_times() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (code, created) = send(
        &s,
        "POST",
        "/api/v1/tokens",
        &json!({"name": "grafana", "role": "viewer"}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let now = bydata_schemas::format_rfc3339(NOW);
    assert_eq!(created["created_at"], now.as_str());
    let (code, list, _) = call(&s, req("GET", "/api/v1/tokens", "", "")).await;
    assert_eq!(code, StatusCode::OK);
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(
        tokens.len(),
        2,
        "the bootstrap admin token and grafana: {list}"
    );
    for t in tokens {
        let at = t["created_at"].as_str().unwrap();
        assert!(bydata_schemas::parse_rfc3339(at).is_ok(), "{at}");
        assert!(t.get("token").is_none(), "never the secret: {t}");
    }
    let grafana = tokens.iter().find(|t| t["name"] == "grafana").unwrap();
    assert_eq!(
        (grafana["role"].as_str(), grafana["created_at"].as_str()),
        (Some("viewer"), Some(now.as_str()))
    );
}

#[tokio::test]
async fn ids_from_names_read_like_them_and_unknown_domains_are_refused_with_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path()).await;
    let (code, created) = send(
        &s,
        "POST",
        "/api/v1/devices",
        &json!({"name": "Rådhus kælder CO₂", "transport": "mqtt", "domain": "building"}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("raadhus-kaelder-co2-"), "{id}");

    let (code, refused) = send(
        &s,
        "POST",
        "/api/v1/devices",
        &json!({"name": "x", "transport": "mqtt", "domain": "buildings"}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let message = refused["error"]["problems"][0]["message"].as_str().unwrap();
    let list = bydata_schemas::Domain::KNOWN.join(", ");
    assert_eq!(message, format!("\"buildings\" is not one of {list}"));

    // A device stored before the list (or by another rule) still loads and lists.
    let old = bydata_store::Device {
        org: Default::default(),
        id: bydata_schemas::DeviceId::new("harbour-1").unwrap(),
        name: "Harbour".into(),
        transport: bydata_schemas::Transport::Mqtt,
        domain: bydata_schemas::Domain::new("harbour").unwrap(),
        location: None,
        tags: Default::default(),
        codec: Default::default(),
        created_at: NOW,
    };
    s.registry.create_device(old).await.unwrap();
    let (code, list, _) = call(&s, req("GET", "/api/v1/devices", "", "")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["domain"] == "harbour"),
        "{list}"
    );
}
