//! The query string of `GET /api/v1/query` into a store query and an answer format, refusing anything unknown
//! so a typo is never silently ignored. Pure: the API extracts the parameters and maps `ParamError` to its
//! 400s.
use super::render::{CSV, CSV_DANISH_EXCEL, Format};
use super::{AggFn, Every, Query};
use crate::series::SeriesFilter;
use bydata_schemas::{DeviceId, MeasurementName, SeriesKey, UnixNanos, parse_rfc3339};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap};

/// Why query parameters are not a query.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// A parameter no query knows.
    #[error("{0}")]
    Unknown(String),
    /// A required parameter is missing.
    #[error("{0}")]
    Missing(String),
    /// A parameter's value cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// `from` is not before `to`.
    #[error("{0}")]
    Range(String),
    /// The store refuses a part of the query (a bucket width, a function).
    #[error(transparent)]
    Query(#[from] crate::Error),
}

/// The time zone of answers and buckets unless a query names one.
pub const DEFAULT_TZ: &str = "Europe/Copenhagen";
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

/// A measurement or field name given as `param`.
pub fn name(param: &str, value: &str) -> Result<MeasurementName, ParamError> {
    MeasurementName::new(value).map_err(|e| ParamError::Invalid(format!("{param}: {e}")))
}

/// An RFC 3339 time given as `param`.
pub fn time(param: &str, value: &str) -> Result<UnixNanos, ParamError> {
    parse_rfc3339(value).map_err(|e| ParamError::Invalid(format!("{param}: {e}")))
}

/// Refuses a parameter that is neither in `known` nor `tag.KEY`, so a typo is never silently ignored.
pub(crate) fn refuse_unknown(
    params: &HashMap<String, String>,
    known: &[&str],
) -> Result<(), ParamError> {
    match params
        .keys()
        .find(|k| !known.contains(&k.as_str()) && !k.starts_with("tag."))
    {
        Some(unknown) => Err(ParamError::Unknown(format!(
            "unknown parameter {unknown:?}; known: {}, tag.KEY",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Turns the query string into a store query, refusing anything unknown so a typo is never silently ignored.
pub fn parse(
    params: &HashMap<String, String>,
    now: UnixNanos,
) -> Result<(Query, Format), ParamError> {
    refuse_unknown(params, &KNOWN)?;
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let measurement = name(
        "measurement",
        get("measurement").ok_or_else(|| ParamError::Missing("measurement is required".into()))?,
    )?;
    let field = name("field", get("field").unwrap_or(SeriesKey::DEFAULT_FIELD))?;
    let mut tags = BTreeMap::new();
    for (k, v) in params {
        if let Some(key) = k.strip_prefix("tag.") {
            if key.is_empty() {
                return Err(ParamError::Invalid(
                    "tag. needs a key: tag.KEY=VALUE".into(),
                ));
            }
            tags.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(device) = get("device") {
        let id = DeviceId::new(device).map_err(|e| ParamError::Invalid(format!("device: {e}")))?;
        tags.insert("device".to_owned(), id.to_string());
    }
    let to = get("to").map(|v| time("to", v)).transpose()?.unwrap_or(now);
    let from = get("from")
        .map(|v| time("from", v))
        .transpose()?
        .unwrap_or(to.saturating_sub(DEFAULT_RANGE_NS));
    if from >= to {
        return Err(ParamError::Range("from must be before to".into()));
    }
    let every = get("every").map(str::parse::<Every>).transpose()?;
    let func = match (get("fn"), every) {
        (Some(f), Some(_)) => f.parse::<AggFn>()?,
        (None, Some(_)) => AggFn::Mean,
        (Some(_), None) => {
            return Err(ParamError::Invalid(
                "fn needs every (a bucket width such as 1h)".into(),
            ));
        }
        (None, None) => AggFn::Last,
    };
    let tz: Tz = get("tz").unwrap_or(DEFAULT_TZ).parse().map_err(|_| {
        ParamError::Invalid("tz must be an IANA time zone such as Europe/Copenhagen or UTC".into())
    })?;
    let format = match get("format") {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv(CSV),
        Some("csv-da") => Format::Csv(CSV_DANISH_EXCEL),
        Some(other) => {
            return Err(ParamError::Invalid(format!(
                "format={other:?}: use json, csv, or csv-da (for Excel with Danish settings)"
            )));
        }
    };
    let query = Query {
        filter: SeriesFilter {
            scope: None,
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
