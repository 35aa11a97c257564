//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations so it cannot drift
//! from the router, served at `GET /api/openapi.json` (and rendered as HTML at `GET /api` by `api_page`).
//!
//! Response bodies are built with `json!` in the handlers; the `*Doc` types (`docs`) mirror that JSON for the
//! document only.

use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

mod docs;
pub(crate) use docs::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bydata",
        version = env!("CARGO_PKG_VERSION"),
        description = "bydata's HTTP API: onboarding devices, gateways, codecs, integrations and buildings; \
device status; time-series queries (JSON or CSV); API tokens; and an InfluxDB v2 compatible line-protocol \
write endpoint. Every operation except the public ones needs `Authorization: Bearer <token>`. Every error, on \
every path, is `{\"error\": {\"code\", \"message\"}}`: a JSON body with problems answers `400 invalid_body` \
naming each in `problems` (`[{\"field\": \"title.en\", \"message\": \"required\"}]`, every problem of the body \
at once; a body is read as JSON whatever its Content-Type); an unknown path answers `404 not_found`; a method \
the path does not take answers `405 method_not_allowed` with the allowed ones in `Allow` and the message. \
Times in answers are RFC 3339."
    ),
    paths(
        openapi_json,
        crate::api_page::api_page,
        crate::health,
        crate::ready::ready,
        crate::metrics,
        crate::dashboard::index,
        crate::dashboard::app_js,
        crate::dashboard::app_css,
        crate::dashboard::devices_geojson,
        crate::manage::page,
        crate::manage::asset,
        crate::broker_info::broker,
        crate::devices::create,
        crate::devices::bulk::create,
        crate::devices::list,
        crate::devices::get,
        crate::devices::update,
        crate::devices::delete,
        crate::devices::rotate,
        crate::devices::decoding::status,
        crate::devices::decoding::redecode,
        crate::devices::downlinks::enqueue,
        crate::devices::downlinks::list,
        crate::devices::downlinks::cancel,
        crate::query::latest,
        crate::query::query,
        crate::measurements::measurements,
        crate::influxql::query_get,
        crate::influxql::query_post,
        crate::gateways::create,
        crate::gateways::list,
        crate::gateways::get,
        crate::gateways::delete,
        crate::codecs::create,
        crate::codecs::list,
        crate::codecs::get,
        crate::codecs::get_version,
        crate::codecs::trial::test,
        crate::integrations::create,
        crate::integrations::list,
        crate::integrations::get,
        crate::integrations::delete,
        crate::buildings::create,
        crate::buildings::list,
        crate::buildings::get,
        crate::buildings::delete,
        crate::buildings::kpis,
        // --- consumption ---
        crate::buildings::ranking,
        crate::datasets::create,
        crate::datasets::list,
        crate::datasets::get,
        crate::datasets::delete,
        crate::datasets::publish,
        crate::opendata::index,
        crate::opendata::catalog,
        crate::opendata::data_json,
        crate::opendata::dataset,
        crate::opendata::current_file,
        crate::opendata::version_file,
        crate::orgs::create,
        crate::orgs::list,
        crate::orgs::get,
        crate::orgs::delete,
        crate::orgs::members,
        crate::orgs::put_member,
        crate::orgs::delete_member,
        crate::tokens::create,
        crate::tokens::list,
        crate::tokens::delete,
        crate::login::routes::login,
        crate::login::routes::callback,
        crate::login::routes::logout,
        crate::login::routes::me,
        crate::audit::list,
        crate::write::write,
        // --- alerts ---
        crate::alerts::create_rule,
        crate::alerts::list_rules,
        crate::alerts::get_rule,
        crate::alerts::replace_rule,
        crate::alerts::delete_rule,
        crate::alerts::create_silence,
        crate::alerts::list_silences,
        crate::alerts::delete_silence,
        crate::alerts::list_alerts,
        crate::alerts::history,
        crate::channels::create,
        crate::channels::list,
        crate::channels::get,
        crate::channels::delete,
        crate::channels::test,
        crate::channels::notifications,
        // --- forward (data targets) ---
        crate::targets::create,
        crate::targets::list,
        crate::targets::get,
        crate::targets::update,
        crate::targets::delete,
        crate::targets::deliveries,
        crate::targets::dead_letters,
        crate::targets::replay,
        crate::targets::discard,
        crate::targets::test,
        crate::devices::push::push,
        crate::devices::keys::create,
        crate::devices::keys::list,
        crate::devices::keys::revoke,
        // --- energy ---
        crate::energy::imports,
    ),
    components(
        schemas(ErrorBody, ErrorDetail, ProblemDoc, crate::influxql::InfluxError),
        responses(NotFoundResponse, MethodNotAllowedResponse)
    ),
    modifiers(&Common),
    tags(
        (name = "meta", description = "The API document, health and metrics (public)"),
        (name = "dashboard", description = "The web dashboard and its map data"),
        (name = "manage", description = "The management pages (HTML, script, stylesheet)"),
        (name = "devices", description = "Onboarding, credentials, status and re-decoding"),
        (name = "query", description = "Reading time series"),
        (name = "gateways", description = "LoRaWAN gateways (Semtech UDP)"),
        (name = "codecs", description = "JavaScript payload codecs"),
        (name = "integrations", description = "Network-server integrations (ChirpStack, The Things Stack)"),
        (name = "buildings", description = "Buildings and their energy KPIs"),
        (name = "datasets", description = "Open datasets and their privacy gate"),
        (name = "opendata", description = "Published open data: catalogs (DCAT-AP-DK, data.json) and versioned files (public)"),
        (name = "organisations", description = "Organisations and their members"),
        (name = "login", description = "People logging in with the identity provider (OpenID Connect): a session cookie, with X-CSRF-Token for changes"),
        (name = "tokens", description = "API keys: per organisation, with a role, an optional expiry and restriction"),
        (name = "audit", description = "The audit log: every change, who made it, when and from where"),
        (name = "write", description = "InfluxDB v2 compatible line-protocol writes"),
        (name = "alerts", description = "Alert rules, silences, and the alerts the server raises (pending, firing, resolved)"),
        (name = "notifications", description = "Notification channels (signed webhooks, e-mail) and the messages sent to them"),
        (name = "targets", description = "Data targets: readings forwarded at least once to HTTP endpoints and MQTT brokers, with a delivery log, dead letters and test messages"),
        (name = "energy", description = "Danish energy data imports: Energinet's emission factors and Eloverblik meters"),
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
    /// For `invalid_body`: every problem of the body, field by field.
    problems: Option<Vec<ProblemDoc>>,
}

/// One problem of a request body.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct ProblemDoc {
    /// A dotted path into the JSON body (`title.en`, `examples[0].fport`); empty for the body itself.
    field: String,
    /// What is wrong with it, and what is expected.
    message: String,
}

/// Any path no route has: `404 not_found`, the message naming the path and pointing at `/api`.
#[allow(dead_code)] // for the document only
#[derive(utoipa::ToResponse)]
#[response(description = "No route has this path (`not_found`)")]
pub(crate) struct NotFoundResponse(#[to_schema] ErrorBody);

/// A method the path does not take: `405 method_not_allowed`, with `Allow`.
#[allow(dead_code)] // for the document only
#[derive(utoipa::ToResponse)]
#[response(
    description = "The path does not take this method (`method_not_allowed`); `Allow` lists the ones it takes",
    headers(("Allow" = String, description = "The methods the path takes"))
)]
pub(crate) struct MethodNotAllowedResponse(#[to_schema] ErrorBody);

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
        // A device's own credentials, for its HTTP pushes (policy `device`).
        components.add_security_scheme(
            "device_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("HTTP Basic: the device's id and its MQTT password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "device_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Device-Key",
                "A device key (`bdk_…`), in `X-Device-Key` or as `Authorization: Bearer bdk_…`",
            ))),
        );
        let error = |description: &str, shape: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(shape)))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let shape = error_shape(op.operation_id.as_deref().unwrap_or_default());
                let responses = &mut op.responses.responses;
                if secured {
                    responses.entry("401".into()).or_insert_with(|| {
                        error(
                            "Missing, malformed or unknown token (`WWW-Authenticate: Bearer`)",
                            shape,
                        )
                        .into()
                    });
                    responses.entry("500".into()).or_insert_with(|| {
                        error("Internal error; the server log has the details", shape).into()
                    });
                }
            }
        }
    }
}

/// The schema of an operation's error answers: InfluxDB's `{"error": …}` for the InfluxDB 1.x compatible
/// `/query`, bydata's `ErrorBody` everywhere else.
fn error_shape(operation_id: &str) -> &'static str {
    if operation_id.starts_with("influxql_") {
        "InfluxError"
    } else {
        "ErrorBody"
    }
}

/// The document, built once.
static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The document (routes, their policies in `x-bydata-policy`, schemas).
pub(crate) fn document() -> &'static utoipa::openapi::OpenApi {
    &DOC
}

/// The document as served: built once.
pub(crate) static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    DOC.to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the API document: {e}\"}}"))
});

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    extensions(("x-bydata-policy" = json!("public"))),
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
}
