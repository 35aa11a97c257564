//! The embedded engine: series in files of our own in one directory, no server needed.
//!
//! ```text
//! {dir}/wal/{n}.wal      write-ahead log: every acknowledged write, fsynced before the answer (`wal`)
//! {dir}/parts/{n}.part   immutable parts of compressed, checksummed blocks with an index (`part`)
//! {dir}/catalog          the series: id → key and unit, CRC-framed records appended at each flush
//! {dir}/tombstones       deletes that parts still hold points of, rewritten whole (`tombstone`)
//! ```
//!
//! One writer thread (`writer`) merges every request waiting while it works into one WAL record and one
//! fsync (group commit), answers each request only after that, and keeps the points in an in-memory buffer
//! (`buffer`). When the buffer holds `compact_after_points` points, or writes pause, the writer flushes it
//! into a new part and drops the WAL segments it covers. A merger thread (`merger`, `merge`) combines
//! parts in the background (size-tiered while writes flow, everything when they pause), which turns the
//! small blocks of frequent flushes into full ones and applies raw retention. Reads (`read`) copy the
//! buffered points of a series, then take the list of parts, and merge them (buffer over newer part over
//! older part). A delete (`tombstone`) is a WAL record: it empties the buffer's range at once and leaves a
//! tombstone that hides the range in the parts written before it, until merges have dropped the points.
//!
//! Why files of our own rather than a B-tree store: measured in issue 3 on 20.4 M points, redb cost 108
//! bytes per uncompacted point and about three times the compressed blocks' size on disk, and compaction
//! through its transactions was the biggest CPU cost of ingest. An append-only log plus immutable sorted
//! parts writes every byte once per merge level, sequentially, and recovery is a log replay.
mod buffer;
mod config;
mod files;
mod fxhash;
mod index;
mod levels;
mod merge;
mod merger;
mod messages;
mod part;
mod port;
mod read;
mod rollup;
mod scan;
mod shared;
mod tombstone;
mod wal;
mod writer;

pub use config::{Clock, EngineConfig};
pub use read::VerifyReport;

use crate::error::io;
use crate::{Error, Result};
use buffer::Buffer;
use bydata_schemas::SeriesKey;
use index::{Def, Index, load_catalog};
use part::Part;
use shared::{Shared, read_lock};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use tombstone::Hidden;

/// The default store: durable, embedded, replaceable behind `SeriesWriter`/`SeriesReader`.
#[derive(Debug, Clone)]
pub struct EmbeddedEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    writer: writer::Handle,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Inner {
    /// Stops taking requests and waits for both threads (which finish what they are doing).
    fn close(&self) {
        self.shared
            .closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.writer.close();
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens every part in `dir`, removing leftovers of an interrupted flush or merge: temporary files, and
/// parts whose range another part covers (a merge that stopped before removing its inputs).
fn load_parts(dir: &Path) -> Result<Vec<Arc<Part>>> {
    for entry in std::fs::read_dir(dir).map_err(io("listing parts", dir))? {
        let path = entry.map_err(io("listing parts", dir))?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
            std::fs::remove_file(&path).map_err(io("removing an unfinished part", &path))?;
        }
    }
    let mut parts = Vec::new();
    for (number, path) in files::numbered(dir, "part")? {
        parts.push(Part::open(&path, number)?);
    }
    let covered = |p: &Part, all: &[Part]| {
        all.iter().any(|o| {
            o.number != p.number
                && o.lo <= p.lo
                && p.hi <= o.hi
                && ((o.lo, o.hi) != (p.lo, p.hi) || o.number > p.number)
        })
    };
    let (stale, live): (Vec<usize>, Vec<usize>) =
        (0..parts.len()).partition(|i| covered(&parts[*i], &parts));
    for i in &stale {
        let path = &parts[*i].path;
        tracing::info!(part = %path.display(), "removing a part a finished merge replaced");
        std::fs::remove_file(path).map_err(io("removing a replaced part", path))?;
    }
    let mut out: Vec<Arc<Part>> = Vec::new();
    let mut parts: Vec<Option<Part>> = parts.into_iter().map(Some).collect();
    for i in live {
        if let Some(p) = parts[i].take() {
            out.push(Arc::new(p));
        }
    }
    out.sort_by_key(|p| p.hi);
    if out.windows(2).any(|w| w[0].hi >= w[1].lo) {
        return Err(Error::Corrupt {
            what: "part file",
            detail: format!("parts in {} overlap in their flush ranges", dir.display()),
        });
    }
    files::sync_dir(dir)?;
    Ok(out)
}

impl EmbeddedEngine {
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, EngineConfig::default())
    }

    pub fn open_with(dir: &Path, config: EngineConfig) -> Result<Self> {
        Self::open_with_clock(dir, config, Arc::new(config::system_now))
    }

    /// Like `open_with`, with the clock retention measures ages against.
    pub fn open_with_clock(dir: &Path, config: EngineConfig, clock: Clock) -> Result<Self> {
        let parts_dir = dir.join("parts");
        std::fs::create_dir_all(&parts_dir).map_err(io("creating the series store", &parts_dir))?;
        let catalog = dir.join("catalog");
        let mut index = Index::default();
        load_catalog(&catalog, &mut index)?;
        let parts = load_parts(&parts_dir)?;
        let tombstones_path = dir.join("tombstones");
        let mut tombstones = tombstone::load(&tombstones_path)?;
        let mut buffer = Buffer::default();
        let mut pending: Vec<Def> = Vec::new();
        let mut replayed_deletes = false;
        let wal = wal::Wal::open(&dir.join("wal"), |entry| {
            let record = match entry {
                wal::Entry::Write(record) => record,
                wal::Entry::Delete(t) => {
                    for id in &t.ids {
                        buffer.remove_range(*id, t.start, t.end);
                    }
                    if tombstones.iter().all(|known| known.seq != t.seq) {
                        tombstones.push(t);
                    }
                    replayed_deletes = true;
                    return Ok(());
                }
            };
            for def in record.defs {
                index.apply(&def);
                pending.push(def);
            }
            for (id, points) in record.groups {
                if !index.infos.contains_key(&id) {
                    return Err(Error::Corrupt {
                        what: "write-ahead log record",
                        detail: format!("points of series {id}, which was never defined"),
                    });
                }
                buffer.insert_many(id, &points);
            }
            Ok(())
        })?;
        if buffer.points() > 0 {
            tracing::info!(
                points = buffer.points(),
                "replayed the write-ahead log into the buffer"
            );
        }
        // Above every number a part or a delete took, so a later flush is newer than every tombstone.
        let next_number = parts
            .iter()
            .map(|p| p.number.max(p.hi))
            .chain(tombstones.iter().map(|t| t.seq))
            .max()
            .map_or(0, |n| n + 1);
        tombstones.sort_by_key(|t| t.seq);
        tombstones.retain(|t| t.affects(&parts));
        let shared = Arc::new(Shared {
            parts_dir,
            catalog,
            tombstones_path,
            config,
            clock,
            index: RwLock::new(index),
            buffer: RwLock::new(buffer),
            parts: RwLock::new(Arc::new(parts)),
            tombstones: RwLock::new(Arc::new(tombstones)),
            tombstones_file: Mutex::new(()),
            next_number: AtomicU64::new(next_number),
            closing: std::sync::atomic::AtomicBool::new(false),
            failure: Mutex::new(None),
            flush_at_close: std::sync::atomic::AtomicBool::new(false),
        });
        let (writer, threads) = writer::spawn(shared.clone(), wal, pending, replayed_deletes)?;
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                writer,
                threads: Mutex::new(threads),
            }),
        })
    }

    fn id_of(&self, key: &SeriesKey) -> Option<u64> {
        read_lock(&self.inner.shared.index).id(key)
    }

    /// Flushes every buffered point into a part and merges all parts into one, applying retention
    /// (normally the engine does this by itself when writes pause).
    pub async fn compact(&self) -> Result<()> {
        self.inner.writer.compact().await
    }

    /// Closes the engine for a clean stop: later writes fail, the buffer is flushed into a part when that is
    /// cheap (dropping the engine leaves it to the WAL replay, as a crash would), and the threads are joined.
    pub fn close(&self) {
        self.inner
            .shared
            .flush_at_close
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.inner.close();
    }

    /// The engine's threads, each with why it is not running when it is not (`series writer`,
    /// `series merger`). A writer stopped by a failure it cannot recover from names the failure.
    pub fn check(&self) -> [(&'static str, std::result::Result<(), String>); 2] {
        let cause = self
            .inner
            .shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let threads = self.inner.threads.lock().unwrap_or_else(|p| p.into_inner());
        let closing = self
            .inner
            .shared
            .closing
            .load(std::sync::atomic::Ordering::Relaxed);
        let state = |i: usize, what: &str| match threads.get(i) {
            Some(t) if t.is_finished() && !closing => Err(format!(
                "the {what} thread ended unexpectedly (a panic; the log above has it)"
            )),
            _ => Ok(()),
        };
        let writer = match cause {
            Some(cause) => Err(cause),
            None => state(0, "series writer"),
        };
        // The merger ends when the writer does: then the writer's failure is the one to report.
        let merger = match writer {
            Ok(()) => state(1, "series merger"),
            Err(_) => Ok(()),
        };
        [("store writer", writer), ("store merger", merger)]
    }

    /// Points acknowledged but not yet flushed into a part (they are in the write-ahead log).
    pub fn head_points(&self) -> Result<u64> {
        Ok(read_lock(&self.inner.shared.buffer).points() as u64)
    }

    /// Tombstones kept for points that parts still hold.
    #[cfg(test)]
    fn tombstones(&self) -> usize {
        self.inner.shared.snapshot().1.len()
    }

    /// Decodes every block (checking its CRC and its index entry) and counts what is stored.
    pub fn verify(&self) -> Result<VerifyReport> {
        let shared = &self.inner.shared;
        read::verify(
            &shared.parts(),
            read_lock(&shared.index).infos.len() as u64,
            read_lock(&shared.buffer).points() as u64,
        )
    }

    /// The buffered points of `id` in `[from, to)` and its last buffered point before `from`, then the
    /// parts and their tombstones — in this order, so a flush between the two steps cannot hide a point.
    fn view(&self, id: u64, from: i64, to: i64) -> View {
        let shared = &self.inner.shared;
        let (overlay, prev) = {
            let buffer = read_lock(&shared.buffer);
            let prev = buffer.range(id, i64::MIN, from).last().copied();
            (buffer.range(id, from, to).to_vec(), prev)
        };
        let (parts, tombstones) = shared.snapshot();
        View {
            overlay,
            prev,
            parts,
            hidden: Hidden::of(&tombstones, id),
        }
    }
}

struct View {
    overlay: Vec<(i64, f64)>,
    prev: Option<(i64, f64)>,
    parts: Arc<Vec<Arc<Part>>>,
    hidden: Hidden,
}

#[cfg(test)]
mod clip_tests;
#[cfg(test)]
mod delete_tests;
#[cfg(test)]
mod tests;
