//! `fn=consumption`: a cumulative meter's consumption per bucket, exact to the bucket boundary.
//!
//! The meter's consumption so far is a line through its readings: between two readings it rises by the
//! later reading minus the earlier one, or by the later reading itself where the meter dropped (a reset or a
//! swapped meter starts from zero), spread evenly over the time between them. A bucket's consumption is that
//! line at its end minus the line at its start; a reading exactly on a boundary is the boundary's value. So
//! the rise between 23:00 and 00:00 belongs to the day that ends at 00:00, and the buckets of a range add up
//! to the consumption over the range (every rise is split between buckets, never counted twice or dropped).
//!
//! A boundary before the meter's first reading or after its last cannot be interpolated: the buckets it
//! bounds are gaps (`None`), with what the meter did consume inside them still known ([`SeriesConsumption`]),
//! for callers that report a covered part and say what is missing (the ranking).
//!
//! It needs, per series, the per-bucket partials any store computes (`Partial::inner`, `first`, `last`), the
//! reading before the range and the first reading at or after its end: rollups serve it like `increase`.
use super::Partial;
use crate::Result;
use crate::series::SeriesReader;
use bydata_schemas::{SeriesKey, UnixNanos};

/// One series' consumption over buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesConsumption {
    /// Per bucket: what the meter consumed inside it between readings (all of it when `known`).
    pub values: Vec<f64>,
    /// Per bucket: both boundaries lie between readings, so `values` is its whole consumption.
    pub known: Vec<bool>,
    /// The first and the last reading's time used: outside them lie the gaps. `None`: no reading at all.
    pub span: Option<(UnixNanos, UnixNanos)>,
}

impl SeriesConsumption {
    /// The bucket's consumption, `None` for a gap.
    pub fn value(&self, i: usize) -> Option<f64> {
        self.known
            .get(i)
            .copied()
            .filter(|k| *k)
            .and_then(|_| self.values.get(i).copied())
    }

    /// Stores the answer in the partials' consumption fields, where `Partial::merge` can sum series.
    pub fn fill(&self, parts: &mut [Partial]) {
        for (i, p) in parts.iter_mut().enumerate() {
            p.consumption = self.values.get(i).copied().unwrap_or(0.0);
            let known = self.known.get(i).copied().unwrap_or(false);
            p.covered = u32::from(known);
            p.uncovered = u32::from(!known);
        }
    }
}

/// How far beyond the range `partials_many` looks for the readings around it, in one pass with the buckets: a
/// day, a whole number of rollup buckets (so rollups still serve the range) and usually within the blocks the
/// engine decodes anyway for the buckets the range's ends cut.
const AROUND: i64 = 86_400_000_000_000;

/// The partials of each of `keys` over `bounds`, with their consumption filled in (for
/// `Partial::finish(AggFn::Consumption)`), and each series' consumption.
///
/// The readings around the range come with the partials: the store folds a day before and after the range
/// as two more buckets, whose last and first readings they are. Only a series without a reading within that
/// day asks the store again (`last_before`, `first_from`).
pub async fn partials_many(
    reader: &dyn SeriesReader,
    keys: &[SeriesKey],
    bounds: &[UnixNanos],
) -> Result<(Vec<Vec<Partial>>, Vec<SeriesConsumption>)> {
    let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Ok((vec![Vec::new(); keys.len()], Vec::new()));
    };
    let mut wide = Vec::with_capacity(bounds.len() + 2);
    wide.push(start.saturating_sub(AROUND));
    wide.extend_from_slice(bounds);
    wide.push(end.saturating_add(AROUND));
    let mut all = reader.partials_many(keys, &wide).await?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, parts) in keys.iter().zip(all.iter_mut()) {
        let lead = parts.first().and_then(|p| p.last);
        let trail = parts.last().and_then(|p| p.first);
        // The buckets proper, without the two around them.
        parts.pop();
        if !parts.is_empty() {
            parts.remove(0);
        }
        let before = match lead {
            Some(r) => Some(r),
            None => reader.last_before(key, start).await?,
        };
        let after = match trail {
            Some(r) => Some(r),
            None => reader.first_from(key, end).await?,
        };
        let c = per_bucket(bounds, before, parts, after);
        c.fill(parts);
        out.push(c);
    }
    Ok((all, out))
}

fn rise(prev: f64, v: f64) -> f64 {
    if v >= prev { v - prev } else { v }
}

/// Consumption per bucket `[bounds[i], bounds[i+1])` of one series, from its partials over `bounds`, its last
/// reading before `bounds[0]` and its first reading at or after the last bound.
pub fn per_bucket(
    bounds: &[UnixNanos],
    before: Option<(UnixNanos, f64)>,
    parts: &[Partial],
    after: Option<(UnixNanos, f64)>,
) -> SeriesConsumption {
    let n = bounds.len().saturating_sub(1);
    let mut values = vec![0.0; n];
    let mut prev = before;
    let mut earliest = before.map(|(t, _)| t);
    for (i, p) in parts.iter().enumerate().take(n) {
        let (Some(first), Some(last)) = (p.first, p.last) else {
            continue;
        };
        if let Some(from) = prev {
            spread(bounds, &mut values, from, first);
        }
        earliest = earliest.or(Some(first.0));
        values[i] += p.inner;
        prev = Some(last);
    }
    let latest = match (prev, after) {
        (Some(from), Some(to)) => {
            spread(bounds, &mut values, from, to);
            Some(to.0)
        }
        (Some(from), None) => Some(from.0),
        (None, to) => to.map(|(t, _)| t),
    };
    let earliest = earliest.or(latest);
    let span = earliest.zip(latest);
    let known = bounds
        .windows(2)
        .map(|w| span.is_some_and(|(lo, hi)| lo <= w[0] && hi >= w[1]))
        .collect();
    SeriesConsumption {
        values,
        known,
        span,
    }
}

/// Adds the rise from reading `a` to reading `b` to the buckets the time between them crosses, each its
/// share of the time: the line's value at each boundary, differenced.
fn spread(bounds: &[UnixNanos], values: &mut [f64], a: (UnixNanos, f64), b: (UnixNanos, f64)) {
    let (t0, t1) = (a.0, b.0);
    if t1 <= t0 {
        return;
    }
    let r = rise(a.1, b.1);
    if r == 0.0 {
        return;
    }
    // In whole nanoseconds, so a bucket inside the span gets exactly its share (no cancellation).
    let len = i128::from(t1) - i128::from(t0);
    // Buckets from the one holding t0 to the one holding t1.
    let lo = bounds.partition_point(|b| *b <= t0).saturating_sub(1);
    let hi = bounds.partition_point(|b| *b < t1).min(values.len());
    for (i, value) in values.iter_mut().enumerate().take(hi).skip(lo) {
        let (Some(&s), Some(&e)) = (bounds.get(i), bounds.get(i + 1)) else {
            continue;
        };
        let overlap = i128::from(e.min(t1)) - i128::from(s.max(t0));
        if overlap > 0 {
            *value += r * overlap as f64 / len as f64;
        }
    }
}

/// The naive model the tests hold `per_bucket` and the engines to: the meter's line evaluated at `t`
/// straight from the definition, over all of its readings (sorted by time); `None` outside them.
#[cfg(test)]
pub(crate) fn line_at(points: &[(i64, f64)], t: i64) -> Option<f64> {
    let mut total = 0.0;
    for w in points.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        if t1 <= t {
            total += rise(v0, v1);
        } else if t0 < t {
            total += rise(v0, v1) * (t - t0) as f64 / (t1 - t0) as f64;
        }
    }
    let (first, last) = (points.first()?.0, points.last()?.0);
    (first <= t && t <= last).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Folder;
    use proptest::prelude::*;

    const H: i64 = 3600;

    /// What the engines give: the folded partials, plus the readings around the range.
    fn from_points(bounds: &[i64], points: &[(i64, f64)]) -> SeriesConsumption {
        let (start, end) = (bounds[0], bounds[bounds.len() - 1]);
        let before = points.iter().rev().find(|p| p.0 < start).copied();
        let after = points.iter().find(|p| p.0 >= end).copied();
        let mut folder = Folder::new(bounds, before);
        for &(t, v) in points.iter().filter(|p| p.0 >= start && p.0 < end) {
            folder.point(t, v);
        }
        per_bucket(bounds, before, &folder.finish(), after)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn an_hourly_meter_gives_24_per_day_not_23() {
        // Read every hour at :00, rising 1 kWh an hour: the reading at midnight closes the day before.
        let points: Vec<(i64, f64)> = (0..=72).map(|h| (h * H, h as f64)).collect();
        let c = from_points(&[0, 24 * H, 48 * H, 72 * H], &points);
        assert_eq!(c.value(0), Some(24.0));
        assert_eq!(c.value(1), Some(24.0));
        assert_eq!(c.value(2), Some(24.0));
    }

    #[test]
    fn a_boundary_between_readings_is_interpolated() {
        // Readings at 22:00 (10) and 02:00 (18): midnight is halfway, 14.
        let points = [(22 * H, 10.0), (26 * H, 18.0)];
        let c = from_points(&[0, 24 * H, 48 * H], &points);
        assert_eq!(c.values, vec![4.0, 4.0]);
        // Neither day has readings on both sides of both its boundaries: gaps, stated.
        assert_eq!((c.value(0), c.value(1)), (None, None));
        assert_eq!(c.span, Some((22 * H, 26 * H)));
        let c = from_points(&[23 * H, 24 * H, 25 * H], &points);
        assert_eq!((c.value(0), c.value(1)), (Some(2.0), Some(2.0)));
    }

    #[test]
    fn a_reset_counts_from_zero() {
        // 100 at 0h, 104 at 2h, then a new meter: 3 at 4h. The rise 104 -> 3 is 3, spread over 2h-4h.
        let points = [(0, 100.0), (2 * H, 104.0), (4 * H, 3.0)];
        let c = from_points(&[0, H, 3 * H, 4 * H], &points);
        assert_eq!(c.value(0), Some(2.0));
        assert_eq!(c.value(1), Some(2.0 + 1.5));
        assert_eq!(c.value(2), Some(1.5));
    }

    #[test]
    fn buckets_without_readings_between_readings_still_have_a_value() {
        let points = [(0, 0.0), (10 * H, 10.0)];
        let bounds: Vec<i64> = (0..=10).map(|h| h * H).collect();
        let c = from_points(&bounds, &points);
        assert!((0..10).all(|i| c.value(i) == Some(1.0)), "{c:?}");
    }

    proptest! {
        #[test]
        fn matches_the_naive_model_and_adds_up(
            steps in proptest::collection::vec((1i64..5000, 0f64..50.0, prop::bool::weighted(0.05)), 1..120),
            start in -2000i64..2000,
            width in 1i64..4000,
            n in 1usize..30,
        ) {
            let mut t = 0;
            let mut v = 10.0;
            let points: Vec<(i64, f64)> = steps.iter().map(|(dt, dv, reset)| {
                t += dt;
                v = if *reset { *dv } else { v + dv };
                (t, v)
            }).collect();
            let bounds: Vec<i64> = (0..=n as i64).map(|i| start + i * width).collect();
            let c = from_points(&bounds, &points);
            for (i, w) in bounds.windows(2).enumerate() {
                let naive = line_at(&points, w[1]).zip(line_at(&points, w[0])).map(|(b, a)| b - a);
                prop_assert_eq!(c.value(i).is_some(), naive.is_some(), "bucket {}: {:?}", i, c);
                if let (Some(got), Some(want)) = (c.value(i), naive) {
                    prop_assert!(close(got, want), "bucket {}: {} vs {}", i, got, want);
                }
            }
            // The buckets add up to the consumption over the range, wherever the range is covered.
            let (first, last) = (bounds[0], bounds[n]);
            if let (Some(a), Some(b)) = (line_at(&points, first), line_at(&points, last)) {
                let sum: f64 = (0..n).filter_map(|i| c.value(i)).sum();
                prop_assert!(close(sum, b - a), "{} vs {}", sum, b - a);
            }
            // And what the covered part consumed is known even where the range is not covered.
            let lo = points[0].0.max(first);
            let hi = points[points.len() - 1].0.min(last);
            if lo < hi {
                let want = line_at(&points, hi).unwrap_or(0.0) - line_at(&points, lo).unwrap_or(0.0);
                prop_assert!(close(c.values.iter().sum(), want), "{:?} vs {}", c.values, want);
            }
        }
    }
}
