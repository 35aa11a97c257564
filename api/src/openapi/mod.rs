//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations so it cannot drift
//! from the router, served at `GET /api/openapi.json` (and rendered as HTML at `GET /api` by `api_page`).
//!
//! Response bodies are built with `json!` in the handlers; the `*Doc` types here mirror that JSON for the
//! document only. They are permissive on purpose (nullable where a value may be missing, extra properties
//! allowed): the document must never contradict a real response.
#![allow(dead_code)] // the `*Doc` types exist for their schemas only

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bydata",
        version = env!("CARGO_PKG_VERSION"),
        description = "bydata's HTTP API: onboarding devices, gateways, codecs, integrations and buildings; \
device status; time-series queries (JSON or CSV); API tokens; and an InfluxDB v2 compatible line-protocol \
write endpoint. Every operation except the public ones needs `Authorization: Bearer <token>`; errors are \
`{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        openapi_json,
        crate::api_page::api_page,
        crate::health,
        crate::metrics,
        crate::dashboard::index,
        crate::dashboard::app_js,
        crate::dashboard::app_css,
        crate::dashboard::devices_geojson,
        crate::devices::create,
        crate::devices::list,
        crate::devices::get,
        crate::devices::update,
        crate::devices::delete,
        crate::devices::rotate,
        crate::devices::status,
        crate::devices::redecode,
        crate::query::latest,
        crate::query::query,
        crate::gateways::create,
        crate::gateways::list,
        crate::gateways::get,
        crate::gateways::delete,
        crate::codecs::create,
        crate::codecs::list,
        crate::codecs::get,
        crate::codecs::get_version,
        crate::integrations::create,
        crate::integrations::list,
        crate::integrations::get,
        crate::integrations::delete,
        crate::buildings::create,
        crate::buildings::list,
        crate::buildings::get,
        crate::buildings::delete,
        crate::buildings::kpis,
        crate::datasets::create,
        crate::datasets::list,
        crate::datasets::get,
        crate::datasets::delete,
        crate::datasets::publish,
        crate::opendata::routes::index,
        crate::opendata::routes::catalog,
        crate::opendata::routes::data_json,
        crate::opendata::routes::dataset,
        crate::opendata::routes::current_file,
        crate::opendata::routes::version_file,
        crate::tokens::create,
        crate::tokens::list,
        crate::tokens::delete,
        crate::write::write,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Common),
    tags(
        (name = "meta", description = "The API document, health and metrics (public)"),
        (name = "dashboard", description = "The web dashboard and its map data"),
        (name = "devices", description = "Onboarding, credentials, status and re-decoding"),
        (name = "query", description = "Reading time series"),
        (name = "gateways", description = "LoRaWAN gateways (Semtech UDP)"),
        (name = "codecs", description = "JavaScript payload codecs"),
        (name = "integrations", description = "Network-server integrations (ChirpStack, The Things Stack)"),
        (name = "buildings", description = "Buildings and their energy KPIs"),
        (name = "datasets", description = "Open datasets and their privacy gate"),
        (name = "opendata", description = "Published open data: catalogs (DCAT-AP-DK, data.json) and versioned files (public)"),
        (name = "tokens", description = "API tokens"),
        (name = "write", description = "InfluxDB v2 compatible line-protocol writes"),
    )
)]
pub(crate) struct ApiDoc;

/// What every failure answers (see `impl IntoResponse for Error`).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct ErrorDetail {
    /// Machine-readable, e.g. `not_found`, `invalid_parameter`, `unauthenticated`.
    code: String,
    /// What went wrong and how to fix it.
    message: String,
}

/// Adds what every operation shares, so the annotations cannot forget it: the security schemes, `401` on
/// every authenticated operation and `500` on every operation that reaches the registry or the store.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer <token>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "influx_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "InfluxDB's `Authorization: Token <token>` (any endpoint accepts it; InfluxDB clients send it)",
            ))),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut op.responses.responses;
                if secured {
                    responses.entry("401".into()).or_insert_with(|| {
                        error("Missing, malformed or unknown token (`WWW-Authenticate: Bearer`)")
                            .into()
                    });
                    responses.entry("500".into()).or_insert_with(|| {
                        error("Internal error; the server log has the details").into()
                    });
                }
            }
        }
    }
}

/// `{"lat", "lon"}` in WGS 84 degrees.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct LocationDoc {
    #[schema(minimum = -90, maximum = 90)]
    lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    lon: f64,
}

/// How a device reaches bydata (`http` is refused for now: on the roadmap).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportDoc {
    Mqtt,
    Lorawan,
    Http,
}

/// How a LoRaWAN device gets its session: its own keys (`abp`), by joining (`otaa`), or an external network
/// server that keeps the keys (`network_server`).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActivationDoc {
    Abp,
    Otaa,
    NetworkServer,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NetworkServerDoc {
    Chirpstack,
    Tts,
}

/// `inbound`: the network server publishes into bydata's broker; `subscribe`: bydata subscribes to its broker.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ModeDoc {
    Inbound,
    Subscribe,
}

/// The Danish electricity price area.
#[derive(ToSchema, serde::Serialize)]
pub(crate) enum PriceAreaDoc {
    DK1,
    DK2,
}

/// A device as the API shows it.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceDoc {
    id: String,
    name: String,
    /// `mqtt`, `lorawan` or `http`.
    transport: String,
    domain: String,
    location: Option<LocationDoc>,
    tags: BTreeMap<String, String>,
    /// `auto`, `senml`, `json`, `cayenne`, `js:{name}` or `js:{name}@{version}`.
    codec: String,
    /// RFC 3339.
    created_at: String,
    /// Where an MQTT device publishes; null for other transports.
    publish_topic: Option<String>,
}

/// A new device: the device plus, once, its MQTT credentials (`mqtt`) or LoRaWAN summary (`lorawan`).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CreatedDeviceDoc {
    #[schema(inline)]
    #[serde(flatten)]
    device: DeviceDoc,
    mqtt: Option<Value>,
    lorawan: Option<Value>,
    note: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceListDoc {
    devices: Vec<DeviceDoc>,
}

/// `{"time", "reason"}`.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct EventDoc {
    time: String,
    reason: String,
}

/// What a device has sent and how decoding went.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceStatusDoc {
    id: String,
    last_seen: Option<String>,
    last_decoded: Option<String>,
    received: u64,
    decoded: u64,
    rejected: u64,
    values_stored: u64,
    last_error: Option<EventDoc>,
    last_warning: Option<EventDoc>,
    /// `[{"codec", "from", "to", "uplinks"}]`
    decoded_by: Vec<Value>,
    /// The gateways that heard the last LoRaWAN uplink, with their signal.
    last_radio: Vec<Value>,
    unverified_attempts: UnverifiedDoc,
}

/// Attempts with the device's identity that could not be verified, since bydata started (kept in memory
/// only: they are not written anywhere, so a stranger cannot fill the disk or the status with them).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct UnverifiedDoc {
    /// MQTT logins with the device's id and a wrong password.
    wrong_password: u64,
    /// LoRaWAN frames or join requests naming the device that could not be verified (a MIC that does not
    /// match, a frame counter too far ahead to check).
    unverified_frames: u64,
    /// When the last one arrived.
    last: Option<String>,
    /// When counting started (bydata's start).
    since: String,
}

/// The answer of `GET /api/v1/query` (JSON).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct QueryAnswerDoc {
    every: Option<String>,
    field: Option<String>,
    #[serde(rename = "fn")]
    func: Option<String>,
    from: String,
    measurement: Option<String>,
    series: Vec<SeriesDoc>,
    to: String,
    tz: String,
    /// The unit, when every series has the same one.
    unit: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct SeriesDoc {
    points: Vec<PointDoc>,
    tags: BTreeMap<String, String>,
    unit: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct PointDoc {
    time: String,
    /// Null for an empty bucket.
    value: Option<f64>,
    /// `true` when `from` or `to` cuts the bucket: it holds only the points inside the range. Absent otherwise.
    partial: Option<bool>,
}

/// A LoRaWAN gateway and what it has sent.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct GatewayDoc {
    eui: String,
    name: String,
    location: Option<LocationDoc>,
    created_at: String,
    /// `{"last_seen", "push_data", "pull_data", "rx_packets", "rx_rejected", "tx_sent", "tx_acked", "last_error"}`
    status: Value,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct GatewayListDoc {
    gateways: Vec<GatewayDoc>,
}

/// One codec version (`script` and the `examples` array only when one version is shown).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CodecDoc {
    name: String,
    version: u32,
    /// How a device names it: `js:{name}@{version}`.
    codec: String,
    description: String,
    sha256: String,
    /// The number of examples in a list, the examples themselves for one version.
    examples: Value,
    script_bytes: u64,
    created_at: String,
    script: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CodecListDoc {
    codecs: Vec<CodecDoc>,
}

/// An integration; `mqtt` for `inbound`, `host`/`port`/`username`/`topic`/`client_id` for `subscribe`.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct IntegrationDoc {
    id: String,
    name: String,
    /// `chirpstack` or `tts`.
    network_server: String,
    /// `inbound` or `subscribe`.
    mode: String,
    created_at: String,
    mqtt: Option<Value>,
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    topic: Option<String>,
    client_id: Option<String>,
    /// What the integration has received and how it went, if known.
    status: Option<Value>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct IntegrationListDoc {
    integrations: Vec<IntegrationDoc>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct BuildingDoc {
    id: String,
    name: String,
    floor_area_m2: f64,
    kind: String,
    location: Option<LocationDoc>,
    /// `DK1` or `DK2`.
    price_area: String,
    created_at: String,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct BuildingListDoc {
    buildings: Vec<BuildingDoc>,
}

/// A building's consumption per bucket, per m², a year earlier and in CO2e.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct KpisDoc {
    building: BuildingDoc,
    measurement: String,
    field: String,
    unit: Option<String>,
    every: String,
    tz: String,
    from: String,
    to: String,
    buckets: Vec<KpiBucketDoc>,
    totals: KpiTotalsDoc,
    /// `{"series", "fallback_g_per_kwh", "hours_on_fallback"}`
    emission_factor: Value,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct KpiBucketDoc {
    time: String,
    consumption: Option<f64>,
    per_m2: Option<f64>,
    last_year: Option<f64>,
    change_pct: Option<f64>,
    co2e_kg: Option<f64>,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct KpiTotalsDoc {
    consumption: Option<f64>,
    per_m2: Option<f64>,
    last_year: Option<f64>,
    co2e_kg: Option<f64>,
}

/// What a token may do: `admin` everything, `write` series, `read` only queries.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleDoc {
    Admin,
    Write,
    Read,
}

/// A token's public description.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct TokenDoc {
    id: String,
    name: String,
    /// `admin`, `write` or `read`.
    role: String,
    /// Unix nanoseconds.
    created_at: i64,
}

/// A new token: the secret is shown only here.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CreatedTokenDoc {
    id: String,
    name: String,
    role: String,
    token: String,
    note: String,
}

/// The document as served: built once.
pub(crate) static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the API document: {e}\"}}"))
});

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    summary = "This API's OpenAPI 3.1 document",
    responses((status = 200, description = "The document", content_type = "application/json", body = Value))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{AppState, HookError, IngestHooks, router};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use bydata_store::{EmbeddedEngine, Registry};
    use http_body_util::BodyExt;
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// Every route `router()` registers. A route added there must be added here and annotated: the test
    /// below then fails until the document lists it.
    const ROUTES: &[(&str, &str)] = &[
        ("GET", "/"),
        ("GET", "/assets/app.js"),
        ("GET", "/assets/app.css"),
        ("GET", "/api"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/v1/devices.geojson"),
        ("GET", "/health"),
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
        ("GET", "/api/v1/query"),
        ("POST", "/api/v1/gateways"),
        ("GET", "/api/v1/gateways"),
        ("GET", "/api/v1/gateways/{eui}"),
        ("DELETE", "/api/v1/gateways/{eui}"),
        ("POST", "/api/v1/codecs"),
        ("GET", "/api/v1/codecs"),
        ("GET", "/api/v1/codecs/{name}"),
        ("GET", "/api/v1/codecs/{name}/{version}"),
        ("POST", "/api/v1/integrations"),
        ("GET", "/api/v1/integrations"),
        ("GET", "/api/v1/integrations/{id}"),
        ("DELETE", "/api/v1/integrations/{id}"),
        ("POST", "/api/v1/buildings"),
        ("GET", "/api/v1/buildings"),
        ("GET", "/api/v1/buildings/{id}"),
        ("DELETE", "/api/v1/buildings/{id}"),
        ("GET", "/api/v1/buildings/{id}/kpis"),
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
        ("POST", "/api/v1/tokens"),
        ("GET", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/{id}"),
        ("POST", "/api/v2/write"),
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
        // Every authenticated operation documents 401, and every error response the shared error shape.
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
                            "#/components/schemas/ErrorBody",
                            "{id} {status}"
                        );
                    }
                }
            }
        }
    }

    struct NoIngest;

    impl IngestHooks for NoIngest {
        fn check_codec(&self, _: &str, _: &Value) -> Result<(), String> {
            Err("no codec sandbox in this test".into())
        }
        fn integration_status(&self, _: &bydata_schemas::IntegrationId) -> Option<Value> {
            None
        }
        fn redecode(
            &self,
            _: bydata_schemas::DeviceId,
            _: i64,
            _: i64,
            _: bool,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, HookError>> + Send>>
        {
            Box::pin(async { Ok(Value::Null) })
        }
    }

    /// The reverse direction: every documented operation reaches a handler (not the fallback, not 405).
    #[tokio::test]
    async fn every_documented_operation_is_routed() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(&dir.path().join("registry.redb")).unwrap());
        registry.set_bootstrap_token("admin-token", 0).unwrap();
        let engine = Arc::new(EmbeddedEngine::open(&dir.path().join("series")).unwrap());
        let state = AppState {
            opendata: Arc::new(
                crate::opendata::publish::OpenData::open(
                    dir.path(),
                    crate::opendata::publish::Settings::default(),
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
            metrics: Arc::new(|_: &mut String| {}),
            ingest: Arc::new(NoIngest),
            refusals: Arc::new(bydata_store::refusals::Refusals::new(registry.clone(), 0)),
            http_metrics: Arc::default(),
            series_quota: Arc::default(),
            queries: Arc::default(),
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
}
