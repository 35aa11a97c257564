//! Tombstones: deleted time ranges of series, for the points that parts written before the delete still hold.
//!
//! A delete takes a number from the same counter as flushes (`seq`): every part whose flush range ends below
//! it (`hi < seq`) was written before the delete, every part flushed later has a higher number. So a
//! tombstone hides a covered point of a part exactly when `part.hi < seq` — a point written after the delete,
//! even at the same time, lands in a newer part and stays visible. The delete itself goes through the WAL
//! (replayed in order with the writes) and empties the buffer's range at once; the tombstones that still
//! matter for parts are kept in `{dir}/tombstones`, rewritten whole (temporary file, fsync, rename, directory
//! fsync) before a flush removes the WAL segments holding their records.
//!
//! A merge drops covered points and recomputes the rollup buckets they touched, and — when it runs to the
//! newest part — claims the newest tombstone's number as its `hi` (no part can hold a flush number between),
//! so no tombstone applies to its output any more. A tombstone is retired once no part below its number has
//! blocks or rollups of its series in its range.
//!
//! Body (WAL record kind and file entry alike): `seq`, `start i64 LE`, `end i64 LE`, `count`, series ids
//! (sorted), each a LEB128 varint. File: one CRC frame of `version u8 = 1`, `count`, then the entries.
use super::files::{Cursor, frame, frames, put_varint, sync_dir};
use super::levels::LEVELS;
use super::part::Part;
use crate::Result;
use crate::error::io;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

const FILE_VERSION: u8 = 1;

/// Points of `ids` with `start <= time < end`, in every part below flush number `seq`, are deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tombstone {
    pub(super) seq: u64,
    pub(super) start: i64,
    pub(super) end: i64,
    /// Sorted, distinct.
    pub(super) ids: Vec<u64>,
}

impl Tombstone {
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        put_varint(out, self.seq);
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.end.to_le_bytes());
        put_varint(out, self.ids.len() as u64);
        for id in &self.ids {
            put_varint(out, *id);
        }
    }

    pub(super) fn decode_from(c: &mut Cursor<'_>) -> Result<Self> {
        let seq = c.varint()?;
        let start = c.i64()?;
        let end = c.i64()?;
        let n = c.count(1)?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(c.varint()?);
        }
        if start >= end || ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(c.corrupt("a tombstone with an empty range or unsorted series"));
        }
        Ok(Self {
            seq,
            start,
            end,
            ids,
        })
    }

    /// Whether some part written before this delete may still hold points it covers: blocks or rollups of
    /// one of its series overlapping its range.
    pub(super) fn affects(&self, parts: &[Arc<Part>]) -> bool {
        parts.iter().filter(|p| p.hi < self.seq).any(|p| {
            self.ids
                .iter()
                .any(|id| holds(p, *id, self.start, self.end))
        })
    }
}

/// Whether `part` has blocks or rollups of `series` overlapping `[start, end)`.
fn holds(part: &Part, series: u64, start: i64, end: i64) -> bool {
    let blocks = part.blocks_of(series);
    let i = blocks.partition_point(|b| b.summary.last.0 < start);
    if blocks.get(i).is_some_and(|b| b.summary.first.0 < end) {
        return true;
    }
    LEVELS.iter().any(|(level, _)| {
        part.rollups_of(series, *level)
            .iter()
            .any(|r| r.first < end && r.last >= start)
    })
}

/// The tombstones of one series, for a read or a merge: which points each part must hide.
#[derive(Debug, Clone, Default)]
pub(super) struct Hidden {
    /// (seq, start, end)
    ranges: Vec<(u64, i64, i64)>,
}

impl Hidden {
    pub(super) fn of(tombstones: &[Tombstone], series: u64) -> Self {
        Self {
            ranges: tombstones
                .iter()
                .filter(|t| t.ids.binary_search(&series).is_ok())
                .map(|t| (t.seq, t.start, t.end))
                .collect(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the part with flush range up to `hi` must hide a point at `t`.
    pub(super) fn hides(&self, hi: u64, t: i64) -> bool {
        self.ranges
            .iter()
            .any(|&(seq, s, e)| seq > hi && s <= t && t < e)
    }

    /// Whether the part with flush range up to `hi` must hide some time in `lo..=last`.
    pub(super) fn overlaps(&self, hi: u64, lo: i64, last: i64) -> bool {
        self.ranges
            .iter()
            .any(|&(seq, s, e)| seq > hi && s <= last && e > lo)
    }

    /// `points` of the part with flush range up to `hi`, without the hidden ones.
    pub(super) fn filter(&self, hi: u64, points: &mut Vec<(i64, f64)>) {
        if let (Some(first), Some(last)) = (points.first(), points.last())
            && self.overlaps(hi, first.0, last.0)
        {
            points.retain(|(t, _)| !self.hides(hi, *t));
        }
    }
}

/// Reads the tombstones file (none when it does not exist).
pub(super) fn load(path: &Path) -> Result<Vec<Tombstone>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("reading the tombstones", path)(e)),
    };
    decode_file(&bytes)
}

pub(super) fn decode_file(bytes: &[u8]) -> Result<Vec<Tombstone>> {
    let corrupt = |detail: &str| crate::Error::Corrupt {
        what: "tombstones file",
        detail: detail.to_owned(),
    };
    // Written whole and renamed into place: anything but one intact frame is damage, not a torn write.
    let (bodies, valid) = frames(bytes);
    let [body] = bodies.as_slice() else {
        return Err(corrupt("expected exactly one checksummed frame"));
    };
    if valid != bytes.len() {
        return Err(corrupt("bytes after the frame"));
    }
    let mut c = Cursor::new(body, "tombstones file");
    if c.u8()? != FILE_VERSION {
        return Err(c.corrupt("unknown version"));
    }
    let n = c.count(18)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Tombstone::decode_from(&mut c)?);
    }
    if !c.is_empty() {
        return Err(c.corrupt("bytes after the last tombstone"));
    }
    Ok(out)
}

/// Replaces the tombstones file with `tombstones`, durably: a temporary file, fsynced, renamed over the old
/// one, and the directory fsynced — so a crash leaves the old list or the new one, never a mix.
pub(super) fn store(path: &Path, tombstones: &[Tombstone]) -> Result<()> {
    let mut body = vec![FILE_VERSION];
    put_varint(&mut body, tombstones.len() as u64);
    for t in tombstones {
        t.encode_into(&mut body);
    }
    let mut bytes = Vec::with_capacity(body.len() + super::files::FRAME_HEADER);
    frame(&mut bytes, &body);
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("writing the tombstones", &tmp))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("writing the tombstones", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("publishing the tombstones", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
