//! `GET /api/v1/query` and `GET /api/v1/devices/{id}/latest`: parameters in, store query out, JSON or CSV back.
//!
//! A query is priced and refused over its limits before it reads (`bydata_store::query::plan`), heavy ones
//! wait for a permit and every one has a deadline (`gate`), and the answer streams out a chunk of series at a
//! time (`answer`, rendered by `render`).
mod answer;
mod gate;
mod render;

pub use gate::{QueryGate, QueryLimits};

use crate::auth::Reader;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bydata_schemas::{DeviceId, MeasurementName, SeriesKey, UnixNanos, parse_rfc3339};
use bydata_store::SeriesFilter;
use bydata_store::query::{AggFn, Every, Query};
use chrono::{SecondsFormat, TimeZone};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

pub(crate) const DEFAULT_TZ: &str = "Europe/Copenhagen";
const DEFAULT_RANGE_NS: i64 = 24 * 3600 * 1_000_000_000;
const KNOWN: [&str; 10] = [
    "measurement",
    "field",
    "device",
    "from",
    "to",
    "every",
    "fn",
    "group_by",
    "tz",
    "format",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Csv(CsvDialect),
}

/// How a CSV answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CsvDialect {
    separator: char,
    decimal_comma: bool,
    /// A UTF-8 byte-order mark first: how Excel knows the file is UTF-8 (æ, ø, å, °C).
    bom: bool,
    /// `2026-03-29 02:00:00` plus a `utc_offset` column, which Excel reads as a date and time; RFC 3339
    /// (`2026-03-29T02:00:00+02:00`) it would keep as text.
    excel_time: bool,
}

/// RFC 4180: comma-separated, decimal point, RFC 3339 times.
const CSV: CsvDialect = CsvDialect {
    separator: ',',
    decimal_comma: false,
    bom: false,
    excel_time: false,
};

/// What Excel with Danish regional settings opens by double-click: semicolons (the list separator where the
/// comma is the decimal sign), decimal commas, a BOM for UTF-8, and date-times it recognises.
const CSV_DANISH_EXCEL: CsvDialect = CsvDialect {
    separator: ';',
    decimal_comma: true,
    bom: true,
    excel_time: true,
};

pub(crate) fn time_in(tz: Tz, t: UnixNanos) -> String {
    tz.timestamp_nanos(t)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

pub(crate) fn name(param: &str, value: &str) -> Result<MeasurementName, Error> {
    MeasurementName::new(value)
        .map_err(|e| Error::bad("invalid_parameter", format!("{param}: {e}")))
}

pub(crate) fn time(param: &str, value: &str) -> Result<UnixNanos, Error> {
    parse_rfc3339(value).map_err(|e| Error::bad("invalid_parameter", format!("{param}: {e}")))
}

/// Turns the query string into a store query, refusing anything unknown so a typo is never silently ignored.
pub(crate) fn parse(
    params: &HashMap<String, String>,
    now: UnixNanos,
) -> Result<(Query, Format), Error> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !KNOWN.contains(&k.as_str()) && !k.starts_with("tag."))
    {
        return Err(Error::bad(
            "unknown_parameter",
            format!(
                "unknown parameter {unknown:?}; known: {}, tag.KEY",
                KNOWN.join(", ")
            ),
        ));
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let measurement = name(
        "measurement",
        get("measurement")
            .ok_or_else(|| Error::bad("missing_parameter", "measurement is required"))?,
    )?;
    let field = name("field", get("field").unwrap_or(SeriesKey::DEFAULT_FIELD))?;
    let mut tags = BTreeMap::new();
    for (k, v) in params {
        if let Some(key) = k.strip_prefix("tag.") {
            if key.is_empty() {
                return Err(Error::bad(
                    "invalid_parameter",
                    "tag. needs a key: tag.KEY=VALUE",
                ));
            }
            tags.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(device) = get("device") {
        let id = DeviceId::new(device)
            .map_err(|e| Error::bad("invalid_parameter", format!("device: {e}")))?;
        tags.insert("device".to_owned(), id.to_string());
    }
    let to = get("to").map(|v| time("to", v)).transpose()?.unwrap_or(now);
    let from = get("from")
        .map(|v| time("from", v))
        .transpose()?
        .unwrap_or(to.saturating_sub(DEFAULT_RANGE_NS));
    if from >= to {
        return Err(Error::bad("invalid_range", "from must be before to"));
    }
    let every = get("every").map(str::parse::<Every>).transpose()?;
    let func = match (get("fn"), every) {
        (Some(f), Some(_)) => f.parse::<AggFn>()?,
        (None, Some(_)) => AggFn::Mean,
        (Some(_), None) => {
            return Err(Error::bad(
                "invalid_parameter",
                "fn needs every (a bucket width such as 1h)",
            ));
        }
        (None, None) => AggFn::Last,
    };
    let tz: Tz = get("tz").unwrap_or(DEFAULT_TZ).parse().map_err(|_| {
        Error::bad(
            "invalid_parameter",
            "tz must be an IANA time zone such as Europe/Copenhagen or UTC",
        )
    })?;
    let format = match get("format") {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv(CSV),
        Some("csv-da") => Format::Csv(CSV_DANISH_EXCEL),
        Some(other) => {
            return Err(Error::bad(
                "invalid_parameter",
                format!(
                    "format={other:?}: use json, csv, or csv-da (for Excel with Danish settings)"
                ),
            ));
        }
    };
    let query = Query {
        filter: SeriesFilter {
            measurement: Some(measurement),
            field: Some(field),
            tags,
        },
        from,
        to,
        every,
        func,
        group_by: get("group_by").map(str::to_owned),
        tz,
    };
    Ok((query, format))
}

#[utoipa::path(
    get,
    path = "/api/v1/query",
    operation_id = "query",
    tag = "query",
    summary = "Query a measurement: raw points or aggregated buckets, as JSON or CSV",
    params(
        ("measurement" = String, Query, description = "Measurement name (required)"),
        ("field" = Option<String>, Query, description = "Field (default `value`)"),
        ("device" = Option<String>, Query, description = "Only this device's series"),
        ("from" = Option<String>, Query, description = "RFC 3339 start, inclusive (default: 24 h before `to`)"),
        ("to" = Option<String>, Query, description = "RFC 3339 end, exclusive (default: now)"),
        ("every" = Option<String>, Query, description = "Bucket width such as `15m`, `1h`, `1d`, `1mo`; without it raw points"),
        ("fn" = Option<String>, Query, description = "Aggregate per bucket (needs `every`): mean (default), min, max, sum, count, last, first, increase, …"),
        ("group_by" = Option<String>, Query, description = "Tag key to merge series by"),
        ("tz" = Option<String>, Query, description = "IANA time zone for bucket boundaries and times (default Europe/Copenhagen)"),
        ("format" = Option<String>, Query, description = "`json` (default), `csv` or `csv-da` (Excel with Danish settings). Tag filters: `tag.KEY=VALUE`"),
    ),
    responses(
        (status = 200, description = "The series", content((crate::openapi::QueryAnswerDoc = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Missing, unknown or invalid parameter (`invalid_parameter`, …), or a query over its limits (`query_too_large`: more values, raw points or series than allowed; the message says what the query would cost and how to narrow it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "Too many large queries at once (`busy`, with `Retry-After`), or the query's deadline passed before its answer began (`query_timeout`; past the first bytes the answer is cut instead)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn query(
    State(state): State<AppState>,
    _: Reader,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> Result<Response, Error> {
    let (q, format) = parse(&params, (state.clock)())?;
    let gate = state.queries.clone();
    let body = answer::start(state.reader.clone(), gate.clone(), q, format)
        .await
        .inspect_err(|e| gate.count(e))?;
    Ok(match format {
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
    })
}

pub(crate) fn csv_field(s: &str, separator: char) -> String {
    if s.contains([separator, '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The latest value of each of a device's measurements, with unit and time.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/latest",
    operation_id = "device_latest",
    tag = "query",
    summary = "A device's newest value of every series",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 200, description = "Newest values", body = Value),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn latest(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let not_found = || Error::NotFound {
        what: "device",
        id: id.clone(),
    };
    let device = DeviceId::new(id.as_str()).map_err(|_| not_found())?;
    if state.registry.device(&device).await?.is_none() {
        return Err(not_found());
    }
    let filter = SeriesFilter {
        measurement: None,
        field: None,
        tags: BTreeMap::from([("device".to_owned(), device.to_string())]),
    };
    let tz: Tz = DEFAULT_TZ.parse().unwrap_or(Tz::UTC);
    let mut latest = Vec::new();
    for s in state.reader.series(&filter).await? {
        if let Some((t, v)) = state.reader.last_before(&s.key, i64::MAX).await? {
            latest.push(json!({
                "measurement": s.key.measurement,
                "field": s.key.field,
                "unit": s.unit,
                "time": time_in(tz, t),
                "value": v,
            }));
        }
    }
    Ok(Json(json!({"device": device, "latest": latest})))
}

#[cfg(test)]
mod stream_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a client sends, parsing answers (a query or a 400), it never panics.
        #[test]
        fn any_parameters_parse_or_refuse(
            pairs in proptest::collection::vec((
                prop_oneof![
                    prop::sample::select(KNOWN.to_vec()).prop_map(str::to_owned),
                    "tag\\.[a-z]{0,3}",
                    ".{0,8}",
                ],
                prop_oneof![
                    "[0-9]{1,6}(s|m|h|d|w|mo|y)",
                    "(1677|1970|2026|2262)-(01|12)-(01|31)T00:00:00(Z|\\+14:00|-12:00)",
                    ".{0,16}",
                ],
            ), 0..8),
            now in any::<i64>(),
        ) {
            let params: HashMap<String, String> = pairs.into_iter().collect();
            let _ = parse(&params, now);
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_and_refuses_clearly() {
        let now = parse_rfc3339("2026-11-22T12:00:00Z").expect("time");
        let (q, f) = parse(
            &params(&[
                ("measurement", "energy_kwh"),
                ("tag.building", "b7"),
                ("every", "1d"),
                ("fn", "increase"),
                ("format", "csv"),
            ]),
            now,
        )
        .expect("valid");
        assert_eq!(f, Format::Csv(CSV));
        assert_eq!(q.func, AggFn::Increase);
        assert_eq!(
            q.filter.tags.get("building").map(String::as_str),
            Some("b7")
        );
        assert_eq!(q.to - q.from, DEFAULT_RANGE_NS);
        for bad in [
            vec![("every", "1h")],
            vec![("measurement", "t"), ("every", "1parsec")],
            vec![("measurement", "t"), ("fn", "mean")],
            vec![("measurement", "t"), ("every", "1h"), ("fn", "median")],
            vec![("measurement", "t"), ("tz", "Mars/Olympus")],
            vec![("measurement", "t"), ("from", "yesterday")],
            vec![("measurement", "t"), ("measurment", "t")],
        ] {
            assert!(parse(&params(&bad), now).is_err(), "{bad:?}");
        }
    }
}
