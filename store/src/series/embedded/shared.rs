//! What the writer, the merger and readers share (`Shared`), and the helpers they all use to reach it.
use super::buffer::Buffer;
use super::config::{Clock, EngineConfig};
use super::index::Index;
use super::part::Part;
use super::tombstone::{self, Tombstone};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

pub(super) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// What the writer, the merger and readers share.
pub(super) struct Shared {
    pub(super) parts_dir: PathBuf,
    pub(super) catalog: PathBuf,
    pub(super) tombstones_path: PathBuf,
    pub(super) config: EngineConfig,
    pub(super) clock: Clock,
    pub(super) index: RwLock<Index>,
    pub(super) buffer: RwLock<Buffer>,
    /// Live parts, oldest (lowest precedence) first; replaced as a whole, so a reader's copy stays valid.
    pub(super) parts: RwLock<Arc<Vec<Arc<Part>>>>,
    /// Tombstones some part still holds points of. Changed only under the `parts` write lock, and read
    /// under its read lock (`snapshot`), so parts and tombstones are always seen as a consistent pair.
    pub(super) tombstones: RwLock<Arc<Vec<Tombstone>>>,
    /// Serialises rewrites of the tombstones file (writer and merger).
    pub(super) tombstones_file: Mutex<()>,
    /// Numbers for new parts (flushes and merges), above every number and range on disk.
    pub(super) next_number: AtomicU64,
    /// Set when the engine closes, so a long merge does not hold the shutdown up.
    pub(super) closing: std::sync::atomic::AtomicBool,
    /// Why the writer stopped, when a failure made it stop (see `writer`).
    pub(super) failure: Mutex<Option<String>>,
    /// A clean close: the writer flushes its buffer before it ends (dropping the engine does not).
    pub(super) flush_at_close: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("parts_dir", &self.parts_dir)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Records why the writer must stop (the first cause is kept).
    pub(super) fn fail(&self, cause: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(cause);
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    pub(super) fn parts(&self) -> Arc<Vec<Arc<Part>>> {
        read_lock(&self.parts).clone()
    }

    /// The parts and the tombstones that apply to them, as one consistent pair.
    pub(super) fn snapshot(&self) -> (Arc<Vec<Arc<Part>>>, Arc<Vec<Tombstone>>) {
        let parts = read_lock(&self.parts);
        let tombstones = read_lock(&self.tombstones).clone();
        (parts.clone(), tombstones)
    }

    /// Keeps a new tombstone if some part holds points it covers; returns whether it did.
    pub(super) fn add_tombstone(&self, tombstone: Tombstone) -> bool {
        let parts = write_lock(&self.parts);
        if !tombstone.affects(&parts) {
            return false;
        }
        let mut list = write_lock(&self.tombstones);
        let mut new = (**list).clone();
        new.push(tombstone);
        *list = Arc::new(new);
        true
    }

    /// Drops the tombstones no part holds points of any more; returns whether any went.
    pub(super) fn retire_tombstones(&self) -> bool {
        let parts = write_lock(&self.parts);
        let mut list = write_lock(&self.tombstones);
        if list.iter().all(|t| t.affects(&parts)) {
            return false;
        }
        let kept: Vec<Tombstone> = list.iter().filter(|t| t.affects(&parts)).cloned().collect();
        *list = Arc::new(kept);
        true
    }

    /// Writes the current tombstones to their file (atomically).
    pub(super) fn persist_tombstones(&self) -> Result<()> {
        let _file = self
            .tombstones_file
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let list = read_lock(&self.tombstones).clone();
        tombstone::store(&self.tombstones_path, &list)
    }

    /// The time before which rollup buckets go, if rollups have a retention.
    pub(super) fn rollup_cutoff(&self) -> Option<i64> {
        let keep = self.config.rollup_retention?;
        let keep = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
        Some((self.clock)().saturating_sub(keep))
    }

    /// Per series with a retention, the time before which its raw points go.
    pub(super) fn cutoffs(&self) -> HashMap<u64, i64> {
        if self.config.retention.is_empty() {
            return HashMap::new();
        }
        let now = (self.clock)();
        read_lock(&self.index)
            .infos
            .iter()
            .filter_map(|(id, info)| {
                let keep = self.config.retention.get(info.key.measurement.as_str())?;
                let keep = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
                Some((*id, now.saturating_sub(keep)))
            })
            .collect()
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            detail: e.to_string(),
        })?
}
