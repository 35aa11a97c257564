//! Points → line protocol, escaped as the InfluxDB v2 reference says
//! (<https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/>, "Special characters" and
//! "Escaping backslashes"): measurement: comma, space; tag keys, tag values, field keys: comma, equals sign,
//! space; string field values: double quote, backslash; and a backslash is written as `\\` everywhere, which
//! the reference reads as one backslash (so a value ending in `\` cannot escape the delimiter after it).
//!
//! What line protocol cannot carry is refused here, before anything is sent, so a batch is never half-written
//! for a reason we could have seen: non-finite values, empty tag values, newlines in tags, names that start with
//! `_` (reserved by InfluxDB) and the key `time` (the reference: such points are *discarded*, silently).

use bydata_schemas::Point;
use bydata_schemas::line_protocol::{MAX_TIME, MIN_TIME};
use std::fmt::Write as _;

/// The suffix of the string field that carries a value field's unit (see the influx module docs).
pub(crate) const UNIT_FIELD_SUFFIX: &str = "#unit";

/// Why a point cannot be written to InfluxDB.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("point {series} cannot be written to InfluxDB: {reason}")]
pub(crate) struct Unwritable {
    pub(crate) series: String,
    pub(crate) reason: &'static str,
}

/// Appends `point` as one line (with its `\n`): the value as a float field named after the key's field, the
/// unit as a string field `{field}#unit` (empty when the point has none), the time in nanoseconds.
pub(crate) fn push_line(out: &mut String, point: &Point) -> Result<(), Unwritable> {
    check(point).map_err(|reason| Unwritable {
        series: point.series.to_string(),
        reason,
    })?;
    let key = &point.series;
    escape_into(out, key.measurement.as_str(), &[',', ' ']);
    for (k, v) in &key.tags {
        out.push(',');
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        escape_into(out, v, &[',', '=', ' ']);
    }
    out.push(' ');
    escape_into(out, key.field.as_str(), &[',', '=', ' ']);
    // `{:?}` is Rust's shortest round-trip form (`21.5`, `1e-7`, `1e300`), which line protocol accepts.
    let _ = write!(out, "={:?},", point.value);
    escape_into(out, key.field.as_str(), &[',', '=', ' ']);
    escape_into(out, UNIT_FIELD_SUFFIX, &[',', '=', ' ']);
    out.push_str("=\"");
    if let Some(unit) = &point.unit {
        escape_into(out, unit.as_str(), &['"']);
    }
    let _ = writeln!(out, "\" {}", point.time);
    Ok(())
}

fn check(point: &Point) -> Result<(), &'static str> {
    let key = &point.series;
    if !point.value.is_finite() {
        return Err("line protocol has no NaN or infinite floats");
    }
    if !(MIN_TIME..=MAX_TIME).contains(&point.time) {
        return Err("the time is outside InfluxDB's range (years 1677–2262)");
    }
    if key.measurement.as_str().starts_with('_') || key.field.as_str().starts_with('_') {
        return Err("names starting with `_` are reserved by InfluxDB");
    }
    if key.field.as_str() == "time" {
        return Err("InfluxDB discards points with a field named `time`");
    }
    for (k, v) in &key.tags {
        if k.is_empty() || v.is_empty() {
            return Err("line protocol has no empty tag keys or values");
        }
        if k.starts_with('_') {
            return Err("tag keys starting with `_` are reserved by InfluxDB");
        }
        if k == "time" {
            return Err("InfluxDB discards points with a tag named `time`");
        }
        if k.contains(['\n', '\r']) || v.contains(['\n', '\r']) {
            return Err("line protocol cannot carry a newline in a tag");
        }
    }
    Ok(())
}

/// Writes `s` with a backslash before each of `special` and before every backslash.
fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}
