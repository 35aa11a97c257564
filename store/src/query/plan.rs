//! A query priced before it runs, then answered a chunk of series at a time.
//!
//! `plan` reads only the store's index: how many series match (`count_series`, nothing cloned), how many
//! buckets the range holds, and for raw queries how many points the range holds (`estimate_points`). Over a
//! limit, it refuses with what the query would cost and how to narrow it (`TooLarge`). `Chunks` then computes
//! the answer in chunks whose partials stay under `CHUNK_PARTIALS`, so a large answer never sits in memory
//! whole: the caller sends each chunk on before asking for the next. With `group_by`, the groups' running
//! totals are the only state kept across chunks (groups × buckets, bounded by `max_values`).
use super::refusal::TooLarge;
use super::{AggFn, Partial, Query, ResultSeries, bucket_bounds};
use crate::series::{SeriesInfo, SeriesReader};
use crate::{Error, Result};
use bydata_schemas::{SeriesKey, Unit, UnixNanos};
use std::collections::BTreeMap;
use std::fmt;

/// At most this many raw points per query (without `every`), unless configured otherwise.
pub const MAX_RAW_POINTS: u64 = 200_000;
/// Partials computed at once (series in a chunk × buckets): about 18 MB.
const CHUNK_PARTIALS: usize = 256 * 1024;
/// Most series in one chunk: enough to share work across the cores, few enough to answer early.
const CHUNK_SERIES: usize = 256;
/// A raw chunk ends after the series that brings it to this many points.
const CHUNK_POINTS: usize = 64 * 1024;

/// What one query may cost. Checked before any point is read; the raw-point limit again while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most values in a bucketed answer: series (or groups) × buckets.
    pub max_values: u64,
    /// Most points in a raw answer (without `every`).
    pub max_raw_points: u64,
    /// Most series one query may match.
    pub max_series: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_values: 1_000_000,
            max_raw_points: MAX_RAW_POINTS,
            max_series: 10_000,
        }
    }
}

impl Limits {
    /// For queries bounded by construction (building KPIs, open-data periods): only the raw-point limit.
    pub fn internal() -> Self {
        Self {
            max_values: u64::MAX,
            max_series: u64::MAX,
            ..Self::default()
        }
    }
}

/// What a query costs, known from the index before a point is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Series the query reads.
    pub series: u64,
    /// Answer series when they differ from `series` (`group_by`).
    pub groups: Option<u64>,
    /// Buckets per answer series (bucketed queries).
    pub buckets: Option<u64>,
    /// Raw points in the range, estimated (an upper bound where blocks straddle it); `None` for bucketed
    /// queries and where the store cannot tell.
    pub raw_points: Option<u64>,
}

impl Cost {
    /// The work: series × buckets, or the raw points read; `None` when unknown (treat it as large).
    pub fn work(&self) -> Option<u64> {
        match self.buckets {
            Some(b) => Some(self.series.saturating_mul(b)),
            None => self.raw_points,
        }
    }
}

impl fmt::Display for Cost {
    /// "200 series × 96,000 buckets", "about 12,000 raw points from 3 series".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::refusal::thousands;
        let series = thousands(self.series);
        match (self.buckets, self.raw_points) {
            (Some(b), _) => {
                write!(f, "{series} series × {} buckets", thousands(b))?;
                if let Some(g) = self.groups {
                    write!(f, " merged into {} groups", thousands(g))?;
                }
                Ok(())
            }
            (None, Some(p)) => write!(f, "about {} raw points from {series} series", thousands(p)),
            (None, None) => write!(f, "the raw points of {series} series"),
        }
    }
}

/// One series of the answer, before its values: the tags that identify it, its unit, and the indexes (in
/// `Plan::series`) of the series it merges.
#[derive(Debug, Clone)]
struct Head {
    tags: BTreeMap<String, String>,
    unit: Option<Unit>,
    members: Vec<usize>,
}

#[derive(Debug)]
enum Kind {
    Raw {
        max_points: u64,
    },
    Buckets {
        /// Aligned bucket starts (and the last bucket's end): the times of the answer.
        bounds: Vec<UnixNanos>,
        /// `bounds` with the first and last replaced by `from` and `to`: what the store folds points into.
        clipped: Vec<UnixNanos>,
        grouped: bool,
    },
}

/// A query that passed its limits: what it reads and what its answer will look like.
#[derive(Debug)]
pub struct Plan {
    query: Query,
    series: Vec<SeriesInfo>,
    heads: Vec<Head>,
    kind: Kind,
    cost: Cost,
}

/// Runs a query against any reader and collects the answer: for callers whose queries are bounded by
/// construction (building KPIs, open-data periods). Only the raw-point limit applies.
pub async fn run(reader: &dyn SeriesReader, q: &Query) -> Result<Vec<ResultSeries>> {
    let mut chunks = plan(reader, q, &Limits::internal()).await?.chunks();
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next(reader).await? {
        out.extend(chunk);
    }
    Ok(out)
}

/// Prices `q` from the store's index and refuses it (`Error::QueryTooLarge`) over `limits`.
pub async fn plan(reader: &dyn SeriesReader, q: &Query, limits: &Limits) -> Result<Plan> {
    if q.from >= q.to {
        return Err(Error::InvalidQuery {
            reason: "from must be before to".into(),
        });
    }
    if q.every.is_none() && q.group_by.is_some() {
        return Err(Error::InvalidQuery {
            reason: "group_by needs every (a bucket width) and fn".into(),
        });
    }
    let matched = u64::try_from(reader.count_series(&q.filter).await?).unwrap_or(u64::MAX);
    if matched > limits.max_series {
        return Err(TooLarge::Series {
            matched,
            limit: limits.max_series,
        }
        .into());
    }
    let bounds = q
        .every
        .map(|every| bucket_bounds(q.from, q.to, every, q.tz))
        .transpose()?;
    let buckets = bounds.as_ref().map(|b| (b.len() - 1) as u64);
    // Without group_by the answer's size is known from the count alone: refuse before listing anything.
    if let (Some(buckets), None) = (buckets, &q.group_by) {
        check_values(q, matched, false, buckets, limits)?;
    }
    let series = reader.series(&q.filter).await?;
    let heads = heads(q, &series);
    let mut cost = Cost {
        series: series.len() as u64,
        groups: q.group_by.as_ref().map(|_| heads.len() as u64),
        buckets,
        raw_points: None,
    };
    let kind = match bounds {
        Some(bounds) => {
            if let (Some(buckets), Some(groups)) = (buckets, cost.groups) {
                check_values(q, groups, true, buckets, limits)?;
            }
            let mut clipped = bounds.clone();
            if let Some(first) = clipped.first_mut() {
                *first = q.from;
            }
            if let Some(last) = clipped.last_mut() {
                *last = q.to;
            }
            Kind::Buckets {
                bounds,
                clipped,
                grouped: q.group_by.is_some(),
            }
        }
        None => {
            cost.raw_points = estimate(reader, &series, q).await?;
            if let Some(estimated) = cost.raw_points.filter(|p| *p > limits.max_raw_points) {
                return Err(TooLarge::raw(q, estimated, cost.series, limits).into());
            }
            Kind::Raw {
                max_points: limits.max_raw_points,
            }
        }
    };
    Ok(Plan {
        query: q.clone(),
        series,
        heads,
        kind,
        cost,
    })
}

fn check_values(q: &Query, rows: u64, grouped: bool, buckets: u64, limits: &Limits) -> Result<()> {
    if rows.saturating_mul(buckets) > limits.max_values {
        return Err(TooLarge::values(q, rows, grouped, buckets, limits).into());
    }
    Ok(())
}

/// The points of every series in the range, by the store's estimate; `None` if it cannot tell for one.
async fn estimate(
    reader: &dyn SeriesReader,
    series: &[SeriesInfo],
    q: &Query,
) -> Result<Option<u64>> {
    let mut total: u64 = 0;
    for s in series {
        match reader.estimate_points(&s.key, q.from, q.to).await? {
            Some(n) => total = total.saturating_add(n),
            None => return Ok(None),
        }
    }
    Ok(Some(total))
}

/// The answer's series: one per series, or one per value of the `group_by` tag (series without the tag form
/// a group with no tags), in tag order.
fn heads(q: &Query, series: &[SeriesInfo]) -> Vec<Head> {
    let count_unit = || Unit::new("count").ok();
    let unit_of = |members: &[usize]| {
        if q.func == AggFn::Count && q.every.is_some() {
            count_unit()
        } else {
            members.iter().find_map(|i| series.get(*i)?.unit.clone())
        }
    };
    let Some(by) = q.group_by.as_deref() else {
        return series
            .iter()
            .enumerate()
            .map(|(i, s)| Head {
                tags: s.key.tags.clone(),
                unit: unit_of(&[i]),
                members: vec![i],
            })
            .collect();
    };
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<usize>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        let tags = s
            .key
            .tag(by)
            .map(|v| BTreeMap::from([(by.to_owned(), v.to_owned())]))
            .unwrap_or_default();
        groups.entry(tags).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|(tags, members)| Head {
            unit: unit_of(&members),
            tags,
            members,
        })
        .collect()
}

impl Plan {
    pub fn query(&self) -> &Query {
        &self.query
    }

    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// The tags and unit of each answer series, in answer order, before any value is computed (what a
    /// streamed answer's header needs: CSV columns, the overall unit).
    pub fn answer_series(
        &self,
    ) -> impl Iterator<Item = (&BTreeMap<String, String>, Option<&Unit>)> {
        self.heads.iter().map(|h| (&h.tags, h.unit.as_ref()))
    }

    /// The keys of the series the plan reads.
    pub fn series_keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.iter().map(|s| &s.key)
    }

    /// The aligned bucket starts, and the last bucket's end; `None` for a raw query.
    pub fn bounds(&self) -> Option<&[UnixNanos]> {
        match &self.kind {
            Kind::Buckets { bounds, .. } => Some(bounds),
            Kind::Raw { .. } => None,
        }
    }

    /// Whether bucket `i` is cut by `from` or `to` (it holds only the points inside the range).
    pub fn is_partial(&self, i: usize) -> bool {
        let Some(bounds) = self.bounds() else {
            return false;
        };
        let last = bounds.len().saturating_sub(2);
        (i == 0 && bounds.first().is_some_and(|b| *b < self.query.from))
            || (i == last && bounds.last().is_some_and(|b| *b > self.query.to))
    }

    /// The answer, a chunk at a time.
    pub fn chunks(self) -> Chunks {
        let totals = match &self.kind {
            Kind::Buckets {
                bounds,
                grouped: true,
                ..
            } => vec![vec![Partial::default(); bounds.len() - 1]; self.heads.len()],
            _ => Vec::new(),
        };
        let group_of = if totals.is_empty() {
            Vec::new()
        } else {
            let mut group_of = vec![0; self.series.len()];
            for (g, head) in self.heads.iter().enumerate() {
                for m in &head.members {
                    if let Some(slot) = group_of.get_mut(*m) {
                        *slot = g;
                    }
                }
            }
            group_of
        };
        Chunks {
            plan: self,
            next: 0,
            raw_points: 0,
            totals,
            group_of,
            done: false,
        }
    }
}

/// The answer of a `Plan`, computed a chunk of series at a time.
#[derive(Debug)]
pub struct Chunks {
    plan: Plan,
    /// The next series (index in `plan.series`) to read.
    next: usize,
    raw_points: u64,
    /// With `group_by`: each group's running totals.
    totals: Vec<Vec<Partial>>,
    /// With `group_by`: the group of each series.
    group_of: Vec<usize>,
    done: bool,
}

impl Chunks {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The next answer series, in answer order; `None` when all are out. With `group_by` every group comes
    /// in the last chunk (each group needs every series). A raw answer past the point limit is an error
    /// (`TooLarge::RawPointsRead`), even when the estimate was lower.
    pub async fn next(&mut self, reader: &dyn SeriesReader) -> Result<Option<Vec<ResultSeries>>> {
        if self.done {
            return Ok(None);
        }
        let out = match &self.plan.kind {
            Kind::Raw { max_points } => self.raw(reader, *max_points).await?,
            Kind::Buckets { grouped: false, .. } => self.buckets(reader).await?,
            Kind::Buckets { grouped: true, .. } => self.groups(reader).await?,
        };
        self.done = self.next >= self.plan.series.len();
        Ok(Some(out))
    }

    async fn raw(&mut self, reader: &dyn SeriesReader, max: u64) -> Result<Vec<ResultSeries>> {
        let q = &self.plan.query;
        let mut out = Vec::new();
        let mut points_in_chunk = 0;
        while let (Some(s), Some(head)) = (
            self.plan.series.get(self.next),
            self.plan.heads.get(self.next),
        ) {
            let points = reader.range(&s.key, q.from, q.to).await?;
            self.raw_points = self.raw_points.saturating_add(points.len() as u64);
            if self.raw_points > max {
                return Err(TooLarge::RawPointsRead { limit: max }.into());
            }
            self.next += 1;
            points_in_chunk += points.len();
            out.push(ResultSeries {
                tags: head.tags.clone(),
                unit: head.unit.clone(),
                points: points.into_iter().map(|(t, v)| (t, Some(v))).collect(),
            });
            if points_in_chunk >= CHUNK_POINTS || out.len() >= CHUNK_SERIES {
                break;
            }
        }
        Ok(out)
    }

    /// The next chunk's series and their partials (over the clipped bounds).
    async fn partials(
        &mut self,
        reader: &dyn SeriesReader,
    ) -> Result<(std::ops::Range<usize>, Vec<Vec<Partial>>)> {
        let Kind::Buckets { clipped, .. } = &self.plan.kind else {
            return Ok((self.next..self.next, Vec::new()));
        };
        let buckets = clipped.len().saturating_sub(1).max(1);
        let len = (CHUNK_PARTIALS / buckets).clamp(1, CHUNK_SERIES);
        let range = self.next..(self.next + len).min(self.plan.series.len());
        let keys: Vec<SeriesKey> = self.plan.series[range.clone()]
            .iter()
            .map(|s| s.key.clone())
            .collect();
        let parts = if self.plan.query.func == AggFn::Consumption {
            super::consumption::partials_many(reader, &keys, clipped)
                .await?
                .0
        } else {
            reader.partials_many(&keys, clipped).await?
        };
        self.next = range.end;
        Ok((range, parts))
    }

    async fn buckets(&mut self, reader: &dyn SeriesReader) -> Result<Vec<ResultSeries>> {
        let (range, parts) = self.partials(reader).await?;
        let (Some(bounds), Some(heads)) = (self.plan.bounds(), self.plan.heads.get(range)) else {
            return Ok(Vec::new());
        };
        let func = self.plan.query.func;
        Ok(heads
            .iter()
            .zip(parts)
            .map(|(head, parts)| ResultSeries {
                tags: head.tags.clone(),
                unit: head.unit.clone(),
                points: bounds
                    .iter()
                    .copied()
                    .zip(parts.iter().map(|p| p.finish(func)))
                    .collect(),
            })
            .collect())
    }

    async fn groups(&mut self, reader: &dyn SeriesReader) -> Result<Vec<ResultSeries>> {
        while self.next < self.plan.series.len() {
            let (range, parts) = self.partials(reader).await?;
            for (i, series_parts) in range.zip(parts) {
                let Some(total) = self.group_of.get(i).and_then(|g| self.totals.get_mut(*g)) else {
                    continue;
                };
                for (acc, part) in total.iter_mut().zip(&series_parts) {
                    acc.merge(part);
                }
            }
        }
        let Some(bounds) = self.plan.bounds() else {
            return Ok(Vec::new());
        };
        let func = self.plan.query.func;
        let totals = std::mem::take(&mut self.totals);
        Ok(self
            .plan
            .heads
            .iter()
            .zip(totals)
            .map(|(head, total)| ResultSeries {
                tags: head.tags.clone(),
                unit: head.unit.clone(),
                points: bounds
                    .iter()
                    .copied()
                    .zip(total.iter().map(|p| p.finish(func)))
                    .collect(),
            })
            .collect())
    }
}
