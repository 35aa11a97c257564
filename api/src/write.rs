//! `POST /api/v2/write`: InfluxDB v2 line protocol, so Telegraf, Node-RED and a network server's InfluxDB
//! integration write to bydata unchanged (`Authorization: Token …`, `bucket`, `org`, `precision`, gzip bodies).
//!
//! A request is all or nothing: every line is parsed and validated first; one bad line refuses the whole
//! request with a 400 naming the line, and nothing is written. The valid request becomes one store write
//! (one transaction in the embedded engine), durable when the 204 is sent. Lines go straight to the store,
//! not through the raw journal: they arrive already decoded, and there is no device identity to record.
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bydata_admission::metrics::{Collector, DescriptorEncoder, counter, counters, get};
use bydata_ingest::line_protocol::{Body, body_text, parse_body_checked};
use bydata_ingest::series_quota::QuotaOwner;
use bydata_schemas::line_protocol::Precision;
use bydata_schemas::{DeviceId, OrgId, SeriesKey, UnixNanos};
use bydata_store::Scope;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use bydata_ingest::line_protocol::MAX_BODY_BYTES;
const PARAMS: [&str; 4] = ["bucket", "org", "orgID", "precision"];

/// Counters of the write endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    refused: AtomicU64,
    points: AtomicU64,
    string_fields_skipped: AtomicU64,
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        counters(
            e,
            "bydata_write_requests",
            "Line-protocol write requests, by outcome",
            "outcome",
            &[
                ("written", get(&self.requests)),
                ("refused", get(&self.refused)),
            ],
        )?;
        counter(
            e,
            "bydata_write_points",
            "Points written through line protocol",
            get(&self.points),
        )?;
        counter(
            e,
            "bydata_write_string_fields_skipped",
            "String fields skipped (bydata stores numbers)",
            get(&self.string_fields_skipped),
        )
    }
}

/// Whether the body is gzip-compressed, from its `Content-Encoding`.
fn gzip(headers: &HeaderMap) -> Result<bool, Error> {
    match headers
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::to_str)
    {
        None | Some(Ok("identity")) => Ok(false),
        Some(Ok("gzip")) => Ok(true),
        Some(other) => Err(Error::bad(
            "unsupported_encoding",
            format!(
                "Content-Encoding {:?} is not supported: send identity or gzip",
                other.unwrap_or("?")
            ),
        )),
    }
}

/// The points of a request, or why it is refused. Runs on a blocking thread: `handle` reaches the store to
/// count new series while parsing, against the token's `added` series.
fn points(
    text: &str,
    precision: Precision,
    now: UnixNanos,
    (state, token, added): (&AppState, &QuotaOwner, u64),
    org: Option<&OrgId>,
    handle: &tokio::runtime::Handle,
) -> Result<Body, Error> {
    let room = state.series_quota.room(token, added);
    let mut new = 0u64;
    let mut body = parse_body_checked(text, precision, now, |keys| {
        let owned: Vec<SeriesKey> = keys.iter().map(|k| owned_by(k, org)).collect();
        let keys: Vec<&SeriesKey> = owned.iter().collect();
        if let Some(n) = handle.block_on(state.reader.count_unknown(&keys))? {
            new += n as u64;
            if new > room {
                return Err(state.series_quota.refusal(token, added, new, true).into());
            }
        }
        Ok::<(), Error>(())
    })?;
    for group in &mut body.groups {
        let key = &group.series;
        if let (Some(org), Some(tagged)) = (org, key.tag(Scope::ORG_TAG))
            && tagged != org.as_str()
        {
            return Err(Error::bad(
                "reserved_tag",
                format!(
                    "series {key}: the org tag names the organisation a series belongs to; this key writes for {org}: leave the tag out"
                ),
            ));
        }
        group.series = owned_by(key, org);
    }
    Ok(body)
}

/// `key` as stored for a writer of `org`: tagged `org={org}`, so the series belongs to it (see
/// `bydata_store::Scope`). A platform key's series keep the tags they were written with.
fn owned_by(key: &SeriesKey, org: Option<&OrgId>) -> SeriesKey {
    let mut key = key.clone();
    if let Some(org) = org {
        key.tags.insert(Scope::ORG_TAG.to_owned(), org.to_string());
    }
    key
}

/// A key restricted to some measurements writes only those.
fn check_measurements(body: &Body, by: &Principal) -> Result<(), Error> {
    for group in &body.groups {
        let key = &group.series;
        if !by.restriction.allows_measurement(key.measurement.as_str()) {
            return Err(Error::Forbidden {
                needs: format!(
                    "a key allowed to write {}: this key is restricted to other measurements",
                    key.measurement
                ),
            });
        }
    }
    Ok(())
}

/// Identity is never taken from a payload: a registered device's series are written by that device alone.
async fn check_device_tags(state: &AppState, body: &Body) -> Result<(), Error> {
    for (n, value) in &body.device_tags {
        if let Ok(id) = DeviceId::new(value.as_str())
            && state.registry.device(&id).await?.is_some()
        {
            return Err(Error::bad(
                "reserved_series",
                format!(
                    "line {n}: tag device={value} names a registered device; its series are written only by the device itself"
                ),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v2/write",
    operation_id = "write",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "write",
    summary = "Write line protocol (InfluxDB v2 compatible)",
    params(
        ("bucket" = String, Query, description = "Any name (bydata keeps one namespace); required"),
        ("org" = Option<String>, Query, description = "Accepted and ignored"),
        ("precision" = Option<String>, Query, description = "`ns` (default), `us`, `ms` or `s`"),
    ),
    request_body(content = String, content_type = "text/plain", description = "Line protocol, optionally gzip-compressed (`Content-Encoding: gzip`)"),
    responses(
        (status = 204, description = "Stored (header `x-bydata-skipped-string-fields` counts string fields skipped)"),
        (status = 400, description = "Missing or unknown parameter, a line that does not parse, or more new series than the token may add (nothing is stored)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token may not write (needs an admin or write token)", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body larger than the limit"),
        (status = 503, description = "bydata is shutting down after a component failed; nothing is stored", body = crate::openapi::ErrorBody),
        (status = 507, description = "Disk full: free space is below `[store] min_free_bytes`; nothing is stored, send again once space is freed", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []), ("influx_token" = [])),
)]
pub(crate) async fn write(
    State(state): State<AppState>,
    by: Principal,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let (Some(id), crate::auth::Actor::Key { name, .. }) = (by.key_id(), &by.actor) else {
        return Err(Error::Forbidden {
            needs: "an API key: line protocol is written by machines (create a key with the editor role)".into(),
        });
    };
    let token = QuotaOwner {
        id: id.to_owned(),
        name: name.clone(),
    };
    // A key of one organisation writes that organisation's series; a platform key writes as tagged.
    let org: Option<OrgId> = match (by.platform, by.orgs.keys().next()) {
        (None, Some(org)) => Some(org.clone()),
        _ => None,
    };
    let result = async {
        if let Some(reason) = state.health.refusal() {
            return Err(Error::NotAccepting { reason });
        }
        if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
            return Err(Error::bad(
                "unknown_parameter",
                format!(
                    "unknown parameter {unknown:?}; known: {}",
                    PARAMS.join(", ")
                ),
            ));
        }
        if params.get("bucket").is_none_or(|b| b.is_empty()) {
            return Err(Error::bad(
                "missing_parameter",
                "bucket is required (any name: bydata keeps one namespace)",
            ));
        }
        let precision: Precision = params
            .get("precision")
            .map(|p| {
                p.parse()
                    .map_err(|e| Error::bad("invalid_parameter", format!("precision: {e}")))
            })
            .transpose()?
            .unwrap_or_default();
        // Decompressing and parsing up to 32 MB is CPU work: off the async workers.
        let added = state.registry.token_series(&token.id).await?;
        let (parse_state, token, now) = (state.clone(), token.clone(), (state.clock)());
        let parse_org = org.clone();
        let handle = tokio::runtime::Handle::current();
        let body = tokio::task::spawn_blocking(move || {
            let text = body_text(&body, gzip(&headers)?)?;
            points(
                &text,
                precision,
                now,
                (&parse_state, &token, added),
                parse_org.as_ref(),
                &handle,
            )
        })
        .await
        .map_err(|e| Error::Internal {
            message: format!("parsing a write failed: {e}"),
        })??;
        check_device_tags(&state, &body).await?;
        check_measurements(&body, &by)?;
        Ok((body.groups, body.skipped))
    }
    .await;
    let (points, skipped) = match result {
        Ok(ok) => ok,
        Err(e) => {
            state.write_metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    };
    let keys: Vec<&SeriesKey> = points.iter().map(|s| &s.series).collect();
    let ports = (state.registry.as_ref(), state.reader.as_ref());
    let reservation = match state.series_quota.reserve(ports, &token, &keys).await {
        Ok(r) => r,
        Err(e) => {
            state.write_metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
    };
    let count: u64 = points.iter().map(|s| s.points.len() as u64).sum();
    state.writer.write_grouped(points).await?;
    if let Some(reservation) = reservation {
        reservation.commit(state.registry.as_ref()).await?;
    }
    state.write_metrics.requests.fetch_add(1, Ordering::Relaxed);
    state
        .write_metrics
        .points
        .fetch_add(count, Ordering::Relaxed);
    state
        .write_metrics
        .string_fields_skipped
        .fetch_add(skipped, Ordering::Relaxed);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if skipped > 0 {
        // bydata stores numbers only; say so rather than drop string fields silently.
        response
            .headers_mut()
            .insert("x-bydata-skipped-string-fields", HeaderValue::from(skipped));
    }
    Ok(response)
}
