//! Small helpers shared by the engine's files: CRC-framed records, LEB128 varints, a bounds-checked cursor,
//! and durable file-system steps. Everything that parses bytes from disk returns an error, never panics.
use crate::Result;
use crate::error::io;
use std::fs::File;
use std::path::Path;

/// `[len u32 LE][crc32 u32 LE][body]`.
pub(super) const FRAME_HEADER: usize = 8;

pub(super) fn frame(out: &mut Vec<u8>, body: &[u8]) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// The bodies of the valid frames at the start of `bytes`, and how many bytes they take. Parsing stops at
/// the first frame that is cut short or fails its checksum (a torn tail after a crash).
pub(super) fn frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(header) = bytes.get(pos..pos + FRAME_HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(body) = bytes.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        out.push(body);
        pos += FRAME_HEADER + len;
    }
    (out, pos)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads fields from bytes that came from disk; every read is bounds-checked.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self {
            bytes,
            pos: 0,
            what,
        }
    }

    pub(super) fn corrupt(&self, detail: &str) -> crate::Error {
        crate::Error::Corrupt {
            what: self.what,
            detail: format!("{detail} at byte {}", self.pos),
        }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let out = self
            .bytes
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| self.corrupt("cut short"))?;
        self.pos += n;
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(super) fn i64(&mut self) -> Result<i64> {
        self.u64().map(|v| v as i64)
    }

    pub(super) fn f64(&mut self) -> Result<f64> {
        self.u64().map(f64::from_bits)
    }

    pub(super) fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt("varint longer than 64 bits"))
    }

    /// A count of items that each take at least `min_item_bytes`: refused when the rest cannot hold them,
    /// so a corrupt count never drives a huge allocation.
    pub(super) fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.varint()?;
        let room = (self.bytes.len() - self.pos) / min_item_bytes.max(1);
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= room)
            .ok_or_else(|| self.corrupt("count larger than the record"))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

/// Cuts `path` back to its first `valid` bytes, durably (a torn tail after a crash).
pub(super) fn cut_at(path: &Path, valid: usize) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("cutting a torn tail", path))?;
    f.set_len(valid as u64)
        .and_then(|()| f.sync_all())
        .map_err(io("cutting a torn tail", path))
}

/// Makes a directory's entries (created, renamed or removed files) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing a directory", dir))
}

/// Files in `dir` named `{number}.{ext}` (the number in decimal, any width), sorted by number.
pub(super) fn numbered(dir: &Path, ext: &str) -> Result<Vec<(u64, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let path = entry.map_err(io("listing", dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(ext) {
            continue;
        }
        if let Some(n) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((n, path));
        }
    }
    out.sort();
    Ok(out)
}
