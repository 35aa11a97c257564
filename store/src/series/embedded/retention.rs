//! Raw-data retention: points of a measurement older than its configured age are deleted, exactly (a block
//! that straddles the cut-off is re-encoded with its newer points only).
use super::compact::block_error;
use super::{BLOCKS, HEAD, SharedIndex, read_index};
use crate::Result;
use crate::error::db;
use crate::series::block;
use bydata_schemas::UnixNanos;
use redb::{Database, ReadableTable, ReadableTableMetadata};
use std::collections::BTreeMap;
use std::time::Duration;

/// Deletes what is past its measurement's retention at `now`. Returns how many points were deleted.
pub(super) fn apply(
    database: &Database,
    index: &SharedIndex,
    retention: &BTreeMap<String, Duration>,
    now: UnixNanos,
) -> Result<u64> {
    if retention.is_empty() {
        return Ok(0);
    }
    let cutoffs: Vec<(u64, UnixNanos)> = read_index(index)
        .infos
        .iter()
        .filter_map(|(id, info)| {
            let keep = retention.get(info.key.measurement.as_str())?;
            let keep = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
            Some((*id, now.saturating_sub(keep)))
        })
        .collect();
    let mut deleted = 0u64;
    let txn = database.begin_write().map_err(db("applying retention"))?;
    {
        let mut blocks = txn.open_table(BLOCKS).map_err(db("applying retention"))?;
        let mut head = txn.open_table(HEAD).map_err(db("applying retention"))?;
        for (series, cutoff) in cutoffs {
            let mut expired: Vec<(i64, Vec<u8>)> = Vec::new();
            for row in blocks
                .range((series, i64::MIN)..(series, cutoff))
                .map_err(db("applying retention"))?
            {
                let (key, bytes) = row.map_err(db("applying retention"))?;
                expired.push((key.value().1, bytes.value().to_vec()));
            }
            for (first, bytes) in expired {
                blocks
                    .remove((series, first))
                    .map_err(db("applying retention"))?;
                let points = block::decode(&bytes).map_err(block_error)?;
                let kept: Vec<(i64, f64)> = points
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= cutoff)
                    .collect();
                deleted += (points.len() - kept.len()) as u64;
                if let Some(&(t0, _)) = kept.first() {
                    let bytes = block::encode(&kept).map_err(block_error)?;
                    blocks
                        .insert((series, t0), bytes.as_slice())
                        .map_err(db("applying retention"))?;
                }
            }
            let before = head.len().map_err(db("applying retention"))?;
            head.retain_in((series, i64::MIN)..(series, cutoff), |_, _| false)
                .map_err(db("applying retention"))?;
            deleted += before - head.len().map_err(db("applying retention"))?;
        }
    }
    txn.commit().map_err(db("committing retention"))?;
    Ok(deleted)
}
