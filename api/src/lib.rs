//! bydata's HTTP API (axum): onboarding, device status, queries, tokens, health and metrics, and the thin
//! handlers of open data (whose domain is the crate `bydata-opendata`).
//!
//! Requests are authenticated in `auth` (bearer tokens looked up by hash in the registry), handled in one file
//! per resource, and every failure becomes an HTTP response in exactly one place (`impl IntoResponse for
//! Error`). Reads go through the store's `SeriesReader`, so the API does not know which engine answers.
//! Each handler carries a `#[utoipa::path]` annotation; `openapi` collects them into the document served at
//! `/api/openapi.json` (and as HTML at `/api`), so the document cannot drift from the handlers.
mod alerts;
mod api_page;
mod audit;
mod auth;
mod body;
mod broker_info;
mod buildings;
mod channels;
mod codecs;
mod dashboard;
mod datasets;
mod devices;
// --- energy ---
mod energy;
mod error;
mod fallback;
#[doc(hidden)]
pub mod fuzzing;
mod gateways;
mod influxql;
mod integrations;
mod login;
mod manage;
mod measurements;
mod oidc;
mod openapi;
mod opendata;
mod orgs;
mod owned;
mod query;
mod ready;
mod server;
mod targets;
mod tokens;
mod write;

pub use auth::AuthCache;
pub use auth::keys::ClientAddr;
pub use broker_info::MqttPorts;
pub use bydata_ingest::series_quota::SeriesQuota;
pub use bydata_store::query::{QueryGate, QueryLimits};
pub use dashboard::{DashboardConfig, TileGrid, TileSource, TileUrl, TileUrlError};
pub use devices::downlinks::{Downlinks, MAX_LORAWAN_DOWNLINK_BYTES, Wake};
pub use devices::push::{DevicePush, PushMetrics};
pub use error::Error;
pub use login::Login;
pub use oidc::{ClientAuth, Identity, OidcConfig, OidcError, Refusal, RoleMapping, Secret};
pub use server::Metrics as HttpMetrics;
pub use targets::{HookFuture, NoForwarding, TargetHooks};
pub use write::Metrics as WriteMetrics;

use axum::Router;
use axum::routing::{get, post};
use bydata_schemas::UnixNanos;
use bydata_store::{SeriesReader, SeriesWriter, SharedRegistry};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// API settings (`[api]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API listens, or `off`.
    #[serde(with = "bydata_schemas::listen")]
    pub http_addr: Option<SocketAddr>,
    /// Where the API listens over HTTPS (needs `[tls]`), or `off`.
    #[serde(with = "bydata_schemas::listen")]
    pub https_addr: Option<SocketAddr>,
    /// Most simultaneous HTTP connections (lowered at start if the process's file limit cannot hold them).
    pub max_connections: usize,
    /// Most simultaneous HTTP connections from one address (IPv6: one /64).
    pub max_connections_per_source: usize,
    /// How long a client may take to send a request's headers, counted from when bydata waits for them (so
    /// also how long an idle keep-alive connection stays open), in milliseconds.
    pub header_timeout_ms: u64,
    /// How long a write to a client may make no progress (a client that stopped reading) before the
    /// connection is closed, in seconds.
    pub idle_timeout_secs: u64,
    /// Longest a request may take, body included, in seconds (re-decoding and publishing on demand, which
    /// are admin work that may take longer, are exempt).
    pub request_timeout_secs: u64,
    /// Most series one API token may add by writing line protocol; a write that would add more is refused.
    pub max_series_per_token: u64,
    /// Limits on queries (`[api.query]`).
    pub query: QueryLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            https_addr: None,
            max_connections: 1024,
            max_connections_per_source: 128,
            header_timeout_ms: 10_000,
            idle_timeout_secs: 60,
            request_timeout_secs: 60,
            max_series_per_token: bydata_ingest::series_quota::DEFAULT_MAX_SERIES_PER_TOKEN,
            query: QueryLimits::default(),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub registry: SharedRegistry,
    pub reader: Arc<dyn SeriesReader>,
    pub writer: Arc<dyn SeriesWriter>,
    pub write_metrics: Arc<WriteMetrics>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    /// Open data: publishing, what is published, withdrawing (the scheduler holds the same publisher).
    pub opendata: Arc<bydata_opendata::Publisher>,
    /// Every part's metrics, the API's own included (see [`register_metrics`]): one registry, filled by the
    /// binary, encoded at `/metrics`.
    pub metrics: Arc<bydata_admission::metrics::Registry>,
    /// What only the ingest runtime can do (run codecs), wired by the binary so `api` needs none of its state.
    pub ingest: Arc<dyn IngestHooks>,
    /// The edges' refusals (a device's unauthenticated attempts are shown on its status from here).
    pub refusals: Arc<bydata_store::refusals::Refusals>,
    /// Counters of the HTTP server itself.
    pub http_metrics: Arc<HttpMetrics>,
    /// Series each token may still add (`SeriesQuota::new(config.max_series_per_token)`).
    pub series_quota: Arc<SeriesQuota>,
    /// Query limits, the heavy-query semaphore and the refusal counters (`QueryGate::new(config.query)`).
    pub queries: Arc<QueryGate>,
    /// The supervised components, the ingest lag, free disk, and whether new data is accepted.
    pub health: Arc<bydata_store::health::Health>,
    /// Failed authentications per source, when keys were last used, which organisation owns which device
    /// (`AuthCache::default()`).
    pub auth_cache: Arc<AuthCache>,
    /// Logging in with the identity provider (`[oidc]`); `None`: API keys only.
    pub login: Option<Arc<Login>>,
    /// Where devices connect (shown to people onboarding them).
    pub mqtt: MqttPorts,
    /// Downlink size limits and the MQTT delivery's wake-up (`Downlinks::default()`: no broker to wake).
    pub downlinks: devices::downlinks::Downlinks,
    /// Notifications: channels' test action (the binary runs the same service's delivery loop).
    pub notify: bydata_notify::Notify,
    /// Data targets: what only the forwarder can do (status, test message, wake-ups), wired by the binary.
    pub targets: Arc<dyn TargetHooks>,
    /// Devices pushing uplinks over HTTP: the journal, the broker's login gate, its size limit.
    pub push: Arc<DevicePush>,
    /// The dashboard's settings (`[dashboard]`: the map's tile source).
    pub dashboard: Arc<DashboardConfig>,
}

/// The ingest work the API triggers. Implemented in the binary over `bydata-ingest`.
pub trait IngestHooks: Send + Sync {
    /// Reads the examples (bydata's or TTN's shape), loads `script` in the codec sandbox and decodes each;
    /// answers the examples as stored (bydata's shape, only what is checked), or `Err` listing every problem
    /// (a load error, or every difference of every example). Blocking: called on a blocking thread.
    fn check_codec(
        &self,
        script: &str,
        examples: &[serde_json::Value],
    ) -> Result<serde_json::Value, HookError>;

    /// Runs `script` once on `bytes` (fPort `fport`, received at `recv_time`) in the codec sandbox and says
    /// what bydata would store, saving nothing. The codec's failures are part of the answer; `Err` only when
    /// the sandbox itself failed. Blocking: called on a blocking thread.
    fn test_codec(
        &self,
        script: &str,
        fport: u8,
        bytes: &[u8],
        recv_time: UnixNanos,
    ) -> Result<bydata_schemas::CodecTrial, HookError>;

    /// Runs `script`'s `encodeDownlink({data, fPort})` in the codec sandbox: the bytes and FPort, or
    /// `CodecRejected` with why (no such function, it threw, a limit, its own errors). Blocking: called on a
    /// blocking thread. The default runs it under the sandbox's default limits; the binary's uses the
    /// configured ones.
    fn encode_downlink(
        &self,
        script: &str,
        fport: u8,
        data: &serde_json::Value,
    ) -> Result<bydata_ingest::codec::script::Encoded, HookError> {
        use bydata_ingest::codec::script::{Limits, ScriptCodec, ScriptError};
        let rejected = |e: ScriptError| match e {
            ScriptError::Internal { reason } => HookError::Internal { message: reason },
            e => HookError::CodecRejected {
                reason: e.to_string(),
            },
        };
        ScriptCodec::new(script, Limits::default())
            .map_err(rejected)?
            .encode_downlink(fport, data)
            .map_err(rejected)
    }

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
        Box<
            dyn std::future::Future<Output = Result<bydata_schemas::RedecodeReport, HookError>>
                + Send,
        >,
    >;
}

/// Why an [`IngestHooks`] call failed, in words for the client: the caller's fault (400) or ours (500,
/// logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The codec's script does not load, or an example does not decode to what it says.
    #[error("{reason}")]
    CodecRejected { reason: String },
    /// The examples cannot be read: each problem at its path in the body (`examples[1].input.bytes`).
    #[error("the examples cannot be read")]
    InvalidExamples { problems: Vec<(String, String)> },
    /// A re-decode of the device is running; one at a time per device.
    #[error("a re-decode of {device} is running; try again when it is done")]
    RedecodeRunning { device: bydata_schemas::DeviceId },
    /// The re-decode was refused (its range, its size, the device, decode failures, ingest behind).
    #[error("{reason}")]
    RedecodeRefused { reason: String },
    #[error("{message}")]
    Internal { message: String },
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// All routes. Every request has `timeout` to finish (body included), but for the two admin operations
/// that may legitimately run longer (re-decoding a device's history, publishing a dataset on demand).
pub fn router(state: AppState) -> Router {
    router_with_timeout(
        state,
        Duration::from_secs(Config::default().request_timeout_secs),
    )
}

fn router_with_timeout(state: AppState, timeout: Duration) -> Router {
    let policy = axum::middleware::from_fn_with_state(state.clone(), auth::policy::authorize);
    let long_running = Router::new()
        .route(
            "/api/v1/devices/{id}/redecode",
            post(devices::decoding::redecode),
        )
        .route("/api/v1/datasets/{id}/publish", post(datasets::publish))
        .route_layer(policy.clone());
    Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::app_js))
        .route("/assets/app.css", get(dashboard::app_css))
        .route("/api/v1/devices.geojson", get(dashboard::devices_geojson))
        .route("/manage", get(manage::page))
        .route("/manage/assets/{file}", get(manage::asset))
        .route("/api/v1/broker", get(broker_info::broker))
        .route("/api", get(api_page::api_page))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/health", get(health))
        .route("/ready", get(ready::ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/devices", post(devices::create).get(devices::list))
        .route(
            "/api/v1/devices/bulk",
            post(devices::bulk::create).layer(axum::extract::DefaultBodyLimit::max(
                devices::bulk::MAX_BYTES + 4096,
            )),
        )
        .route(
            "/api/v1/devices/{id}",
            get(devices::get)
                .delete(devices::delete)
                .patch(devices::update),
        )
        .route("/api/v1/devices/{id}/credentials", post(devices::rotate))
        .route(
            "/api/v1/devices/{id}/status",
            get(devices::decoding::status),
        )
        .route("/api/v1/devices/{id}/latest", get(query::latest))
        .route(
            "/api/v1/devices/{id}/downlinks",
            post(devices::downlinks::enqueue).get(devices::downlinks::list),
        )
        .route(
            "/api/v1/devices/{id}/downlinks/{dl}",
            axum::routing::delete(devices::downlinks::cancel),
        )
        // The body is read by the handler itself, up to the broker's max_message_bytes.
        .route(
            "/api/v1/devices/{id}/up",
            post(devices::push::push).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/devices/{id}/keys",
            post(devices::keys::create).get(devices::keys::list),
        )
        .route(
            "/api/v1/devices/{id}/keys/{key}",
            axum::routing::delete(devices::keys::revoke),
        )
        .route("/api/v1/query", get(query::query))
        .route("/api/v1/measurements", get(measurements::measurements))
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
        .route(
            "/api/v1/codecs/test",
            post(codecs::trial::test)
                .layer(axum::extract::DefaultBodyLimit::max(codecs::MAX_BODY_BYTES))
                // A codec may be named `test`: this path still shows it.
                .get(codecs::get_named_test),
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
        // --- consumption ---
        .route("/api/v1/buildings/ranking", get(buildings::ranking))
        .route(
            "/api/v1/datasets",
            post(datasets::create).get(datasets::list),
        )
        .route(
            "/api/v1/datasets/{id}",
            get(datasets::get).delete(datasets::delete),
        )
        .route("/opendata", get(opendata::index))
        .route("/opendata/catalog", get(opendata::catalog))
        .route("/opendata/data.json", get(opendata::data_json))
        .route("/opendata/datasets/{id}", get(opendata::dataset))
        .route(
            "/opendata/datasets/{id}/{period}/{file}",
            get(opendata::current_file),
        )
        .route(
            "/opendata/datasets/{id}/{period}/{version}/{file}",
            get(opendata::version_file),
        )
        .route("/api/v1/orgs", post(orgs::create).get(orgs::list))
        .route("/api/v1/orgs/{id}", get(orgs::get).delete(orgs::delete))
        .route("/api/v1/orgs/{id}/members", get(orgs::members))
        .route(
            "/api/v1/orgs/{id}/members/{member}",
            axum::routing::put(orgs::put_member).delete(orgs::delete_member),
        )
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/api/v1/tokens/{id}", axum::routing::delete(tokens::delete))
        .route("/auth/login", get(login::routes::login))
        .route("/auth/callback", get(login::routes::callback))
        .route("/auth/logout", post(login::routes::logout))
        .route("/auth/me", get(login::routes::me))
        .route("/api/v1/audit", get(audit::list))
        // --- alerts ---
        .route(
            "/api/v1/alert-rules",
            post(alerts::create_rule).get(alerts::list_rules),
        )
        .route(
            "/api/v1/alert-rules/{id}",
            get(alerts::get_rule)
                .put(alerts::replace_rule)
                .delete(alerts::delete_rule),
        )
        .route(
            "/api/v1/silences",
            post(alerts::create_silence).get(alerts::list_silences),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(alerts::delete_silence),
        )
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/{id}/history", get(alerts::history))
        .route(
            "/api/v1/notification-channels",
            post(channels::create).get(channels::list),
        )
        .route(
            "/api/v1/notification-channels/{id}",
            get(channels::get).delete(channels::delete),
        )
        .route(
            "/api/v1/notification-channels/{id}/test",
            post(channels::test),
        )
        .route("/api/v1/notifications", get(channels::notifications))
        // --- forward (data targets) ---
        .route("/api/v1/targets", post(targets::create).get(targets::list))
        .route(
            "/api/v1/targets/{id}",
            get(targets::get)
                .patch(targets::update)
                .delete(targets::delete),
        )
        .route("/api/v1/targets/{id}/deliveries", get(targets::deliveries))
        .route(
            "/api/v1/targets/{id}/dead-letters",
            get(targets::dead_letters).delete(targets::discard),
        )
        .route(
            "/api/v1/targets/{id}/dead-letters/replay",
            post(targets::replay),
        )
        .route("/api/v1/targets/{id}/test", post(targets::test))
        // --- energy ---
        .route("/api/v1/energy/imports", get(energy::imports))
        .route(
            "/api/v2/write",
            post(write::write).layer(axum::extract::DefaultBodyLimit::max(write::MAX_BODY_BYTES)),
        )
        // --- influxql ---
        .route(
            "/query",
            get(influxql::query_get).post(influxql::query_post),
        )
        .route_layer(policy)
        .layer(axum::middleware::from_fn_with_state(
            (timeout, state.http_metrics.clone()),
            deadline,
        ))
        .merge(long_running)
        .fallback(fallback::no_route)
        .layer(axum::middleware::from_fn(fallback::in_our_shape))
        // --- influxql --- (outermost: InfluxDB clients' credentials in, InfluxDB's error shape out)
        .layer(axum::middleware::from_fn(influxql::compat::compat))
        .with_state(state)
}

/// Ends a request that takes longer than its deadline with a 503 (and counts it).
async fn deadline(
    axum::extract::State((timeout, metrics)): axum::extract::State<(Duration, Arc<HttpMetrics>)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics
                .request_timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            axum::response::IntoResponse::into_response(Error::Unavailable {
                code: "request_timeout",
                message: format!(
                    "the request took longer than {} s and was stopped; send its body faster, or ask for less",
                    timeout.as_secs()
                ),
                retry_after_secs: None,
            })
        }
    }
}

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "meta",
    summary = "Liveness: answers while the server runs (readiness is `/ready`)",
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
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "meta",
    summary = "Counters in Prometheus text format",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
    ),
)]
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    bydata_admission::metrics::encode(&state.metrics)
}

/// Registers the API's own collectors (writes, the HTTP edge, the series quota, queries, readiness) in
/// `registry`.
pub fn register_metrics(
    registry: &mut bydata_admission::metrics::Registry,
    (write, http): (&Arc<WriteMetrics>, &Arc<HttpMetrics>),
    (quota, queries): (&Arc<SeriesQuota>, &Arc<QueryGate>),
    health: &Arc<bydata_store::health::Health>,
) {
    registry.register_collector(Box::new(ready::ReadinessMetrics(health.clone())));
    registry.register_collector(Box::new(write.clone()));
    registry.register_collector(Box::new(http.clone()));
    registry.register_collector(Box::new(quota.clone()));
    registry.register_collector(Box::new(queries.clone()));
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
    #[error("cannot start the HTTP server: {0}")]
    Config(String),
}

/// Binds the listeners now (so a busy port fails `serve` at once) and returns the server future, which runs
/// until `shutdown` is cancelled and in-flight requests are done. `https_addr` needs `tls`.
pub async fn bind(
    config: Config,
    state: AppState,
    tls: Option<bydata_admission::tls::Tls>,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), ServeError>>, ServeError> {
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let plain = match config.http_addr {
        Some(addr) => Some(server::Listener {
            tcp: bind(addr).await?,
            tls: None,
        }),
        None => None,
    };
    let secure = match (config.https_addr, &tls) {
        (Some(addr), Some(tls)) => {
            let acceptor = tls
                .acceptor(&[b"http/1.1"])
                .map_err(|e| ServeError::Config(e.to_string()))?;
            Some(server::Listener {
                tcp: bind(addr).await?,
                tls: Some(acceptor),
            })
        }
        (Some(_), None) => {
            return Err(ServeError::Config(
                "https_addr is set but there is no [tls] section with cert_pem and key_pem".into(),
            ));
        }
        (None, _) => None,
    };
    if plain.is_none() && secure.is_none() {
        return Err(ServeError::Config(
            "no HTTP listener: http_addr and https_addr are both off".into(),
        ));
    }
    let metrics = state.http_metrics.clone();
    let app = router_with_timeout(
        state,
        Duration::from_secs(config.request_timeout_secs.max(1)),
    );
    Ok(async move {
        server::serve(plain, secure, app, config, metrics, shutdown).await;
        Ok(())
    })
}
