//! Bucketed aggregates over any `SeriesReader`: written once here, so every store adapter answers the same
//! queries the same way (an adapter may later push work down, but must match these results).
//!
//! Buckets are half-open `[start, next start)`. Fixed buckets (`30s`, `15m`, `1h`) are aligned to the local
//! clock of the query's time zone (its offset at the start of the range), so hours start at :00 local in
//! +05:30 zones too; for whole-hour offsets such as Europe/Copenhagen that is the epoch's alignment. Calendar buckets
//! (`1d`, `1w`, `1mo`, `1y`) start at local midnight in the query's time zone, so a 23- or 25-hour day across
//! a daylight-saving change is still one day. A bucket with no data is `None` (JSON `null`), never 0.
use crate::series::{SeriesFilter, SeriesInfo, SeriesReader};
use crate::{Error, Result};
use bydata_schemas::{SeriesKey, Unit, UnixNanos};
use chrono::{Datelike, Days, Duration, Months, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

/// At most this many buckets per query, so one request cannot allocate without bound.
pub const MAX_BUCKETS: usize = 100_000;
/// At most this many raw points per query (without `every`).
pub const MAX_RAW_POINTS: usize = 200_000;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// A fixed number of nanoseconds (`s`, `m`, `h`).
    Fixed(i64),
    Days(u32),
    Weeks(u32),
    Months(u32),
    Years(u32),
}

impl Every {
    /// The width in seconds, calendar units counted as their usual length (a month 30 days, a year 365).
    pub fn approximate_secs(&self) -> u64 {
        const DAY: u64 = 86_400;
        match *self {
            Every::Fixed(ns) => u64::try_from(ns / 1_000_000_000).unwrap_or(0),
            Every::Days(n) => u64::from(n) * DAY,
            Every::Weeks(n) => u64::from(n) * 7 * DAY,
            Every::Months(n) => u64::from(n) * 30 * DAY,
            Every::Years(n) => u64::from(n) * 365 * DAY,
        }
    }
}

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

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Every::Fixed(ns) if ns % (3600 * NANOS_PER_SEC) == 0 => {
                write!(f, "{}h", ns / (3600 * NANOS_PER_SEC))
            }
            Every::Fixed(ns) if ns % (60 * NANOS_PER_SEC) == 0 => {
                write!(f, "{}m", ns / (60 * NANOS_PER_SEC))
            }
            Every::Fixed(ns) => write!(f, "{}s", ns / NANOS_PER_SEC),
            Every::Days(n) => write!(f, "{n}d"),
            Every::Weeks(n) => write!(f, "{n}w"),
            Every::Months(n) => write!(f, "{n}mo"),
            Every::Years(n) => write!(f, "{n}y"),
        }
    }
}

/// The aggregate computed per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Mean,
    Min,
    Max,
    Sum,
    Count,
    First,
    Last,
    /// Consumption of a cumulative counter: the rise between consecutive readings, attributed to the bucket
    /// of the later reading; a drop is a counter reset, after which the new reading counts from zero. The
    /// buckets of a meter therefore add up to its total consumption over the range.
    Increase,
}

impl FromStr for AggFn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "mean" => AggFn::Mean,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            "sum" => AggFn::Sum,
            "count" => AggFn::Count,
            "first" => AggFn::First,
            "last" => AggFn::Last,
            "increase" => AggFn::Increase,
            _ => {
                return Err(Error::InvalidQuery {
                    reason: format!(
                        "fn={s:?} is not an aggregate: use mean, min, max, sum, count, first, last or increase"
                    ),
                });
            }
        })
    }
}

impl fmt::Display for AggFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AggFn::Mean => "mean",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Sum => "sum",
            AggFn::Count => "count",
            AggFn::First => "first",
            AggFn::Last => "last",
            AggFn::Increase => "increase",
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

/// Bucket boundaries covering `[from, to)`: bucket `i` is `[b[i], b[i+1])`; the first starts at or before
/// `from`.
pub fn bucket_bounds(
    from: UnixNanos,
    to: UnixNanos,
    every: Every,
    tz: Tz,
) -> Result<Vec<UnixNanos>> {
    if from >= to {
        return Err(Error::InvalidQuery {
            reason: "from must be before to".into(),
        });
    }
    let too_many = || Error::InvalidQuery {
        reason: format!(
            "the range holds more than {MAX_BUCKETS} buckets of {every}: choose a wider bucket or a shorter range"
        ),
    };
    let mut bounds = Vec::new();
    match every {
        Every::Fixed(width) => {
            // Aligned to the local clock of the query's time zone (its UTC offset at `from`): hours start at
            // :00 local in Asia/Kolkata (+05:30) too, and days at local midnight. For whole-hour offsets such as
            // Copenhagen's this is the same as aligning to the epoch.
            let offset = i64::from(
                tz.offset_from_utc_datetime(&tz.timestamp_nanos(from).naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * 1_000_000_000;
            // from - rem_euclid cannot overflow where from.div_euclid(width) * width could (near i64::MIN).
            let mut t = from
                .checked_sub(from.saturating_add(offset).rem_euclid(width))
                .ok_or_else(too_many)?;
            loop {
                bounds.push(t);
                if t >= to {
                    break;
                }
                if bounds.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
                t = t.checked_add(width).ok_or_else(too_many)?;
            }
        }
        calendar => {
            let out_of_range = || Error::InvalidQuery {
                reason: "calendar buckets need times between 1678 and 2261".into(),
            };
            let local = tz.timestamp_nanos(from).date_naive();
            let mut date = match calendar {
                Every::Days(_) => Some(local),
                Every::Weeks(_) => local
                    .checked_sub_days(Days::new(u64::from(local.weekday().num_days_from_monday()))),
                Every::Months(_) => local.with_day(1),
                _ => NaiveDate::from_ymd_opt(local.year(), 1, 1),
            }
            .ok_or_else(out_of_range)?;
            loop {
                let t = local_midnight(tz, date).ok_or_else(out_of_range)?;
                if bounds.last().is_some_and(|last| *last >= t) || (bounds.is_empty() && t > from) {
                    return Err(out_of_range());
                }
                bounds.push(t);
                if t >= to {
                    break;
                }
                if bounds.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
                date = match calendar {
                    Every::Days(n) => date.checked_add_days(Days::new(u64::from(n))),
                    Every::Weeks(n) => date.checked_add_days(Days::new(u64::from(n) * 7)),
                    Every::Months(n) => date.checked_add_months(Months::new(n)),
                    Every::Years(n) => n
                        .checked_mul(12)
                        .and_then(|m| date.checked_add_months(Months::new(m))),
                    Every::Fixed(_) => unreachable!("handled above"),
                }
                .ok_or_else(too_many)?;
            }
        }
    }
    Ok(bounds)
}

/// The instant local midnight begins on `date` in `tz` (the earliest instant of that local day, also where a
/// zone skips midnight itself); `None` outside the nanosecond range.
fn local_midnight(tz: Tz, date: NaiveDate) -> Option<UnixNanos> {
    let mut t = date.and_hms_opt(0, 0, 0)?;
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt.timestamp_nanos_opt();
        }
        t = t.checked_add_signed(Duration::minutes(30))?;
    }
    None
}

/// Mergeable aggregates of the points of one bucket: what a store returns per bucket, so that summaries of
/// compressed blocks, raw points and several series combine into the same answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partial {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub first: Option<(UnixNanos, f64)>,
    pub last: Option<(UnixNanos, f64)>,
    /// Counter increase of the points in the bucket, including the rise from the reading before them.
    pub increase: f64,
}

impl Default for Partial {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: None,
            last: None,
            increase: 0.0,
        }
    }
}

fn rise(prev: f64, v: f64) -> f64 {
    if v >= prev { v - prev } else { v }
}

impl Partial {
    fn point(&mut self, t: UnixNanos, v: f64, prev: Option<f64>) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.first.is_none_or(|(ft, _)| t < ft) {
            self.first = Some((t, v));
        }
        if self.last.is_none_or(|(lt, _)| t >= lt) {
            self.last = Some((t, v));
        }
        if let Some(p) = prev {
            self.increase += rise(p, v);
        }
    }

    /// Adds another partial of the same bucket (another block, or another series of a group).
    pub fn merge(&mut self, o: &Partial) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if let Some((t, v)) = o.first
            && self.first.is_none_or(|(ft, _)| t < ft)
        {
            self.first = Some((t, v));
        }
        if let Some((t, v)) = o.last
            && self.last.is_none_or(|(lt, _)| t >= lt)
        {
            self.last = Some((t, v));
        }
        self.increase += o.increase;
    }

    /// The bucket's value for `func`; `None` for a bucket without points.
    pub fn finish(&self, func: AggFn) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        Some(match func {
            AggFn::Mean => self.sum / self.count as f64,
            AggFn::Min => self.min,
            AggFn::Max => self.max,
            AggFn::Sum => self.sum,
            AggFn::Count => self.count as f64,
            AggFn::First => self.first?.1,
            AggFn::Last => self.last?.1,
            AggFn::Increase => self.increase,
        })
    }
}

/// Folds one series' points, in time order, into per-bucket partials. Points before the first bucket only
/// set the previous reading (for `increase`); points after the last bucket are ignored.
#[derive(Debug)]
pub struct Folder<'a> {
    bounds: &'a [UnixNanos],
    parts: Vec<Partial>,
    prev: Option<(UnixNanos, f64)>,
    /// The bucket of the last point.
    cursor: usize,
}

impl<'a> Folder<'a> {
    /// `prev` is the series' last reading before `bounds[0]`, if any.
    pub fn new(bounds: &'a [UnixNanos], prev: Option<(UnixNanos, f64)>) -> Self {
        Self {
            bounds,
            parts: vec![Partial::default(); bounds.len().saturating_sub(1)],
            prev,
            cursor: 0,
        }
    }

    fn bucket(&self, t: UnixNanos) -> Option<usize> {
        let (first, last) = (*self.bounds.first()?, *self.bounds.last()?);
        (t >= first && t < last).then(|| self.bounds.partition_point(|b| *b <= t) - 1)
    }

    /// `bucket`, for points that mostly arrive in time order: the bucket of the last point is tried first.
    fn bucket_near(&mut self, t: UnixNanos) -> Option<usize> {
        let c = self.cursor;
        if let (Some(&lo), Some(&hi)) = (self.bounds.get(c), self.bounds.get(c + 1))
            && lo <= t
            && t < hi
        {
            return Some(c);
        }
        let i = self.bucket(t)?;
        self.cursor = i;
        Some(i)
    }

    pub fn point(&mut self, t: UnixNanos, v: f64) {
        if let Some(i) = self.bucket_near(t) {
            self.parts[i].point(t, v, self.prev.map(|(_, p)| p));
        } else if self.bounds.last().is_some_and(|end| t >= *end)
            || self.prev.is_some_and(|(pt, _)| t <= pt)
        {
            // After the range, or an older reading before it than the one already known.
            return;
        }
        self.prev = Some((t, v));
    }

    /// Takes a whole block by its summary when the block lies within one bucket; `false` means the caller
    /// must decode it and fold its points instead.
    pub(crate) fn block(&mut self, s: &crate::series::block::Summary) -> bool {
        match (self.bucket(s.first.0), self.bucket(s.last.0)) {
            (Some(a), Some(b)) if a == b => {
                self.parts[a].merge(&Partial {
                    count: u64::from(s.count),
                    sum: s.sum,
                    min: s.min,
                    max: s.max,
                    first: Some(s.first),
                    last: Some(s.last),
                    increase: self.prev.map_or(0.0, |(_, p)| rise(p, s.first.1)) + s.increase,
                });
                self.prev = Some(s.last);
                true
            }
            _ => false,
        }
    }

    pub fn finish(self) -> Vec<Partial> {
        self.parts
    }
}

/// Runs a query against any reader.
pub async fn run(reader: &dyn SeriesReader, q: &Query) -> Result<Vec<ResultSeries>> {
    let series = reader.series(&q.filter).await?;
    let Some(every) = q.every else {
        return raw(reader, q, &series).await;
    };
    let bounds = bucket_bounds(q.from, q.to, every, q.tz)?;
    let keys: Vec<SeriesKey> = series.iter().map(|s| s.key.clone()).collect();
    let parts = reader.partials_many(&keys, &bounds).await?;
    let position: HashMap<&SeriesKey, usize> =
        keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let groups = group(&series, q.group_by.as_deref());
    let mut out = Vec::with_capacity(groups.len());
    for (tags, members) in groups {
        let unit = if q.func == AggFn::Count {
            Unit::new("count").ok()
        } else {
            members.iter().find_map(|s| s.unit.clone())
        };
        let mut total = vec![Partial::default(); bounds.len() - 1];
        for s in &members {
            let Some(series_parts) = position.get(&s.key).and_then(|i| parts.get(*i)) else {
                continue;
            };
            for (acc, part) in total.iter_mut().zip(series_parts) {
                acc.merge(part);
            }
        }
        let values: Vec<Option<f64>> = total.iter().map(|p| p.finish(q.func)).collect();
        out.push(ResultSeries {
            tags,
            unit,
            points: bounds.iter().copied().zip(values).collect(),
        });
    }
    Ok(out)
}

async fn raw(
    reader: &dyn SeriesReader,
    q: &Query,
    series: &[SeriesInfo],
) -> Result<Vec<ResultSeries>> {
    if q.group_by.is_some() {
        return Err(Error::InvalidQuery {
            reason: "group_by needs every (a bucket width) and fn".into(),
        });
    }
    let mut out = Vec::new();
    let mut total = 0;
    for s in series {
        let points = reader.range(&s.key, q.from, q.to).await?;
        total += points.len();
        if total > MAX_RAW_POINTS {
            return Err(Error::InvalidQuery {
                reason: format!(
                    "more than {MAX_RAW_POINTS} raw points: add every and fn, or narrow the range"
                ),
            });
        }
        out.push(ResultSeries {
            tags: s.key.tags.clone(),
            unit: s.unit.clone(),
            points: points.into_iter().map(|(t, v)| (t, Some(v))).collect(),
        });
    }
    Ok(out)
}

/// Groups series by the value of one tag (series without the tag form their own group with no tags), or
/// keeps every series on its own.
fn group<'a>(
    series: &'a [SeriesInfo],
    by: Option<&str>,
) -> Vec<(BTreeMap<String, String>, Vec<&'a SeriesInfo>)> {
    let Some(by) = by else {
        return series
            .iter()
            .map(|s| (s.key.tags.clone(), vec![s]))
            .collect();
    };
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<&SeriesInfo>> = BTreeMap::new();
    for s in series {
        let tags = s
            .key
            .tag(by)
            .map(|v| BTreeMap::from([(by.to_owned(), v.to_owned())]))
            .unwrap_or_default();
        groups.entry(tags).or_default().push(s);
    }
    groups.into_iter().collect()
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
