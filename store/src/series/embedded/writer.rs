//! The writer thread (group commit into the WAL, the buffer, flushes) and the merger thread (parts).
//!
//! Overflow policy of the request queue: it is bounded (`QUEUE`); a full queue makes `write` wait (on a
//! blocking-pool thread), which is backpressure all the way to the HTTP client or the ingest pipeline. The
//! merger's queue is bounded too; a flush notice that does not fit is dropped (the merger plans from the
//! parts it sees, so a missed notice loses nothing).
use super::files::sync_dir;
use super::fxhash::FxBuild;
use super::part::{Part, PartWriter};
use super::wal::{self, Wal};
use super::{Def, Shared, blocking, merge, read_lock, rollup, write_lock};
use crate::series::SeriesPoints;
use crate::{Error, Result};
use bydata_schemas::{Point, SeriesKey, Unit};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

const QUEUE: usize = 64;

type Done = oneshot::Sender<Result<()>>;

/// What a write request carries: points each with its key, or points grouped by series.
pub(super) enum Payload {
    Points(Vec<Point>),
    Grouped(Vec<SeriesPoints>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Points(p) => p.len(),
            Payload::Grouped(g) => g.iter().map(|s| s.points.len()).sum(),
        }
    }
}

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
    fn id(&mut self, index: &super::Index, series: &'a SeriesKey, unit: &'a Option<Unit>) -> u64 {
        let id = match index.by_key.get(series) {
            Some(id) => *id,
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

enum Request {
    Write { payload: Payload, done: Done },
    Compact { done: Done },
}

enum MergeRequest {
    Flushed,
    All { done: Done },
}

/// The sending side; closing it lets the threads finish what they are doing and exit.
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

    pub(super) async fn write(&self, payload: Payload) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send(Request::Write { payload, done }).await?;
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
    shared: Arc<Shared>,
    wal: Wal,
    pending: Vec<Def>,
) -> Result<(Handle, Vec<std::thread::JoinHandle<()>>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let (merge_tx, merge_rx) = sync_channel(QUEUE);
    let thread_error = |e: std::io::Error| Error::Task {
        detail: format!("cannot start the series engine's threads: {e}"),
    };
    let merger_shared = shared.clone();
    let merger = std::thread::Builder::new()
        .name("series-merger".into())
        .spawn(move || run_merger(&merger_shared, &merge_rx))
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
        next_id,
        merger: merge_tx,
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
    next_id: u64,
    merger: SyncSender<MergeRequest>,
}

fn answer(done: Done, result: &Result<()>, what: &str) {
    let _ = done.send(match result {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::Task {
            detail: format!("{what} failed: {e}"),
        }),
    });
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Request>) {
        // Replayed points wait for the first idle moment, like any other.
        let mut dirty = read_lock(&self.shared.buffer).points() > 0;
        loop {
            let first = match rx.recv_timeout(self.shared.config.compact_when_idle) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    if dirty {
                        self.flush_logged();
                        dirty = false;
                    }
                    continue;
                }
                // Closing: the WAL holds every acknowledged point, and the next start replays it; a flush
                // here would make a shutdown wait for work that is not needed.
                Err(RecvTimeoutError::Disconnected) => return,
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
                    Request::Compact { done } => compacts.push(done),
                }
                if queued < self.shared.config.max_group_points {
                    next = rx.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                let payloads: Vec<&Payload> = writes.iter().map(|(p, _)| p).collect();
                let result = self.write_group(&payloads);
                if let Err(e) = &result {
                    tracing::error!(error = %e, "series write failed; nothing of the group was stored");
                }
                for (_, done) in writes {
                    answer(done, &result, "write");
                }
                dirty = true;
            }
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

    fn flush_logged(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "flushing the buffer failed; the write-ahead log keeps the points");
        }
    }

    /// Buffer → a new part; then the WAL segments it covers go.
    fn flush(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        if read_lock(&shared.buffer).points() == 0 && self.pending.is_empty() {
            return Ok(());
        }
        let sealed = self.wal.rotate()?;
        if !self.pending.is_empty() {
            append_catalog(&shared.catalog, &self.pending)?;
            self.pending.clear();
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

fn run_merger(shared: &Shared, rx: &Receiver<MergeRequest>) {
    let mut active = false;
    loop {
        match rx.recv_timeout(shared.config.compact_when_idle) {
            Ok(MergeRequest::Flushed) => {
                active = true;
                // Size-tiered while writes flow: four parts of similar size become one.
                while let Some(start) = merge::plan(&sizes(shared), 4, 2) {
                    if merge_logged(shared, start, None).is_none() {
                        break;
                    }
                }
            }
            Ok(MergeRequest::All { done }) => {
                let result = merge_from(shared, 0, None).map(|_| ());
                answer(done, &result, "compaction");
                active = false;
            }
            Err(RecvTimeoutError::Timeout) => {
                if active || needs_retention(shared) {
                    // Writes paused: merge down to one part (and apply retention on the way).
                    merge_logged(shared, 0, None);
                    active = false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn sizes(shared: &Shared) -> Vec<u64> {
    shared.parts().iter().map(|p| p.bytes).collect()
}

fn needs_retention(shared: &Shared) -> bool {
    let cutoffs = shared.cutoffs();
    !cutoffs.is_empty()
        && shared.parts().iter().any(|p| {
            p.blocks().iter().any(|b| {
                cutoffs
                    .get(&b.series)
                    .is_some_and(|c| b.summary.first.0 < *c)
            })
        })
}

fn merge_logged(shared: &Shared, start: usize, end: Option<usize>) -> Option<merge::Outcome> {
    match merge_from(shared, start, end) {
        Ok(o) => Some(o),
        Err(_) if shared.closing.load(Ordering::Relaxed) => None,
        Err(e) => {
            tracing::error!(error = %e, "merging parts failed; they stay as they are");
            None
        }
    }
}

/// Merges the parts `start..end` (default: to the newest) of the current list into one, with retention.
fn merge_from(shared: &Shared, start: usize, end: Option<usize>) -> Result<merge::Outcome> {
    let parts = shared.parts();
    let end = end.unwrap_or(parts.len()).min(parts.len());
    let inputs: Vec<Arc<Part>> = parts.get(start..end).unwrap_or_default().to_vec();
    let cutoffs = shared.cutoffs();
    let retention_due = inputs.iter().any(|p| {
        p.blocks().iter().any(|b| {
            cutoffs
                .get(&b.series)
                .is_some_and(|c| b.summary.first.0 < *c)
        })
    });
    if inputs.len() < 2 && !retention_due {
        return Ok(merge::Outcome::default());
    }
    let number = shared.next_number.fetch_add(1, Ordering::SeqCst);
    let rules = merge::Rules {
        block_points: shared.config.block_points,
        cutoff: &|id| cutoffs.get(&id).copied(),
        rollups: shared.config.rollups,
        rollup_cutoff: shared.rollup_cutoff(),
        stop: &shared.closing,
    };
    let (output, outcome) = merge::merge(&shared.parts_dir, &inputs, number, &rules)?;
    {
        let mut guard = write_lock(&shared.parts);
        let mut list = (**guard).clone();
        // Only this thread removes parts and the writer only appends, so the inputs are still adjacent.
        let at = list
            .iter()
            .position(|p| inputs.first().is_some_and(|i| i.number == p.number))
            .filter(|at| {
                list.get(*at..at + inputs.len())
                    .is_some_and(|run| run.iter().zip(&inputs).all(|(a, b)| a.number == b.number))
            })
            .ok_or_else(|| Error::Task {
                detail: "the parts changed under a merge".into(),
            })?;
        list.splice(at..at + inputs.len(), output.map(Arc::new));
        *guard = Arc::new(list);
    }
    for p in &inputs {
        std::fs::remove_file(&p.path)
            .map_err(crate::error::io("removing a merged part", &p.path))?;
    }
    sync_dir(&shared.parts_dir)?;
    if outcome.expired > 0 {
        tracing::info!(
            points = outcome.expired,
            "retention deleted expired raw points"
        );
    }
    Ok(outcome)
}
