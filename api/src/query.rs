//! `GET /api/v1/query` and `GET /api/v1/devices/{id}/latest`: parameters in, store query out, JSON or CSV back.
//!
//! Parsing, pricing, limits (`QueryGate`), rendering and the streamed answer live in `bydata_store::query`;
//! here the handlers and their docs; the store's answer is a stream of chunks, the response body.
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bydata_store::query::{self, Format};
use serde_json::{Value, json};
use std::collections::HashMap;

#[utoipa::path(
    get,
    path = "/api/v1/query",
    operation_id = "query",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "query",
    summary = "Query a measurement: raw points or aggregated buckets, as JSON or CSV",
    params(
        ("measurement" = String, Query, description = "Measurement name (required)"),
        ("field" = Option<String>, Query, description = "Field (default `value`)"),
        ("device" = Option<String>, Query, description = "Only this device's series"),
        ("from" = Option<String>, Query, description = "RFC 3339 start, inclusive (default: 24 h before `to`)"),
        ("to" = Option<String>, Query, description = "RFC 3339 end, exclusive (default: now)"),
        ("every" = Option<String>, Query, description = "Bucket width such as `15m`, `1h`, `1d`, `1mo`; without it raw points"),
        ("fn" = Option<String>, Query, description = "Aggregate per bucket (needs `every`): mean (default), min, max, sum, count, last, first, increase (Prometheus-like: the rise between readings, in the later reading's bucket), consumption (a cumulative meter's value at the bucket's end minus at its start, boundaries interpolated between readings; null where a boundary has no reading on one side)"),
        ("group_by" = Option<String>, Query, description = "Tag key to merge series by"),
        ("tz" = Option<String>, Query, description = "IANA time zone for bucket boundaries and times (default Europe/Copenhagen)"),
        ("format" = Option<String>, Query, description = "`json` (default), `csv` or `csv-da` (Excel with Danish settings). Tag filters: `tag.KEY=VALUE`"),
    ),
    responses(
        (status = 200, description = "The series. When no series matched, `series` is empty and `notice` (and, for CSV too, the header `X-Bydata-Notice`) says so and names the nearest measurements, fields, devices and tag values that exist", content((crate::openapi::QueryAnswerDoc = "application/json"), (String = "text/csv")),
            headers(("X-Bydata-Notice" = String, description = "Only when no series matched: the notice (non-ASCII characters as `\\u{…}`)"))),
        (status = 400, description = "Missing, unknown or invalid parameter (`invalid_parameter`, …), or a query over its limits (`query_too_large`: more values, raw points or series than allowed; the message says what the query would cost and how to narrow it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "Too many large queries at once (`busy`, with `Retry-After`), or the query's deadline passed before its answer began (`query_timeout`; past the first bytes the answer is cut instead)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn query(
    State(state): State<AppState>,
    by: Principal,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> Result<Response, Error> {
    let (mut q, format) = query::params::parse(&params, (state.clock)())?;
    q.filter.scope = by.scope(&state.registry, &state.auth_cache.owners).await?;
    let gate = state.queries.clone();
    let answer = query::answer::start(state.reader.clone(), gate.clone(), q, format)
        .await
        .inspect_err(|e| gate.count(e))?;
    let notice = answer.notice().map(notice_header);
    let body = Body::from_stream(answer);
    let mut response = match format {
        Format::Json => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Format::Csv(_) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"bydata.csv\"",
                ),
            ],
            body,
        )
            .into_response(),
    };
    if let Some(notice) = notice {
        response.headers_mut().insert(NOTICE, notice);
    }
    Ok(response)
}

/// The header an empty answer carries (CSV has no other place for the notice).
const NOTICE: HeaderName = HeaderName::from_static("x-bydata-notice");

/// A notice as a header value: printable ASCII, anything else escaped as `\u{…}`.
fn notice_header(notice: &str) -> HeaderValue {
    let mut text = String::with_capacity(notice.len());
    for c in notice.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            text.push(c);
        } else {
            text.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("no series matched"))
}

/// The latest value of each of a device's measurements, with unit and time.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/latest",
    operation_id = "device_latest",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "query",
    summary = "A device's newest value of every series, and its text state",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 200, description = "Newest values, and the latest text of fields sent as text", body = crate::devices::decoding::LatestDoc),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn latest(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let device = crate::devices::visible(&state, &by, &id, bydata_schemas::Role::Viewer)
        .await?
        .id;
    let scope = by.scope(&state.registry, &state.auth_cache.owners).await?;
    let latest = query::latest(state.reader.as_ref(), &device, scope).await?;
    let text = crate::devices::decoding::state_json(&state.registry.status(&device).await?);
    Ok(Json(
        json!({"device": device, "latest": latest, "state": text}),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn notices_fit_in_a_header() {
        assert_eq!(
            super::notice_header("no series matched tag.building=\"Rådhus\"\n"),
            "no series matched tag.building=\"R\\u{e5}dhus\"\\u{a}"
        );
    }
}
