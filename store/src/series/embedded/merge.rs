//! Merging parts: a run of parts adjacent in precedence becomes one part, so reads visit few files, blocks
//! written small by frequent flushes become full ones, and points rewritten by a newer part are dropped.
//! Raw retention is applied on the way (`cutoff`), exactly: a block straddling the cut-off is re-encoded.
//! So are deletes: an input's points that a tombstone newer than the input covers are dropped, and the
//! rollup buckets they were in are recomputed from the points left.
//!
//! Per series the inputs' blocks are walked in time order; a full block that overlaps nothing and that
//! neither retention nor a delete touches is copied as it is (time-ordered data re-encodes only its newest
//! block), and from the first block that is not, the rest is decoded, merged (the newer part wins) and
//! re-encoded.
use super::part::{BlockRef, Part, PartWriter};
use super::rollup;
use super::scan::visible;
use super::tombstone::{Hidden, Tombstone};
use crate::Result;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    /// Points deleted by retention.
    pub(super) expired: u64,
    /// Points replaced by a newer part's point at the same time.
    pub(super) replaced: u64,
    /// Points dropped because a delete covers them.
    pub(super) deleted: u64,
}

/// Merges `inputs` (in precedence order, adjacent) into part `number`; `None` when nothing is left.
/// How a merge treats the points: block size, raw retention per series, and rollups.
pub(super) struct Rules<'a> {
    pub(super) block_points: usize,
    pub(super) cutoff: &'a dyn Fn(u64) -> Option<i64>,
    pub(super) rollups: bool,
    pub(super) rollup_cutoff: Option<i64>,
    /// Set when the engine closes: the merge stops between series and leaves its inputs as they are.
    pub(super) stop: &'a std::sync::atomic::AtomicBool,
    /// Deletes to apply: each hides the points of the inputs below its number.
    pub(super) tombstones: &'a [Tombstone],
    /// The least `hi` the output claims: the newest tombstone's number, when no part can hold a flush
    /// number between the inputs' and it (see `writer::merge_from`), so none of them applies to the output.
    pub(super) hi_at_least: u64,
}

pub(super) fn merge(
    dir: &Path,
    inputs: &[Arc<Part>],
    number: u64,
    rules: &Rules<'_>,
) -> Result<(Option<Part>, Outcome)> {
    let block_points = rules.block_points;
    let lo = inputs.iter().map(|p| p.lo).min().unwrap_or(number);
    let hi = inputs
        .iter()
        .map(|p| p.hi)
        .max()
        .unwrap_or(number)
        .max(rules.hi_at_least);
    let mut out = PartWriter::create(dir, number, lo, hi)?;
    let mut outcome = Outcome::default();
    let mut ids: Vec<u64> = inputs
        .iter()
        .flat_map(|p| {
            let blocks = p.blocks().iter().map(|b| b.series);
            blocks.chain(p.rollups().iter().map(|r| r.series))
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        if rules.stop.load(std::sync::atomic::Ordering::Relaxed) {
            out.abandon();
            return Err(crate::Error::Task {
                detail: "the engine is closing; the merge will run again".into(),
            });
        }
        let cut = (rules.cutoff)(id);
        let hidden = Hidden::of(rules.tombstones, id);
        let mut srcs: Vec<(usize, &Part, BlockRef)> = Vec::new();
        for (prec, part) in inputs.iter().enumerate() {
            srcs.extend(part.blocks_of(id).iter().map(|b| (prec, &**part, *b)));
        }
        srcs.sort_by_key(|(prec, _, b)| (b.summary.first.0, *prec));
        let mut i = 0;
        // With rollups, every point is needed to compute them (before retention cuts any).
        let mut all_points: Vec<(i64, f64)> = Vec::new();
        // Copy whole blocks while they are full, alone in their time span and untouched by retention.
        while let Some((_, part, b)) = srcs.get(i) {
            let s = &b.summary;
            let alone = srcs
                .get(i + 1)
                .is_none_or(|(_, _, next)| next.summary.first.0 > s.last.0);
            let masked = hidden.overlaps(part.hi, s.first.0, s.last.0);
            if let Some(c) = cut
                && s.last.0 < c
                && alone
            {
                if rules.rollups || masked {
                    let points = visible(part, b, &hidden)?;
                    outcome.deleted += u64::from(s.count) - points.len() as u64;
                    outcome.expired += points.len() as u64;
                    all_points.extend(points);
                } else {
                    outcome.expired += u64::from(s.count);
                }
                i += 1;
                continue;
            }
            let kept = cut.is_none_or(|c| s.first.0 >= c);
            if !(alone && kept && !masked && s.count as usize >= block_points) {
                break;
            }
            if rules.rollups {
                all_points.extend(part.decode(b)?);
            }
            out.add(id, &part.read(b)?)?;
            i += 1;
        }
        let rest = srcs.get(i..).unwrap_or_default();
        let mut tagged: Vec<(i64, usize, f64)> = Vec::new();
        for (prec, part, b) in rest {
            let points = visible(part, b, &hidden)?;
            outcome.deleted += u64::from(b.summary.count) - points.len() as u64;
            tagged.extend(points.into_iter().map(|(t, v)| (t, *prec, v)));
        }
        tagged.sort_by_key(|(t, prec, _)| (*t, *prec));
        let mut points: Vec<(i64, f64)> = Vec::with_capacity(tagged.len());
        for (t, _, v) in tagged {
            match points.last_mut() {
                Some(last) if last.0 == t => {
                    last.1 = v;
                    outcome.replaced += 1;
                }
                _ => points.push((t, v)),
            }
        }
        if rules.rollups {
            all_points.extend_from_slice(&points);
            let carried = rollup::carried(inputs, id, &hidden)?;
            rollup::write(
                &mut out,
                id,
                &all_points,
                &carried,
                cut,
                rules.rollup_cutoff,
            )?;
        }
        if let Some(c) = cut {
            let n = points.partition_point(|p| p.0 < c);
            outcome.expired += n as u64;
            points.drain(..n);
        }
        out.add_points(id, &points, block_points)?;
    }
    if out.is_empty() {
        out.abandon();
        return Ok((None, outcome));
    }
    Ok((Some(out.finish()?), outcome))
}

/// Which newest parts to merge while writes flow: a run of at least `min_run` parts, grown from the
/// newest backwards while the next older part is at most `ratio` times the run's size (size-tiered, so each
/// point is rewritten about log(n) times). Returns the index where the run starts.
pub(super) fn plan(sizes: &[u64], min_run: usize, ratio: u64) -> Option<usize> {
    let mut start = sizes.len();
    let mut total = 0u64;
    while start > 0 {
        let older = sizes[start - 1];
        if start < sizes.len() && older > total.saturating_mul(ratio) {
            break;
        }
        start -= 1;
        total = total.saturating_add(older);
    }
    (sizes.len() - start >= min_run.max(2)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn plans_size_tiered_runs() {
        assert_eq!(plan(&[], 4, 2), None);
        assert_eq!(plan(&[10], 4, 2), None);
        assert_eq!(plan(&[100, 2, 2, 2, 2], 4, 2), Some(1), "four small ones");
        assert_eq!(plan(&[100, 2, 2, 2], 4, 2), None, "not yet");
        assert_eq!(
            plan(&[8, 2, 2, 2, 2], 4, 2),
            Some(0),
            "the older part is small enough"
        );
        assert_eq!(plan(&[100, 8, 2], 2, 8), Some(1));
    }
}
