//! The embedded engine: series in a redb database in the data directory, no server needed.
//!
//! Layout (one redb file, every change an fsynced ACID transaction):
//! - `series`: canonical key text → dense series id; `series_meta`: id → key and unit (the index, loaded into
//!   memory at open);
//! - `head`: `(series id, time) → value`, the recent points exactly as written — cheap to insert, overwrite
//!   and delete, so late data and rewrites are plain B-tree operations;
//! - `blocks`: `(series id, first time) → compressed block` (`super::block`: delta-of-delta times, Gorilla
//!   values, a summary and a CRC), non-overlapping per series.
//!
//! Writes go through one writer thread (`writer`), which merges every request waiting while it commits into a
//! single transaction (group commit) and answers each request only after the commit. The same thread compacts
//! (`compact`): it moves head points into blocks after enough writes or when writes pause, merging them with
//! any block they overlap (late data) and topping up the series' last block. Readers (`read`) merge blocks
//! and head from one read snapshot; a head point wins over a block point at the same time.
mod compact;
mod read;
mod retention;
mod writer;

use super::{SeriesFilter, SeriesInfo, SeriesReader, SeriesWriter};
use crate::error::{corrupt, db};
use crate::query::Partial;
use crate::{Error, Result};
use bydata_schemas::{Point, SeriesKey, Unit, UnixNanos};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub(super) const SERIES: TableDefinition<&str, u64> = TableDefinition::new("series");
pub(super) const SERIES_META: TableDefinition<u64, &[u8]> = TableDefinition::new("series_meta");
pub(super) const HEAD: TableDefinition<(u64, i64), f64> = TableDefinition::new("head");
pub(super) const BLOCKS: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("blocks");

/// Tuning of the embedded engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most points in one compressed block.
    pub block_points: usize,
    /// Compact after this many points were written since the last compaction.
    pub compact_after_points: u64,
    /// While writes flow, a series is compacted once it has this many head points.
    pub min_compact_points: usize,
    /// Compact when no write arrived for this long.
    pub compact_when_idle: Duration,
    /// Most points merged into one group-commit transaction.
    pub max_group_points: usize,
    /// How long raw points of a measurement are kept (measurements not listed are kept forever).
    pub retention: BTreeMap<String, Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            block_points: 1024,
            compact_after_points: 100_000,
            min_compact_points: 128,
            compact_when_idle: Duration::from_secs(2),
            max_group_points: 500_000,
            retention: BTreeMap::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) key: SeriesKey,
    pub(super) unit: Option<Unit>,
}

#[derive(Debug, Default)]
pub(super) struct Index {
    pub(super) by_key: HashMap<SeriesKey, u64>,
    pub(super) infos: BTreeMap<u64, SeriesInfo>,
}

pub(super) type SharedIndex = Arc<RwLock<Index>>;

/// The database behind a lock: every transaction holds it shared; only redb's file compaction (which needs
/// `&mut Database` and gives freed pages back to the file system) takes it exclusively, when writes pause.
pub(super) type SharedDb = Arc<RwLock<Database>>;

pub(super) fn read_db(db: &SharedDb) -> std::sync::RwLockReadGuard<'_, Database> {
    db.read().unwrap_or_else(|p| p.into_inner())
}

/// The time now, in nanoseconds since the epoch.
pub type Clock = Arc<dyn Fn() -> UnixNanos + Send + Sync>;

fn system_now() -> UnixNanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(super) fn read_index(index: &SharedIndex) -> std::sync::RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

/// The default store: durable, embedded, replaceable behind `SeriesWriter`/`SeriesReader`.
#[derive(Debug, Clone)]
pub struct EmbeddedEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: SharedDb,
    index: SharedIndex,
    writer: writer::Handle,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.writer.close();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub series: u64,
    pub blocks: u64,
    pub block_points: u64,
    pub head_points: u64,
}

impl EmbeddedEngine {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, EngineConfig::default())
    }

    pub fn open_with(path: &Path, config: EngineConfig) -> Result<Self> {
        Self::open_with_clock(path, config, Arc::new(system_now))
    }

    /// Like `open_with`, with the clock retention measures ages against.
    pub fn open_with_clock(path: &Path, config: EngineConfig, clock: Clock) -> Result<Self> {
        let database = Database::create(path).map_err(db("opening the series store"))?;
        let txn = database
            .begin_write()
            .map_err(db("opening the series store"))?;
        {
            txn.open_table(SERIES).map_err(db("creating tables"))?;
            txn.open_table(SERIES_META).map_err(db("creating tables"))?;
            txn.open_table(HEAD).map_err(db("creating tables"))?;
            txn.open_table(BLOCKS).map_err(db("creating tables"))?;
        }
        txn.commit().map_err(db("creating tables"))?;
        let mut index = Index::default();
        {
            let txn = database
                .begin_read()
                .map_err(db("loading the series index"))?;
            let meta = txn
                .open_table(SERIES_META)
                .map_err(db("loading the series index"))?;
            for row in meta.iter().map_err(db("loading the series index"))? {
                let (id, m) = row.map_err(db("loading the series index"))?;
                let m: Meta = serde_json::from_slice(m.value()).map_err(corrupt("series"))?;
                index.by_key.insert(m.key.clone(), id.value());
                index.infos.insert(
                    id.value(),
                    SeriesInfo {
                        key: m.key,
                        unit: m.unit,
                    },
                );
            }
        }
        let db: SharedDb = Arc::new(RwLock::new(database));
        let index = Arc::new(RwLock::new(index));
        let (writer, thread) = writer::spawn(db.clone(), index.clone(), config, clock)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                index,
                writer,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    fn id_of(&self, key: &SeriesKey) -> Option<u64> {
        read_index(&self.inner.index).by_key.get(key).copied()
    }

    /// Compacts every head point into blocks now (normally the writer does this by itself).
    pub async fn compact(&self) -> Result<()> {
        self.inner.writer.compact().await
    }

    /// Points written but not yet compacted into blocks.
    pub fn head_points(&self) -> Result<u64> {
        use redb::ReadableTableMetadata;
        let database = read_db(&self.inner.db);
        let txn = database.begin_read().map_err(db("counting head points"))?;
        let head = txn.open_table(HEAD).map_err(db("counting head points"))?;
        head.len().map_err(db("counting head points"))
    }

    /// Decodes every block (checking its CRC and summary) and counts what is stored.
    pub fn verify(&self) -> Result<VerifyReport> {
        read::verify(
            &read_db(&self.inner.db),
            read_index(&self.inner.index).infos.len() as u64,
        )
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

#[async_trait::async_trait]
impl SeriesWriter for EmbeddedEngine {
    async fn write(&self, points: Vec<Point>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        if let Some(p) = points.iter().find(|p| !p.value.is_finite()) {
            return Err(Error::InvalidQuery {
                reason: format!("value of {} at {} is not finite", p.series, p.time),
            });
        }
        self.inner.writer.write(points).await
    }
}

#[async_trait::async_trait]
impl SeriesReader for EmbeddedEngine {
    async fn series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>> {
        let index = read_index(&self.inner.index);
        let mut out: Vec<SeriesInfo> = index
            .infos
            .values()
            .filter(|info| filter.matches(&info.key))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn range(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<(UnixNanos, f64)>> {
        let Some(id) = self.id_of(key) else {
            return Ok(Vec::new());
        };
        if from >= to {
            return Ok(Vec::new());
        }
        let db = self.inner.db.clone();
        blocking(move || read::range(&read_db(&db), id, from, to)).await
    }

    async fn last_before(
        &self,
        key: &SeriesKey,
        before: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>> {
        let Some(id) = self.id_of(key) else {
            return Ok(None);
        };
        let db = self.inner.db.clone();
        blocking(move || read::last_before(&read_db(&db), id, before)).await
    }

    async fn partials(&self, key: &SeriesKey, bounds: &[UnixNanos]) -> Result<Vec<Partial>> {
        let Some(id) = self.id_of(key) else {
            return Ok(vec![Partial::default(); bounds.len().saturating_sub(1)]);
        };
        let db = self.inner.db.clone();
        let bounds = bounds.to_vec();
        blocking(move || read::partials(&read_db(&db), id, &bounds)).await
    }

    /// One blocking task for the whole query, its series split across the cores.
    async fn partials_many(
        &self,
        keys: &[SeriesKey],
        bounds: &[UnixNanos],
    ) -> Result<Vec<Vec<Partial>>> {
        let ids: Vec<Option<u64>> = keys.iter().map(|k| self.id_of(k)).collect();
        let db = self.inner.db.clone();
        let bounds = bounds.to_vec();
        blocking(move || {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = ids.len().div_ceil(threads).max(1);
            let database = read_db(&db);
            let empty = vec![Partial::default(); bounds.len().saturating_sub(1)];
            let results: Vec<Result<Vec<Vec<Partial>>>> = std::thread::scope(|scope| {
                let workers: Vec<_> = ids
                    .chunks(chunk)
                    .map(|part| {
                        let (database, bounds, empty) = (&*database, &bounds, &empty);
                        scope.spawn(move || {
                            part.iter()
                                .map(|id| match id {
                                    Some(id) => read::partials(database, *id, bounds),
                                    None => Ok(empty.clone()),
                                })
                                .collect::<Result<Vec<_>>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join().unwrap_or_else(|_| {
                            Err(Error::Task {
                                detail: "a query worker panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
            let mut out = Vec::with_capacity(ids.len());
            for r in results {
                out.extend(r?);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
