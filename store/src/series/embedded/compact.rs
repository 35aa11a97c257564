//! Compaction: head points → compressed blocks, merged with the blocks they overlap.
use super::{BLOCKS, HEAD};
use crate::Result;
use crate::error::db;
use crate::series::block;
use redb::{Database, ReadableTable, Table};
use std::collections::BTreeMap;

/// Series compacted per transaction, so one compaction never holds an unbounded transaction.
const SERIES_PER_TXN: usize = 64;

pub(super) fn block_error(e: block::BlockError) -> crate::Error {
    crate::Error::Corrupt {
        what: "series block",
        detail: e.to_string(),
    }
}

/// Moves every head point into blocks.
pub(super) fn all(database: &Database, block_points: usize) -> Result<()> {
    let mut cursor = Some(0);
    while let Some(from) = cursor {
        cursor = step(database, from, block_points, 1)?;
    }
    Ok(())
}

/// One bounded compaction transaction: the head points of up to `SERIES_PER_TXN` series, from series id
/// `from` on. Returns where the next step starts, or `None` when the head holds nothing from `from` on.
/// The writer runs steps between write groups, so a compaction never holds writes up for long.
///
/// A series with fewer than `min_points` head points is left in the head: appending a few points to a
/// block means re-encoding it, so while writes flow, a series waits until it has enough to be worth it
/// (an idle, explicit or final compaction passes 1 and takes everything).
pub(super) fn step(
    database: &Database,
    from: u64,
    block_points: usize,
    min_points: usize,
) -> Result<Option<u64>> {
    let txn = database.begin_write().map_err(db("compacting"))?;
    let mut next = None;
    {
        let mut head = txn.open_table(HEAD).map_err(db("compacting"))?;
        let mut blocks = txn.open_table(BLOCKS).map_err(db("compacting"))?;
        let mut cursor = from;
        for _ in 0..SERIES_PER_TXN {
            let first = head
                .range((cursor, i64::MIN)..)
                .map_err(db("compacting"))?
                .next()
                .transpose()
                .map_err(db("compacting"))?
                .map(|(k, _)| k.value().0);
            let Some(series) = first else {
                next = None;
                break;
            };
            let points: Vec<(i64, f64)> = head
                .range((series, i64::MIN)..=(series, i64::MAX))
                .map_err(db("compacting"))?
                .map(|row| row.map(|(k, v)| (k.value().1, v.value())))
                .collect::<Result<_, _>>()
                .map_err(db("compacting"))?;
            if points.len() >= min_points {
                series_into_blocks(&mut blocks, series, &points, block_points)?;
                head.retain_in((series, i64::MIN)..=(series, i64::MAX), |_, _| false)
                    .map_err(db("compacting"))?;
            }
            next = series.checked_add(1);
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
    }
    txn.commit().map_err(db("committing a compaction"))?;
    Ok(next)
}

/// Merges one series' head points (sorted, non-empty) into its blocks. The blocks overlapping the head's time
/// span are rewritten (late data), and the block just before it is topped up while it has room, so blocks stay
/// full however often compaction runs. A head point replaces a block point at the same time.
fn series_into_blocks(
    blocks: &mut Table<(u64, i64), &[u8]>,
    series: u64,
    head: &[(i64, f64)],
    block_points: usize,
) -> Result<()> {
    let (Some(&(min, _)), Some(&(max, _))) = (head.first(), head.last()) else {
        return Ok(());
    };
    let mut merged: BTreeMap<i64, f64> = BTreeMap::new();
    let mut replaced: Vec<i64> = Vec::new();
    for row in blocks
        .range((series, i64::MIN)..=(series, max))
        .map_err(db("compacting"))?
        .rev()
    {
        let (key, bytes) = row.map_err(db("compacting"))?;
        let summary = block::summary_of(bytes.value()).map_err(block_error)?;
        let before_head = summary.last.0 < min;
        if before_head && summary.count as usize >= block_points {
            break;
        }
        for (t, v) in block::decode(bytes.value()).map_err(block_error)? {
            merged.insert(t, v);
        }
        replaced.push(key.value().1);
        if before_head {
            break;
        }
    }
    for first in replaced {
        blocks.remove((series, first)).map_err(db("compacting"))?;
    }
    merged.extend(head.iter().copied());
    let points: Vec<(i64, f64)> = merged.into_iter().collect();
    for chunk in points.chunks(block_points.max(1)) {
        let bytes = block::encode(chunk).map_err(block_error)?;
        blocks
            .insert((series, chunk[0].0), bytes.as_slice())
            .map_err(db("compacting"))?;
    }
    Ok(())
}
