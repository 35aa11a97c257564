//! Immutable, checksummed, compressed blocks of one series' points, each carrying a [`Summary`] so a query
//! whose bucket covers a whole block answers from the header without decompressing the points.
//!
//! Layout, little-endian:
//!
//! ```text
//! version: u8 (= 1)
//! summary: count u32, first (i64, f64), last (i64, f64), min f64, max f64, sum f64, increase f64  (68 bytes)
//! timestamps: see `times.rs`   (byte-aligned)
//! values: see `values.rs`      (byte-aligned)
//! crc32: u32 of everything before it
//! ```
//!
//! The point sections are self-contained (they do not start from the summary's first point), so `decode`
//! can check the summary against the points it decoded: a block whose summary lies is `Corrupt`, which keeps
//! summary-answered and decompressed queries in agreement.
#![allow(dead_code)]

mod bits;
mod error;
mod ints;
pub(crate) mod rollup;
#[cfg(test)]
mod tests;
mod times;
mod values;

use bits::BitReader;
pub(crate) use error::{BlockError, MAX_POINTS};

const VERSION: u8 = 1;
pub(crate) const SUMMARY_LEN: usize = 4 + 8 * 8;
const HEADER_LEN: usize = 1 + SUMMARY_LEN;
const CRC_LEN: usize = 4;
/// Bytes every payload has besides the per-point bits: scale, first time, base and width for the
/// timestamps; codec, k, base and width (or codec and the first value) for the values.
const FIXED_POINT_BYTES: usize = 8;
/// The smallest possible block.
const MIN_LEN: usize = HEADER_LEN + FIXED_POINT_BYTES + CRC_LEN;

/// Aggregates of a block, so queries can skip decompression when a bucket covers the whole block.
/// Computed exactly as `crate::query` computes them over the points, in the same order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: u32,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sum: f64,
    pub(crate) first: (i64, f64),
    pub(crate) last: (i64, f64),
    /// Sum of rises between consecutive points, a drop counting as a counter reset (the new value is the
    /// rise) — the `increase` within the block.
    pub(crate) increase: f64,
}

/// Encodes points that are strictly increasing in time, with finite values, 1..=65 535 of them.
pub(crate) fn encode(points: &[(i64, f64)]) -> Result<Vec<u8>, BlockError> {
    if points.len() > MAX_POINTS {
        return Err(BlockError::TooMany {
            count: points.len(),
        });
    }
    let mut prev: Option<i64> = None;
    for (index, &(t, v)) in points.iter().enumerate() {
        if !v.is_finite() {
            return Err(BlockError::NonFinite { index });
        }
        if prev.is_some_and(|p| t <= p) {
            return Err(BlockError::NotIncreasing { index });
        }
        prev = Some(t);
    }
    let summary = summarize(points).ok_or(BlockError::Empty)?;
    let times: Vec<i64> = points.iter().map(|p| p.0).collect();
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();

    let mut time_section = bits::BitWriter::with_capacity(points.len() / 8 + 16);
    times::encode(&times, &mut time_section);
    let time_section = time_section.into_bytes();
    let value_section = values::encode(&values);

    let mut out =
        Vec::with_capacity(HEADER_LEN + time_section.len() + value_section.len() + CRC_LEN);
    out.push(VERSION);
    write_summary(&mut out, &summary);
    out.extend_from_slice(&time_section);
    out.extend_from_slice(&value_section);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes a block, verifying its checksum, every length, and that its summary matches its points.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, BlockError> {
    let mut points = Vec::new();
    let summary = decode_into(bytes, &mut points)?;
    match summarize(&points) {
        Some(actual) if same_bits(&actual, &summary) => Ok(points),
        _ => Err(BlockError::Corrupt {
            reason: "summary does not match the points",
        }),
    }
}

/// Decodes a block into `out` (cleared first), verifying its checksum and every length but not that the
/// summary matches the points (`decode` does; `verify` runs it over every block): the fast path for queries,
/// which reuses `out` from block to block. Returns the summary.
pub(crate) fn decode_into(bytes: &[u8], out: &mut Vec<(i64, f64)>) -> Result<Summary, BlockError> {
    decode_until(bytes, None, out)
}

/// `decode_into` for the points before `until` only: the values after them are not decoded (values are
/// delta-coded, so the ones before must be).
pub(crate) fn decode_until(
    bytes: &[u8],
    until: Option<i64>,
    out: &mut Vec<(i64, f64)>,
) -> Result<Summary, BlockError> {
    let (summary, payload) = open(bytes)?;
    // `open` capped the count at MAX_POINTS and at what the payload can hold, which bounds allocation.
    let count = summary.count as usize;
    let mut input = BitReader::new(payload, HEADER_LEN);
    out.clear();
    times::decode_into(&mut input, count, out)?;
    let wanted = until.map_or(count, |until| out.partition_point(|p| p.0 < until));
    if wanted == count {
        values::decode_into(&mut input, out)?;
        input.align()?;
        input.finish()?;
    } else {
        // The rest of the stream is not read, so neither its padding nor its end is checked here.
        values::decode_into(&mut input, out.get_mut(..wanted).unwrap_or_default())?;
        out.truncate(wanted);
    }
    Ok(summary)
}

/// The block's summary, read from its header after verifying the checksum; the points are not decoded.
pub(crate) fn summary_of(bytes: &[u8]) -> Result<Summary, BlockError> {
    open(bytes).map(|(summary, _)| summary)
}

/// Checks version, length and checksum, parses and sanity-checks the summary, and returns it with the
/// point sections.
fn open(bytes: &[u8]) -> Result<(Summary, &[u8]), BlockError> {
    let Some(&version) = bytes.first() else {
        return Err(BlockError::Truncated {
            expected: MIN_LEN,
            got: 0,
        });
    };
    if version != VERSION {
        return Err(BlockError::UnknownVersion { version });
    }
    if bytes.len() < MIN_LEN {
        return Err(BlockError::Truncated {
            expected: MIN_LEN,
            got: bytes.len(),
        });
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes(crc.try_into().map_err(|_| BlockError::Corrupt {
        reason: "checksum field",
    })?);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(BlockError::Checksum {
            expected: stored,
            got: computed,
        });
    }
    let (header, payload) = body.split_at(HEADER_LEN);
    let summary = read_summary(header.get(1..).unwrap_or_default())?;
    check(&summary)?;
    // Every point after the first costs at least one bit of time and one of value, so a count the payload
    // cannot hold is rejected before anything is allocated for it.
    let needed_bits = (summary.count as usize - 1) * 2;
    let needed = MIN_LEN + needed_bits.div_ceil(8);
    if bytes.len() < needed {
        return Err(BlockError::Truncated {
            expected: needed,
            got: bytes.len(),
        });
    }
    Ok((summary, payload))
}

/// The summary of `points`, computed as `crate::query` aggregates a bucket; `None` when empty.
pub(crate) fn summarize(points: &[(i64, f64)]) -> Option<Summary> {
    let first = *points.first()?;
    let last = *points.last()?;
    let values = || points.iter().map(|p| p.1);
    let mut increase = 0.0;
    for w in points.windows(2) {
        let (p, v) = (w[0].1, w[1].1);
        increase += if v >= p { v - p } else { v };
    }
    Some(Summary {
        count: u32::try_from(points.len()).ok()?,
        min: values().fold(f64::INFINITY, f64::min),
        max: values().fold(f64::NEG_INFINITY, f64::max),
        sum: values().sum(),
        first,
        last,
        increase,
    })
}

/// Bitwise equality, so a sign-of-zero difference in the header is caught too.
pub(crate) fn same_bits(a: &Summary, b: &Summary) -> bool {
    let floats =
        |s: &Summary| [s.min, s.max, s.sum, s.first.1, s.last.1, s.increase].map(f64::to_bits);
    a.count == b.count && a.first.0 == b.first.0 && a.last.0 == b.last.0 && floats(a) == floats(b)
}

pub(crate) fn write_summary(out: &mut Vec<u8>, s: &Summary) {
    out.extend_from_slice(&s.count.to_le_bytes());
    out.extend_from_slice(&s.first.0.to_le_bytes());
    out.extend_from_slice(&s.first.1.to_le_bytes());
    out.extend_from_slice(&s.last.0.to_le_bytes());
    out.extend_from_slice(&s.last.1.to_le_bytes());
    for v in [s.min, s.max, s.sum, s.increase] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a summary written by `write_summary`, and rejects one no sequence of points could have.
pub(crate) fn read_checked_summary(bytes: &[u8]) -> Result<Summary, BlockError> {
    let s = read_summary(bytes)?;
    check(&s)?;
    Ok(s)
}

fn read_summary(bytes: &[u8]) -> Result<Summary, BlockError> {
    let mut fields = Fields { bytes, pos: 0 };
    let count = u32::from_le_bytes(fields.take()?);
    let first = (i64::from_le_bytes(fields.take()?), fields.f64()?);
    let last = (i64::from_le_bytes(fields.take()?), fields.f64()?);
    Ok(Summary {
        count,
        first,
        last,
        min: fields.f64()?,
        max: fields.f64()?,
        sum: fields.f64()?,
        increase: fields.f64()?,
    })
}

/// Rejects summaries no sequence of points could have, so `summary_of` never hands out nonsense.
pub(crate) fn check(s: &Summary) -> Result<(), BlockError> {
    let corrupt = |reason| Err(BlockError::Corrupt { reason });
    if s.count == 0 || s.count as usize > MAX_POINTS {
        return corrupt("point count out of range");
    }
    if ![s.min, s.max, s.first.1, s.last.1]
        .iter()
        .all(|v| v.is_finite())
        || s.sum.is_nan()
        || s.increase.is_nan()
    {
        return corrupt("non-finite summary value");
    }
    let within = |v: f64| s.min <= v && v <= s.max;
    if !within(s.first.1) || !within(s.last.1) {
        return corrupt("first or last value outside min..max");
    }
    let one = s.count == 1;
    if (one && s.first != s.last) || (!one && s.first.0 >= s.last.0) {
        return corrupt("first and last points disagree with the count");
    }
    if s.last.0.abs_diff(s.first.0) < u64::from(s.count) - 1 {
        return corrupt("more points than distinct timestamps");
    }
    Ok(())
}

struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BlockError> {
        let field = self
            .bytes
            .get(self.pos..self.pos + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or(BlockError::Corrupt {
                reason: "summary shorter than its fields",
            })?;
        self.pos += N;
        Ok(field)
    }

    fn f64(&mut self) -> Result<f64, BlockError> {
        self.take().map(f64::from_le_bytes)
    }
}
