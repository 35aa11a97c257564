//! Reads over one snapshot: the parts (in precedence order) and the buffered points copied before it.
//!
//! A series' blocks from all parts are walked in time order, in clusters of blocks whose time spans overlap
//! (late data or rewrites flushed into a newer part). A cluster of one block that no buffered point falls
//! into is clean: an aggregate can take it by its summary. Otherwise the cluster's blocks are decoded and
//! merged, a newer part's point replacing an older one at the same time, and a buffered point replacing both.
//! A part's points that a newer delete covers (`Hidden`) are left out as blocks are decoded; a block they
//! fall into is never taken by its summary.
use super::levels::levels_for;
use super::part::{BlockRef, Part, Scratch};
use super::rollup;
use super::scan::{Parts, last_before, visible};
use super::tombstone::Hidden;

use crate::Result;
use crate::aggregate::{Folder, Partial};
use bydata_schemas::UnixNanos;

#[derive(Clone, Copy)]
struct Src<'a> {
    /// Index of the part in the snapshot: higher wins.
    prec: usize,
    part: &'a Part,
    block: BlockRef,
}

/// Blocks of `series` that overlap `[from, to)`, in groups of overlapping time spans, in time order.
fn clusters<'a>(parts: &'a Parts, series: u64, from: i64, to: i64) -> Vec<Vec<Src<'a>>> {
    let mut srcs: Vec<Src<'a>> = Vec::new();
    for (prec, part) in parts.iter().enumerate() {
        let blocks = part.blocks_of(series);
        let start = blocks.partition_point(|b| b.summary.last.0 < from);
        for b in blocks.get(start..).unwrap_or_default() {
            if b.summary.first.0 >= to {
                break;
            }
            srcs.push(Src {
                prec,
                part,
                block: *b,
            });
        }
    }
    srcs.sort_by_key(|s| (s.block.summary.first.0, s.prec));
    let mut out: Vec<Vec<Src<'a>>> = Vec::new();
    let mut end = i64::MIN;
    for s in srcs {
        let (first, last) = (s.block.summary.first.0, s.block.summary.last.0);
        match out.last_mut() {
            Some(cluster) if first <= end => {
                cluster.push(s);
                end = end.max(last);
            }
            _ => {
                out.push(vec![s]);
                end = last;
            }
        }
    }
    out
}

/// The points of a cluster, merged by precedence, then `overlay` (sorted) on top.
fn merged(cluster: &[Src<'_>], overlay: &[(i64, f64)], hidden: &Hidden) -> Result<Vec<(i64, f64)>> {
    let mut points = if let [one] = cluster {
        visible(one.part, &one.block, hidden)?
    } else {
        let mut tagged: Vec<(i64, usize, f64)> = Vec::new();
        for s in cluster {
            tagged.extend(
                visible(s.part, &s.block, hidden)?
                    .into_iter()
                    .map(|(t, v)| (t, s.prec, v)),
            );
        }
        tagged.sort_by_key(|(t, prec, _)| (*t, *prec));
        let mut out: Vec<(i64, f64)> = Vec::with_capacity(tagged.len());
        for (t, _, v) in tagged {
            match out.last_mut() {
                Some(last) if last.0 == t => last.1 = v,
                _ => out.push((t, v)),
            }
        }
        out
    };
    if !overlay.is_empty() {
        points.retain(|(t, _)| overlay.binary_search_by_key(t, |p| p.0).is_err());
        points.extend_from_slice(overlay);
        points.sort_by_key(|p| p.0);
    }
    Ok(points)
}

fn span(cluster: &[Src<'_>]) -> (i64, i64) {
    let lo = cluster.iter().map(|s| s.block.summary.first.0).min();
    let hi = cluster.iter().map(|s| s.block.summary.last.0).max();
    (lo.unwrap_or(i64::MAX), hi.unwrap_or(i64::MIN))
}

/// Splits `overlay` (sorted) at the times `lo..=hi`: what comes before, what falls inside, what is after.
type Points<'a> = &'a [(i64, f64)];

fn split(overlay: Points<'_>, lo: i64, hi: i64) -> (Points<'_>, Points<'_>, Points<'_>) {
    let a = overlay.partition_point(|p| p.0 < lo);
    let b = overlay.partition_point(|p| p.0 <= hi).max(a);
    let (before, rest) = overlay.split_at(a);
    let (inside, after) = rest.split_at(b - a);
    (before, inside, after)
}

/// The points in `[from, to)`; `overlay` is the buffered points of the series in that range.
pub(super) fn range(
    parts: &Parts,
    mut overlay: &[(i64, f64)],
    series: u64,
    from: UnixNanos,
    to: UnixNanos,
    hidden: &Hidden,
) -> Result<Vec<(UnixNanos, f64)>> {
    let mut out = Vec::new();
    for cluster in clusters(parts, series, from, to) {
        let (lo, hi) = span(&cluster);
        let (before, inside, after) = split(overlay, lo, hi);
        out.extend_from_slice(before);
        out.extend(
            merged(&cluster, inside, hidden)?
                .into_iter()
                .filter(|(t, _)| *t >= from && *t < to),
        );
        overlay = after;
    }
    out.extend_from_slice(overlay);
    Ok(out)
}

/// Per-bucket partials: clean blocks inside one bucket by their summary, the rest point by point.
/// `overlay` is the series' buffered points in the buckets, `buffered_prev` its last one before them.
pub(super) fn partials(
    parts: &Parts,
    mut overlay: &[(i64, f64)],
    buffered_prev: Option<(i64, f64)>,
    series: u64,
    bounds: &[UnixNanos],
    hidden: &Hidden,
    scratch: &mut Scratch,
) -> Result<Vec<Partial>> {
    let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    if let Some(answer) = edges_apart(
        parts,
        overlay,
        buffered_prev,
        series,
        bounds,
        hidden,
        scratch,
    )? {
        return Ok(answer);
    }
    if let Some(answer) = rollup::partials(parts, overlay, buffered_prev, series, bounds, hidden)? {
        return Ok(answer);
    }
    let clusters = clusters(parts, series, start, end);
    // The reading before the range, from the index alone: each part's last block that ends before the
    // range. Points of a block that straddles the range's start reach the folder with the block, which
    // takes the latest of them as the reading before. Only when a part's candidate falls inside that
    // block's span could precedence between two parts matter: then the exact lookup decides.
    // (time, precedence, value): the buffer outranks every part, a newer part an older one.
    let mut cheap = buffered_prev.map(|(t, v)| (t, usize::MAX, v));
    for (prec, part) in parts.iter().enumerate() {
        let blocks = part.blocks_of(series);
        let n = blocks.partition_point(|b| b.summary.last.0 < start);
        if let Some(b) = n.checked_sub(1).and_then(|i| blocks.get(i))
            && cheap.is_none_or(|(t, p, _)| (b.summary.last.0, prec) > (t, p))
        {
            cheap = Some((b.summary.last.0, prec, b.summary.last.1));
        }
    }
    let cheap = cheap.map(|(t, _, v)| (t, v));
    let first_lo = clusters.first().map(|c| span(c).0);
    let prev = match (cheap, first_lo) {
        // A summary's last point may be deleted: with tombstones, the exact lookup decides.
        _ if !hidden.is_empty() => last_before(parts, buffered_prev, series, start, hidden)?,
        (Some((t, _)), Some(lo)) if t >= lo => {
            last_before(parts, buffered_prev, series, start, hidden)?
        }
        _ => cheap,
    };
    let mut folder = Folder::new(bounds, prev);
    for cluster in clusters {
        let (lo, hi) = span(&cluster);
        let (before, inside, after) = split(overlay, lo, hi);
        for &(t, v) in before {
            folder.point(t, v);
        }
        overlay = after;
        if let [one] = cluster.as_slice()
            && inside.is_empty()
            && !hidden.overlaps(
                one.part.hi,
                one.block.summary.first.0,
                one.block.summary.last.0,
            )
        {
            if !folder.block(&one.block.summary) {
                one.part.decode_into(&one.block, end, scratch)?;
                // The last point before the range is the reading before it; earlier ones do not matter.
                let from = scratch.points.partition_point(|p| p.0 < start);
                for &(t, v) in scratch
                    .points
                    .get(from.saturating_sub(1)..)
                    .unwrap_or_default()
                {
                    folder.point(t, v);
                }
            }
            continue;
        }
        for (t, v) in merged(&cluster, inside, hidden)? {
            folder.point(t, v);
        }
    }
    for &(t, v) in overlay {
        folder.point(t, v);
    }
    Ok(folder.finish())
}

/// Bounds cut by a query's `from` or `to` off the rollups' grid, whose inner bounds are on it: the inner
/// buckets are answered on their own, so rollups still serve them, and the two cut buckets from points.
/// `None`: the bounds are all on the grid, or none of the inner ones are.
fn edges_apart(
    parts: &Parts,
    overlay: &[(i64, f64)],
    buffered_prev: Option<(i64, f64)>,
    series: u64,
    bounds: &[UnixNanos],
    hidden: &Hidden,
    scratch: &mut Scratch,
) -> Result<Option<Vec<Partial>>> {
    let n = bounds.len();
    let (Some(inner), Some(&second), Some(&second_last)) = (
        bounds.get(1..n.saturating_sub(1)),
        bounds.get(1),
        bounds.get(n.wrapping_sub(2)),
    ) else {
        return Ok(None);
    };
    if n < 4 || !levels_for(bounds).is_empty() || levels_for(inner).is_empty() {
        return Ok(None);
    }
    let a = overlay.partition_point(|p| p.0 < second);
    let b = overlay.partition_point(|p| p.0 < second_last).max(a);
    let (head, rest) = overlay.split_at(a);
    let (middle, tail) = rest.split_at(b - a);
    let mut out = Vec::with_capacity(n - 1);
    out.extend(partials(
        parts,
        head,
        buffered_prev,
        series,
        &bounds[..2],
        hidden,
        scratch,
    )?);
    let before_middle = head.last().copied().or(buffered_prev);
    out.extend(partials(
        parts,
        middle,
        before_middle,
        series,
        inner,
        hidden,
        scratch,
    )?);
    let before_tail = middle.last().copied().or(before_middle);
    out.extend(partials(
        parts,
        tail,
        before_tail,
        series,
        &bounds[n - 2..],
        hidden,
        scratch,
    )?);
    Ok(Some(out))
}

/// About how many points of `series` the parts hold in `[from, to)`, from the block index alone: a block
/// inside counts whole, a block straddling an edge in proportion to the time it overlaps (points assumed
/// evenly spread). Points a newer part or a delete replaces are counted too.
pub(super) fn estimate_points(parts: &Parts, series: u64, from: i64, to: i64) -> u64 {
    let mut total: u64 = 0;
    for part in parts {
        let blocks = part.blocks_of(series);
        let start = blocks.partition_point(|b| b.summary.last.0 < from);
        for b in blocks.get(start..).unwrap_or_default() {
            let (first, last) = (b.summary.first.0, b.summary.last.0);
            if first >= to {
                break;
            }
            let count = u64::from(b.summary.count);
            let inside = if (first >= from && last < to) || last <= first {
                count
            } else {
                let overlap = (last.min(to) as f64 - first.max(from) as f64).max(0.0);
                let share = (overlap / (last as f64 - first as f64)).clamp(0.0, 1.0);
                (count as f64 * share).ceil() as u64
            };
            total = total.saturating_add(inside);
        }
    }
    total
}

/// Decodes every block of every part against its checksum and index entry.
pub(super) fn verify(parts: &Parts, series: u64, buffered: u64) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        series,
        head_points: buffered,
        ..VerifyReport::default()
    };
    for part in parts {
        for b in part.blocks() {
            let points = part.decode(b)?;
            report.blocks += 1;
            report.block_points += points.len() as u64;
            report.block_bytes += u64::from(b.len);
        }
        for r in part.rollups() {
            report.rollups += part.decode_rollup(r)?.len() as u64;
            report.rollup_bytes += u64::from(r.len);
        }
        report.parts += 1;
    }
    Ok(report)
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub series: u64,
    pub parts: u64,
    pub blocks: u64,
    pub block_points: u64,
    pub block_bytes: u64,
    /// Rollup buckets (hours and days) and the bytes they take.
    pub rollups: u64,
    pub rollup_bytes: u64,
    /// Points in the write-ahead log not yet flushed into a part.
    pub head_points: u64,
}
