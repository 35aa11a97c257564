//! bydata's HTTP API (axum): onboarding, device status, queries, tokens, health and metrics.
//!
//! Requests are authenticated in `auth` (bearer tokens looked up by hash in the registry), handled in one file
//! per resource, and every failure becomes an HTTP response in exactly one place (`impl IntoResponse for
//! Error`). Reads go through the store's `SeriesReader`, so the API does not know which engine answers.
//! Each handler carries a `#[utoipa::path]` annotation; `openapi` collects them into the document served at
//! `/api/openapi.json` (and as HTML at `/api`), so the document cannot drift from the handlers.
mod api_page;
mod auth;
mod buildings;
mod codecs;
mod dashboard;
mod datasets;
mod devices;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gateways;
mod integrations;
mod openapi;
pub mod opendata;
mod query;
mod tokens;
mod write;

pub use error::Error;
pub use write::Metrics as WriteMetrics;

use axum::Router;
use axum::routing::{get, post};
use bydata_schemas::UnixNanos;
use bydata_store::{Registry, SeriesReader, SeriesWriter};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// API settings (`[api]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub reader: Arc<dyn SeriesReader>,
    pub writer: Arc<dyn SeriesWriter>,
    pub write_metrics: Arc<WriteMetrics>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    /// Published open-data files, the public-id secret and the CKAN client.
    pub opendata: Arc<opendata::publish::OpenData>,
    /// Appends every crate's counters in Prometheus text format (wired by the binary).
    pub metrics: Arc<dyn Fn(&mut String) + Send + Sync>,
    /// What only the ingest side can do (run codecs), wired by the binary so `api` does not depend on it.
    pub ingest: Arc<dyn IngestHooks>,
}

/// The ingest work the API triggers. Implemented in the binary over `bydata-ingest`.
pub trait IngestHooks: Send + Sync {
    /// Loads `script` in the codec sandbox and decodes each example (`[{fport, bytes_hex, expected}]`);
    /// `Err` explains the first failure (a load error, or which example decoded to what instead).
    /// Blocking: called on a blocking thread.
    fn check_codec(&self, script: &str, examples: &serde_json::Value) -> Result<(), String>;

    /// What an integration has received and how it went (connected, counts, last error), if known.
    fn integration_status(&self, id: &bydata_schemas::IntegrationId) -> Option<serde_json::Value>;

    /// Re-decodes a device's stored raw uplinks received in `[from, to)` with its current codec, replacing
    /// the values its codec produced there; answers with a report.
    fn redecode(
        &self,
        device: bydata_schemas::DeviceId,
        from: UnixNanos,
        to: UnixNanos,
        force: bool,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<serde_json::Value, HookError>> + Send>,
    >;
}

/// Why an [`IngestHooks`] call failed: the caller's fault (400) or ours (500, logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    Invalid { code: &'static str, message: String },
    Internal { message: String },
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::app_js))
        .route("/assets/app.css", get(dashboard::app_css))
        .route("/api/v1/devices.geojson", get(dashboard::devices_geojson))
        .route("/api", get(api_page::api_page))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/devices", post(devices::create).get(devices::list))
        .route(
            "/api/v1/devices/{id}",
            get(devices::get)
                .delete(devices::delete)
                .patch(devices::update),
        )
        .route("/api/v1/devices/{id}/credentials", post(devices::rotate))
        .route("/api/v1/devices/{id}/status", get(devices::status))
        .route("/api/v1/devices/{id}/redecode", post(devices::redecode))
        .route("/api/v1/devices/{id}/latest", get(query::latest))
        .route("/api/v1/query", get(query::query))
        .route(
            "/api/v1/gateways",
            post(gateways::create).get(gateways::list),
        )
        .route(
            "/api/v1/gateways/{eui}",
            get(gateways::get).delete(gateways::delete),
        )
        .route(
            "/api/v1/codecs",
            post(codecs::create)
                .layer(axum::extract::DefaultBodyLimit::max(codecs::MAX_BODY_BYTES))
                .get(codecs::list),
        )
        .route("/api/v1/codecs/{name}", get(codecs::get))
        .route("/api/v1/codecs/{name}/{version}", get(codecs::get_version))
        .route(
            "/api/v1/integrations",
            post(integrations::create).get(integrations::list),
        )
        .route(
            "/api/v1/integrations/{id}",
            get(integrations::get).delete(integrations::delete),
        )
        .route(
            "/api/v1/buildings",
            post(buildings::create).get(buildings::list),
        )
        .route(
            "/api/v1/buildings/{id}",
            get(buildings::get).delete(buildings::delete),
        )
        .route("/api/v1/buildings/{id}/kpis", get(buildings::kpis))
        .route(
            "/api/v1/datasets",
            post(datasets::create).get(datasets::list),
        )
        .route(
            "/api/v1/datasets/{id}",
            get(datasets::get).delete(datasets::delete),
        )
        .route("/api/v1/datasets/{id}/publish", post(datasets::publish))
        .route("/opendata", get(opendata::routes::index))
        .route("/opendata/catalog", get(opendata::routes::catalog))
        .route("/opendata/data.json", get(opendata::routes::data_json))
        .route("/opendata/datasets/{id}", get(opendata::routes::dataset))
        .route(
            "/opendata/datasets/{id}/{period}/{file}",
            get(opendata::routes::current_file),
        )
        .route(
            "/opendata/datasets/{id}/{period}/{version}/{file}",
            get(opendata::routes::version_file),
        )
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/api/v1/tokens/{id}", axum::routing::delete(tokens::delete))
        .route(
            "/api/v2/write",
            post(write::write).layer(axum::extract::DefaultBodyLimit::max(write::MAX_BODY_BYTES)),
        )
        .fallback(|| async {
            Error::NotFound {
                what: "route",
                id: "this path".into(),
            }
        })
        .with_state(state)
}

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "meta",
    summary = "Liveness: answers while the server runs",
    responses(
        (status = 200, description = "Running", body = Value),
    ),
)]
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    summary = "Counters in Prometheus text format",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
    ),
)]
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    let mut out = String::new();
    (state.metrics)(&mut out);
    state.write_metrics.render(&mut out);
    out
}

/// Errors starting the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Binds the listener now (so a busy port fails `serve` at once) and returns the server future, which runs
/// until `shutdown` is cancelled and in-flight requests are done.
pub async fn bind(
    config: Config,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), ServeError>>, ServeError> {
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.http_addr,
            source,
        })?;
    let app = router(state);
    Ok(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(ServeError::Serve)
    })
}
