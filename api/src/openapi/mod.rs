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
pub(crate) mod tests;
