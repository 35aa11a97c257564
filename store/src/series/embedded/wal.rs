//! The write-ahead log: every acknowledged write is a CRC-framed record here, fsynced before the answer.
//!
//! Segments `wal/{number}.wal`; the writer appends to the newest. A flush seals the current segment (starts a
//! new one), writes everything the sealed segments hold into a part file, and only then removes them — so at
//! any moment, the parts plus the WAL hold every acknowledged point. Opening replays every segment in order;
//! a torn tail (a record cut by `kill -9` while it was being written, never acknowledged) ends that
//! segment's replay and is cut off.
//!
//! A record body starts with its kind. A write (`1`): the series defined or changed by this write (`count`,
//! each a length-prefixed JSON [`super::Def`]), then the points grouped by series (`count`, each: `series
//! id`, `n`, then `n × (time i64 LE, value f64 LE)`); counts and ids are LEB128 varints. A delete (`2`): one
//! [`Tombstone`], replayed in its place among the writes.
use super::Def;
use super::files::{Cursor, cut_at, frame, frames, numbered, put_varint, sync_dir};
use super::tombstone::Tombstone;
use crate::Result;
use crate::error::io;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const WRITE: u8 = 1;
const DELETE: u8 = 2;

#[derive(Debug)]
pub(super) struct Wal {
    dir: PathBuf,
    number: u64,
    file: File,
    len: u64,
    /// Device and inode of the segment `file` was opened as.
    identity: (u64, u64),
}

/// One decoded write record.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Record {
    pub(super) defs: Vec<Def>,
    pub(super) groups: Vec<(u64, Vec<(i64, f64)>)>,
}

/// One decoded record of either kind.
#[derive(Debug, PartialEq)]
pub(super) enum Entry {
    Write(Record),
    Delete(Tombstone),
}

pub(super) fn encode_delete(tombstone: &Tombstone) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + tombstone.ids.len() * 2);
    body.push(DELETE);
    tombstone.encode_into(&mut body);
    body
}

pub(super) fn encode(defs: &[Def], groups: &[(u64, &[(i64, f64)])]) -> Result<Vec<u8>> {
    let points: usize = groups.iter().map(|(_, p)| p.len()).sum();
    let mut body = Vec::with_capacity(16 + points * 16 + groups.len() * 4);
    body.push(WRITE);
    put_varint(&mut body, defs.len() as u64);
    for def in defs {
        let json = serde_json::to_vec(def).map_err(crate::error::corrupt("series definition"))?;
        put_varint(&mut body, json.len() as u64);
        body.extend_from_slice(&json);
    }
    put_varint(&mut body, groups.len() as u64);
    for (id, points) in groups {
        put_varint(&mut body, *id);
        put_varint(&mut body, points.len() as u64);
        for (t, v) in *points {
            body.extend_from_slice(&t.to_le_bytes());
            body.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    Ok(body)
}

pub(super) fn decode(body: &[u8]) -> Result<Entry> {
    let mut c = Cursor::new(body, "write-ahead log record");
    match c.u8()? {
        WRITE => {}
        DELETE => {
            let tombstone = Tombstone::decode_from(&mut c)?;
            if !c.is_empty() {
                return Err(c.corrupt("bytes after the tombstone"));
            }
            return Ok(Entry::Delete(tombstone));
        }
        _ => return Err(c.corrupt("unknown record kind")),
    }
    let mut record = Record::default();
    for _ in 0..c.count(1)? {
        let len = c.count(1)?;
        let json = c.take(len)?;
        record.defs.push(
            serde_json::from_slice(json).map_err(crate::error::corrupt("series definition"))?,
        );
    }
    for _ in 0..c.count(2)? {
        let id = c.varint()?;
        let n = c.count(16)?;
        let mut points = Vec::with_capacity(n);
        for _ in 0..n {
            let t = c.i64()?;
            let v = c.f64()?;
            if !v.is_finite() {
                return Err(c.corrupt("non-finite value"));
            }
            points.push((t, v));
        }
        record.groups.push((id, points));
    }
    if !c.is_empty() {
        return Err(c.corrupt("bytes after the last group"));
    }
    Ok(Entry::Write(record))
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.wal"))
}

impl Wal {
    /// Opens the log in `dir`, handing every record of every segment to `replay` in order, and starts a
    /// fresh segment for new writes. Torn tails are cut off.
    pub(super) fn open(dir: &Path, mut replay: impl FnMut(Entry) -> Result<()>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io("creating the write-ahead log", dir))?;
        let segments = numbered(dir, "wal")?;
        for (_, path) in &segments {
            let bytes = std::fs::read(path).map_err(io("reading the write-ahead log", path))?;
            let (bodies, valid) = frames(&bytes);
            for body in bodies {
                replay(decode(body)?)?;
            }
            if valid < bytes.len() {
                tracing::warn!(
                    segment = %path.display(),
                    cut = bytes.len() - valid,
                    "cutting a torn tail off the write-ahead log (a write that was never acknowledged)"
                );
                cut_at(path, valid)?;
            }
        }
        let number = segments.last().map_or(0, |(n, _)| n + 1);
        let (file, len, identity) = Self::create(dir, number)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            number,
            file,
            len,
            identity,
        })
    }

    fn create(dir: &Path, number: u64) -> Result<(File, u64, (u64, u64))> {
        use std::os::unix::fs::MetadataExt;
        let path = segment_path(dir, number);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("creating a write-ahead log segment", &path))?;
        let meta = file
            .metadata()
            .map_err(io("creating a write-ahead log segment", &path))?;
        sync_dir(dir)?;
        Ok((file, 0, (meta.dev(), meta.ino())))
    }

    /// Fails unless the open segment is still the file at its path: a record written into a segment whose
    /// directory was moved or removed would be acknowledged but never replayed.
    fn check_in_place(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        if (meta.dev(), meta.ino()) == self.identity {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the open segment is no longer at this path (its directory was moved or replaced)",
            ))
        }
    }

    /// Appends one record and makes it durable (fdatasync) before returning.
    pub(super) fn append(&mut self, body: &[u8]) -> Result<()> {
        let mut framed = Vec::with_capacity(body.len() + super::files::FRAME_HEADER);
        frame(&mut framed, body);
        let path = segment_path(&self.dir, self.number);
        self.check_in_place(&path)
            .map_err(io("appending to the write-ahead log", &path))?;
        let written = self
            .file
            .write_all(&framed)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Take a partly written record back, so the records after it stay readable. If that fails too,
            // the error is the one that cannot be retried: a torn record would hide every later one.
            if let Err(undo) = self.file.set_len(self.len) {
                return Err(io(
                    "taking back a partly written write-ahead log record",
                    &path,
                )(undo));
            }
            return Err(io("appending to the write-ahead log", &path)(e));
        }
        self.len += framed.len() as u64;
        Ok(())
    }

    /// Seals the current segment and starts a new one; returns the new segment's number (every segment
    /// below it is sealed).
    pub(super) fn rotate(&mut self) -> Result<u64> {
        let number = self.number + 1;
        let (file, len, identity) = Self::create(&self.dir, number)?;
        self.file = file;
        self.len = len;
        self.identity = identity;
        self.number = number;
        Ok(number)
    }

    /// Removes the sealed segments below `number` (their points are in a part file now).
    pub(super) fn remove_below(&self, number: u64) -> Result<()> {
        for (n, path) in numbered(&self.dir, "wal")? {
            if n < number {
                std::fs::remove_file(&path).map_err(io("removing a flushed log segment", &path))?;
            }
        }
        sync_dir(&self.dir)
    }
}
