//! Segment files on disk: naming, discovery and tail recovery.

use super::codec::{self, Next};
use super::error::io_at;
use super::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".journal";

/// Zero-padded so that a directory listing sorts segments in offset order.
pub(crate) fn path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{SUFFIX}"))
}

/// Base offsets of the segments in `dir`, ascending. Other files are left alone.
pub(crate) fn list(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    for item in fs::read_dir(dir).map_err(io_at(dir))? {
        let item = item.map_err(io_at(dir))?;
        let name = item.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(base) = stem.parse()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Creates an empty segment and makes its directory entry durable: fsyncing the file's data later does not
/// persist the entry, and a segment that vanishes on power loss would take its fsynced records with it.
pub(crate) fn create(dir: &Path, base: u64) -> Result<File> {
    let path = path(dir, base);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_at(&path))?;
    sync_dir(dir)?;
    Ok(file)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    // Only Unix lets a directory be opened and fsynced; elsewhere the entry's durability is the OS's business.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Every segment but the last was fsynced before the next was started, so each must end exactly where the next
/// begins; a gap or overlap means a file was lost or damaged outside the journal, which no truncation can fix.
pub(crate) fn check_chain(dir: &Path, bases: &[u64]) -> Result<()> {
    for pair in bases.windows(2) {
        let [base, next] = [pair[0], pair[1]];
        let path = path(dir, base);
        let len = fs::metadata(&path).map_err(io_at(&path))?.len();
        if base.checked_add(len) != Some(next) {
            return Err(Error::Corrupt {
                offset: base.saturating_add(len).min(next),
                reason: "segment files do not line up (a segment is missing, truncated or overlong)",
            });
        }
    }
    Ok(())
}

/// Opens the last segment for appending after cutting off any torn tail, and fsyncs it, so everything it
/// holds from then on is durable. Returns the file and its valid length.
pub(crate) fn recover(dir: &Path, base: u64) -> Result<(File, u64)> {
    let path = path(dir, base);
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .map_err(io_at(&path))?;
    let file_len = file.metadata().map_err(io_at(&path))?.len();
    let mut reader = BufReader::with_capacity(1 << 16, &file);
    let mut buf = Vec::new();
    let mut valid = 0u64;
    let torn = loop {
        match codec::read_record(&mut reader, file_len - valid, &mut buf).map_err(io_at(&path))? {
            Next::Record { len, .. } => valid += len,
            Next::End => break None,
            Next::Torn(reason) => break Some(reason),
            Next::Undecodable(reason) => {
                return Err(Error::Corrupt {
                    offset: base + valid,
                    reason,
                });
            }
        }
    };
    drop(reader);
    if let Some(reason) = torn {
        tracing::warn!(
            segment = %path.display(),
            offset = base + valid,
            cut_bytes = file_len - valid,
            reason,
            "journal: cutting a torn tail (a crash interrupted a write; these bytes were never acknowledged as durable)"
        );
        file.set_len(valid).map_err(io_at(&path))?;
    }
    file.sync_all().map_err(io_at(&path))?;
    Ok((file, valid))
}
