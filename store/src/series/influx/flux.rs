//! The Flux queries the adapter sends. Every user-supplied string goes through [`string_lit`]; every time
//! through [`time_lit`].
//!
//! Sources: the Flux specification, "Lexical elements → String literals"
//! (<https://docs.influxdata.com/flux/v0/spec/lexical-elements/#string-literals>: escapes `\n \r \t \" \\ \${`,
//! and `${…}` is interpolation, so a literal `${` must be escaped), and the `range()` / `filter()` / `last()`
//! function pages (<https://docs.influxdata.com/flux/v0/stdlib/universe/range/>: `start` inclusive, `stop`
//! exclusive — the half-open `[from, to)` of `SeriesReader`).

use super::line::UNIT_FIELD_SUFFIX;
use crate::series::SeriesFilter;
use bydata_schemas::line_protocol::MIN_TIME;
use bydata_schemas::{SeriesKey, UnixNanos};
use std::fmt::Write as _;

/// A Flux string literal (quotes included) that evaluates to exactly `s`.
pub(crate) fn string_lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Flux time from nanoseconds since the epoch. Clamped to InfluxDB's earliest time, which also keeps the
/// literal in `i64` (`-9223372036854775808` would overflow: Flux negates a positive literal).
pub(crate) fn time_lit(t: UnixNanos) -> String {
    format!("time(v: {})", t.max(MIN_TIME))
}

/// The earliest time InfluxDB stores: the start of an open-ended range.
pub(crate) const EARLIEST: UnixNanos = MIN_TIME;

fn from_range(bucket: &str, start: UnixNanos, stop: UnixNanos) -> String {
    format!(
        "from(bucket: {})\n  |> range(start: {}, stop: {})\n",
        string_lit(bucket),
        time_lit(start),
        time_lit(stop)
    )
}

/// `r._measurement == … and r._field == … and r["tag"] == …` for one series. Rows of series with *more* tags
/// also pass this filter (Flux cannot say "no other tags" without knowing them); the caller drops them.
fn key_predicate(key: &SeriesKey) -> String {
    let mut p = format!(
        "r._measurement == {} and r._field == {}",
        string_lit(key.measurement.as_str()),
        string_lit(key.field.as_str())
    );
    push_tags(&mut p, key.tags.iter());
    p
}

fn push_tags<'a>(p: &mut String, tags: impl Iterator<Item = (&'a String, &'a String)>) {
    for (k, v) in tags {
        let _ = write!(p, " and r[{}] == {}", string_lit(k), string_lit(v));
    }
}

/// Every point of `key` in `[from, to)`. `_start`/`_stop` are dropped (they only repeat the range); tag columns
/// stay so the caller can tell the series apart from ones with extra tags.
pub(crate) fn range(bucket: &str, key: &SeriesKey, from: UnixNanos, to: UnixNanos) -> String {
    format!(
        "{}  |> filter(fn: (r) => {})\n  |> drop(columns: [\"_start\", \"_stop\"])\n",
        from_range(bucket, from, to),
        key_predicate(key)
    )
}

/// The last point before `before` of every series whose key contains `key`'s (one row per series).
pub(crate) fn last_before(bucket: &str, key: &SeriesKey, before: UnixNanos) -> String {
    format!(
        "{}  |> filter(fn: (r) => {})\n  |> last()\n  |> drop(columns: [\"_start\", \"_stop\"])\n",
        from_range(bucket, EARLIEST, before),
        key_predicate(key)
    )
}

/// The last point of every series matching `filter`, and of its unit field: one row per series, carrying the
/// measurement, field and tag columns — all `series()` needs. InfluxDB 2 pushes `range |> filter |> last` down
/// to storage (it reads the newest block of each series), so this does not scan the bucket.
///
/// Chosen over `import "influxdata/influxdb/schema"` (`schema.measurements`, `schema.tagKeys`, …): those answer
/// one dimension per query and cannot return the tag *set* of each series, nor its unit.
pub(crate) fn series(bucket: &str, filter: &SeriesFilter) -> String {
    let mut p = String::new();
    if let Some(m) = &filter.measurement {
        let _ = write!(p, "r._measurement == {}", string_lit(m.as_str()));
    }
    if let Some(f) = &filter.field {
        if !p.is_empty() {
            p.push_str(" and ");
        }
        let unit_field = format!("{}{UNIT_FIELD_SUFFIX}", f.as_str());
        let _ = write!(
            p,
            "(r._field == {} or r._field == {})",
            string_lit(f.as_str()),
            string_lit(&unit_field)
        );
    }
    if !filter.tags.is_empty() {
        if p.is_empty() {
            p.push_str("true");
        }
        push_tags(&mut p, filter.tags.iter());
    }
    let mut q = from_range(bucket, EARLIEST, UnixNanos::MAX);
    if !p.is_empty() {
        let _ = writeln!(q, "  |> filter(fn: (r) => {p})");
    }
    q.push_str("  |> last()\n  |> drop(columns: [\"_start\", \"_stop\"])\n");
    q
}
