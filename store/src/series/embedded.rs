//! The embedded engine: series in a redb database in the data directory, no server needed.
//!
//! Layout: `series` maps the canonical key text to a dense id, `series_meta` keeps each id's key and unit, and
//! `points` is keyed by `(series id, time)`, so a range read is one ordered B-tree scan and an overwrite of
//! the same series and time is naturally idempotent. Every `write` is one fsynced transaction. Compression
//! and block summaries are the next step (issue 3); this layout keeps reads correct and simple meanwhile.
use super::{SeriesFilter, SeriesInfo, SeriesReader, SeriesWriter};
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{Point, SeriesKey, Unit, UnixNanos};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

const SERIES: TableDefinition<&str, u64> = TableDefinition::new("series");
const SERIES_META: TableDefinition<u64, &[u8]> = TableDefinition::new("series_meta");
const POINTS: TableDefinition<(u64, i64), f64> = TableDefinition::new("points");

#[derive(Serialize, Deserialize)]
struct Meta {
    key: SeriesKey,
    unit: Option<Unit>,
}

#[derive(Debug, Default)]
struct Index {
    by_key: HashMap<SeriesKey, u64>,
    infos: BTreeMap<u64, SeriesInfo>,
}

/// The default store: durable, embedded, replaceable behind `SeriesWriter`/`SeriesReader`.
#[derive(Debug, Clone)]
pub struct EmbeddedEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    index: RwLock<Index>,
}

impl EmbeddedEngine {
    pub fn open(path: &Path) -> Result<Self> {
        let database = Database::create(path).map_err(db("opening the series store"))?;
        let txn = database
            .begin_write()
            .map_err(db("opening the series store"))?;
        {
            txn.open_table(SERIES).map_err(db("creating tables"))?;
            txn.open_table(SERIES_META).map_err(db("creating tables"))?;
            txn.open_table(POINTS).map_err(db("creating tables"))?;
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
        Ok(Self {
            inner: Arc::new(Inner {
                db: database,
                index: RwLock::new(index),
            }),
        })
    }

    fn id_of(&self, key: &SeriesKey) -> Option<u64> {
        self.inner
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .get(key)
            .copied()
    }

    fn write_blocking(&self, points: &[Point]) -> Result<()> {
        let txn = self.inner.db.begin_write().map_err(db("writing points"))?;
        // The tables, not the in-memory index, decide ids inside the transaction: the index is updated only
        // after the commit, and another writer may have committed a new series in between.
        let mut changed: Vec<(u64, SeriesInfo)> = Vec::new();
        {
            let mut series = txn.open_table(SERIES).map_err(db("writing points"))?;
            let mut meta = txn.open_table(SERIES_META).map_err(db("writing points"))?;
            let mut table = txn.open_table(POINTS).map_err(db("writing points"))?;
            let mut next_id = meta
                .last()
                .map_err(db("writing points"))?
                .map_or(0, |(id, _)| id.value() + 1);
            let mut batch_ids: HashMap<&SeriesKey, u64> = HashMap::new();
            for p in points {
                if !p.value.is_finite() {
                    return Err(Error::InvalidQuery {
                        reason: format!("value of {} at {} is not finite", p.series, p.time),
                    });
                }
                let id = match batch_ids.get(&p.series) {
                    Some(id) => *id,
                    None => {
                        let text = p.series.to_string();
                        let stored = series
                            .get(text.as_str())
                            .map_err(db("writing points"))?
                            .map(|v| v.value());
                        let id = match stored {
                            Some(id) => id,
                            None => {
                                let id = next_id;
                                next_id += 1;
                                series
                                    .insert(text.as_str(), id)
                                    .map_err(db("writing points"))?;
                                id
                            }
                        };
                        if stored.is_none() || self.unit_of(id).as_ref() != Some(&p.unit) {
                            let m = Meta {
                                key: p.series.clone(),
                                unit: p.unit.clone(),
                            };
                            let json = serde_json::to_vec(&m).map_err(corrupt("series"))?;
                            meta.insert(id, json.as_slice())
                                .map_err(db("writing points"))?;
                            changed.push((
                                id,
                                SeriesInfo {
                                    key: p.series.clone(),
                                    unit: p.unit.clone(),
                                },
                            ));
                        }
                        batch_ids.insert(&p.series, id);
                        id
                    }
                };
                table
                    .insert((id, p.time), p.value)
                    .map_err(db("writing points"))?;
            }
        }
        txn.commit().map_err(db("committing points"))?;
        let mut index = self.inner.index.write().unwrap_or_else(|p| p.into_inner());
        for (id, info) in changed {
            index.by_key.insert(info.key.clone(), id);
            index.infos.insert(id, info);
        }
        Ok(())
    }

    /// `Some(unit)` of a known series (the inner option is the unit itself).
    fn unit_of(&self, id: u64) -> Option<Option<Unit>> {
        let index = self.inner.index.read().unwrap_or_else(|p| p.into_inner());
        index.infos.get(&id).map(|info| info.unit.clone())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
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
        let this = self.clone();
        blocking(move || this.write_blocking(&points)).await
    }
}

#[async_trait::async_trait]
impl SeriesReader for EmbeddedEngine {
    async fn series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>> {
        let index = self.inner.index.read().unwrap_or_else(|p| p.into_inner());
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
        let this = self.clone();
        blocking(move || {
            let txn = this.inner.db.begin_read().map_err(db("reading points"))?;
            let table = txn.open_table(POINTS).map_err(db("reading points"))?;
            let mut out = Vec::new();
            for row in table
                .range((id, from)..(id, to))
                .map_err(db("reading points"))?
            {
                let (k, v) = row.map_err(db("reading points"))?;
                out.push((k.value().1, v.value()));
            }
            Ok(out)
        })
        .await
    }

    async fn last_before(
        &self,
        key: &SeriesKey,
        before: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>> {
        let Some(id) = self.id_of(key) else {
            return Ok(None);
        };
        let this = self.clone();
        blocking(move || {
            let txn = this.inner.db.begin_read().map_err(db("reading points"))?;
            let table = txn.open_table(POINTS).map_err(db("reading points"))?;
            let last = table
                .range((id, i64::MIN)..(id, before))
                .map_err(db("reading points"))?
                .next_back()
                .transpose()
                .map_err(db("reading points"))?;
            Ok(last.map(|(k, v)| (k.value().1, v.value())))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_schemas::MeasurementName;

    fn key(device: &str) -> SeriesKey {
        SeriesKey {
            measurement: MeasurementName::new("temperature").expect("name"),
            tags: BTreeMap::from([("device".to_owned(), device.to_owned())]),
            field: MeasurementName::new("value").expect("name"),
        }
    }

    fn point(device: &str, time: i64, value: f64) -> Point {
        Point {
            series: key(device),
            unit: Unit::for_measurement("temperature"),
            time,
            value,
        }
    }

    #[tokio::test]
    async fn writes_are_idempotent_and_durable() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("series.redb");
        {
            let e = EmbeddedEngine::open(&path).expect("open");
            e.write(vec![
                point("a", 10, 1.0),
                point("a", 20, 2.0),
                point("b", 10, 5.0),
            ])
            .await
            .expect("write");
            e.write(vec![point("a", 20, 2.5)]).await.expect("rewrite");
        }
        let e = EmbeddedEngine::open(&path).expect("reopen");
        assert_eq!(
            e.range(&key("a"), 0, 100).await.expect("range"),
            vec![(10, 1.0), (20, 2.5)]
        );
        assert_eq!(
            e.range(&key("a"), 10, 20).await.expect("range"),
            vec![(10, 1.0)]
        );
        assert_eq!(
            e.last_before(&key("a"), i64::MAX).await.expect("last"),
            Some((20, 2.5))
        );
        assert_eq!(e.last_before(&key("a"), 10).await.expect("last"), None);
        let all = e
            .series(&SeriesFilter {
                measurement: Some(MeasurementName::new("temperature").expect("name")),
                field: None,
                tags: BTreeMap::new(),
            })
            .await
            .expect("series");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].unit.as_ref().map(Unit::as_str), Some("Cel"));
        // A non-finite value never reaches disk.
        assert!(e.write(vec![point("a", 30, f64::NAN)]).await.is_err());
        assert_eq!(e.range(&key("a"), 0, 100).await.expect("range").len(), 2);
    }
}
