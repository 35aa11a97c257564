//! The body of a delete request (`POST /api/v2/delete`; InfluxDB v2 API reference "Delete data",
//! <https://docs.influxdata.com/influxdb/v2/api/delete/>, and "Delete predicate syntax",
//! <https://docs.influxdata.com/influxdb/v2/reference/syntax/delete-predicate/>):
//! `{"start": RFC3339, "stop": RFC3339, "predicate": "_measurement=\"m\" AND \"tag\"=\"v\""}`.
//!
//! - `stop` is inclusive (InfluxDB deletes `start <= time <= stop`), so `[start, end)` is sent as
//!   `stop = end - 1 ns`.
//! - The predicate joins `key="value"` expressions with `AND`, the only logical operator the reference
//!   documents. Keys and values are double-quoted identifiers of InfluxQL's scanner, which reads the escapes
//!   `\\`, `\"`, `\'` and `\n` in them and refuses any other: so a backslash and a double quote are escaped,
//!   and a newline is written `\n` (line protocol cannot carry one in a tag anyway).
//! - InfluxDB 2 cannot delete by `_field`; a filter naming a field is refused before anything is sent.

use crate::series::SeriesFilter;
use bydata_schemas::UnixNanos;
use bydata_schemas::line_protocol::{MAX_TIME, MIN_TIME};
use chrono::{DateTime, SecondsFormat};
use std::fmt::Write as _;

/// Why a delete cannot be sent to InfluxDB.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "InfluxDB 2 cannot delete by field (the filter names field {field:?}): delete by measurement and tags"
)]
pub(crate) struct ByField {
    pub(crate) field: String,
}

/// The JSON body deleting `[start, end)` of the series `filter` matches; `None` when the range holds no time
/// InfluxDB can store (nothing to delete).
pub(crate) fn body(
    filter: &SeriesFilter,
    start: UnixNanos,
    end: UnixNanos,
) -> Result<Option<serde_json::Value>, ByField> {
    if let Some(field) = &filter.field {
        return Err(ByField {
            field: field.as_str().to_owned(),
        });
    }
    let first = start.max(MIN_TIME);
    let last = end.saturating_sub(1).min(MAX_TIME);
    if start >= end || first > last {
        return Ok(None);
    }
    let mut body = serde_json::json!({
        "start": rfc3339(first),
        "stop": rfc3339(last),
    });
    let predicate = predicate(filter);
    if !predicate.is_empty() {
        body["predicate"] = serde_json::Value::String(predicate);
    }
    Ok(Some(body))
}

/// `_measurement="m" AND "tag"="value" …`; empty when the filter matches every series.
pub(crate) fn predicate(filter: &SeriesFilter) -> String {
    let mut p = String::new();
    if let Some(m) = &filter.measurement {
        let _ = write!(p, "_measurement={}", quoted(m.as_str()));
    }
    for (k, v) in &filter.tags {
        if !p.is_empty() {
            p.push_str(" AND ");
        }
        let _ = write!(p, "{}={}", quoted(k), quoted(v));
    }
    p
}

/// A double-quoted InfluxQL identifier that reads back as exactly `s`.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn rfc3339(t: UnixNanos) -> String {
    DateTime::from_timestamp_nanos(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
