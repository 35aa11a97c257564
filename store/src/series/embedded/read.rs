//! Reads from one snapshot: blocks overlapping the range, decoded, merged with the head (head wins).
use super::compact::block_error;
use super::{BLOCKS, HEAD, VerifyReport};
use crate::Result;
use crate::error::db;
use crate::query::{Folder, Partial};
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

/// Per-bucket partials from one snapshot: a block that lies inside one bucket and that no head point
/// overrides is taken by its summary, without decompressing it.
pub(super) fn partials(
    database: &Database,
    series: u64,
    bounds: &[UnixNanos],
) -> Result<Vec<Partial>> {
    let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    let prev = last_before(database, series, start)?;
    let txn = database.begin_read().map_err(db("aggregating"))?;
    let blocks = txn.open_table(BLOCKS).map_err(db("aggregating"))?;
    let head = txn.open_table(HEAD).map_err(db("aggregating"))?;
    let mut overlapping = Vec::new();
    for row in blocks
        .range((series, i64::MIN)..(series, end))
        .map_err(db("aggregating"))?
        .rev()
    {
        let (_, bytes) = row.map_err(db("aggregating"))?;
        let summary = block::summary_of(bytes.value()).map_err(block_error)?;
        if summary.last.0 < start {
            break;
        }
        overlapping.push((summary, bytes.value().to_vec()));
    }
    overlapping.reverse();
    let head_points: Vec<(i64, f64)> = head
        .range((series, start)..(series, end))
        .map_err(db("aggregating"))?
        .map(|row| row.map(|(k, v)| (k.value().1, v.value())))
        .collect::<Result<_, _>>()
        .map_err(db("aggregating"))?;

    let mut folder = Folder::new(bounds, prev);
    let mut h = 0;
    for (summary, bytes) in &overlapping {
        while h < head_points.len() && head_points[h].0 < summary.first.0 {
            folder.point(head_points[h].0, head_points[h].1);
            h += 1;
        }
        let overridden = h < head_points.len() && head_points[h].0 <= summary.last.0;
        if !overridden && folder.block(summary) {
            continue;
        }
        let block_end = summary.last.0;
        let mut inside: Vec<(i64, f64)> = Vec::new();
        while h < head_points.len() && head_points[h].0 <= block_end {
            inside.push(head_points[h]);
            h += 1;
        }
        let mut points = block::decode(bytes).map_err(block_error)?;
        if !inside.is_empty() {
            points.retain(|(t, _)| inside.binary_search_by_key(t, |(ht, _)| *ht).is_err());
            points.extend(inside);
            points.sort_by_key(|(t, _)| *t);
        }
        for (t, v) in points {
            folder.point(t, v);
        }
    }
    for &(t, v) in &head_points[h..] {
        folder.point(t, v);
    }
    Ok(folder.finish())
}
