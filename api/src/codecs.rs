//! JavaScript payload codecs: `POST /api/v1/codecs` uploads a script with its example vectors and stores it
//! as the next version of its name — only if every example decodes to what it says (an upload identical to
//! the newest version is that version); `POST /api/v1/codecs/test` runs a script on given bytes without
//! saving anything (`trial`); `GET /api/v1/codecs` lists every version, `GET /api/v1/codecs/{name}[/{version}]`
//! shows one with its script.
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::Role;
use bydata_schemas::{CodecName, format_rfc3339};
use bydata_store::{CodecSummary, StoredCodec};

pub(crate) mod trial;
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest script accepted (minified vendor bundles reach ~170 KB).
pub(crate) const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
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
    /// `[{"description": "…", "fport": 1, "bytes_hex": "0100e2", "expected": {"temperature": 22.6}}]`
    /// (`bytes_base64` instead of `bytes_hex`; an optional RFC 3339 `recv_time`). `expected` is the data object,
    /// or TS013's output `{"data", "errors", "warnings"}`; TTN's device-repository shape `{"description",
    /// "input": {"fPort", "bytes": [1, 2], "recvTime"}, "output": {"data", "errors", "warnings"}}` is accepted
    /// too. Examples may be partial: only the keys they give are checked, on what bydata stores — numbers and
    /// text; nulls and `unit` texts are not compared. Other keys are refused.
    examples: Vec<Value>,
    /// The organisation it belongs to (every version of a name stays in the organisation of its first);
    /// needed only by someone who may upload in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<bydata_schemas::OrgId>,
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
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "codecs",
    summary = "Upload a codec as the next version of its name (every example must decode as stated)",
    description = "Every example is decoded and compared with what it states, on what bydata would store; \
every difference of every example is listed in one answer. An upload identical to the newest version of the \
name (the same script byte for byte, description and examples) creates nothing and answers that version with \
200, so devices following the newest version stay where they are; a changed description or example is a new \
version.",
    request_body = NewCodec,
    responses(
        (status = 201, description = "Stored as a new version", body = crate::openapi::CodecDoc),
        (status = 200, description = "Identical to the newest version, which is answered; nothing stored", body = crate::openapi::CodecDoc),
        (status = 400, description = "Invalid body, script, or examples that do not decode as stated (all listed)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewCodec>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(new.org.clone(), Role::Editor)?;
    if new.script.len() > MAX_SCRIPT_BYTES {
        return Err(script_too_large(new.script.len()));
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
    let hooks = state.ingest.clone();
    let (script, examples) = (new.script, new.examples);
    let (script, examples) = tokio::task::spawn_blocking(move || {
        hooks
            .check_codec(&script, &examples)
            .map(|examples| (script, examples))
    })
    .await
    .map_err(|e| {
        Error::Store(bydata_store::Error::Task {
            detail: e.to_string(),
        })
    })??;
    let (name, now) = (new.name, (state.clock)());
    // The script is not repeated in the log: the store adds its version and SHA-256.
    let change = Change::new("codec.create", format!("codec:{name}"))
        .org(&org)
        .after(json!({"name": name, "description": new.description, "org": org}));
    let added = record(
        &state,
        &by,
        source,
        change,
        state
            .registry
            .add_codec_version(&name, new.description, script, examples, org, now),
    )
    .await?;
    let stored = added.codec;
    if !added.created {
        return Ok((StatusCode::OK, Json(full_json(&stored))));
    }
    tracing::info!(codec = %stored.name, version = stored.version, by = %by.actor, "codec version stored");
    Ok((StatusCode::CREATED, Json(full_json(&stored))))
}

pub(crate) fn script_too_large(size: usize) -> Error {
    Error::bad(
        "script_too_large",
        format!("the script has {size} bytes; at most {MAX_SCRIPT_BYTES} are accepted"),
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/codecs",
    operation_id = "list_codecs",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "codecs",
    summary = "List every codec version",
    responses(
        (status = 200, description = "All versions", body = crate::openapi::CodecListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let all = state.registry.codecs().await?;
    Ok(Json(json!({
        "codecs": all.iter().filter(|c| by.sees(&c.org)).map(summary_json).collect::<Vec<_>>(),
    })))
}

fn parse_name(name: &str) -> Result<CodecName, Error> {
    CodecName::new(name).map_err(|_| Error::NotFound {
        what: "codec",
        id: name.chars().take(64).collect(),
    })
}

async fn one(
    state: AppState,
    by: &Principal,
    name: &str,
    version: Option<u32>,
) -> Result<Json<Value>, Error> {
    let name = parse_name(name)?;
    let codec = stored(&state, by, &name, version).await?;
    Ok(Json(full_json(&codec)))
}

/// A stored codec version (the newest when `version` is `None`) that `by` may see, or 404 naming it (also
/// for another organisation's).
pub(crate) async fn stored(
    state: &AppState,
    by: &Principal,
    name: &CodecName,
    version: Option<u32>,
) -> Result<StoredCodec, Error> {
    let id = match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    };
    let found = state.registry.codec(name, version).await?;
    by.owned(found, |c| &c.org, Role::Viewer, "codec", &id)
}

#[utoipa::path(
    get,
    path = "/api/v1/codecs/{name}",
    operation_id = "get_codec",
    extensions(("x-bydata-policy" = json!("viewer"))),
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
    by: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, Error> {
    one(state, &by, &name, None).await
}

#[utoipa::path(
    get,
    path = "/api/v1/codecs/{name}/{version}",
    operation_id = "get_codec_version",
    extensions(("x-bydata-policy" = json!("viewer"))),
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
    by: Principal,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    // Parsed here rather than by `Path<u32>`, whose rejection is plain text instead of our error shape.
    let version: u32 = version.parse().map_err(|_| Error::NotFound {
        what: "codec version",
        id: format!("{name}@{}", version.chars().take(20).collect::<String>()),
    })?;
    one(state, &by, &name, Some(version)).await
}

/// `GET /api/v1/codecs/test`: the codec named `test` (the path is also `POST`'s codec test; documented as
/// `GET /api/v1/codecs/{name}`).
pub(crate) async fn get_named_test(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    one(state, &by, "test", None).await
}
