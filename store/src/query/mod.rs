//! Bucketed aggregates over any `SeriesReader`: written once here, so every store adapter answers the same
//! queries the same way (an adapter may later push work down, but must match these results).
//!
//! Buckets are half-open `[start, next start)`. Fixed buckets (`30s`, `15m`, `1h`) are aligned to the local
//! clock of the query's time zone (its offset at the start of the range), so hours start at :00 local in
//! +05:30 zones too; for whole-hour offsets such as Europe/Copenhagen that is the epoch's alignment. Calendar buckets
//! (`1d`, `1w`, `1mo`, `1y`) start at local midnight in the query's time zone, so a 23- or 25-hour day across
//! a daylight-saving change is still one day. A bucket with no data is `None` (JSON `null`), never 0. Only
//! points in `[from, to)` count: a bucket that `from` or `to` cuts keeps its aligned start as its time and
//! holds only the points inside the range (`Plan::is_partial`).
//!
//! A query runs in two steps: `plan` prices it from the store's index (series matched, buckets, estimated raw
//! points) and refuses it over its `Limits` before any point is read; `Plan::chunks` then computes the answer a
//! chunk of series at a time, so memory stays bounded whatever the answer's size. `run` does both and collects.
//!
//! What the API answers with sits here too, free of HTTP: `params` (the query string into a `Query` and a
//! `Format`), `limits` (`QueryGate`: limits, heavy-query permits, the deadline, refusal counters), `render`
//! (JSON and CSV bytes a chunk at a time) and `answer` (the streamed answer).
pub mod answer;
mod buckets;
mod catalog;
pub mod consumption;
mod every;
mod latest;
mod limits;
mod narrow;
pub mod params;
mod plan;
mod refusal;
mod render;
mod round;
mod suggest;

pub use crate::aggregate::{AggFn, Folder, Partial};
pub use buckets::{MAX_BUCKETS, bucket_bounds};
pub use catalog::{
    CatalogFilter, MAX_TAG_VALUES, MeasurementInfo, TagValues, catalog_filter, measurements,
};
pub use every::Every;
use every::NANOS_PER_SEC;
pub use latest::{Latest, latest};
pub use limits::{QueryGate, QueryLimits};
pub use params::{DEFAULT_TZ, ParamError};
pub use plan::{Chunks, Cost, Limits, MAX_RAW_POINTS, Plan, plan, run};
pub use refusal::{TooLarge, thousands};
pub use render::{CSV, CSV_DANISH_EXCEL, CsvDialect, Format, csv_field, time_in};
pub use round::{SIGNIFICANT, round, round_opt};
pub use suggest::{nearest, nothing_in_range, nothing_matched};

use crate::series::SeriesFilter;
use crate::{Error, Result};
use bydata_schemas::{Unit, UnixNanos};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::str::FromStr;

// Here rather than in every.rs: its error is the crate's `Error`, which holds a `TooLarge` naming a width.
impl FromStr for Every {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidQuery {
            reason: format!(
                "every={s:?} is not a bucket width: use a whole number and one of s, m, h, d, w, mo, y (e.g. 15m, 1h, 1d, 1mo)"
            ),
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = s.split_at(split);
        let n: u32 = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        let fixed = |secs: i64| {
            i64::from(n)
                .checked_mul(secs * NANOS_PER_SEC)
                .map(Every::Fixed)
                .ok_or_else(bad)
        };
        Ok(match unit {
            "s" => fixed(1)?,
            "m" => fixed(60)?,
            "h" => fixed(3600)?,
            "d" => Every::Days(n),
            "w" => Every::Weeks(n),
            "mo" => Every::Months(n),
            "y" => Every::Years(n),
            _ => return Err(bad()),
        })
    }
}

/// A query: which series, which range, and either raw points (`every: None`) or buckets.
#[derive(Debug, Clone)]
pub struct Query {
    pub filter: SeriesFilter,
    pub from: UnixNanos,
    pub to: UnixNanos,
    pub every: Option<Every>,
    pub func: AggFn,
    pub group_by: Option<String>,
    pub tz: Tz,
}

/// One answer series: the tags that identify it, its unit, and `(time, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSeries {
    pub tags: BTreeMap<String, String>,
    pub unit: Option<Unit>,
    pub points: Vec<(UnixNanos, Option<f64>)>,
}

/// Aggregates time-sorted points into the buckets given by `bounds`: the naive reference the tests hold
/// `Partial`s and the engines to.
#[cfg(test)]
pub(crate) fn aggregate(
    bounds: &[UnixNanos],
    points: &[(UnixNanos, f64)],
    func: AggFn,
) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(bounds.len().saturating_sub(1));
    let mut i = 0;
    for w in bounds.windows(2) {
        while i < points.len() && points[i].0 < w[0] {
            i += 1;
        }
        let j = i + points[i..].partition_point(|(t, _)| *t < w[1]);
        let bucket = &points[i..j];
        i = j;
        out.push(if bucket.is_empty() {
            None
        } else {
            let values = bucket.iter().map(|(_, v)| *v);
            Some(match func {
                AggFn::Mean => values.sum::<f64>() / bucket.len() as f64,
                AggFn::Min => values.fold(f64::INFINITY, f64::min),
                AggFn::Max => values.fold(f64::NEG_INFINITY, f64::max),
                AggFn::Sum => values.sum(),
                AggFn::Count => bucket.len() as f64,
                AggFn::First => bucket[0].1,
                AggFn::Last => bucket[bucket.len() - 1].1,
                AggFn::Increase => increase_within(None, bucket),
                // Needs the readings around the bucket: its naive model is in `consumption`'s tests.
                AggFn::Consumption => f64::NAN,
            })
        });
    }
    out
}

/// Per-bucket consumption of one counter, given the reading before the range (if any); test reference.
#[cfg(test)]
pub(crate) fn increase(
    bounds: &[UnixNanos],
    before: Option<f64>,
    points: &[(UnixNanos, f64)],
) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(bounds.len().saturating_sub(1));
    let mut prev = before;
    let mut i = 0;
    for w in bounds.windows(2) {
        while i < points.len() && points[i].0 < w[0] {
            prev = Some(points[i].1);
            i += 1;
        }
        let j = i + points[i..].partition_point(|(t, _)| *t < w[1]);
        let bucket = &points[i..j];
        out.push(if bucket.is_empty() {
            None
        } else {
            Some(increase_within(prev, bucket))
        });
        if let Some(last) = bucket.last() {
            prev = Some(last.1);
        }
        i = j;
    }
    out
}

#[cfg(test)]
fn increase_within(mut prev: Option<f64>, bucket: &[(UnixNanos, f64)]) -> f64 {
    let mut sum = 0.0;
    for &(_, v) in bucket {
        if let Some(p) = prev {
            sum += if v >= p { v - p } else { v };
        }
        prev = Some(v);
    }
    sum
}

#[cfg(test)]
mod stream_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_schemas::parse_rfc3339;
    use proptest::prelude::*;

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).expect("time")
    }

    #[test]
    fn parses_every() {
        assert_eq!(
            "15m".parse::<Every>().expect("ok"),
            Every::Fixed(900 * NANOS_PER_SEC)
        );
        assert_eq!("1mo".parse::<Every>().expect("ok"), Every::Months(1));
        for bad in ["", "0h", "h", "1x", "-1h", "1.5h"] {
            assert!(bad.parse::<Every>().is_err(), "{bad}");
        }
        assert_eq!(Every::Fixed(900 * NANOS_PER_SEC).to_string(), "15m");
    }

    #[test]
    fn fixed_buckets_follow_the_local_clock() {
        let kolkata: Tz = "Asia/Kolkata".parse().expect("tz");
        let b = bucket_bounds(
            t("2026-11-22T10:10:00Z"),
            t("2026-11-22T12:00:00Z"),
            Every::Fixed(3600 * NANOS_PER_SEC),
            kolkata,
        )
        .expect("bounds");
        // 10:10 UTC is 15:40 in Kolkata: the hour began at 15:00 local, 09:30 UTC.
        assert_eq!(b[0], t("2026-11-22T15:00:00+05:30"));
        assert_eq!(b[1], t("2026-11-22T16:00:00+05:30"));
        let cph: Tz = "Europe/Copenhagen".parse().expect("tz");
        let b = bucket_bounds(
            t("2026-11-22T10:10:00Z"),
            t("2026-11-22T12:00:00Z"),
            Every::Fixed(900 * NANOS_PER_SEC),
            cph,
        )
        .expect("bounds");
        assert_eq!(b[0], t("2026-11-22T10:00:00Z"));
    }

    #[test]
    fn days_follow_copenhagen_through_dst() {
        let tz: Tz = "Europe/Copenhagen".parse().expect("tz");
        // 2026-03-29 is the last Sunday of March: 23 hours long in Copenhagen.
        let b = bucket_bounds(
            t("2026-03-28T12:00:00Z"),
            t("2026-03-30T12:00:00Z"),
            Every::Days(1),
            tz,
        )
        .expect("bounds");
        assert_eq!(b[0], t("2026-03-28T00:00:00+01:00"));
        assert_eq!(b[1], t("2026-03-29T00:00:00+01:00"));
        assert_eq!(b[2], t("2026-03-30T00:00:00+02:00"));
        assert_eq!(b[2] - b[1], 23 * 3600 * NANOS_PER_SEC);
        let m = bucket_bounds(
            t("2026-01-15T00:00:00Z"),
            t("2026-03-15T00:00:00Z"),
            Every::Months(1),
            tz,
        )
        .expect("bounds");
        assert_eq!(m[0], t("2026-01-01T00:00:00+01:00"));
        assert_eq!(m[3], t("2026-04-01T00:00:00+02:00"));
    }

    #[test]
    fn aggregates_and_gaps() {
        let b = vec![0, 10, 20, 30];
        let p = vec![(1, 1.0), (5, 3.0), (25, 4.0)];
        assert_eq!(
            aggregate(&b, &p, AggFn::Mean),
            vec![Some(2.0), None, Some(4.0)]
        );
        assert_eq!(
            aggregate(&b, &p, AggFn::Count),
            vec![Some(2.0), None, Some(1.0)]
        );
        assert_eq!(
            aggregate(&b, &p, AggFn::Last),
            vec![Some(3.0), None, Some(4.0)]
        );
    }

    #[test]
    fn increase_handles_resets_and_previous_reading() {
        let b = vec![0, 10, 20, 30];
        let p = vec![(1, 102.0), (9, 105.0), (21, 2.0), (29, 4.0)];
        assert_eq!(
            increase(&b, Some(100.0), &p),
            vec![Some(5.0), None, Some(4.0)]
        );
    }

    proptest! {
        #[test]
        fn bucket_bounds_never_panic(from in any::<i64>(), span in prop_oneof![any::<i64>(), 1i64..40_000_000_000_000_000], every in "[0-9]{1,3}|[0-9]{1,12}".prop_flat_map(|n| prop::sample::select(vec!["s", "m", "h", "d", "w", "mo", "y"]).prop_map(move |u| format!("{n}{u}"))), tz in prop::sample::select(vec!["UTC", "Europe/Copenhagen", "Pacific/Chatham", "America/Havana"])) {
            let to = from.saturating_add(span);
            if let Ok(every) = every.parse::<Every>() {
                let tz: Tz = tz.parse().expect("tz");
                if let Ok(b) = bucket_bounds(from, to, every, tz) {
                    prop_assert!(b.len() >= 2 && b[0] <= from && b[b.len() - 1] >= to);
                    prop_assert!(b.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }

        #[test]
        fn bucket_values_match_a_naive_reference(
            mut raw in proptest::collection::vec((0i64..1000, -1e6f64..1e6), 0..200),
            width in 1i64..200,
        ) {
            raw.sort_by_key(|(t, _)| *t);
            raw.dedup_by_key(|(t, _)| *t);
            let bounds = bucket_bounds(0, 1000, Every::Fixed(width), Tz::UTC).expect("bounds");
            let sums = aggregate(&bounds, &raw, AggFn::Sum);
            let counts = aggregate(&bounds, &raw, AggFn::Count);
            for (i, w) in bounds.windows(2).enumerate() {
                let inside: Vec<f64> = raw.iter().filter(|(t, _)| *t >= w[0] && *t < w[1]).map(|(_, v)| *v).collect();
                prop_assert_eq!(counts[i], if inside.is_empty() { None } else { Some(inside.len() as f64) });
                if !inside.is_empty() {
                    let s: f64 = inside.iter().sum();
                    prop_assert!((sums[i].unwrap_or(f64::NAN) - s).abs() < 1e-6);
                }
            }
        }

        #[test]
        fn increases_add_up_to_the_total(steps in proptest::collection::vec(0f64..100.0, 1..200), width in 1i64..50) {
            let mut v = 0.0;
            let points: Vec<(i64, f64)> = steps.iter().enumerate().map(|(i, s)| { v += s; (i as i64 * 3, v) }).collect();
            let bounds = bucket_bounds(0, points.len() as i64 * 3, Every::Fixed(width), Tz::UTC).expect("bounds");
            let total: f64 = increase(&bounds, None, &points).into_iter().flatten().sum();
            prop_assert!((total - (v - steps[0])).abs() < 1e-6);
        }
    }
}
