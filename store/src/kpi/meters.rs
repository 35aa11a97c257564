//! A building's meters per bucket, each by what kind of reading it holds: a cumulative meter's consumption
//! by `fn=consumption` (exact to the bucket boundary), an interval meter's (`reading=interval`, each reading
//! what was consumed in the interval starting at its time, as Eloverblik's hourly quantities) by the sum of
//! the readings that start in the bucket. What a meter's readings do not cover is a gap, stated.
use crate::Result;
use crate::query::consumption;
use crate::series::SeriesReader;
use bydata_schemas::{SeriesKey, UnixNanos};

/// The tag and value that mark an interval meter.
pub const READING_TAG: &str = "reading";
pub const INTERVAL: &str = "interval";

/// How long an interval reading lasts when nothing says otherwise: Eloverblik's hourly quantities.
const INTERVAL_NANOS: i64 = 3_600_000_000_000;

type Span = Option<(UnixNanos, UnixNanos)>;

/// One meter over buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterBuckets {
    /// Per bucket: what the meter consumed in the part of it its readings cover; `None` where they cover
    /// none of it.
    pub values: Vec<Option<f64>>,
    /// Per bucket: its readings cover all of it.
    pub whole: Vec<bool>,
    /// Spans of `[bounds[0], last bound)` its readings do not cover.
    pub gaps: Vec<(UnixNanos, UnixNanos)>,
}

pub fn is_interval(key: &SeriesKey) -> bool {
    key.tag(READING_TAG) == Some(INTERVAL)
}

/// Each of `keys` over the buckets `bounds`, in the order of `keys`.
pub async fn meter_buckets(
    reader: &dyn SeriesReader,
    keys: &[SeriesKey],
    bounds: &[UnixNanos],
) -> Result<Vec<MeterBuckets>> {
    let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    // Interval meters are summed, cumulative ones differenced: each kind in one call to the store.
    let (interval, cumulative): (Vec<usize>, Vec<usize>) =
        (0..keys.len()).partition(|i| keys.get(*i).is_some_and(is_interval));
    let pick = |ix: &[usize]| -> Vec<SeriesKey> {
        ix.iter().filter_map(|i| keys.get(*i).cloned()).collect()
    };
    let summed = reader.partials_many(&pick(&interval), bounds).await?;
    let (_, differenced) = consumption::partials_many(reader, &pick(&cumulative), bounds).await?;
    let mut per_key: Vec<Option<(Vec<Option<f64>>, Span)>> = vec![None; keys.len()];
    for (i, parts) in interval.iter().zip(summed) {
        let first = parts.iter().find_map(|p| p.first).map(|(t, _)| t);
        let last = parts.iter().rev().find_map(|p| p.last).map(|(t, _)| t);
        let span = first.zip(last.map(|t| t.saturating_add(INTERVAL_NANOS)));
        let values = parts
            .iter()
            .map(|p| (p.count > 0).then_some(p.sum))
            .collect();
        per_key[*i] = Some((values, span));
    }
    for (i, c) in cumulative.iter().zip(differenced) {
        let span = c.span;
        let values = bounds
            .windows(2)
            .zip(c.values)
            .map(|(w, v)| span.filter(|(lo, hi)| *lo < w[1] && *hi > w[0]).map(|_| v))
            .collect();
        per_key[*i] = Some((values, span));
    }
    let mut out = Vec::with_capacity(keys.len());
    for m in per_key {
        let (values, span) =
            m.unwrap_or_else(|| (vec![None; bounds.len().saturating_sub(1)], None));
        let whole = covered(bounds, span);
        let mut gaps = Vec::new();
        match span {
            None => gaps.push((start, end)),
            Some((lo, hi)) => {
                if lo > start {
                    gaps.push((start, lo.min(end)));
                }
                if hi < end {
                    gaps.push((hi.max(start), end));
                }
            }
        }
        out.push(MeterBuckets {
            values,
            whole,
            gaps,
        });
    }
    Ok(out)
}

fn covered(bounds: &[UnixNanos], span: Option<(UnixNanos, UnixNanos)>) -> Vec<bool> {
    bounds
        .windows(2)
        .map(|w| span.is_some_and(|(lo, hi)| lo <= w[0] && hi >= w[1]))
        .collect()
}

/// One meter over one period.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterPeriod {
    pub value: Option<f64>,
    pub gaps: Vec<(UnixNanos, UnixNanos)>,
}

/// Each of `keys` over `[from, to)`.
pub async fn consumption_of_meters(
    reader: &dyn SeriesReader,
    keys: &[SeriesKey],
    from: UnixNanos,
    to: UnixNanos,
) -> Result<Vec<MeterPeriod>> {
    Ok(meter_buckets(reader, keys, &[from, to])
        .await?
        .into_iter()
        .map(|m| MeterPeriod {
            value: m.values.first().copied().flatten(),
            gaps: m.gaps,
        })
        .collect())
}
