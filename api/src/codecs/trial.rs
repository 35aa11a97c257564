//! `POST /api/v1/codecs/test`: runs a script (or a stored codec) once on given bytes, in the same sandbox and
//! under the same limits as the pipeline, and answers its output and what bydata would store — saving nothing.
//!
//! A codec that does not load, throws, runs out of time or memory, reports errors, or returns what bydata
//! would refuse still answers 200, with `ok: false` and the reason in `errors`: the request was right, and a
//! form wants the outcome in one shape. 400 is for a request that cannot be run (no script, bad hex, …),
//! 404 for a stored codec that does not exist.
use super::{MAX_SCRIPT_BYTES, script_too_large};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::State;
use bydata_ingest::codec::script::{decode_base64, decode_hex};
use bydata_schemas::{CodecName, CodecTrial, format_rfc3339, parse_rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodecTest {
    /// The script to run, as it would be uploaded. Give this or `codec`.
    script: Option<String>,
    /// A stored codec to run instead: `js:NAME` (its newest version) or `js:NAME@VERSION`.
    codec: Option<String>,
    /// The LoRaWAN port the payload came on (default 1, what MQTT devices give).
    #[schema(minimum = 0, maximum = 255)]
    fport: Option<u8>,
    /// The payload as hex (`"0100e5"`; white space between digits is ignored). Give this or `bytes_base64`.
    bytes_hex: Option<String>,
    /// The payload as standard base64, as network servers write it.
    bytes_base64: Option<String>,
    /// When the message was received (RFC 3339; default now): what `Date.now()` gives the codec.
    recv_time: Option<String>,
}

/// What the codec did and what bydata would store.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CodecTestAnswer {
    /// The stored codec that ran (`js:NAME@VERSION`); null for a script given in the request.
    codec: Option<String>,
    fport: u8,
    bytes_hex: String,
    recv_time: String,
    /// Whether bydata would store this message: the codec decoded it and bydata accepts the result.
    ok: bool,
    /// `decodeUplink`'s `data` as JSON (keys set to `undefined` are dropped, as JSON does); null when none.
    #[schema(value_type = Option<Object>)]
    data: Option<Map<String, Value>>,
    /// The codec's warnings, then bydata's (keys it would keep nowhere).
    warnings: Vec<String>,
    /// The codec's own errors; or why it could not run (does not load, threw, time or memory limit); or
    /// why bydata would refuse its result. Empty when `ok`.
    errors: Vec<String>,
    /// The numeric readings bydata would store (booleans as 1 and 0), named as stored.
    readings: Vec<ReadingAnswer>,
    /// The text fields bydata would keep as the device's latest state.
    state: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReadingAnswer {
    measurement: String,
    value: f64,
    /// The unit bydata gives the measurement by its name, if it knows one.
    unit: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/codecs/test",
    operation_id = "test_codec",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "codecs",
    summary = "Run a codec on given bytes and see what bydata would store, saving nothing",
    description = "Runs `script` (or the stored `codec`) once in the codec sandbox, with the limits the \
pipeline uses. A codec that fails (does not load, throws, hits a limit, reports errors) or returns what bydata \
would refuse answers 200 with `ok: false` and the reason in `errors`.",
    request_body = CodecTest,
    responses(
        (status = 200, description = "What the codec did and what would be stored", body = CodecTestAnswer),
        (status = 400, description = "The request cannot be run (script or codec, payload, time)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such stored codec", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn test(
    State(state): State<AppState>,
    by: Principal,
    crate::body::Body(t): crate::body::Body<CodecTest>,
) -> Result<Json<CodecTestAnswer>, Error> {
    let mut problems: Vec<(&str, String)> = Vec::new();
    let bytes = match (&t.bytes_hex, &t.bytes_base64) {
        (Some(hex), None) => decode_hex(hex)
            .map_err(|why| problems.push(("bytes_hex", format!("not hex: {why}"))))
            .ok(),
        (None, Some(b64)) => decode_base64(b64).or_else(|| {
            problems.push(("bytes_base64", "not base64 text".to_owned()));
            None
        }),
        (Some(_), Some(_)) => {
            problems.push((
                "bytes_hex",
                "give bytes_hex or bytes_base64, not both".into(),
            ));
            None
        }
        (None, None) => {
            problems.push((
                "bytes_hex",
                "give the payload as bytes_hex or bytes_base64".into(),
            ));
            None
        }
    };
    let recv_time = match &t.recv_time {
        None => Some((state.clock)()),
        Some(text) => parse_rfc3339(text)
            .map_err(|_| {
                let why = "must be an RFC 3339 time, e.g. \"2026-01-01T00:00:00Z\"";
                problems.push(("recv_time", why.into()));
            })
            .ok(),
    };
    let stored = match (&t.script, &t.codec) {
        (Some(script), None) if script.len() > MAX_SCRIPT_BYTES => {
            return Err(script_too_large(script.len()));
        }
        (Some(_), None) => None,
        (None, Some(codec)) => match parse_codec(codec) {
            Ok(named) => Some(named),
            Err(why) => {
                problems.push(("codec", why));
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push(("codec", "give script or codec, not both".into()));
            None
        }
        (None, None) => {
            let why = "give the script to run, or codec: \"js:NAME@VERSION\" to run a stored one";
            problems.push(("script", why.into()));
            None
        }
    };
    let (Some(bytes), Some(recv_time)) = (bytes, recv_time) else {
        return Err(invalid(&problems));
    };
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let (script, label) = match (t.script, stored) {
        (Some(script), _) => (script, None),
        (None, Some((name, version))) => {
            let codec = super::stored(&state, &by, &name, version).await?;
            let label = format!("js:{}@{}", codec.name, codec.version);
            (codec.script, Some(label))
        }
        (None, None) => return Err(invalid(&problems)),
    };
    let fport = t.fport.unwrap_or(1);
    let hooks = state.ingest.clone();
    let run = bytes.clone();
    let trial =
        tokio::task::spawn_blocking(move || hooks.test_codec(&script, fport, &run, recv_time))
            .await
            .map_err(|e| {
                Error::Store(bydata_store::Error::Task {
                    detail: e.to_string(),
                })
            })??;
    Ok(Json(answer(trial, label, fport, &bytes, recv_time)))
}

/// `js:NAME` or `js:NAME@VERSION`.
fn parse_codec(text: &str) -> Result<(CodecName, Option<u32>), String> {
    let why = || format!("{text:?} is not a JavaScript codec; write js:NAME or js:NAME@VERSION");
    let rest = text.strip_prefix("js:").ok_or_else(why)?;
    let (name, version) = match rest.split_once('@') {
        Some((name, v)) => (name, Some(v.parse::<u32>().map_err(|_| why())?)),
        None => (rest, None),
    };
    Ok((CodecName::new(name).map_err(|_| why())?, version))
}

fn invalid(problems: &[(&str, String)]) -> Error {
    Error::InvalidBody {
        problems: problems
            .iter()
            .map(|(field, message)| crate::body::Problem {
                field: (*field).to_owned(),
                message: message.clone(),
            })
            .collect(),
    }
}

fn answer(
    trial: CodecTrial,
    codec: Option<String>,
    fport: u8,
    bytes: &[u8],
    recv_time: i64,
) -> CodecTestAnswer {
    CodecTestAnswer {
        codec,
        fport,
        bytes_hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        recv_time: format_rfc3339(recv_time),
        ok: trial.ok,
        data: trial.data,
        warnings: trial.warnings,
        errors: trial.errors,
        readings: trial
            .readings
            .into_iter()
            .map(|r| ReadingAnswer {
                measurement: r.measurement,
                value: r.value,
                unit: r.unit,
            })
            .collect(),
        state: trial.state,
    }
}
