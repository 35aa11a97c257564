//! What the router tests share: a state over a temporary data dir, and one request → (status, JSON, headers).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bydata_api::{AppState, router};
use bydata_store::{EmbeddedEngine, RedbRegistry};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN: &str = "router-test-admin-token";
pub const NOW: i64 = 1_763_800_000_000_000_000;

pub async fn state(dir: &std::path::Path) -> AppState {
    let registry = RedbRegistry::open(
        &dir.join("registry.redb"),
        bydata_store::SecretKey::from_bytes([1; 32]),
    )
    .unwrap()
    .shared();
    registry.set_bootstrap_token(ADMIN, 0).await.unwrap();
    let engine = Arc::new(EmbeddedEngine::open(&dir.join("series")).unwrap());
    let registry_for_refusals = registry.clone();
    let registry_for_notify = registry.clone();
    let push = push(dir, registry.clone());
    let state = AppState {
        opendata: Arc::new(
            bydata_opendata::Publisher::open(
                bydata_opendata::Deps {
                    registry: registry.clone(),
                    reader: engine.clone(),
                    clock: Arc::new(|| NOW),
                },
                dir,
                bydata_opendata::Settings::default(),
                "http://127.0.0.1:8080".into(),
                None,
            )
            .unwrap(),
        ),
        registry,
        reader: engine.clone(),
        writer: engine,
        write_metrics: Arc::default(),
        clock: Arc::new(|| NOW),
        metrics: Arc::default(),
        ingest: Arc::new(FakeIngest),
        refusals: Arc::new(bydata_store::refusals::Refusals::new(
            registry_for_refusals,
            0,
        )),
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
                registry: registry_for_notify,
                clock: Arc::new(|| NOW),
                metrics: Arc::default(),
            },
            bydata_notify::Config {
                webhook_private_addresses: true,
                ..bydata_notify::Config::default()
            },
            &bydata_notify::SmtpConfig::default(),
        )
        .unwrap(),
        targets: Arc::new(bydata_api::NoForwarding),
        push,
        dashboard: Arc::default(),
    };
    with_own_metrics(state)
}

/// Devices' HTTP pushes over a journal in `dir`, their passwords checked by a gate of one thread.
pub fn push(
    dir: &std::path::Path,
    registry: bydata_store::SharedRegistry,
) -> Arc<bydata_api::DevicePush> {
    let journal =
        bydata_store::journal::Journal::open(&dir.join("journal"), Default::default()).unwrap();
    let gate = bydata_store::logins::Gate::new(
        registry,
        Arc::new(bydata_api::PushMetrics::default()),
        bydata_store::logins::GateConfig {
            checks: 1,
            queue_wait: std::time::Duration::from_secs(5),
            remember: std::time::Duration::from_secs(60),
        },
    )
    .unwrap();
    Arc::new(bydata_api::DevicePush::new(
        Arc::new(journal),
        &gate,
        64 * 1024,
    ))
}

/// `state` with `/metrics` showing its own collectors (call again after replacing one).
pub fn with_own_metrics(mut state: AppState) -> AppState {
    let mut registry = bydata_admission::metrics::Registry::default();
    bydata_api::register_metrics(
        &mut registry,
        (&state.write_metrics, &state.http_metrics),
        (&state.series_quota, &state.queries),
        &state.health,
    );
    state.metrics = Arc::new(registry);
    state
}

/// Accepts a script that defines `decodeUplink` and whose examples all expect `{"ok": true}`; the real
/// sandbox is tested in `ingest` and end to end in `tests/`.
struct FakeIngest;

impl bydata_api::IngestHooks for FakeIngest {
    fn check_codec(
        &self,
        script: &str,
        examples: &[Value],
    ) -> Result<Value, bydata_api::HookError> {
        let rejected = |reason: &str| bydata_api::HookError::CodecRejected {
            reason: reason.into(),
        };
        if !script.contains("decodeUplink") {
            return Err(rejected("the script defines no decodeUplink function"));
        }
        if examples
            .iter()
            .all(|e| e["expected"] == serde_json::json!({"ok": true}))
        {
            Ok(Value::Array(examples.to_vec()))
        } else {
            Err(rejected("example 0 decoded to something else"))
        }
    }

    fn test_codec(
        &self,
        _: &str,
        _: u8,
        _: &[u8],
        _: i64,
    ) -> Result<bydata_schemas::CodecTrial, bydata_api::HookError> {
        Err(bydata_api::HookError::Internal {
            message: "no codec sandbox in these tests".into(),
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
            dyn std::future::Future<
                    Output = Result<bydata_schemas::RedecodeReport, bydata_api::HookError>,
                > + Send,
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

pub async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value, HeaderMap) {
    let res = router(state.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

/// A request with the admin token, a Content-Type and a body.
pub fn req(method: &str, path: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// A JSON request with the admin token → (status, JSON).
pub async fn send(s: &AppState, method: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let (code, body, _) = call(s, req(method, path, "application/json", &body.to_string())).await;
    (code, body)
}

/// The documented error shape: `{"error": {"code", "message"[, "problems"]}}` and nothing else.
pub fn assert_error_shape(body: &Value, context: &str) {
    let outer = body
        .as_object()
        .unwrap_or_else(|| panic!("{context}: {body}"));
    assert_eq!(
        outer.keys().collect::<Vec<_>>(),
        ["error"],
        "{context}: {body}"
    );
    let e = body["error"].as_object().unwrap();
    assert!(
        e["code"].is_string() && e["message"].is_string(),
        "{context}: {body}"
    );
    for key in e.keys() {
        assert!(
            ["code", "message", "problems"].contains(&key.as_str()),
            "{context}: {body}"
        );
    }
}
