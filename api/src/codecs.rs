//! JavaScript payload codecs: `POST /api/v1/codecs` uploads a script with its example vectors and stores it
//! as the next version of its name — only if every example decodes to what it says; `GET /api/v1/codecs`
//! lists every version, `GET /api/v1/codecs/{name}[/{version}]` shows one with its script.
use crate::auth::{Admin, Reader};
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::{CodecExample, CodecName, format_rfc3339};
use bydata_store::{CodecSummary, StoredCodec};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest script accepted (minified vendor bundles reach ~170 KB).
const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
/// Largest request body: the script JSON-escaped plus its examples.
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most example vectors per upload.
const MAX_EXAMPLES: usize = 200;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCodec {
    /// A slug.
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: CodecName,
    #[serde(default)]
    description: String,
    script: String,
    /// `[{"fport": 1, "bytes_hex": "0100e2", "expected": {"temperature": 22.6}}]`
    examples: Vec<Value>,
}

fn summary_json(c: &CodecSummary) -> Value {
    json!({
        "name": c.name,
        "version": c.version,
        "codec": format!("js:{}@{}", c.name, c.version),
        "description": c.description,
        "sha256": c.sha256,
        "examples": c.examples,
        "script_bytes": c.script_bytes,
        "created_at": format_rfc3339(c.created_at),
    })
}

fn full_json(c: &StoredCodec) -> Value {
    let mut v = summary_json(&CodecSummary::from(c));
    v["script"] = json!(c.script);
    v["examples"] = c.examples.clone();
    v
}

#[utoipa::path(
    post,
    path = "/api/v1/codecs",
    operation_id = "create_codec",
    tag = "codecs",
    summary = "Upload a codec as the next version of its name (every example must decode as stated)",
    request_body = NewCodec,
    responses(
        (status = 201, description = "Stored", body = crate::openapi::CodecDoc),
        (status = 400, description = "Invalid body, script, or an example that does not decode as stated", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Admin(by): Admin,
    crate::body::Body(new): crate::body::Body<NewCodec>,
) -> Result<(StatusCode, Json<Value>), Error> {
    if new.script.len() > MAX_SCRIPT_BYTES {
        return Err(Error::bad(
            "script_too_large",
            format!(
                "the script has {} bytes; at most {MAX_SCRIPT_BYTES} are accepted",
                new.script.len()
            ),
        ));
    }
    if new.examples.is_empty() || new.examples.len() > MAX_EXAMPLES {
        return Err(Error::bad(
            "examples_required",
            format!(
                "give 1 to {MAX_EXAMPLES} examples: [{{\"fport\": 1, \"bytes_hex\": \"…\", \"expected\": {{…}}}}]; \
                 a codec is accepted only when its examples decode to what they say"
            ),
        ));
    }
    if new.description.len() > 2000 {
        return Err(Error::bad(
            "invalid_description",
            "description must be at most 2000 characters",
        ));
    }
    let examples = Value::Array(new.examples);
    let checked: Vec<CodecExample> = serde_json::from_value(examples.clone()).map_err(|e| {
        Error::bad(
            "codec_rejected",
            format!("examples must be [{{\"fport\", \"bytes_hex\", \"expected\"}}]: {e}"),
        )
    })?;
    let hooks = state.ingest.clone();
    let script = new.script;
    let script =
        tokio::task::spawn_blocking(move || hooks.check_codec(&script, &checked).map(|()| script))
            .await
            .map_err(|e| {
                Error::Store(bydata_store::Error::Task {
                    detail: e.to_string(),
                })
            })??;
    let (name, now) = (new.name, (state.clock)());
    let stored = state
        .registry
        .add_codec_version(&name, new.description, script, examples, now)
        .await?;
    tracing::info!(codec = %stored.name, version = stored.version, by = %by.id, "codec version stored");
    Ok((StatusCode::CREATED, Json(full_json(&stored))))
}

#[utoipa::path(
    get,
    path = "/api/v1/codecs",
    operation_id = "list_codecs",
    tag = "codecs",
    summary = "List every codec version",
    responses(
        (status = 200, description = "All versions", body = crate::openapi::CodecListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(State(state): State<AppState>, _: Reader) -> Result<Json<Value>, Error> {
    let all = state.registry.codecs().await?;
    Ok(Json(json!({
        "codecs": all.iter().map(summary_json).collect::<Vec<_>>(),
    })))
}

fn parse_name(name: &str) -> Result<CodecName, Error> {
    CodecName::new(name).map_err(|_| Error::NotFound {
        what: "codec",
        id: name.chars().take(64).collect(),
    })
}

async fn one(state: AppState, name: &str, version: Option<u32>) -> Result<Json<Value>, Error> {
    let name = parse_name(name)?;
    let wanted = name.clone();
    let found = state.registry.codec(&wanted, version).await?;
    let codec = found.ok_or_else(|| Error::NotFound {
        what: "codec",
        id: match version {
            Some(v) => format!("{name}@{v}"),
            None => name.to_string(),
        },
    })?;
    Ok(Json(full_json(&codec)))
}

#[utoipa::path(
    get,
    path = "/api/v1/codecs/{name}",
    operation_id = "get_codec",
    tag = "codecs",
    summary = "A codec's newest version with its script",
    params(
        ("name" = String, Path, description = "Codec name"),
    ),
    responses(
        (status = 200, description = "The codec", body = crate::openapi::CodecDoc),
        (status = 404, description = "No such codec", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _: Reader,
    Path(name): Path<String>,
) -> Result<Json<Value>, Error> {
    one(state, &name, None).await
}

#[utoipa::path(
    get,
    path = "/api/v1/codecs/{name}/{version}",
    operation_id = "get_codec_version",
    tag = "codecs",
    summary = "One codec version with its script",
    params(
        ("name" = String, Path, description = "Codec name"),
        ("version" = u32, Path, description = "Version number"),
    ),
    responses(
        (status = 200, description = "The codec", body = crate::openapi::CodecDoc),
        (status = 404, description = "No such codec version", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_version(
    State(state): State<AppState>,
    _: Reader,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    // Parsed here rather than by `Path<u32>`, whose rejection is plain text instead of our error shape.
    let version: u32 = version.parse().map_err(|_| Error::NotFound {
        what: "codec version",
        id: format!("{name}@{}", version.chars().take(20).collect::<String>()),
    })?;
    one(state, &name, Some(version)).await
}
