//! Aggregation shared by the series port and the query layer: the aggregate functions (`AggFn`), mergeable
//! per-bucket aggregates (`Partial`) and the fold of one series' points into them (`Folder`). Both
//! `crate::series` (whose readers return partials) and `crate::query` (which plans and finishes them) depend
//! on this module; it depends on neither.
use crate::{Error, Result};
use bydata_schemas::UnixNanos;
use std::fmt;
use std::str::FromStr;

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
    /// Consumption of a cumulative meter exact to the bucket boundary: its value at the bucket's end minus
    /// its value at the start, each boundary's value interpolated linearly between the readings around it (a
    /// reading on the boundary is its value), a drop counted as a reset (the new reading counts from zero).
    /// A bucket whose boundary has no reading on one side is `None`: a gap, stated rather than guessed.
    /// Computed by `crate::query::consumption` from the partials and the readings around the range.
    Consumption,
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
            "consumption" => AggFn::Consumption,
            _ => {
                return Err(Error::InvalidQuery {
                    reason: format!(
                        "fn={s:?} is not an aggregate: use mean, min, max, sum, count, first, last, increase or consumption"
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
            AggFn::Consumption => "consumption",
        })
    }
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
    /// Counter increase between the bucket's own points only (not from the reading before them): what
    /// `consumption` spreads the rise between buckets around.
    pub inner: f64,
    /// `AggFn::Consumption`, filled in by the query layer (`crate::query::consumption`), never by a store:
    /// the consumption inside the bucket of the series merged here, and how many of them could interpolate
    /// both of its boundaries (`covered`) or not (`uncovered`).
    pub consumption: f64,
    pub covered: u32,
    pub uncovered: u32,
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
            inner: 0.0,
            consumption: 0.0,
            covered: 0,
            uncovered: 0,
        }
    }
}

fn rise(prev: f64, v: f64) -> f64 {
    if v >= prev { v - prev } else { v }
}

impl Partial {
    fn point(&mut self, t: UnixNanos, v: f64, prev: Option<f64>) {
        // Points arrive in time order: with a point already here, the reading before is this bucket's.
        if let (Some(p), true) = (prev, self.count > 0) {
            self.inner += rise(p, v);
        }
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
        self.inner += o.inner;
        self.consumption += o.consumption;
        self.covered += o.covered;
        self.uncovered += o.uncovered;
    }

    /// The bucket's value for `func`; `None` for a bucket without points.
    pub fn finish(&self, func: AggFn) -> Option<f64> {
        if func == AggFn::Consumption {
            // A bucket without readings of its own still has a consumption when both boundaries interpolate.
            return (self.covered > 0 && self.uncovered == 0).then_some(self.consumption);
        }
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
            AggFn::Consumption => self.consumption,
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
                let into = self.prev.filter(|_| self.parts[a].count > 0);
                self.parts[a].merge(&Partial {
                    count: u64::from(s.count),
                    sum: s.sum,
                    min: s.min,
                    max: s.max,
                    first: Some(s.first),
                    last: Some(s.last),
                    increase: self.prev.map_or(0.0, |(_, p)| rise(p, s.first.1)) + s.increase,
                    inner: into.map_or(0.0, |(_, p)| rise(p, s.first.1)) + s.increase,
                    ..Partial::default()
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
