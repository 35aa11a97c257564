//! What the router tests share: a state over a temporary data dir, and one request → (status, JSON, headers).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bydata_api::{AppState, router};
use bydata_store::{EmbeddedEngine, Registry};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN: &str = "router-test-admin-token";
pub const NOW: i64 = 1_763_800_000_000_000_000;

pub fn state(dir: &std::path::Path) -> AppState {
    let registry = Arc::new(Registry::open(&dir.join("registry.redb")).unwrap());
    registry.set_bootstrap_token(ADMIN, 0).unwrap();
    let engine = Arc::new(EmbeddedEngine::open(&dir.join("series")).unwrap());
    let registry_for_refusals = registry.clone();
    AppState {
        opendata: Arc::new(
            bydata_api::opendata::publish::OpenData::open(
                dir,
                bydata_api::opendata::publish::Settings::default(),
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
        metrics: Arc::new(|out: &mut String| out.push_str("x 1\n")),
        ingest: Arc::new(FakeIngest),
        refusals: Arc::new(bydata_store::refusals::Refusals::new(
            registry_for_refusals,
            0,
        )),
        http_metrics: Arc::default(),
        series_quota: Arc::default(),
        queries: Arc::default(),
        health: Arc::default(),
    }
}

/// Accepts a script that defines `decodeUplink` and whose examples all expect `{"ok": true}`; the real
/// sandbox is tested in `ingest` and end to end in `tests/`.
struct FakeIngest;

impl bydata_api::IngestHooks for FakeIngest {
    fn check_codec(&self, script: &str, examples: &Value) -> Result<(), String> {
        if !script.contains("decodeUplink") {
            return Err("the script defines no decodeUplink function".into());
        }
        match examples.as_array() {
            Some(all)
                if all
                    .iter()
                    .all(|e| e["expected"] == serde_json::json!({"ok": true})) =>
            {
                Ok(())
            }
            _ => Err("example 0 decoded to something else".into()),
        }
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
        Box<dyn std::future::Future<Output = Result<Value, bydata_api::HookError>> + Send>,
    > {
        Box::pin(async move { Ok(serde_json::json!({"from": from, "to": to})) })
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
