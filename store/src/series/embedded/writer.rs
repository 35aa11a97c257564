//! The single writer thread: group commit of write requests, and compaction between groups.
//!
//! Overflow policy of the request queue: it is bounded (`QUEUE`); a full queue makes `write` wait (on a
//! blocking-pool thread), which is backpressure all the way to the HTTP client or the ingest pipeline.
use super::{
    Clock, EngineConfig, HEAD, Meta, SERIES, SERIES_META, SharedDb, SharedIndex, blocking, compact,
    read_db, read_index, retention,
};
use crate::error::{corrupt, db};
use crate::series::SeriesInfo;
use crate::{Error, Result};
use bydata_schemas::{Point, SeriesKey};
use redb::{Database, ReadableTable};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use tokio::sync::oneshot;

const QUEUE: usize = 64;

enum Request {
    Write {
        points: Vec<Point>,
        done: oneshot::Sender<Result<()>>,
    },
    Compact {
        done: oneshot::Sender<Result<()>>,
    },
}

/// The sending side; closing it lets the thread finish (with a last compaction) and exit.
#[derive(Debug)]
pub(super) struct Handle {
    tx: Mutex<Option<SyncSender<Request>>>,
}

fn stopped() -> Error {
    Error::Task {
        detail: "the series writer has stopped".into(),
    }
}

impl Handle {
    fn sender(&self) -> Result<SyncSender<Request>> {
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(stopped)
    }

    async fn send(&self, request: Request) -> Result<()> {
        let tx = self.sender()?;
        match tx.try_send(request) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(request)) => {
                blocking(move || tx.send(request).map_err(|_| stopped())).await
            }
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
        }
    }

    pub(super) async fn write(&self, points: Vec<Point>) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Request::Write { points, done }).await?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn compact(&self) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Request::Compact { done }).await?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

pub(super) fn spawn(
    db: SharedDb,
    index: SharedIndex,
    config: EngineConfig,
    clock: Clock,
) -> Result<(Handle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("series-writer".into())
        .spawn(move || run(&db, &index, &config, &clock, &rx))
        .map_err(|e| Error::Task {
            detail: format!("cannot start the series writer: {e}"),
        })?;
    Ok((
        Handle {
            tx: Mutex::new(Some(tx)),
        },
        thread,
    ))
}

fn run(
    shared: &SharedDb,
    index: &SharedIndex,
    config: &EngineConfig,
    clock: &Clock,
    rx: &Receiver<Request>,
) {
    // Head points may be left from before a restart: the first idle moment compacts them.
    let mut since_compaction: u64 = 0;
    let mut leftovers = true;
    // A compaction under way, as the series id its next step starts from. Steps run only while no write
    // is waiting, so a big compaction delays a write by at most one step.
    let mut compacting: Option<(u64, usize)> = None;
    loop {
        let wait = if compacting.is_some() {
            std::time::Duration::ZERO
        } else {
            config.compact_when_idle
        };
        let first = match rx.recv_timeout(wait) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                match compacting {
                    Some((from, min)) => {
                        // The read guard must be gone before `shrink_file` takes the lock exclusively.
                        let stepped =
                            compact::step(&read_db(shared), from, config.block_points, min);
                        match stepped {
                            Ok(Some(next)) => compacting = Some((next, min)),
                            Ok(None) => {
                                compacting = None;
                                retention_logged(&read_db(shared), index, config, clock);
                                if min == 1 {
                                    shrink_file(shared);
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "compaction failed; the head keeps the points");
                                compacting = None;
                            }
                        }
                    }
                    None if since_compaction > 0 || leftovers => {
                        // Idle: take everything.
                        compacting = Some((0, 1));
                        since_compaction = 0;
                        leftovers = false;
                    }
                    None => {}
                }
                continue;
            }
            // Closing: the head is durable as it is, and the next start compacts it when idle; compacting
            // here would make a shutdown wait for work that is not needed (minutes on a big head).
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut writes: Vec<(Vec<Point>, oneshot::Sender<Result<()>>)> = Vec::new();
        let mut compacts = Vec::new();
        let mut queued = 0usize;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write { points, done } => {
                    queued += points.len();
                    writes.push((points, done));
                }
                Request::Compact { done } => compacts.push(done),
            }
            if queued < config.max_group_points {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            let result = write_group(&read_db(shared), index, writes.iter().flat_map(|(p, _)| p));
            let failure = result.as_ref().err().map(ToString::to_string);
            for (_, done) in writes {
                let _ = done.send(match &failure {
                    None => Ok(()),
                    Some(detail) => Err(Error::Task {
                        detail: format!("write failed: {detail}"),
                    }),
                });
            }
            if let Err(e) = result {
                tracing::error!(error = %e, "series write failed; nothing of the group was stored");
            }
            since_compaction += queued as u64;
        }
        if compacting.is_none() && since_compaction >= config.compact_after_points {
            compacting = Some((0, config.min_compact_points));
            since_compaction = 0;
        }
        if !compacts.is_empty() {
            // An explicit request (tests, tools) compacts everything before it is answered.
            compacting = None;
            let result = compact::all(&read_db(shared), config.block_points);
            if let Err(e) = &result {
                tracing::error!(error = %e, "compaction failed; the head keeps the points");
            } else {
                since_compaction = 0;
                retention_logged(&read_db(shared), index, config, clock);
            }
            let failure = result.err().map(|e| e.to_string());
            for done in compacts {
                let _ = done.send(match &failure {
                    None => Ok(()),
                    Some(detail) => Err(Error::Task {
                        detail: format!("compaction failed: {detail}"),
                    }),
                });
            }
        }
    }
}

/// Gives the pages freed by compaction back to the file system (redb reuses them but never shrinks the file
/// by itself). Runs after an idle compaction, so it waits for in-flight reads and briefly holds new ones.
fn shrink_file(shared: &SharedDb) {
    let mut database = shared.write().unwrap_or_else(|p| p.into_inner());
    match database.compact() {
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not shrink the series file; its free pages stay reusable")
        }
    }
}

fn retention_logged(
    database: &Database,
    index: &SharedIndex,
    config: &EngineConfig,
    clock: &Clock,
) {
    match retention::apply(database, index, &config.retention, clock()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(points = n, "retention deleted expired raw points"),
        Err(e) => tracing::error!(error = %e, "retention failed; expired points are kept for now"),
    }
}

/// One transaction for a whole group; the in-memory index learns new series and unit changes after the commit.
fn write_group<'a>(
    database: &Database,
    index: &SharedIndex,
    points: impl Iterator<Item = &'a Point>,
) -> Result<()> {
    let txn = database.begin_write().map_err(db("writing points"))?;
    let mut changed: Vec<(u64, SeriesInfo)> = Vec::new();
    {
        let mut series = txn.open_table(SERIES).map_err(db("writing points"))?;
        let mut meta = txn.open_table(SERIES_META).map_err(db("writing points"))?;
        let mut head = txn.open_table(HEAD).map_err(db("writing points"))?;
        let mut next_id = meta
            .last()
            .map_err(db("writing points"))?
            .map_or(0, |(id, _)| id.value() + 1);
        // This thread is the only writer and updates the index after each commit, so the index knows every
        // committed series: no table lookup (nor key formatting) per series and batch.
        let known = read_index(index);
        let mut ids: HashMap<&SeriesKey, u64> = HashMap::new();
        for p in points {
            let id = match ids.get(&p.series) {
                Some(id) => *id,
                None => {
                    let (id, known_unit) = match known.by_key.get(&p.series) {
                        Some(id) => (*id, known.infos.get(id).map(|i| i.unit.clone())),
                        None => {
                            let id = next_id;
                            next_id += 1;
                            series
                                .insert(p.series.to_string().as_str(), id)
                                .map_err(db("writing points"))?;
                            (id, None)
                        }
                    };
                    if known_unit.as_ref() != Some(&p.unit) {
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
                    ids.insert(&p.series, id);
                    id
                }
            };
            head.insert((id, p.time), p.value)
                .map_err(db("writing points"))?;
        }
    }
    txn.commit().map_err(db("committing points"))?;
    let mut index = index.write().unwrap_or_else(|p| p.into_inner());
    for (id, info) in changed {
        index.by_key.insert(info.key.clone(), id);
        index.infos.insert(id, info);
    }
    Ok(())
}
