//! Rollups: per series, a [`Summary`] per hour and per day (UTC, so an hour bucket also tiles every
//! whole-hour time zone's days and months), stored in the part beside the blocks they summarise.
//!
//! - **Maintained as data arrives**: a flush writes the rollups of the points it flushes; a merge
//!   recomputes them from the merged points, so late data and rewrites are in them once merged.
//! - **Correct before that**: a query uses a part's rollup only when that part is the only source of the
//!   series in the query's range (no other part overlaps it, no buffered point falls in it); otherwise it
//!   reads the points. Late data lands in a newer part, which makes the range mixed until a merge.
//! - **Kept longer than raw points**: when retention drops raw points, the buckets they were in keep the
//!   summaries computed before (`EngineConfig::rollup_retention` bounds them separately).
//! - **Never with deleted points**: a part's rollup is not used while a delete newer than the part covers a
//!   bucket the query needs; a merge drops the carried buckets a delete touches and recomputes them from the
//!   raw points that are left.
//! - **Only where they pay**: a bucket's summary costs about as much disk as 3–8 compressed points, and
//!   reading a dozen points is as fast as decoding a summary, so a level is stored for a series when its
//!   buckets hold at least `MIN_POINTS_PER_BUCKET` points on average: daily rollups for nearly every
//!   sensor, hourly ones for sensors reporting every five minutes or faster. Sparser series are read raw.
use super::levels::{LEVELS, levels_for};
use super::part::{Part, PartWriter};
use super::scan::{Parts, last_before};
use super::tombstone::Hidden;
use crate::Result;
use crate::aggregate::{Folder, Partial};
use crate::series::block::{self, Summary};
use std::collections::BTreeMap;

const MIN_POINTS_PER_BUCKET: usize = 12;

/// Summaries of sorted points per bucket of `width`.
pub(super) fn buckets(points: &[(i64, f64)], width: i64) -> Vec<(i64, Summary)> {
    let mut out = Vec::new();
    let mut rest = points;
    while let Some(&(t, _)) = rest.first() {
        let start = t - t.rem_euclid(width);
        let end = start.saturating_add(width);
        let n = rest.partition_point(|p| p.0 < end);
        let (bucket, tail) = rest.split_at(n.max(1));
        if let Some(s) = block::summarize(bucket) {
            out.push((start, s));
        }
        rest = tail;
    }
    out
}

/// The rollups of one series for a new part. `points` are the part's points of the series, sorted, before
/// raw retention cut them; `carried` are the series' rollup entries in the inputs (per level, the
/// newest input's entry for a bucket). A bucket starting before `cut` (raw retention) keeps its carried
/// entry: the points it summarised may be gone. Buckets starting before `rollup_cut` go.
pub(super) fn write(
    out: &mut PartWriter,
    series: u64,
    points: &[(i64, f64)],
    carried: &[BTreeMap<i64, Summary>; 2],
    cut: Option<i64>,
    rollup_cut: Option<i64>,
) -> Result<()> {
    for (i, (level, width)) in LEVELS.iter().enumerate() {
        let computed = buckets(points, *width);
        let old = &carried[i];
        if old.is_empty() && points.len() < MIN_POINTS_PER_BUCKET * computed.len() {
            continue;
        }
        let mut entries: BTreeMap<i64, Summary> = old.clone();
        for (start, s) in computed {
            if cut.is_some_and(|c| start < c) && old.contains_key(&start) {
                continue;
            }
            entries.insert(start, s);
        }
        if let Some(c) = rollup_cut {
            entries.retain(|start, _| *start >= c);
        }
        let entries: Vec<(i64, Summary)> = entries.into_iter().collect();
        match out.add_rollup(series, *level, &entries) {
            Ok(()) => {}
            // Sums beyond f64 range cannot be stored; such a series is read raw.
            Err(crate::Error::Corrupt { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The rollup entries of `series` in `inputs` (in precedence order), per level, the newest winning. A
/// bucket a delete newer than its part touches is left out: it may summarise deleted points.
pub(super) fn carried(
    inputs: &[std::sync::Arc<Part>],
    series: u64,
    hidden: &Hidden,
) -> Result<[BTreeMap<i64, Summary>; 2]> {
    let mut out = [BTreeMap::new(), BTreeMap::new()];
    for part in inputs {
        for (i, (level, width)) in LEVELS.iter().enumerate() {
            for r in part.rollups_of(series, *level) {
                let entries = part.decode_rollup(r)?;
                if hidden.overlaps(part.hi, r.first, r.last.saturating_add(*width)) {
                    out[i].extend(entries.into_iter().filter(|(b, _)| {
                        !hidden.overlaps(part.hi, *b, b.saturating_add(width - 1))
                    }));
                } else {
                    out[i].extend(entries);
                }
            }
        }
    }
    Ok(out)
}

/// Answers `partials` from a rollup when one part alone holds the series in the range, no buffered point
/// falls in it and no delete newer than the part touches the buckets it needs; `None` means: read the points.
pub(super) fn partials(
    parts: &Parts,
    overlay: &[(i64, f64)],
    buffered_prev: Option<(i64, f64)>,
    series: u64,
    bounds: &[i64],
    hidden: &Hidden,
) -> Result<Option<Vec<Partial>>> {
    let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Ok(None);
    };
    if !overlay.is_empty() {
        return Ok(None);
    }
    let levels = levels_for(bounds);
    if levels.is_empty() {
        return Ok(None);
    }
    let mut sources = parts.iter().filter(|p| {
        p.span_of(series)
            .is_some_and(|(lo, hi)| lo < end && hi >= start)
    });
    let (Some(part), None) = (sources.next(), sources.next()) else {
        return Ok(None);
    };
    for (level, _) in levels {
        // The chunks overlapping the range, and the one before it (for the reading before the range).
        let all = part.rollups_of(series, level);
        let from = all.partition_point(|r| r.last < start).saturating_sub(1);
        let refs: Vec<_> = all
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|r| r.first < end)
            .collect();
        if refs.is_empty() {
            continue;
        }
        let mut entries = Vec::new();
        for r in refs {
            entries.extend(part.decode_rollup(r)?);
        }
        // From the bucket that gives the reading before the range to the range's end.
        let lo = entries
            .iter()
            .take_while(|(b, _)| *b < start)
            .last()
            .map_or(start, |(b, _)| *b);
        if hidden.overlaps(part.hi, lo, end - 1) {
            return Ok(None);
        }
        // The reading before the range, for `increase`: this part's is the last summary before the range
        // (the rollup covers every point of the part); other parts' from their points.
        let others: Vec<std::sync::Arc<Part>> = parts
            .iter()
            .filter(|p| p.number != part.number)
            .cloned()
            .collect();
        let raw_prev = last_before(&others, buffered_prev, series, start, hidden)?;
        let rollup_prev = entries
            .iter()
            .take_while(|(b, _)| *b < start)
            .last()
            .map(|(_, s)| s.last);
        let prev = match (raw_prev, rollup_prev) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                // Both have a reading at that time: precedence decides, as the full lookup knows.
                last_before(parts, buffered_prev, series, start, hidden)?
            }
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        let mut folder = Folder::new(bounds, prev);
        for (b, s) in &entries {
            if *b < start || *b >= end {
                continue;
            }
            if !folder.block(s) {
                return Ok(None);
            }
        }
        return Ok(Some(folder.finish()));
    }
    Ok(None)
}
