//! Reads from one snapshot: blocks overlapping the range, decoded, merged with the head (head wins).
use super::compact::block_error;
use super::{BLOCKS, HEAD, VerifyReport};
use crate::Result;
use crate::error::db;
use crate::series::block;
use bydata_schemas::UnixNanos;
use redb::{Database, ReadableTable, ReadableTableMetadata};

pub(super) fn range(
    database: &Database,
    series: u64,
    from: UnixNanos,
    to: UnixNanos,
) -> Result<Vec<(UnixNanos, f64)>> {
    let txn = database.begin_read().map_err(db("reading points"))?;
    let blocks = txn.open_table(BLOCKS).map_err(db("reading points"))?;
    let head = txn.open_table(HEAD).map_err(db("reading points"))?;
    // Blocks start before `to`; walking back from there, stop at the first block that ends before `from`.
    let mut decoded: Vec<Vec<(i64, f64)>> = Vec::new();
    for row in blocks
        .range((series, i64::MIN)..(series, to))
        .map_err(db("reading points"))?
        .rev()
    {
        let (_, bytes) = row.map_err(db("reading points"))?;
        let summary = block::summary_of(bytes.value()).map_err(block_error)?;
        if summary.last.0 < from {
            break;
        }
        decoded.push(block::decode(bytes.value()).map_err(block_error)?);
    }
    let mut from_blocks: Vec<(i64, f64)> = decoded
        .into_iter()
        .rev()
        .flatten()
        .filter(|(t, _)| *t >= from && *t < to)
        .collect();
    let from_head: Vec<(i64, f64)> = head
        .range((series, from)..(series, to))
        .map_err(db("reading points"))?
        .map(|row| row.map(|(k, v)| (k.value().1, v.value())))
        .collect::<Result<_, _>>()
        .map_err(db("reading points"))?;
    if from_head.is_empty() {
        return Ok(from_blocks);
    }
    if from_blocks.is_empty() {
        return Ok(from_head);
    }
    from_blocks.retain(|(t, _)| from_head.binary_search_by_key(t, |(h, _)| *h).is_err());
    from_blocks.extend(from_head);
    from_blocks.sort_by_key(|(t, _)| *t);
    Ok(from_blocks)
}

pub(super) fn last_before(
    database: &Database,
    series: u64,
    before: UnixNanos,
) -> Result<Option<(UnixNanos, f64)>> {
    let txn = database.begin_read().map_err(db("reading points"))?;
    let blocks = txn.open_table(BLOCKS).map_err(db("reading points"))?;
    let head = txn.open_table(HEAD).map_err(db("reading points"))?;
    let in_head = head
        .range((series, i64::MIN)..(series, before))
        .map_err(db("reading points"))?
        .next_back()
        .transpose()
        .map_err(db("reading points"))?
        .map(|(k, v)| (k.value().1, v.value()));
    let block = blocks
        .range((series, i64::MIN)..(series, before))
        .map_err(db("reading points"))?
        .next_back()
        .transpose()
        .map_err(db("reading points"))?;
    let in_blocks = match block {
        None => None,
        Some((_, bytes)) => {
            let summary = block::summary_of(bytes.value()).map_err(block_error)?;
            if summary.last.0 < before {
                Some(summary.last)
            } else {
                block::decode(bytes.value())
                    .map_err(block_error)?
                    .into_iter()
                    .rev()
                    .find(|(t, _)| *t < before)
            }
        }
    };
    Ok(match (in_head, in_blocks) {
        (Some(h), Some(b)) => Some(if b.0 > h.0 { b } else { h }),
        (h, b) => h.or(b),
    })
}

pub(super) fn verify(database: &Database, series: u64) -> Result<VerifyReport> {
    let txn = database.begin_read().map_err(db("verifying"))?;
    let blocks = txn.open_table(BLOCKS).map_err(db("verifying"))?;
    let head = txn.open_table(HEAD).map_err(db("verifying"))?;
    let mut report = VerifyReport {
        series,
        head_points: head.len().map_err(db("verifying"))?,
        ..VerifyReport::default()
    };
    for row in blocks.iter().map_err(db("verifying"))? {
        let (_, bytes) = row.map_err(db("verifying"))?;
        let points = block::decode(bytes.value()).map_err(block_error)?;
        let summary = block::summary_of(bytes.value()).map_err(block_error)?;
        if summary.count as usize != points.len() {
            return Err(crate::Error::Corrupt {
                what: "series block",
                detail: "summary count differs from the points".into(),
            });
        }
        report.blocks += 1;
        report.block_points += points.len() as u64;
    }
    Ok(report)
}
