//! HTTP device push: `POST /api/v1/devices/{id}/up`, a device sending an uplink with its own credentials (the
//! policy `device`, see `auth::device`), answered `202` only once the uplink is in the journal — the same
//! append, through `bydata_store::intake::append_uplink`, as an MQTT PUBLISH before its PUBACK.
//!
//! credentials → the device (never the path's id: another id is refused, 403, on the device's status) →
//! query (`fport`) and `Content-Type` → the body, at most the broker's `max_message_bytes` → `Uplink` (source
//! `http`, topic `devices/{id}/up[/{fport}]` as over MQTT) → intake gate → journal → 202 with the position.
//! Decoding happens later, in the pipeline, exactly as for MQTT: an undecodable payload is accepted here and
//! explained on the device's status. Every refusal of an authenticated device is counted on its status
//! (`store::refusals`) and each outcome in `/metrics` (`bydata_http_push_requests_total{outcome}`).
use super::push_params::{self, Kind};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use bydata_admission::metrics::{Collector, DescriptorEncoder, counter, counters, get};
use bydata_schemas::{DeviceId, RejectReason, Source, Uplink, format_rfc3339};
use bydata_store::intake::{NotJournaled, UplinkCounters, append_uplink};
use bydata_store::journal::Journal;
use bydata_store::logins::{Gate, GateCounters};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the push needs beyond the rest of the API: the journal, the login gate shared with the broker, the
/// size limit the broker applies, and its counters.
#[derive(Debug)]
pub struct DevicePush {
    pub(crate) journal: Arc<Journal>,
    /// The broker's gate, counting into [`PushMetrics`].
    pub(crate) logins: Arc<Gate>,
    pub(crate) max_message_bytes: usize,
    pub(crate) metrics: Arc<PushMetrics>,
}

impl DevicePush {
    /// The push over `journal`, checking passwords through `logins` (the gate the broker uses), taking
    /// bodies of at most `max_message_bytes` (the broker's `[broker] max_message_bytes`).
    pub fn new(journal: Arc<Journal>, logins: &Gate, max_message_bytes: usize) -> Self {
        let metrics = Arc::new(PushMetrics::default());
        Self {
            journal,
            logins: logins.counting(metrics.clone()),
            max_message_bytes,
            metrics,
        }
    }

    /// Its counters, for the metrics registry.
    pub fn metrics(&self) -> Arc<PushMetrics> {
        self.metrics.clone()
    }
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    Unauthenticated,
    /// An API key or a login session, not a device's credentials.
    NotADevice,
    OtherDevice,
    BadRequest,
    UnsupportedType,
    TooLarge,
    NotAccepting,
}

/// Counters of the HTTP push, a `Collector` for the one metrics registry.
#[derive(Debug, Default)]
pub struct PushMetrics {
    accepted: AtomicU64,
    unauthenticated: AtomicU64,
    not_a_device: AtomicU64,
    other_device: AtomicU64,
    bad_request: AtomicU64,
    unsupported_type: AtomicU64,
    too_large: AtomicU64,
    not_accepting: AtomicU64,
    journaled: AtomicU64,
    not_journaled: AtomicU64,
    argon2: AtomicU64,
    remembered: AtomicU64,
}

impl PushMetrics {
    pub(crate) fn count(&self, outcome: Outcome) {
        let c = match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Unauthenticated => &self.unauthenticated,
            Outcome::NotADevice => &self.not_a_device,
            Outcome::OtherDevice => &self.other_device,
            Outcome::BadRequest => &self.bad_request,
            Outcome::UnsupportedType => &self.unsupported_type,
            Outcome::TooLarge => &self.too_large,
            Outcome::NotAccepting => &self.not_accepting,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl GateCounters for PushMetrics {
    fn argon2(&self) {
        self.argon2.fetch_add(1, Ordering::Relaxed);
    }
    fn remembered(&self) {
        self.remembered.fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for PushMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        counters(
            e,
            "bydata_http_push_requests",
            "HTTP pushes of devices (POST /api/v1/devices/{id}/up), by outcome",
            "outcome",
            &[
                ("accepted", get(&self.accepted)),
                ("unauthenticated", get(&self.unauthenticated)),
                ("not_a_device", get(&self.not_a_device)),
                ("other_device", get(&self.other_device)),
                ("bad_request", get(&self.bad_request)),
                ("unsupported_media_type", get(&self.unsupported_type)),
                ("too_large", get(&self.too_large)),
                ("not_accepting", get(&self.not_accepting)),
            ],
        )?;
        counters(
            e,
            "bydata_http_push_password_checks",
            "HTTP push logins (HTTP Basic): Argon2 hashes computed, or logins answered from memory",
            "kind",
            &[
                ("argon2", get(&self.argon2)),
                ("remembered", get(&self.remembered)),
            ],
        )?;
        counter(
            e,
            "bydata_http_push_uplinks_journaled",
            "HTTP pushes written to the journal (answered 202)",
            get(&self.journaled),
        )?;
        counter(
            e,
            "bydata_http_push_journal_errors",
            "HTTP pushes the journal could not take (answered 503, not stored)",
            get(&self.not_journaled),
        )
    }
}

/// The answer to an accepted push.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct PushedDoc {
    device: String,
    /// Its position in the journal (a byte offset: later pushes have larger ones).
    position: u64,
    /// RFC 3339: the time readings without their own get.
    received_at: String,
    /// The FPort it was given, if any.
    fport: Option<u8>,
    /// How the body was taken, by its Content-Type: `json` or `bytes`.
    body: String,
    note: String,
}

/// How long a device is asked to wait before sending again when bydata is not accepting.
const RETRY_AFTER_SECS: u64 = 30;

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/up",
    operation_id = "push_uplink",
    extensions(("x-bydata-policy" = json!("device"))),
    tag = "devices",
    summary = "A device pushes an uplink with its own credentials (HTTP Basic with its id and MQTT password, or a device key); 202 once it is in the journal",
    description = "The body is what the device's codec takes: JSON (flat JSON or SenML) or bytes \
        (`application/octet-stream`, with `?fport=N` for codecs that need the LoRaWAN FPort, as \
        `devices/{id}/up/{fport}` over MQTT), at most the broker's `max_message_bytes`. The 202 means what a \
        QoS 1 PUBACK means: the uplink is in the journal under the device's id (it survives `kill -9` at once, \
        power loss after the next group fsync); it is decoded a moment later, and a payload that does not \
        decode is explained on the device's status. Only the device itself may push: an API key gets 403, \
        credentials of another device get 403 (counted on that device's status).",
    params(
        ("id" = String, Path, description = "The device's id: the one its credentials belong to"),
        ("fport" = Option<u8>, Query, description = "FPort 1-223 for the device's codec (default: none; codecs get 1)"),
    ),
    request_body(
        description = "JSON (flat JSON or SenML), or bytes for the device's codec",
        content(
            (Value = "application/json"),
            (Value = "application/senml+json"),
            (Vec<u8> = "application/octet-stream"),
        ),
    ),
    responses(
        (status = 202, description = "In the journal; decoded shortly", body = PushedDoc),
        (status = 400, description = "An unknown parameter or an fport outside 1-223", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing, unreadable or unknown device credentials (`WWW-Authenticate: Basic`); never says whether the id or the password was wrong", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not the device's own credentials: an API key, or another device's", body = crate::openapi::ErrorBody),
        (status = 413, description = "Larger than the broker's max_message_bytes", body = crate::openapi::ErrorBody),
        (status = 415, description = "A Content-Type other than JSON, SenML JSON or application/octet-stream", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many failed logins from this address or for this device; `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 503, description = "Not accepting new data now (disk full, or stopping) or password checks busy; nothing stored, send it again after `Retry-After`", body = crate::openapi::ErrorBody),
    ),
    security(("device_basic" = []), ("device_key" = [])),
)]
pub(crate) async fn push(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), Error> {
    let push = &state.push;
    let Some(me) = by.device().cloned() else {
        return Err(Error::Internal {
            message: "a push reached its handler without a device".into(),
        });
    };
    let refuse = |outcome: Outcome, code: &'static str, detail: String| {
        push.metrics.count(outcome);
        let reason = RejectReason::HttpPush {
            code: code.to_owned(),
            detail: detail.clone(),
        };
        if state.refusals.record(&me, (state.clock)(), &reason) {
            tracing::warn!(device = %me, %reason, "HTTP push refused");
        }
        detail
    };
    if DeviceId::new(&id).ok().as_ref() != Some(&me) {
        let detail = format!(
            "pushed to /api/v1/devices/{}/up with the credentials of {me}; a device pushes only its own \
             uplinks, to /api/v1/devices/{me}/up",
            bydata_store::refusals::truncate(&id, 64)
        );
        return Err(Error::Forbidden {
            needs: refuse(Outcome::OtherDevice, "other_device", detail),
        });
    }
    let fport = push_params::fport(query.as_deref())
        .map_err(|r| Error::bad(r.code, refuse(Outcome::BadRequest, r.code, r.message)))?;
    let kind = match push_params::kind(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes())) {
        Ok(kind) => kind,
        Err(r) => {
            return Err(Error::UnsupportedMediaType {
                message: refuse(Outcome::UnsupportedType, r.code, r.message),
            });
        }
    };
    let limit = push.max_message_bytes;
    let too_large = |size: String| Error::TooLarge {
        message: refuse(
            Outcome::TooLarge,
            "too_large",
            format!(
                "the body of {size} bytes exceeds the limit of {limit} bytes ([broker] max_message_bytes)"
            ),
        ),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared.filter(|n| *n > limit as u64) {
        return Err(too_large(size.to_string()));
    }
    let payload = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(too_large(format!("more than {limit}")));
        }
        Err(_) => {
            push.metrics.count(Outcome::BadRequest);
            return Err(Error::bad(
                "unreadable_body",
                "the body could not be read to its end; nothing was stored, send it again",
            ));
        }
    };
    let received_at = (state.clock)();
    let topic = match fport {
        Some(port) => format!("devices/{me}/up/{port}"),
        None => format!("devices/{me}/up"),
    };
    let uplink = Uplink {
        received_at,
        device: me.clone(),
        source: Source::Http,
        topic,
        fport,
        payload,
        radio: Vec::new(),
    };
    let counters = UplinkCounters {
        journaled: &push.metrics.journaled,
        not_journaled: &push.metrics.not_journaled,
    };
    match append_uplink(&push.journal, &state.refusals, uplink, counters) {
        Ok(position) => {
            push.metrics.count(Outcome::Accepted);
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "device": me,
                    "position": position,
                    "received_at": format_rfc3339(received_at),
                    "fport": fport,
                    "body": if kind == Kind::Bytes { "bytes" } else { "json" },
                    "note": "in the journal; decoded shortly (GET /api/v1/devices/{id}/status says how it went)",
                })),
            ))
        }
        Err(e) => {
            push.metrics.count(Outcome::NotAccepting);
            let message = match e {
                NotJournaled::Refused { reason } => format!("{reason}; nothing was stored, send it again"),
                NotJournaled::Failed(_) => {
                    "bydata could not write the message to its journal; nothing was stored, send it again"
                        .to_owned()
                }
            };
            Err(Error::Unavailable {
                code: "not_accepting",
                message,
                retry_after_secs: Some(RETRY_AFTER_SECS),
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A push over a fresh journal in `dir`, with a gate of one password-check thread.
    pub(crate) fn push(
        dir: &std::path::Path,
        registry: bydata_store::SharedRegistry,
    ) -> Arc<DevicePush> {
        let journal = Journal::open(&dir.join("journal"), Default::default()).expect("journal");
        let gate = Gate::new(
            registry,
            Arc::new(PushMetrics::default()),
            bydata_store::logins::GateConfig {
                checks: 1,
                queue_wait: std::time::Duration::from_secs(5),
                remember: std::time::Duration::from_secs(60),
            },
        )
        .expect("gate");
        Arc::new(DevicePush::new(Arc::new(journal), &gate, 64 * 1024))
    }
}
