//! Read helpers below both reads (`read`) and rollups and merges (`rollup`, `merge`): the parts of a snapshot,
//! a block's visible points, and the last point before a time.
use super::part::{BlockRef, Part};
use super::tombstone::Hidden;
use crate::Result;
use bydata_schemas::UnixNanos;
use std::sync::Arc;

/// The parts of a snapshot, oldest first.
pub(super) type Parts = [Arc<Part>];
/// The points of a block its part does not hide.
pub(super) fn visible(part: &Part, block: &BlockRef, hidden: &Hidden) -> Result<Vec<(i64, f64)>> {
    let mut points = part.decode(block)?;
    if !hidden.is_empty() {
        hidden.filter(part.hi, &mut points);
    }
    Ok(points)
}

/// The last point before `before`; `buffered` is the series' last buffered point before `before`.
pub(super) fn last_before(
    parts: &Parts,
    buffered: Option<(i64, f64)>,
    series: u64,
    before: UnixNanos,
    hidden: &Hidden,
) -> Result<Option<(UnixNanos, f64)>> {
    // (time, precedence, value): the buffer outranks every part.
    let mut best: Option<(i64, usize, f64)> = buffered.map(|(t, v)| (t, parts.len(), v));
    for (prec, part) in parts.iter().enumerate() {
        let blocks = part.blocks_of(series);
        let mut n = blocks.partition_point(|b| b.summary.first.0 < before);
        // Usually the first block tried answers; a block whose points before `before` are all deleted
        // hands over to the one before it.
        while let Some(b) = n.checked_sub(1).and_then(|i| blocks.get(i)) {
            n -= 1;
            let (first, last) = (b.summary.first.0, b.summary.last.0);
            if best.is_some_and(|(t, _, _)| t > last) {
                break;
            }
            let candidate = if last < before && !hidden.overlaps(part.hi, first, last) {
                Some(b.summary.last)
            } else {
                part.decode(b)?
                    .into_iter()
                    .rev()
                    .find(|(t, _)| *t < before && !hidden.hides(part.hi, *t))
            };
            if let Some((t, v)) = candidate {
                if best.is_none_or(|(bt, bp, _)| (t, prec) > (bt, bp)) {
                    best = Some((t, prec, v));
                }
                break;
            }
        }
    }
    Ok(best.map(|(t, _, v)| (t, v)))
}

/// The first point at or after `from`; `buffered` is the series' first buffered point at or after it.
pub(super) fn first_from(
    parts: &Parts,
    buffered: Option<(i64, f64)>,
    series: u64,
    from: UnixNanos,
    hidden: &Hidden,
) -> Result<Option<(UnixNanos, f64)>> {
    // (time, precedence, value): at the same time the buffer outranks every part, a newer part an older one.
    let mut best: Option<(i64, usize, f64)> = buffered.map(|(t, v)| (t, parts.len(), v));
    for (prec, part) in parts.iter().enumerate() {
        let blocks = part.blocks_of(series);
        // Usually the first block tried answers, by its summary when it starts at or after `from`.
        for b in blocks
            .get(blocks.partition_point(|b| b.summary.last.0 < from)..)
            .unwrap_or_default()
        {
            let (first, last) = (b.summary.first.0, b.summary.last.0);
            if best.is_some_and(|(t, _, _)| t < first) {
                break;
            }
            let candidate = if first >= from && !hidden.overlaps(part.hi, first, last) {
                Some(b.summary.first)
            } else {
                part.decode(b)?
                    .into_iter()
                    .find(|(t, _)| *t >= from && !hidden.hides(part.hi, *t))
            };
            if let Some((t, v)) = candidate {
                if best.is_none_or(|(bt, bp, _)| {
                    (t, std::cmp::Reverse(prec)) < (bt, std::cmp::Reverse(bp))
                }) {
                    best = Some((t, prec, v));
                }
                break;
            }
        }
    }
    Ok(best.map(|(t, _, v)| (t, v)))
}
