//! The document against the router: every route listed, its error shapes, its policies.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::{AppState, HookError, IngestHooks, router};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bydata_store::EmbeddedEngine;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

/// Every route `router()` registers. A route added there must be added here and annotated: the test
/// below then fails until the document lists it.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/manage"),
    ("GET", "/manage/assets/{file}"),
    ("GET", "/api/v1/broker"),
    ("POST", "/api/v1/devices/bulk"),
    ("GET", "/assets/app.js"),
    ("GET", "/assets/app.css"),
    ("GET", "/api"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/v1/devices.geojson"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/devices"),
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/devices/{id}"),
    ("DELETE", "/api/v1/devices/{id}"),
    ("PATCH", "/api/v1/devices/{id}"),
    ("POST", "/api/v1/devices/{id}/credentials"),
    ("GET", "/api/v1/devices/{id}/status"),
    ("POST", "/api/v1/devices/{id}/redecode"),
    ("GET", "/api/v1/devices/{id}/latest"),
    ("POST", "/api/v1/devices/{id}/downlinks"),
    ("GET", "/api/v1/devices/{id}/downlinks"),
    ("DELETE", "/api/v1/devices/{id}/downlinks/{dl}"),
    ("GET", "/api/v1/query"),
    ("GET", "/api/v1/measurements"),
    ("POST", "/api/v1/gateways"),
    ("GET", "/api/v1/gateways"),
    ("GET", "/api/v1/gateways/{eui}"),
    ("DELETE", "/api/v1/gateways/{eui}"),
    ("POST", "/api/v1/codecs"),
    ("GET", "/api/v1/codecs"),
    ("GET", "/api/v1/codecs/{name}"),
    ("GET", "/api/v1/codecs/{name}/{version}"),
    ("POST", "/api/v1/codecs/test"),
    ("POST", "/api/v1/integrations"),
    ("GET", "/api/v1/integrations"),
    ("GET", "/api/v1/integrations/{id}"),
    ("DELETE", "/api/v1/integrations/{id}"),
    ("POST", "/api/v1/buildings"),
    ("GET", "/api/v1/buildings"),
    ("GET", "/api/v1/buildings/{id}"),
    ("DELETE", "/api/v1/buildings/{id}"),
    ("GET", "/api/v1/buildings/{id}/kpis"),
    // --- consumption ---
    ("GET", "/api/v1/buildings/ranking"),
    ("POST", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets/{id}"),
    ("DELETE", "/api/v1/datasets/{id}"),
    ("POST", "/api/v1/datasets/{id}/publish"),
    ("GET", "/opendata"),
    ("GET", "/opendata/catalog"),
    ("GET", "/opendata/data.json"),
    ("GET", "/opendata/datasets/{id}"),
    ("GET", "/opendata/datasets/{id}/{period}/{file}"),
    ("GET", "/opendata/datasets/{id}/{period}/{version}/{file}"),
    ("POST", "/api/v1/orgs"),
    ("GET", "/api/v1/orgs"),
    ("GET", "/api/v1/orgs/{id}"),
    ("DELETE", "/api/v1/orgs/{id}"),
    ("GET", "/api/v1/orgs/{id}/members"),
    ("PUT", "/api/v1/orgs/{id}/members/{member}"),
    ("DELETE", "/api/v1/orgs/{id}/members/{member}"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("GET", "/auth/login"),
    ("GET", "/auth/callback"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/me"),
    ("GET", "/api/v1/audit"),
    ("POST", "/api/v2/write"),
    // --- influxql ---
    ("GET", "/query"),
    ("POST", "/query"),
    // --- alerts ---
    ("POST", "/api/v1/alert-rules"),
    ("GET", "/api/v1/alert-rules"),
    ("GET", "/api/v1/alert-rules/{id}"),
    ("PUT", "/api/v1/alert-rules/{id}"),
    ("DELETE", "/api/v1/alert-rules/{id}"),
    ("POST", "/api/v1/silences"),
    ("GET", "/api/v1/silences"),
    ("DELETE", "/api/v1/silences/{id}"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alerts/{id}/history"),
    ("POST", "/api/v1/notification-channels"),
    ("GET", "/api/v1/notification-channels"),
    ("GET", "/api/v1/notification-channels/{id}"),
    ("DELETE", "/api/v1/notification-channels/{id}"),
    ("POST", "/api/v1/notification-channels/{id}/test"),
    ("GET", "/api/v1/notifications"),
    // --- forward (data targets) ---
    ("POST", "/api/v1/targets"),
    ("GET", "/api/v1/targets"),
    ("GET", "/api/v1/targets/{id}"),
    ("PATCH", "/api/v1/targets/{id}"),
    ("DELETE", "/api/v1/targets/{id}"),
    ("GET", "/api/v1/targets/{id}/deliveries"),
    ("GET", "/api/v1/targets/{id}/dead-letters"),
    ("DELETE", "/api/v1/targets/{id}/dead-letters"),
    ("POST", "/api/v1/targets/{id}/dead-letters/replay"),
    ("POST", "/api/v1/targets/{id}/test"),
    ("POST", "/api/v1/devices/{id}/up"),
    ("POST", "/api/v1/devices/{id}/keys"),
    ("GET", "/api/v1/devices/{id}/keys"),
    ("DELETE", "/api/v1/devices/{id}/keys/{key}"),
    // --- energy ---
    ("GET", "/api/v1/energy/imports"),
];

pub(crate) fn document() -> Value {
    serde_json::from_str(&DOCUMENT).unwrap()
}

pub(crate) fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_document_is_openapi_3_1_and_lists_every_route() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "bydata");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(operations(&doc), routes);
    // Operation ids are unique (clients generate function names from them).
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), ids.iter().collect::<BTreeSet<_>>().len());
    // Every authenticated operation documents 401, and every error response the shared error shape (InfluxDB's
    // on /query).
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = &op["operationId"];
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(op["responses"]["401"].is_object(), "{id} lacks 401");
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') && status != "413" || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        format!("#/components/schemas/{}", error_shape(id.as_str().unwrap())),
                        "{id} {status}"
                    );
                }
            }
        }
    }
}

struct NoIngest;

impl IngestHooks for NoIngest {
    fn check_codec(&self, _: &str, _: &[Value]) -> Result<Value, HookError> {
        Err(HookError::CodecRejected {
            reason: "no codec sandbox in this test".into(),
        })
    }
    fn test_codec(
        &self,
        _: &str,
        _: u8,
        _: &[u8],
        _: i64,
    ) -> Result<bydata_schemas::CodecTrial, HookError> {
        Err(HookError::Internal {
            message: "no codec sandbox in this test".into(),
        })
    }
    fn integration_status(&self, _: &bydata_schemas::IntegrationId) -> Option<Value> {
        None
    }
    fn redecode(
        &self,
        _: bydata_schemas::DeviceId,
        from: i64,
        to: i64,
        _: bool,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<bydata_schemas::RedecodeReport, HookError>>
                + Send,
        >,
    > {
        Box::pin(async move {
            Ok(bydata_schemas::RedecodeReport {
                codec: String::new(),
                from,
                to,
                uplinks: 0,
                decoded: 0,
                rejected: 0,
                values_written: 0,
                errors: Vec::new(),
            })
        })
    }
}

/// The reverse direction: every documented operation reaches a handler (not the fallback, not 405).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let registry = bydata_store::RedbRegistry::open(
        &dir.path().join("registry.redb"),
        bydata_store::SecretKey::from_bytes([1; 32]),
    )
    .unwrap()
    .shared();
    registry
        .set_bootstrap_token("admin-token", 0)
        .await
        .unwrap();
    let engine = Arc::new(EmbeddedEngine::open(&dir.path().join("series")).unwrap());
    let state = AppState {
        opendata: Arc::new(
            bydata_opendata::Publisher::open(
                bydata_opendata::Deps {
                    registry: registry.clone(),
                    reader: engine.clone(),
                    clock: Arc::new(|| 0),
                },
                dir.path(),
                bydata_opendata::Settings::default(),
                "http://127.0.0.1:8080".into(),
                None,
            )
            .unwrap(),
        ),
        registry: registry.clone(),
        reader: engine.clone(),
        writer: engine,
        write_metrics: Arc::default(),
        clock: Arc::new(|| 0),
        metrics: Arc::default(),
        ingest: Arc::new(NoIngest),
        refusals: Arc::new(bydata_store::refusals::Refusals::new(registry.clone(), 0)),
        http_metrics: Arc::default(),
        series_quota: Arc::default(),
        queries: Arc::default(),
        health: Arc::default(),
        auth_cache: Arc::default(),
        login: None,
        mqtt: Default::default(),
        downlinks: Default::default(),
        notify: bydata_notify::Notify::new(
            bydata_notify::Deps {
                registry: registry.clone(),
                clock: Arc::new(|| 0),
                metrics: Arc::default(),
            },
            bydata_notify::Config::default(),
            &bydata_notify::SmtpConfig::default(),
        )
        .unwrap(),
        targets: Arc::new(crate::targets::NoForwarding),
        push: crate::devices::push::tests::push(dir.path(), registry.clone()),
        dashboard: Arc::default(),
    };
    for (method, path) in operations(&document()) {
        let uri = path.replace("{version}", "1").replace(['{', '}'], "");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .header("authorization", "Bearer admin-token")
            .body(Body::empty())
            .unwrap();
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !body.contains("\\\"this path\\\""),
            "{method} {path}: {body}"
        );
    }
}
