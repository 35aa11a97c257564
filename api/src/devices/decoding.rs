//! What a device sent and how it decoded: its status (counters, last error and warning, codec runs, radio,
//! unverified attempts, which fields it sent as text), its text state (shown with its latest values) and
//! re-decoding a range of its stored raw uplinks. Every time in these answers is RFC 3339 text.
use super::visible;
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use bydata_schemas::{DeviceId, RedecodeReport, format_rfc3339};
use bydata_store::DeviceStatus;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A device's latest text of one field.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct TextStateDoc {
    /// The text as the device sent it (cut to 256 bytes).
    value: String,
    /// When it was sent (the message's time), RFC 3339.
    time: String,
}

/// One series' newest value.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct LatestValueDoc {
    measurement: String,
    field: String,
    value: f64,
    unit: Option<String>,
    /// RFC 3339, in Europe/Copenhagen.
    time: String,
}

/// A device's newest value of every series, and its text state.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct LatestDoc {
    device: String,
    latest: Vec<LatestValueDoc>,
    /// The latest text of each field the device sent as text (strings of flat JSON, SenML `vs`, a codec's
    /// text), by field name: kept as its state rather than as a series. At most 64 fields.
    state: BTreeMap<String, TextStateDoc>,
}

/// The device's text state as the API shows it: `{"field": {"value", "time"}}`.
pub(crate) fn state_json(s: &DeviceStatus) -> BTreeMap<String, TextStateDoc> {
    s.state
        .iter()
        .map(|(field, t)| {
            let text = TextStateDoc {
                value: t.value.clone(),
                time: format_rfc3339(t.time),
            };
            (field.clone(), text)
        })
        .collect()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedecodeRange {
    /// RFC 3339, inclusive.
    from: String,
    /// RFC 3339, exclusive.
    to: String,
    /// Replace the range even if some uplinks do not decode (their values are dropped).
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/devices/{id}/redecode` with `{"from": RFC 3339, "to": RFC 3339}`: the device's current codec
/// runs again over its raw uplinks received in the range, and its values there are replaced.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/redecode",
    operation_id = "redecode_device",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Re-decode a device's stored raw uplinks in a time range with its current codec",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    request_body = RedecodeRange,
    responses(
        (status = 200, description = "Report", body = Value),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn redecode(
    State(state): State<AppState>,
    by: Principal,
    source: crate::audit::Source,
    Path(id): Path<String>,
    crate::body::Body(range): crate::body::Body<RedecodeRange>,
) -> Result<Json<RedecodeReport>, Error> {
    let device = visible(&state, &by, &id, bydata_schemas::Role::Editor).await?;
    let (id, org) = (device.id, device.org);
    let time = |field: &str, v: &str| {
        bydata_schemas::parse_rfc3339(v).map_err(|_| {
            Error::bad(
                "invalid_time",
                format!("{field} must be an RFC 3339 time such as 2026-11-01T00:00:00Z"),
            )
        })
    };
    let (from, to) = (time("from", &range.from)?, time("to", &range.to)?);
    let report = state
        .ingest
        .redecode(id.clone(), from, to, range.force)
        .await?;
    tracing::info!(device = %id, by = %by.actor, "re-decode requested");
    // Stored values change, not the registry: recorded after the re-decode is done.
    let change = crate::audit::Change::new("device.redecode", format!("device:{id}"))
        .org(&org)
        .after(
            serde_json::json!({"from": range.from, "to": range.to, "force": range.force,
                                  "report": report}),
        );
    crate::audit::append(&state, &by, source, change).await?;
    Ok(Json(report))
}

fn status_json(
    id: &DeviceId,
    s: &DeviceStatus,
    unverified: (
        bydata_store::refusals::Unverified,
        bydata_schemas::UnixNanos,
    ),
) -> Value {
    let (u, since) = unverified;
    json!({
        "id": id,
        "last_seen": s.last_seen.map(format_rfc3339),
        "last_decoded": s.last_decoded.map(format_rfc3339),
        "received": s.received,
        "decoded": s.decoded,
        "rejected": s.rejected,
        "values_stored": s.values_stored,
        "last_error": s.last_error.as_ref().map(|e| json!({
            "time": format_rfc3339(e.time),
            "reason": e.reason,
        })),
        "last_warning": s.last_warning.as_ref().map(|e| json!({
            "time": format_rfc3339(e.time),
            "reason": e.reason,
        })),
        "decoded_by": s.decoded_by.iter().map(|r| json!({
            "codec": r.codec,
            "from": format_rfc3339(r.from),
            "to": format_rfc3339(r.to),
            "uplinks": r.uplinks,
        })).collect::<Vec<_>>(),
        "last_radio": s.last_radio,
        "state_fields": s.state.keys().collect::<Vec<_>>(),
        "unverified_attempts": {
            "wrong_password": u.wrong_password,
            "unverified_frames": u.unverified_frames,
            "last": u.last.map(format_rfc3339),
            "since": format_rfc3339(since),
        },
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/status",
    operation_id = "device_status",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "devices",
    summary = "What a device has sent and how decoding went",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 200, description = "Status", body = crate::openapi::DeviceStatusDoc),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let id = visible(&state, &by, &id, bydata_schemas::Role::Viewer)
        .await?
        .id;
    let status = state.registry.status(&id).await?;
    Ok(Json(status_json(
        &id,
        &status,
        state.refusals.unverified(&id),
    )))
}
