//! The raw journal: an append-only, segmented log of [`JournalEntry`] that every edge writes before anything
//! else happens to a message, so that decoding and storing can always be replayed from it.
//!
//! Appends go to the OS in one write under a mutex and return at once (the MQTT hot path must never wait for
//! a disk); a background thread fsyncs in groups and advances [`Journal::durable_offset`]. Readers only ever see
//! durable records, so nothing downstream can act on a record that a power loss could still take back.
//! Offsets are global byte positions; segment `dir/{base:020}.journal` holds the bytes from `base` on.

mod codec;
mod error;
mod segment;
#[cfg(test)]
mod tests;

pub(crate) use error::storage_full;
pub use error::{Error, Result};

use bydata_schemas::JournalEntry;
use codec::Next;
use error::io_at;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// How the journal lays out its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// A segment is closed once the next record would take it past this size (a record larger than this gets
    /// a segment of its own).
    pub segment_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The open journal; share it as `Arc<Journal>`.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    /// Asked before every append: while it refuses, nothing is written and the edge does not acknowledge.
    intake: std::sync::OnceLock<Arc<crate::health::Health>>,
    /// Held for the journal's lifetime so a second writer on the same directory fails instead of interleaving.
    _lock: File,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
    /// Wakes the sync thread when there is something to sync or it should stop.
    wake_syncer: Condvar,
    /// Segment bases, ascending. Kept apart from `state` so readers never contend with appenders.
    segments: RwLock<Vec<u64>>,
    /// The durable offset; a watch so async waiters can be woken from the sync thread without a runtime.
    durable: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    /// The active segment. Shared so the sync thread can fsync it without holding the lock.
    file: Arc<File>,
    base: u64,
    written: u64,
    synced: u64,
    closing: bool,
    failed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks with the state half-updated, so a poisoned lock is still sound.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    /// Opens (creating) the journal in `dir`, cuts off a torn tail, fsyncs what is there (so all of it is
    /// durable) and starts the group-commit thread.
    pub fn open(dir: &Path, config: JournalConfig) -> Result<Journal> {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let lock_file = take_dir_lock(dir)?;

        let mut bases = segment::list(dir)?;
        if bases.is_empty() {
            segment::create(dir, 0)?;
            bases.push(0);
        }
        segment::check_chain(dir, &bases)?;
        let base = *bases.last().unwrap_or(&0);
        let (file, valid) = segment::recover(dir, base)?;
        segment::sync_dir(dir)?;
        let end = base + valid;

        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            segment_bytes: config.segment_bytes,
            state: Mutex::new(State {
                file: Arc::new(file),
                base,
                written: end,
                synced: end,
                closing: false,
                failed: false,
            }),
            wake_syncer: Condvar::new(),
            segments: RwLock::new(bases),
            durable: watch::Sender::new(end),
        });
        let syncer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("journal-sync".into())
                .spawn(move || shared.sync_loop())
                .map_err(io_at(dir))?
        };
        Ok(Journal {
            shared,
            syncer: Mutex::new(Some(syncer)),
            intake: std::sync::OnceLock::new(),
            _lock: lock_file,
        })
    }

    /// Appends one entry and returns its offset. The record is handed to the OS in one write and not fsynced:
    /// it survives the process being killed at once, and power loss once [`Journal::durable_offset`] passes it.
    pub fn append(&self, entry: &JournalEntry) -> Result<u64> {
        if let Some(reason) = self.intake.get().and_then(|h| h.refusal()) {
            return Err(Error::Refused { reason });
        }
        // Encode outside the lock: the critical section is only the write.
        let record = codec::encode(entry)?;
        let len = record.len() as u64;
        let shared = &*self.shared;
        let mut st = lock(&shared.state);
        if st.closing {
            return Err(Error::Closed);
        }
        if st.failed {
            return Err(Error::Failed);
        }
        let in_segment = st.written - st.base;
        if in_segment > 0 && in_segment + len > shared.segment_bytes {
            shared.roll(&mut st)?;
        }
        let offset = st.written;
        if let Err(source) = (&*st.file).write_all(&record) {
            let path = segment::path(&shared.dir, st.base);
            // A partial record must not stay in front of the next one; if it cannot be removed, stop appending.
            if let Err(undo) = st.file.set_len(offset - st.base) {
                tracing::error!(segment = %path.display(), error = %undo,
                    "journal: could not remove a partially written record; refusing further appends");
                st.failed = true;
            }
            return Err(Error::Io { path, source });
        }
        st.written += len;
        drop(st);
        shared.wake_syncer.notify_one();
        Ok(offset)
    }

    /// Makes every later append ask `health` first (set once; `serve` does it before any edge starts).
    pub fn guard_intake(&self, health: Arc<crate::health::Health>) {
        let _ = self.intake.set(health);
    }

    /// Why the journal cannot take appends any more, if it cannot: an earlier write or fsync failed, or
    /// its sync thread ended while the journal was open.
    pub fn check(&self) -> std::result::Result<(), String> {
        let st = lock(&self.shared.state);
        if st.failed {
            return Err(Error::Failed.to_string());
        }
        let closing = st.closing;
        drop(st);
        let ended = lock(&self.syncer)
            .as_ref()
            .is_some_and(JoinHandle::is_finished);
        if ended && !closing {
            return Err("the journal's sync thread ended unexpectedly".into());
        }
        Ok(())
    }

    /// End offset of everything appended so far (durable or not).
    pub fn end_offset(&self) -> u64 {
        lock(&self.shared.state).written
    }

    /// How many records lie in `[from, durable offset)`, counting at most `max` (reads only record headers).
    pub fn count_records(&self, from: u64, max: u64) -> Result<u64> {
        let durable = self.durable_offset();
        let mut pos = from;
        let mut count = 0;
        while count < max && pos < durable {
            let (base, end) = self.shared.segment_containing(pos, durable)?;
            let path = segment::path(&self.shared.dir, base);
            let mut reader =
                BufReader::with_capacity(1 << 14, File::open(&path).map_err(io_at(&path))?);
            reader
                .seek(SeekFrom::Start(pos - base))
                .map_err(io_at(&path))?;
            while count < max && pos < end {
                let mut header = [0u8; codec::HEADER_LEN];
                std::io::Read::read_exact(&mut reader, &mut header).map_err(io_at(&path))?;
                let len = u64::from(u32::from_le_bytes([
                    header[0], header[1], header[2], header[3],
                ]));
                reader
                    .seek_relative(i64::try_from(len).unwrap_or(i64::MAX))
                    .map_err(io_at(&path))?;
                pos += codec::HEADER_LEN as u64 + len;
                count += 1;
            }
        }
        Ok(count)
    }

    /// End offset of everything fsynced so far.
    pub fn durable_offset(&self) -> u64 {
        *self.shared.durable.borrow()
    }

    /// Resolves once [`Journal::durable_offset`] is past `offset`, i.e. the record appended at `offset` is
    /// durable. Cancel-safe. Never resolves for an offset the journal has not reached, nor after the
    /// journal stopped syncing because an fsync failed; select on a shutdown signal beside it.
    pub async fn wait_durable_beyond(&self, offset: u64) {
        let mut rx = self.shared.durable.subscribe();
        // Errs only when the sender is dropped, and `self` owns it.
        let _ = rx.wait_for(|&durable| durable > offset).await;
    }

    /// Reads up to `max` entries starting at `offset` (an offset from `append` or a previous `read`), stopping
    /// at the durable offset. Returns them with their offsets, and the offset to read from next (== `offset`
    /// when there is nothing new).
    pub fn read(&self, offset: u64, max: usize) -> Result<(Vec<(u64, JournalEntry)>, u64)> {
        let durable = self.durable_offset();
        let mut out = Vec::new();
        let mut pos = offset;
        let mut buf = Vec::new();
        while out.len() < max && pos < durable {
            let (base, end) = self.shared.segment_containing(pos, durable)?;
            let path = segment::path(&self.shared.dir, base);
            let mut file = File::open(&path).map_err(io_at(&path))?;
            file.seek(SeekFrom::Start(pos - base))
                .map_err(io_at(&path))?;
            let mut reader = BufReader::with_capacity(1 << 16, file);
            while out.len() < max && pos < end {
                match codec::read_record(&mut reader, end - pos, &mut buf).map_err(io_at(&path))? {
                    Next::Record { entry, len } => {
                        out.push((pos, entry));
                        pos += len;
                    }
                    // Durable bytes are whole records, so anything short of one is damage, not a tail.
                    Next::End => {
                        return Err(Error::Corrupt {
                            offset: pos,
                            reason: "segment ends before the durable offset",
                        });
                    }
                    Next::Torn(reason) | Next::Undecodable(reason) => {
                        return Err(Error::Corrupt {
                            offset: pos,
                            reason,
                        });
                    }
                }
            }
        }
        Ok((out, pos))
    }

    /// Makes everything appended durable and stops the sync thread; later appends fail with
    /// [`Error::Closed`]. Idempotent; also done on drop.
    pub fn close(&self) -> Result<()> {
        let Some(syncer) = lock(&self.syncer).take() else {
            return Ok(());
        };
        let shared = &*self.shared;
        lock(&shared.state).closing = true;
        shared.wake_syncer.notify_all();
        if syncer.join().is_err() {
            tracing::error!("journal: the sync thread panicked");
        }
        let mut st = lock(&shared.state);
        if st.failed {
            return Err(Error::Failed);
        }
        if st.written > st.synced {
            shared.sync_active(&mut st)?;
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "journal: closing on drop failed; records after the durable offset may be lost");
        }
    }
}

impl Shared {
    /// Group commit: every append that lands while an fsync runs is covered by the next one, so the fsync rate
    /// is bounded by the disk, not by the message rate.
    fn sync_loop(&self) {
        loop {
            let (target, file) = {
                let mut st = lock(&self.state);
                while st.written <= st.synced && !st.closing && !st.failed {
                    st = self
                        .wake_syncer
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                // `close` does the final sync itself, so it can report its outcome.
                if st.closing || st.failed {
                    return;
                }
                (st.written, Arc::clone(&st.file))
            };
            // Bytes before `target` are in `file` or in segments fsynced when they were rolled, so once this
            // returns they are all durable.
            let result = file.sync_data();
            let mut st = lock(&self.state);
            match result {
                Ok(()) => {
                    st.synced = st.synced.max(target);
                    self.publish_durable(target);
                }
                Err(error) => {
                    tracing::error!(%error, durable = st.synced,
                        "journal: fsync failed; records after the durable offset may be lost, appends are refused");
                    st.failed = true;
                    return;
                }
            }
        }
    }

    /// Fsyncs the active segment under the lock (roll-over and close, both rare).
    fn sync_active(&self, st: &mut State) -> Result<()> {
        if let Err(source) = st.file.sync_data() {
            st.failed = true;
            return Err(Error::Io {
                path: segment::path(&self.dir, st.base),
                source,
            });
        }
        st.synced = st.written;
        self.publish_durable(st.written);
        Ok(())
    }

    /// Starts a new segment at the current end. The old one is fsynced here, by the appender, so the sync
    /// thread only ever has to sync the segment it picked up: whatever it saw before is already durable.
    fn roll(&self, st: &mut State) -> Result<()> {
        self.sync_active(st)?;
        let base = st.written;
        let file = segment::create(&self.dir, base)?;
        // Listed before any byte of it can become durable, so readers always find it.
        self.segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(base);
        st.file = Arc::new(file);
        st.base = base;
        Ok(())
    }

    fn publish_durable(&self, end: u64) {
        self.durable.send_if_modified(|durable| {
            let advanced = end > *durable;
            if advanced {
                *durable = end;
            }
            advanced
        });
    }

    /// The segment holding `pos` and where reading it must stop.
    fn segment_containing(&self, pos: u64, durable: u64) -> Result<(u64, u64)> {
        let bases = self.segments.read().unwrap_or_else(PoisonError::into_inner);
        let i = bases.partition_point(|&b| b <= pos);
        let Some(&base) = i.checked_sub(1).and_then(|i| bases.get(i)) else {
            return Err(Error::OffsetBeforeStart {
                offset: pos,
                first: bases.first().copied().unwrap_or(0),
            });
        };
        let next = bases.get(i).copied().unwrap_or(u64::MAX);
        Ok((base, next.min(durable)))
    }
}

fn take_dir_lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_at(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
    }
}
