//! A device's downlink queue: `POST /api/v1/devices/{id}/downlinks` queues bytes (base64 or hex) or JSON that
//! the device's JavaScript codec turns into bytes with `encodeDownlink`; `GET` lists the open ones and the
//! recent history with their state; `DELETE …/{dl}` cancels one still queued. The queue itself is the
//! registry's (`RegistryPort::enqueue_downlink`); the edges deliver it (MQTT: the broker's `downlink`, LoRaWAN:
//! the next class A receive window). Enqueueing wakes the MQTT delivery through [`Downlinks::wake`].
use super::visible;
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_ingest::codec::script::{decode_base64, decode_hex};
use bydata_schemas::{
    Codec, DeviceId, Downlink, DownlinkState, DownlinkUpdate, NewDownlink, Role, Transport,
    format_rfc3339,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// The most bytes a LoRaWAN downlink may carry (the largest application payload of any EU868 data rate;
/// whether it fits the data rate of the moment is the LoRaWAN edge's to check when it sends it).
pub const MAX_LORAWAN_DOWNLINK_BYTES: usize = 242;

/// What the API needs to know about downlinks beyond the registry: size limits per transport and how to tell
/// the MQTT delivery that a device has a new downlink.
#[derive(Clone)]
pub struct Downlinks {
    /// The most bytes an MQTT downlink may carry (the broker's `max_message_bytes`, less the topic).
    pub max_mqtt_bytes: usize,
    pub max_lorawan_bytes: usize,
    /// Called after a downlink was queued for an MQTT device, so a connected device gets it at once.
    pub wake: Option<Arc<dyn Fn(&DeviceId) + Send + Sync>>,
}

impl Default for Downlinks {
    fn default() -> Self {
        Self {
            max_mqtt_bytes: 64 * 1024 - 256,
            max_lorawan_bytes: MAX_LORAWAN_DOWNLINK_BYTES,
            wake: None,
        }
    }
}

impl std::fmt::Debug for Downlinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downlinks")
            .field("max_mqtt_bytes", &self.max_mqtt_bytes)
            .field("max_lorawan_bytes", &self.max_lorawan_bytes)
            .finish_non_exhaustive()
    }
}

/// A downlink to queue: `fport` and exactly one of `bytes` (base64), `hex` or `json`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownlinkRequest {
    /// The application port, 1 to 223 (MQTT devices get it as the topic's last level).
    #[schema(minimum = 1, maximum = 223)]
    pub(crate) fport: i64,
    /// The payload as standard base64 (`"AQI="`).
    pub(crate) bytes: Option<String>,
    /// The payload as hex (`"0102"`; white space between digits is ignored).
    pub(crate) hex: Option<String>,
    /// What the device's JavaScript codec's `encodeDownlink({data, fPort})` turns into the payload.
    #[schema(value_type = Option<Object>)]
    pub(crate) json: Option<Value>,
    /// Whether the device must acknowledge it (retried until it does). Default false.
    #[serde(default)]
    pub(crate) confirmed: bool,
}

/// What a request asks to send, once read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    Bytes(Vec<u8>),
    Json(Value),
}

/// Reads a request: the FPort's range and one payload, decoded. Every problem named (`invalid_body`).
pub(crate) fn read_request(r: &DownlinkRequest) -> Result<(u8, Payload), Error> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(crate::body::Problem {
            field: field.to_owned(),
            message,
        });
    };
    let fport = match u8::try_from(r.fport) {
        Ok(p) if (1..=223).contains(&p) => Some(p),
        _ => {
            problem(
                "fport",
                format!(
                    "{} is not an application port; use 1 to 223 (0 and 224–255 are LoRaWAN's own)",
                    r.fport
                ),
            );
            None
        }
    };
    let given = [r.bytes.is_some(), r.hex.is_some(), r.json.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    let payload = match (&r.bytes, &r.hex, &r.json) {
        _ if given > 1 => {
            problem(
                "",
                "give one of bytes (base64), hex or json, not several".to_owned(),
            );
            None
        }
        (Some(b64), None, None) => decode_base64(b64).map(Payload::Bytes).or_else(|| {
            problem(
                "bytes",
                "must be standard base64 text, e.g. \"AQI=\"".to_owned(),
            );
            None
        }),
        (None, Some(hex), None) => match decode_hex(hex) {
            Ok(bytes) => Some(Payload::Bytes(bytes)),
            Err(why) => {
                problem("hex", format!("not hex: {why}"));
                None
            }
        },
        (None, None, Some(json)) => Some(Payload::Json(json.clone())),
        _ => {
            problem(
                "",
                "give the payload as bytes (base64), hex, or json for the device's codec to encode"
                    .to_owned(),
            );
            None
        }
    };
    match (fport, payload) {
        (Some(fport), Some(payload)) if problems.is_empty() => Ok((fport, payload)),
        _ => Err(Error::InvalidBody { problems }),
    }
}

/// A downlink as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DownlinkDoc {
    id: u64,
    device: String,
    fport: u8,
    /// The payload, standard base64.
    bytes: String,
    /// The payload, hex.
    hex: String,
    confirmed: bool,
    /// `queued`, `sent`, `acknowledged` or `failed`.
    state: String,
    /// How many times it was sent.
    attempts: u32,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    /// Why it failed (or why its last attempt did).
    error: Option<String>,
    /// How it was last sent: `mqtt` or `gateway:{eui}`.
    via: Option<String>,
    /// The LoRaWAN downlink frame counter it was last sent with.
    fcnt: Option<u32>,
    /// The gateway's TX_ACK of its last transmission.
    tx_ack: Option<String>,
    /// The codec's warnings when it encoded JSON (only in the answer to the POST).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl From<&Downlink> for DownlinkDoc {
    fn from(d: &Downlink) -> Self {
        use base64::Engine as _;
        Self {
            id: d.id,
            device: d.device.to_string(),
            fport: d.fport,
            bytes: base64::engine::general_purpose::STANDARD.encode(&d.bytes),
            hex: d.bytes.iter().map(|b| format!("{b:02x}")).collect(),
            confirmed: d.confirmed,
            state: d.state.to_string(),
            attempts: d.attempts,
            created_at: format_rfc3339(d.created_at),
            updated_at: format_rfc3339(d.updated_at),
            error: d.error.clone(),
            via: d.via.clone(),
            fcnt: d.fcnt,
            tx_ack: d.tx_ack.clone(),
            warnings: Vec::new(),
        }
    }
}

/// A device's downlinks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DownlinkList {
    device: String,
    /// Open downlinks (queued, or sent and awaiting acknowledgement) and the most recent finished ones,
    /// newest first.
    downlinks: Vec<DownlinkDoc>,
    /// How many are open now.
    open: usize,
    /// The most that may be open at once; a further POST is refused until one finishes or is cancelled.
    max_open: usize,
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/downlinks",
    operation_id = "enqueue_downlink",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Queue a downlink for a device: bytes (base64 or hex) on an FPort, or JSON its codec encodes",
    description = "MQTT devices get it on `devices/{id}/down/{fport}` (raw bytes) once connected and \
subscribed; LoRaWAN devices in their next class A receive window. `json` goes through the device's JavaScript \
codec's `encodeDownlink({data, fPort})`; a codec without one answers 422.",
    params(("id" = String, Path, description = "Device id")),
    request_body = DownlinkRequest,
    responses(
        (status = 201, description = "Queued", body = DownlinkDoc),
        (status = 400, description = "Invalid body: FPort, payload, size", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an editor token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
        (status = 409, description = "The device's queue is full", body = crate::openapi::ErrorBody),
        (status = 422, description = "JSON the device's codec cannot encode (no encodeDownlink, or it failed)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn enqueue(
    State(state): State<AppState>,
    by: Principal,
    source: crate::audit::Source,
    Path(id): Path<String>,
    crate::body::Body(request): crate::body::Body<DownlinkRequest>,
) -> Result<(StatusCode, Json<DownlinkDoc>), Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let (mut fport, payload) = read_request(&request)?;
    let limit = match device.transport {
        Transport::Mqtt => state.downlinks.max_mqtt_bytes,
        Transport::Lorawan => state.downlinks.max_lorawan_bytes,
        Transport::Http => {
            return Err(Error::bad(
                "no_downlink_path",
                format!(
                    "device {} pushes over HTTP, which has no way to receive downlinks; \
                     downlinks go to MQTT and LoRaWAN devices",
                    device.id
                ),
            ));
        }
    };
    let (bytes, warnings) = match payload {
        Payload::Bytes(bytes) => (bytes, Vec::new()),
        Payload::Json(data) => {
            let encoded = encode(&state, &device.codec, &device.id, fport, data).await?;
            fport = encoded.fport;
            (encoded.bytes, encoded.warnings)
        }
    };
    if bytes.len() > limit {
        return Err(Error::bad(
            "downlink_too_large",
            format!(
                "the downlink is {} bytes; a {} device takes at most {limit}",
                bytes.len(),
                transport_name(device.transport)
            ),
        ));
    }
    let new = NewDownlink {
        device: device.id.clone(),
        org: device.org.clone(),
        fport,
        bytes,
        confirmed: request.confirmed,
        at: (state.clock)(),
    };
    let change = crate::audit::Change::new("downlink.enqueue", format!("device:{}", device.id))
        .org(&device.org)
        .after(serde_json::json!({"fport": new.fport, "bytes": new.bytes.len(), "confirmed": new.confirmed}));
    let queued = crate::audit::record(
        &state,
        &by,
        source,
        change,
        state.registry.enqueue_downlink(new),
    )
    .await?;
    tracing::info!(device = %device.id, downlink = queued.id, by = %by.actor, "downlink queued");
    if device.transport == Transport::Mqtt
        && let Some(wake) = &state.downlinks.wake
    {
        wake(&device.id);
    }
    let mut doc = DownlinkDoc::from(&queued);
    doc.warnings = warnings;
    Ok((StatusCode::CREATED, Json(doc)))
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Mqtt => "MQTT",
        Transport::Lorawan => "LoRaWAN",
        Transport::Http => "HTTP",
    }
}

/// JSON through the device's JavaScript codec's `encodeDownlink`.
async fn encode(
    state: &AppState,
    codec: &Codec,
    device: &DeviceId,
    fport: u8,
    data: Value,
) -> Result<bydata_ingest::codec::script::Encoded, Error> {
    let Codec::Script(script_ref) = codec else {
        return Err(Error::Unprocessable {
            code: "no_encoder",
            message: format!(
                "device {device} uses the {codec} codec, which cannot encode JSON into a downlink: give it a \
                 JavaScript codec with encodeDownlink(input) (PATCH /api/v1/devices/{device} with \
                 {{\"codec\": \"js:NAME\"}}), or send the bytes (\"bytes\" in base64 or \"hex\")"
            ),
        });
    };
    let stored = state
        .registry
        .codec(&script_ref.name, script_ref.version)
        .await?
        .ok_or_else(|| Error::Unprocessable {
            code: "no_encoder",
            message: format!("device {device}'s codec {codec} is not stored; upload it first"),
        })?;
    let hooks = state.ingest.clone();
    tokio::task::spawn_blocking(move || hooks.encode_downlink(&stored.script, fport, &data))
        .await
        .map_err(|e| Error::Internal {
            message: format!("the codec's task failed: {e}"),
        })?
        .map_err(|e| match e {
            crate::HookError::CodecRejected { reason } => Error::Unprocessable {
                code: "encode_failed",
                message: format!("codec {codec}: {reason}"),
            },
            other => Error::from(other),
        })
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/downlinks",
    operation_id = "list_downlinks",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "devices",
    summary = "A device's downlinks: the open ones and the recent history, newest first, with their state",
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 200, description = "Downlinks, newest first", body = DownlinkList),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<DownlinkList>, Error> {
    let device = visible(&state, &by, &id, Role::Viewer).await?;
    let all = state.registry.downlinks(&device.id).await?;
    Ok(Json(DownlinkList {
        device: device.id.to_string(),
        open: all.iter().filter(|d| d.is_open()).count(),
        downlinks: all.iter().map(DownlinkDoc::from).collect(),
        max_open: bydata_store::MAX_OPEN_DOWNLINKS,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}/downlinks/{dl}",
    operation_id = "cancel_downlink",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Cancel a queued downlink (it stays in the history as failed: cancelled)",
    params(
        ("id" = String, Path, description = "Device id"),
        ("dl" = u64, Path, description = "Downlink id"),
    ),
    responses(
        (status = 200, description = "Cancelled", body = DownlinkDoc),
        (status = 403, description = "The token's role may not do this (needs an editor token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device or downlink", body = crate::openapi::ErrorBody),
        (status = 409, description = "It is no longer queued (sent or finished)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    by: Principal,
    source: crate::audit::Source,
    Path((id, dl)): Path<(String, String)>,
) -> Result<Json<DownlinkDoc>, Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let not_found = || Error::NotFound {
        what: "downlink",
        id: dl.chars().take(64).collect(),
    };
    let number: u64 = dl.parse().map_err(|_| not_found())?;
    let not_queued = |s: DownlinkState| Error::StateConflict {
        code: "not_cancellable",
        message: format!("downlink {number} is {s}; only a queued downlink can be cancelled"),
    };
    let current = state
        .registry
        .downlinks(&device.id)
        .await?
        .into_iter()
        .find(|d| d.id == number)
        .ok_or_else(not_found)?;
    if current.state != DownlinkState::Queued {
        return Err(not_queued(current.state));
    }
    let update = DownlinkUpdate::failed(format!("cancelled by {}", by.actor), (state.clock)())
        .expecting(DownlinkState::Queued);
    let change = crate::audit::Change::new("downlink.cancel", format!("device:{}", device.id))
        .org(&device.org)
        .before(serde_json::json!({"downlink": number, "state": "queued"}))
        .after(serde_json::json!({"downlink": number, "state": "failed"}));
    let after = crate::audit::record(
        &state,
        &by,
        source,
        change,
        state.registry.update_downlink(&device.id, number, update),
    )
    .await?
    .ok_or_else(not_found)?;
    if after.state != DownlinkState::Failed {
        // Sent between the read above and the cancel: the update did not apply.
        return Err(not_queued(after.state));
    }
    tracing::info!(device = %device.id, downlink = number, by = %by.actor, "downlink cancelled");
    Ok(Json(DownlinkDoc::from(&after)))
}

#[cfg(test)]
#[path = "downlinks_tests.rs"]
mod tests;
