//! The writer thread: group commit into the WAL, deletes, the buffer, flushes (the merger thread, which
//! combines the parts, is in `merger`).
//!
//! Requests are taken in the order they arrive: the writes between two deletes are one group commit, and a
//! delete is a WAL record of its own, so it covers exactly the writes answered before it.
//!
//! Failure policy: an error that more disk space can cure (ENOSPC, EDQUOT) fails the group it hit and the
//! writer goes on; any other failure to write or rotate the WAL stops the writer (its thread ends, the
//! cause is kept for `EmbeddedEngine::check`), because it could no longer promise that what it
//! acknowledges is replayed after a crash — the same rule PostgreSQL applies to its WAL.
//!
//! Overflow policy of the request queue: it is bounded (`QUEUE`); a full queue makes `write` wait (on a
//! blocking-pool thread), which is backpressure all the way to the HTTP client or the ingest pipeline. The
//! merger's queue is bounded too; a flush notice that does not fit is dropped (the merger plans from the
//! parts it sees, so a missed notice loses nothing).
use super::files::sync_dir;
use super::fxhash::FxBuild;
use super::index::{Def, Index};
use super::merger;
use super::messages::{Done, MergeRequest, Payload, Request, answer};
use super::part::PartWriter;
use super::rollup;
use super::shared::{Shared, blocking, read_lock, write_lock};
use super::tombstone::Tombstone;
use super::wal::{self, Wal};
use crate::series::SeriesFilter;
use crate::{Error, Result};
use bydata_schemas::{SeriesKey, Unit};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

const QUEUE: usize = 64;
/// Most buffered points flushed into a part at close (about half a second of work); a larger buffer is left
/// to the WAL replay at the next start.
const FLUSH_AT_CLOSE_MAX: usize = 1_000_000;

/// A write request's series resolved to ids.
enum Resolved {
    /// Points each with its key, grouped by series here.
    Owned(Vec<(u64, Vec<(i64, f64)>)>),
    /// The id of each group of a grouped request.
    Ids(Vec<u64>),
}

/// Series key → id for one group commit, allocating ids for new series and recording the definitions (new
/// series, changed units) the WAL record must carry.
struct Resolver<'a> {
    next_id: u64,
    defs: Vec<Def>,
    /// Series new in this commit (the index learns them after the fsync).
    new_ids: HashMap<&'a SeriesKey, u64, FxBuild>,
    /// The unit this commit last recorded per series.
    units: HashMap<u64, &'a Option<Unit>, FxBuild>,
}

impl<'a> Resolver<'a> {
    fn id(&mut self, index: &Index, series: &'a SeriesKey, unit: &'a Option<Unit>) -> u64 {
        let id = match index.id(series) {
            Some(id) => id,
            None => match self.new_ids.get(series) {
                Some(id) => *id,
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.new_ids.insert(series, id);
                    id
                }
            },
        };
        let current = match self.units.get(&id) {
            Some(u) => Some(*u),
            None => index.infos.get(&id).map(|i| &i.unit),
        };
        if current != Some(unit) {
            self.defs.push(Def {
                id,
                key: series.clone(),
                unit: unit.clone(),
            });
            self.units.insert(id, unit);
        }
        id
    }
}

/// The sending side; closing it lets the threads finish what they are doing and exit.
#[derive(Debug)]
pub(super) struct Handle {
    tx: Mutex<Option<SyncSender<Request>>>,
}

pub(super) fn stopped() -> Error {
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

    pub(super) async fn write(&self, payload: Payload) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Request::Write { payload, done }).await?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn delete(&self, filter: SeriesFilter, start: i64, end: i64) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Request::Delete {
            filter,
            start,
            end,
            done,
        })
        .await?;
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

/// `unsaved_tombstones`: the WAL replayed deletes the tombstones file may not have yet.
pub(super) fn spawn(
    shared: Arc<Shared>,
    wal: Wal,
    pending: Vec<Def>,
    unsaved_tombstones: bool,
) -> Result<(Handle, Vec<std::thread::JoinHandle<()>>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let (merge_tx, merge_rx) = sync_channel(QUEUE);
    let thread_error = |e: std::io::Error| Error::Task {
        detail: format!("cannot start the series engine's threads: {e}"),
    };
    let merger_shared = shared.clone();
    let merger = std::thread::Builder::new()
        .name("series-merger".into())
        .spawn(move || merger::run(&merger_shared, &merge_rx))
        .map_err(thread_error)?;
    let next_id = read_lock(&shared.index)
        .infos
        .keys()
        .next_back()
        .map_or(0, |id| id + 1);
    let mut writer = Writer {
        shared,
        wal,
        pending,
        unsaved_tombstones,
        next_id,
        merger: merge_tx,
        flush_failing: false,
    };
    let thread = std::thread::Builder::new()
        .name("series-writer".into())
        .spawn(move || writer.run(&rx))
        .map_err(thread_error)?;
    Ok((
        Handle {
            tx: Mutex::new(Some(tx)),
        },
        vec![thread, merger],
    ))
}

struct Writer {
    shared: Arc<Shared>,
    wal: Wal,
    /// Series definitions in the WAL that the catalog does not have yet.
    pending: Vec<Def>,
    /// Deletes in the WAL whose tombstones the tombstones file may not have yet.
    unsaved_tombstones: bool,
    next_id: u64,
    merger: SyncSender<MergeRequest>,
    /// The last flush failed for lack of space (logged once until one succeeds).
    flush_failing: bool,
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Request>) {
        // Replayed points wait for the first idle moment, like any other.
        let mut dirty = read_lock(&self.shared.buffer).points() > 0;
        loop {
            if self.shared.failed() {
                return;
            }
            let first = match rx.recv_timeout(self.shared.config.compact_when_idle) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    // A flush that failed for lack of space is tried again at the next pause.
                    if dirty {
                        dirty = !self.flush_logged();
                    }
                    continue;
                }
                // Closing: the WAL holds every acknowledged point and the next start would replay it, but a
                // clean stop (`EmbeddedEngine::close`) should leave the directory compact (no WAL to replay,
                // nothing for `du` to show), so then the buffer is flushed when that is cheap.
                Err(RecvTimeoutError::Disconnected) => {
                    let points = read_lock(&self.shared.buffer).points();
                    let clean = self.shared.flush_at_close.load(Ordering::Relaxed);
                    if clean && dirty && points <= FLUSH_AT_CLOSE_MAX {
                        self.flush_logged();
                    }
                    return;
                }
            };
            let mut writes: Vec<(Payload, Done)> = Vec::new();
            let mut compacts = Vec::new();
            let mut queued = 0usize;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Write { payload, done } => {
                        queued += payload.len();
                        writes.push((payload, done));
                    }
                    Request::Delete {
                        filter,
                        start,
                        end,
                        done,
                    } => {
                        // The writes before it are committed first: the delete covers them.
                        self.commit(std::mem::take(&mut writes));
                        let result = self.delete(&filter, start, end);
                        if let Err(e) = &result {
                            tracing::error!(error = %e, "series delete failed; nothing was deleted");
                        }
                        answer(done, &result, "delete");
                        dirty = true;
                        self.stop_on(&result);
                    }
                    Request::Compact { done } => compacts.push(done),
                }
                if queued < self.shared.config.max_group_points {
                    next = rx.try_recv().ok();
                }
            }
            dirty |= self.commit(writes);
            if read_lock(&self.shared.buffer).points() as u64
                >= self.shared.config.compact_after_points
            {
                self.flush_logged();
            }
            for done in compacts {
                match self.flush() {
                    Ok(()) => {
                        dirty = false;
                        // The merger answers once everything is merged.
                        if let Err(e) = self.merger.send(MergeRequest::All { done })
                            && let MergeRequest::All { done } = e.0
                        {
                            answer(done, &Err(stopped()), "compaction");
                        }
                    }
                    Err(e) => answer(done, &Err(e), "flush"),
                }
            }
        }
    }

    /// Writes a group and answers its requests; returns whether there was anything to write.
    fn commit(&mut self, writes: Vec<(Payload, Done)>) -> bool {
        if writes.is_empty() {
            return false;
        }
        let payloads: Vec<&Payload> = writes.iter().map(|(p, _)| p).collect();
        let result = self.write_group(&payloads);
        if let Err(e) = &result
            && e.is_storage_full()
        {
            tracing::warn!(error = %e, "series write failed for lack of space; nothing of the group was stored");
        }
        for (_, done) in writes {
            answer(done, &result, "write");
        }
        self.stop_on(&result);
        true
    }

    /// Records a WAL failure that more space cannot cure; returns whether the writer must stop.
    fn stop_on(&self, result: &Result<()>) -> bool {
        match result {
            Err(e) if !e.is_storage_full() => {
                self.shared.fail(format!(
                    "the write-ahead log cannot be written ({e}); acknowledged writes could no longer be made durable"
                ));
                true
            }
            _ => false,
        }
    }

    /// A delete: the series matching `filter` now, one WAL record and its fsync, then the buffer loses the
    /// range and the parts get a tombstone (if any of them holds points it covers).
    fn delete(&mut self, filter: &SeriesFilter, start: i64, end: i64) -> Result<()> {
        let ids: Vec<u64> = read_lock(&self.shared.index)
            .infos
            .iter()
            .filter(|(_, info)| filter.matches(&info.key))
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() || start >= end {
            return Ok(());
        }
        // Above every flush so far, below every later one (see `tombstone`).
        let seq = self.shared.next_number.fetch_add(1, Ordering::SeqCst);
        let tombstone = Tombstone {
            seq,
            start,
            end,
            ids,
        };
        self.wal.append(&wal::encode_delete(&tombstone))?;
        {
            let mut buffer = write_lock(&self.shared.buffer);
            for id in &tombstone.ids {
                buffer.remove_range(*id, start, end);
            }
        }
        if self.shared.add_tombstone(tombstone) {
            self.unsaved_tombstones = true;
        }
        Ok(())
    }

    /// One WAL record and one fsync for the whole group; then the index and the buffer learn it. Points are
    /// recorded request by request, in order, so a later request's point wins at the same time.
    fn write_group(&mut self, payloads: &[&Payload]) -> Result<()> {
        let mut resolver = Resolver {
            next_id: self.next_id,
            defs: Vec::new(),
            new_ids: HashMap::default(),
            units: HashMap::default(),
        };
        let resolved: Vec<Resolved> = {
            let index = read_lock(&self.shared.index);
            payloads
                .iter()
                .map(|payload| match payload {
                    Payload::Points(points) => {
                        // The request's own map, gone after it: the fast hasher is safe here (crafted keys
                        // could slow only the request that carries them).
                        let mut slots: HashMap<&SeriesKey, usize, FxBuild> = HashMap::default();
                        let mut groups: Vec<(u64, Vec<(i64, f64)>)> = Vec::new();
                        for p in points {
                            let slot = match slots.get(&p.series) {
                                Some(slot) => *slot,
                                None => {
                                    let id = resolver.id(&index, &p.series, &p.unit);
                                    groups.push((id, Vec::new()));
                                    slots.insert(&p.series, groups.len() - 1);
                                    groups.len() - 1
                                }
                            };
                            if let Some(group) = groups.get_mut(slot) {
                                group.1.push((p.time, p.value));
                            }
                        }
                        Resolved::Owned(groups)
                    }
                    // Already one entry per series: only the ids are needed.
                    Payload::Grouped(groups) => Resolved::Ids(
                        groups
                            .iter()
                            .map(|g| resolver.id(&index, &g.series, &g.unit))
                            .collect(),
                    ),
                })
                .collect()
        };
        let mut refs: Vec<(u64, &[(i64, f64)])> = Vec::new();
        for (payload, resolved) in payloads.iter().zip(&resolved) {
            match (payload, resolved) {
                (_, Resolved::Owned(groups)) => {
                    refs.extend(groups.iter().map(|(id, p)| (*id, p.as_slice())));
                }
                (Payload::Grouped(groups), Resolved::Ids(ids)) => {
                    refs.extend(
                        ids.iter()
                            .zip(groups)
                            .map(|(id, g)| (*id, g.points.as_slice())),
                    );
                }
                (Payload::Points(_), Resolved::Ids(_)) => {}
            }
        }
        let Resolver { next_id, defs, .. } = resolver;
        let body = wal::encode(&defs, &refs)?;
        self.wal.append(&body)?;
        self.next_id = next_id;
        {
            let mut index = write_lock(&self.shared.index);
            for def in &defs {
                index.apply(def);
            }
        }
        {
            let mut buffer = write_lock(&self.shared.buffer);
            for (id, points) in &refs {
                buffer.insert_many(*id, points);
            }
        }
        self.pending.extend(defs);
        Ok(())
    }

    /// Flushes, logging a failure (one lack-of-space failure in a row; a fatal one is the supervisor's to
    /// report); returns whether it succeeded.
    fn flush_logged(&mut self) -> bool {
        match self.flush() {
            Ok(()) => {
                self.flush_failing = false;
                true
            }
            Err(_) if self.shared.failed() => false,
            Err(e) if e.is_storage_full() => {
                if !std::mem::replace(&mut self.flush_failing, true) {
                    tracing::warn!(error = %e, "flushing the buffer failed for lack of space; the write-ahead log keeps the points, and the flush is tried again at the next pause");
                }
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "flushing the buffer failed; the write-ahead log keeps the points");
                false
            }
        }
    }

    /// Buffer → a new part; then the WAL segments it covers go.
    fn flush(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        if read_lock(&shared.buffer).points() == 0
            && self.pending.is_empty()
            && !self.unsaved_tombstones
        {
            return Ok(());
        }
        let sealed = match self.wal.rotate() {
            Ok(sealed) => sealed,
            Err(e) => {
                let result = Err(e);
                self.stop_on(&result);
                return result;
            }
        };
        if !self.pending.is_empty() {
            append_catalog(&shared.catalog, &self.pending)?;
            self.pending.clear();
        }
        // The sealed segments' deletes must be in the tombstones file before the segments go.
        if self.unsaved_tombstones {
            shared.persist_tombstones()?;
            self.unsaved_tombstones = false;
        }
        let number = shared.next_number.fetch_add(1, Ordering::SeqCst);
        let part = {
            let buffer = read_lock(&shared.buffer);
            let cutoffs = shared.cutoffs();
            let rollup_cut = shared.rollup_cutoff();
            let mut out = PartWriter::create(&shared.parts_dir, number, number, number)?;
            for (id, points) in buffer.sorted() {
                let skip = cutoffs
                    .get(&id)
                    .map_or(0, |c| points.partition_point(|p| p.0 < *c));
                let kept = points.get(skip..).unwrap_or_default();
                let mut written = out.add_points(id, kept, shared.config.block_points);
                if shared.config.rollups && written.is_ok() {
                    let none = [Default::default(), Default::default()];
                    written = rollup::write(&mut out, id, kept, &none, None, rollup_cut);
                }
                if let Err(e) = written {
                    out.abandon();
                    return Err(e);
                }
            }
            if out.is_empty() {
                out.abandon();
                None
            } else {
                Some(out.finish()?)
            }
        };
        // Publish the part before emptying the buffer: a reader copies the buffer, then the parts, so it
        // sees every point in one or the other (or both, with the same value).
        if let Some(part) = part {
            let mut parts = write_lock(&shared.parts);
            let mut list = (**parts).clone();
            list.push(Arc::new(part));
            *parts = Arc::new(list);
        }
        write_lock(&shared.buffer).clear();
        self.wal.remove_below(sealed)?;
        match self.merger.try_send(MergeRequest::Flushed) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
        Ok(())
    }
}

fn append_catalog(path: &std::path::Path, defs: &[Def]) -> Result<()> {
    use std::io::Write;
    let mut bytes = Vec::new();
    for def in defs {
        let json = serde_json::to_vec(def).map_err(crate::error::corrupt("series"))?;
        super::files::frame(&mut bytes, &json);
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(crate::error::io("writing the series catalog", path))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_data())
        .map_err(crate::error::io("writing the series catalog", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
