//! Part files: immutable, checksummed files of compressed blocks, written once by a flush or a merge and
//! never changed (a merge writes a new part and removes its inputs).
//!
//! ```text
//! "BYDPART2"
//! blocks and rollups, back to back (each self-checking: `block`, `block::rollup`)
//! block index: per block, sorted by (series, first time): series u64, offset u64, len u32, summary (68 B)
//! rollup index: per rollup, sorted by (series, level): series u64, level u8, offset u64, len u32,
//!               first bucket start i64, last point's time i64
//! footer: lo u64, hi u64, blocks u64, rollups u64, index offset u64, crc32 of both indexes u32, "BYDPART2"
//! ```
//!
//! A rollup holds one summary per bucket of its level (`super::LEVELS`: hours, days) for every bucket in
//! which the part has points of the series (see `merge` for what happens to them under retention).
//!
//! `lo..=hi` is the range of flush numbers the part holds: a flushed part has `lo = hi = ` its own number, a
//! merged part the range of its inputs. Between parts, the higher `hi` wins for a point at the same time, and
//! a part whose range lies within another's was superseded by it (a merge that stopped before removing its
//! inputs) and is removed at open. The index, with every block's summary, is held in memory, so a query
//! knows which blocks it needs — and often their aggregates — before reading any.
use super::files::{Cursor, sync_dir};
use crate::Result;
use crate::error::io;
use crate::series::block::{self, Summary};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"BYDPART2";
const ENTRY_LEN: usize = 8 + 8 + 4 + block::SUMMARY_LEN;
/// Buckets per rollup chunk, by level: a month of hours, eleven years of days.
const ROLLUP_CHUNK: [usize; 2] = [744, 4096];
const ROLLUP_ENTRY_LEN: usize = 8 + 1 + 8 + 4 + 8 + 8;
const FOOTER_LEN: usize = 8 * 5 + 4 + 8;

#[derive(Debug, Clone, Copy)]
pub(super) struct BlockRef {
    pub(super) series: u64,
    pub(super) offset: u64,
    pub(super) len: u32,
    pub(super) summary: Summary,
}

/// Where a rollup of one series and level is, and the span of time it covers.
#[derive(Debug, Clone, Copy)]
pub(super) struct RollupRef {
    pub(super) series: u64,
    pub(super) level: u8,
    pub(super) offset: u64,
    pub(super) len: u32,
    pub(super) first: i64,
    pub(super) last: i64,
}

#[derive(Debug)]
pub(super) struct Part {
    pub(super) number: u64,
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) path: PathBuf,
    file: File,
    blocks: Vec<BlockRef>,
    rollups: Vec<RollupRef>,
    pub(super) bytes: u64,
}

pub(super) fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.part"))
}

impl Part {
    pub(super) fn open(path: &Path, number: u64) -> Result<Part> {
        let file = File::open(path).map_err(io("opening a part", path))?;
        let bytes = file.metadata().map_err(io("opening a part", path))?.len();
        let corrupt = |detail: &str| crate::Error::Corrupt {
            what: "part file",
            detail: format!("{}: {detail}", path.display()),
        };
        if bytes < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(corrupt("shorter than its header and footer"));
        }
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, bytes - FOOTER_LEN as u64)
            .map_err(io("reading a part's footer", path))?;
        let mut c = Cursor::new(&footer, "part file footer");
        let (lo, hi, count, rollup_count, index_at) =
            (c.u64()?, c.u64()?, c.u64()?, c.u64()?, c.u64()?);
        let crc = c.u32()?;
        if c.take(8)? != MAGIC {
            return Err(corrupt("bad magic at the end"));
        }
        let index_len = count
            .checked_mul(ENTRY_LEN as u64)
            .and_then(|n| n.checked_add(rollup_count.checked_mul(ROLLUP_ENTRY_LEN as u64)?))
            .filter(|n| {
                index_at >= MAGIC.len() as u64
                    && index_at.checked_add(*n) == Some(bytes - FOOTER_LEN as u64)
            })
            .ok_or_else(|| corrupt("index does not fit the file"))?;
        let mut index = vec![0u8; usize::try_from(index_len).map_err(|_| corrupt("index size"))?];
        file.read_exact_at(&mut index, index_at)
            .map_err(io("reading a part's index", path))?;
        if crc32fast::hash(&index) != crc {
            return Err(corrupt("index checksum mismatch"));
        }
        let blocks_len = usize::try_from(count).unwrap_or(usize::MAX) * ENTRY_LEN;
        let (block_index, rollup_index) = index.split_at(blocks_len.min(index.len()));
        let mut c = Cursor::new(block_index, "part file index");
        let mut blocks = Vec::with_capacity(block_index.len() / ENTRY_LEN);
        while !c.is_empty() {
            let series = c.u64()?;
            let offset = c.u64()?;
            let len = c.u32()?;
            let summary = block::read_checked_summary(c.take(block::SUMMARY_LEN)?)
                .map_err(|e| corrupt(&e.to_string()))?;
            if offset < MAGIC.len() as u64 || offset + u64::from(len) > index_at {
                return Err(corrupt("block outside the data section"));
            }
            let b = BlockRef {
                series,
                offset,
                len,
                summary,
            };
            if blocks.last().is_some_and(|p: &BlockRef| {
                (p.series, p.summary.last.0) >= (b.series, b.summary.first.0)
            }) {
                return Err(corrupt("index out of order"));
            }
            blocks.push(b);
        }
        let mut c = Cursor::new(rollup_index, "part file rollup index");
        let mut rollups: Vec<RollupRef> = Vec::with_capacity(rollup_index.len() / ROLLUP_ENTRY_LEN);
        while !c.is_empty() {
            let r = RollupRef {
                series: c.u64()?,
                level: c.u8()?,
                offset: c.u64()?,
                len: c.u32()?,
                first: c.i64()?,
                last: c.i64()?,
            };
            if r.offset < MAGIC.len() as u64 || r.offset + u64::from(r.len) > index_at {
                return Err(corrupt("rollup outside the data section"));
            }
            if r.first > r.last
                || rollups
                    .last()
                    .is_some_and(|p| (p.series, p.level, p.last) >= (r.series, r.level, r.first))
            {
                return Err(corrupt("rollup index out of order"));
            }
            rollups.push(r);
        }
        Ok(Part {
            number,
            lo,
            hi,
            path: path.to_path_buf(),
            file,
            blocks,
            rollups,
            bytes,
        })
    }

    /// The blocks of one series, in time order.
    pub(super) fn blocks_of(&self, series: u64) -> &[BlockRef] {
        let a = self.blocks.partition_point(|b| b.series < series);
        let b = self.blocks.partition_point(|b| b.series <= series);
        self.blocks.get(a..b).unwrap_or_default()
    }

    pub(super) fn blocks(&self) -> &[BlockRef] {
        &self.blocks
    }

    pub(super) fn rollups(&self) -> &[RollupRef] {
        &self.rollups
    }

    /// The rollups of one series at one level, in time order.
    pub(super) fn rollups_of(&self, series: u64, level: u8) -> &[RollupRef] {
        let a = self
            .rollups
            .partition_point(|r| (r.series, r.level) < (series, level));
        let b = self
            .rollups
            .partition_point(|r| (r.series, r.level) <= (series, level));
        self.rollups.get(a..b).unwrap_or_default()
    }

    /// The span of time (first, last) this part covers for `series`, in blocks or rollups.
    pub(super) fn span_of(&self, series: u64) -> Option<(i64, i64)> {
        let blocks = self.blocks_of(series);
        let mut span = blocks
            .first()
            .zip(blocks.last())
            .map(|(a, b)| (a.summary.first.0, b.summary.last.0));
        let a = self.rollups.partition_point(|r| r.series < series);
        for r in self.rollups.get(a..).unwrap_or_default() {
            if r.series != series {
                break;
            }
            span = Some(match span {
                Some((lo, hi)) => (lo.min(r.first), hi.max(r.last)),
                None => (r.first, r.last),
            });
        }
        span
    }

    /// Reads and decodes a rollup.
    pub(super) fn decode_rollup(&self, r: &RollupRef) -> Result<Vec<(i64, Summary)>> {
        let mut bytes = vec![0u8; r.len as usize];
        self.file
            .read_exact_at(&mut bytes, r.offset)
            .map_err(io("reading a rollup", &self.path))?;
        let entries = block::rollup::decode(&bytes).map_err(block_error)?;
        if entries.first().map(|e| e.0) != Some(r.first) {
            return Err(crate::Error::Corrupt {
                what: "part file",
                detail: format!("{}: a rollup differs from its index", self.path.display()),
            });
        }
        Ok(entries)
    }

    pub(super) fn read(&self, b: &BlockRef) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; b.len as usize];
        self.file
            .read_exact_at(&mut bytes, b.offset)
            .map_err(io("reading a block", &self.path))?;
        Ok(bytes)
    }

    /// Reads and decodes a block into `scratch.points`, reusing its buffers (the query path: checksum and
    /// index entry checked, not the summary; `decode` checks that too).
    /// Only the points before `until` are decoded.
    pub(super) fn decode_into(
        &self,
        b: &BlockRef,
        until: i64,
        scratch: &mut Scratch,
    ) -> Result<()> {
        scratch.bytes.resize(b.len as usize, 0);
        self.file
            .read_exact_at(&mut scratch.bytes, b.offset)
            .map_err(io("reading a block", &self.path))?;
        let summary = block::decode_until(&scratch.bytes, Some(until), &mut scratch.points)
            .map_err(block_error)?;
        if summary.count != b.summary.count || summary.first.0 != b.summary.first.0 {
            return Err(crate::Error::Corrupt {
                what: "part file",
                detail: format!("{}: a block differs from its index", self.path.display()),
            });
        }
        Ok(())
    }

    /// Reads and decodes a block, checking it against its index entry.
    pub(super) fn decode(&self, b: &BlockRef) -> Result<Vec<(i64, f64)>> {
        let bytes = self.read(b)?;
        let points = block::decode(&bytes).map_err(block_error)?;
        if points.len() != b.summary.count as usize
            || points.first().map(|p| p.0) != Some(b.summary.first.0)
        {
            return Err(crate::Error::Corrupt {
                what: "part file",
                detail: format!("{}: a block differs from its index", self.path.display()),
            });
        }
        Ok(points)
    }
}

/// Buffers a reader reuses from block to block.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    bytes: Vec<u8>,
    pub(super) points: Vec<(i64, f64)>,
}

/// Writes a part: blocks in (series, time) order, then `finish`.
pub(super) struct PartWriter {
    dir: PathBuf,
    tmp: PathBuf,
    number: u64,
    lo: u64,
    hi: u64,
    out: BufWriter<File>,
    offset: u64,
    index: Vec<u8>,
    rollup_index: Vec<u8>,
    count: u64,
    rollup_count: u64,
    last: Option<(u64, i64)>,
    last_rollup: Option<(u64, u8, i64)>,
}

impl PartWriter {
    pub(super) fn create(dir: &Path, number: u64, lo: u64, hi: u64) -> Result<Self> {
        let tmp = dir.join(format!("{number:016}.part.tmp"));
        let file = File::create(&tmp).map_err(io("creating a part", &tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        if let Err(e) = out.write_all(MAGIC) {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(io("writing a part", &tmp)(e));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            tmp,
            number,
            lo,
            hi,
            out,
            offset: MAGIC.len() as u64,
            index: Vec::new(),
            rollup_index: Vec::new(),
            count: 0,
            rollup_count: 0,
            last: None,
            last_rollup: None,
        })
    }

    /// Appends one encoded block of `series`; blocks must come in (series, time) order.
    pub(super) fn add(&mut self, series: u64, bytes: &[u8]) -> Result<()> {
        let summary = block::summary_of(bytes).map_err(block_error)?;
        if self
            .last
            .is_some_and(|last| last >= (series, summary.first.0))
        {
            return Err(crate::Error::Task {
                detail: "part blocks written out of order".into(),
            });
        }
        self.last = Some((series, summary.last.0));
        let len = u32::try_from(bytes.len()).map_err(|_| crate::Error::Task {
            detail: "block larger than 4 GiB".into(),
        })?;
        self.out
            .write_all(bytes)
            .map_err(io("writing a part", &self.tmp))?;
        self.index.extend_from_slice(&series.to_le_bytes());
        self.index.extend_from_slice(&self.offset.to_le_bytes());
        self.index.extend_from_slice(&len.to_le_bytes());
        block::write_summary(&mut self.index, &summary);
        self.offset += u64::from(len);
        self.count += 1;
        Ok(())
    }

    /// Encodes `points` (sorted, distinct times, finite) of one series into blocks of at most
    /// `block_points` and appends them.
    pub(super) fn add_points(
        &mut self,
        series: u64,
        points: &[(i64, f64)],
        block_points: usize,
    ) -> Result<()> {
        for chunk in points.chunks(block_points.clamp(1, block::MAX_POINTS)) {
            let bytes = block::encode(chunk).map_err(block_error)?;
            self.add(series, &bytes)?;
        }
        Ok(())
    }

    /// Appends the rollup of `series` at `level` (in (series, level, time) order), in chunks of at most
    /// `ROLLUP_CHUNK` buckets.
    pub(super) fn add_rollup(
        &mut self,
        series: u64,
        level: u8,
        entries: &[(i64, Summary)],
    ) -> Result<()> {
        let chunk = ROLLUP_CHUNK.get(usize::from(level)).copied().unwrap_or(744);
        for chunk in entries.chunks(chunk) {
            self.add_rollup_chunk(series, level, chunk)?;
        }
        Ok(())
    }

    fn add_rollup_chunk(
        &mut self,
        series: u64,
        level: u8,
        entries: &[(i64, Summary)],
    ) -> Result<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        if self
            .last_rollup
            .is_some_and(|l| l >= (series, level, first.0))
        {
            return Err(crate::Error::Task {
                detail: "part rollups written out of order".into(),
            });
        }
        self.last_rollup = Some((series, level, last.1.last.0));
        let bytes = block::rollup::encode(entries).map_err(block_error)?;
        let len = u32::try_from(bytes.len()).map_err(|_| crate::Error::Task {
            detail: "rollup larger than 4 GiB".into(),
        })?;
        self.out
            .write_all(&bytes)
            .map_err(io("writing a part", &self.tmp))?;
        self.rollup_index.extend_from_slice(&series.to_le_bytes());
        self.rollup_index.push(level);
        self.rollup_index
            .extend_from_slice(&self.offset.to_le_bytes());
        self.rollup_index.extend_from_slice(&len.to_le_bytes());
        self.rollup_index.extend_from_slice(&first.0.to_le_bytes());
        self.rollup_index
            .extend_from_slice(&last.1.last.0.to_le_bytes());
        self.offset += u64::from(len);
        self.rollup_count += 1;
        Ok(())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0 && self.rollup_count == 0
    }

    /// Gives up on the part (nothing was added, or the caller failed): its temporary file goes.
    pub(super) fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self.out);
        let _ = std::fs::remove_file(tmp);
    }

    /// Writes index and footer, makes the file durable under its final name, and opens it.
    pub(super) fn finish(self) -> Result<Part> {
        let tmp = self.tmp.clone();
        let result = self.finish_inner();
        if result.is_err() {
            // Out of space, most likely: the unfinished file must not hold on to what little is left.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn finish_inner(mut self) -> Result<Part> {
        self.index.append(&mut self.rollup_index);
        let crc = crc32fast::hash(&self.index);
        let index_at = self.offset;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        for v in [self.lo, self.hi, self.count, self.rollup_count, index_at] {
            footer.extend_from_slice(&v.to_le_bytes());
        }
        footer.extend_from_slice(&crc.to_le_bytes());
        footer.extend_from_slice(MAGIC);
        let tmp = self.tmp.clone();
        self.out
            .write_all(&self.index)
            .and_then(|()| self.out.write_all(&footer))
            .and_then(|()| self.out.flush())
            .map_err(io("writing a part", &tmp))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io("writing a part", &tmp)(e.into_error()))?;
        file.sync_all().map_err(io("syncing a part", &tmp))?;
        drop(file);
        let done = path(&self.dir, self.number);
        std::fs::rename(&tmp, &done).map_err(io("publishing a part", &done))?;
        sync_dir(&self.dir)?;
        Part::open(&done, self.number)
    }
}

fn block_error(e: block::BlockError) -> crate::Error {
    crate::Error::Corrupt {
        what: "series block",
        detail: e.to_string(),
    }
}
