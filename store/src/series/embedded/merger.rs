//! The merger thread: combines parts in the background (`merge`) — size-tiered while writes flow, everything
//! when they pause — and applies raw retention and deletes on the way, then retires the tombstones no part
//! needs any more.
//!
//! Its queue is bounded (`writer::QUEUE`); a flush notice that does not fit is dropped (the merger plans from
//! the parts it sees, so a missed notice loses nothing).
use super::files::sync_dir;
use super::merge;
use super::messages::{MergeRequest, answer};
use super::part::Part;
use super::shared::{Shared, write_lock};
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};

pub(super) fn run(shared: &Shared, rx: &Receiver<MergeRequest>) {
    let mut active = false;
    loop {
        match rx.recv_timeout(shared.config.compact_when_idle) {
            Ok(MergeRequest::Flushed) => {
                active = true;
                // Size-tiered while writes flow: four parts of similar size become one.
                while let Some(start) = merge::plan(&sizes(shared), 4, 2) {
                    if merge_logged(shared, start, None).is_none() {
                        break;
                    }
                }
            }
            Ok(MergeRequest::All { done }) => {
                let result = merge_from(shared, 0, None).map(|_| ());
                answer(done, &result, "compaction");
                active = false;
            }
            Err(RecvTimeoutError::Timeout) => {
                if active || needs_retention(shared) {
                    // Writes paused: merge down to one part (and apply retention on the way).
                    merge_logged(shared, 0, None);
                    active = false;
                } else if let Some(start) = first_with_tombstones(shared) {
                    // Deletes to apply: rewrite from the oldest part they touch.
                    merge_logged(shared, start, None);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The oldest part holding points a tombstone covers.
fn first_with_tombstones(shared: &Shared) -> Option<usize> {
    let (parts, tombstones) = shared.snapshot();
    if tombstones.is_empty() {
        return None;
    }
    parts.iter().position(|p| {
        tombstones
            .iter()
            .any(|t| t.affects(std::slice::from_ref(p)))
    })
}

fn sizes(shared: &Shared) -> Vec<u64> {
    shared.parts().iter().map(|p| p.bytes).collect()
}

fn needs_retention(shared: &Shared) -> bool {
    let cutoffs = shared.cutoffs();
    !cutoffs.is_empty()
        && shared.parts().iter().any(|p| {
            p.blocks().iter().any(|b| {
                cutoffs
                    .get(&b.series)
                    .is_some_and(|c| b.summary.first.0 < *c)
            })
        })
}

fn merge_logged(shared: &Shared, start: usize, end: Option<usize>) -> Option<merge::Outcome> {
    match merge_from(shared, start, end) {
        Ok(o) => Some(o),
        Err(_) if shared.closing.load(Ordering::Relaxed) => None,
        Err(e) if e.is_storage_full() => {
            // The unfinished output is removed; the inputs stay and are merged once there is room.
            tracing::warn!(error = %e, "merging parts failed for lack of space; they stay as they are");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "merging parts failed; they stay as they are");
            None
        }
    }
}

/// Merges the parts `start..end` (default: to the newest) of the current list into one, with retention.
fn merge_from(shared: &Shared, start: usize, end: Option<usize>) -> Result<merge::Outcome> {
    // Parts and tombstones from one snapshot: every part written before a tombstone in it is in it.
    let (parts, tombstones) = shared.snapshot();
    let end = end.unwrap_or(parts.len()).min(parts.len());
    let inputs: Vec<Arc<Part>> = parts.get(start..end).unwrap_or_default().to_vec();
    let cutoffs = shared.cutoffs();
    let retention_due = inputs.iter().any(|p| {
        p.blocks().iter().any(|b| {
            cutoffs
                .get(&b.series)
                .is_some_and(|c| b.summary.first.0 < *c)
        })
    });
    let newest_tombstone = tombstones.iter().map(|t| t.seq).max();
    let tombstones_due = newest_tombstone.is_some_and(|seq| inputs.iter().any(|p| p.hi < seq));
    if inputs.len() < 2 && !retention_due && !tombstones_due {
        return Ok(merge::Outcome::default());
    }
    // A run up to the newest part holds every part below the newest tombstone's number that the inputs'
    // range does not already hold, so the output may claim that number (see `tombstone`).
    let hi_at_least = match newest_tombstone {
        Some(seq) if end == parts.len() => seq,
        _ => 0,
    };
    let number = shared.next_number.fetch_add(1, Ordering::SeqCst);
    let rules = merge::Rules {
        block_points: shared.config.block_points,
        cutoff: &|id| cutoffs.get(&id).copied(),
        rollups: shared.config.rollups,
        rollup_cutoff: shared.rollup_cutoff(),
        stop: &shared.closing,
        tombstones: &tombstones,
        hi_at_least,
    };
    let (output, outcome) = merge::merge(&shared.parts_dir, &inputs, number, &rules)?;
    {
        let mut guard = write_lock(&shared.parts);
        let mut list = (**guard).clone();
        // Only this thread removes parts and the writer only appends, so the inputs are still adjacent.
        let at = list
            .iter()
            .position(|p| inputs.first().is_some_and(|i| i.number == p.number))
            .filter(|at| {
                list.get(*at..at + inputs.len())
                    .is_some_and(|run| run.iter().zip(&inputs).all(|(a, b)| a.number == b.number))
            })
            .ok_or_else(|| Error::Task {
                detail: "the parts changed under a merge".into(),
            })?;
        list.splice(at..at + inputs.len(), output.map(Arc::new));
        *guard = Arc::new(list);
    }
    for p in &inputs {
        std::fs::remove_file(&p.path)
            .map_err(crate::error::io("removing a merged part", &p.path))?;
    }
    sync_dir(&shared.parts_dir)?;
    if outcome.expired > 0 {
        tracing::info!(
            points = outcome.expired,
            "retention deleted expired raw points"
        );
    }
    if outcome.deleted > 0 {
        tracing::info!(points = outcome.deleted, "a merge dropped deleted points");
    }
    if shared.retire_tombstones()
        && let Err(e) = shared.persist_tombstones()
    {
        // The old file only keeps tombstones no part needs; the next open drops them again.
        tracing::warn!(error = %e, "rewriting the tombstones file failed");
    }
    Ok(outcome)
}
