//! One target's worker: reads the journal from the target's committed cursor, selects and batches its
//! readings, sends each batch until the receiver accepts it (or it is a dead letter), and only then moves the
//! cursor — in the same registry transaction that logs the delivery.
use crate::select::{Selected, Selector};
use crate::send::{Batch, Outcome, Sender};
use crate::shared::{Deps, Live, LiveState};
use crate::{Config, Error, record};
use bydata_store::{
    DeadLetter, DeliveryKind, DeliveryOutcome, Target, TargetCommit, TargetDelivery,
};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub(crate) struct Worker {
    pub(crate) target: Target,
    pub(crate) deps: Deps,
    pub(crate) config: Config,
    pub(crate) sender: Sender,
    pub(crate) live: Arc<Live>,
    /// Woken by the API: dead letters to replay, or "try now" after a test.
    pub(crate) kick: Arc<Notify>,
    pub(crate) stop: CancellationToken,
}

/// Selected readings waiting for their batch, oldest first (at most one journal read's worth).
#[derive(Default)]
struct Queue {
    entries: VecDeque<Selected>,
    records: usize,
    since: Option<Instant>,
}

/// Whether the worker goes on.
enum Step {
    Go,
    Stop,
}

impl Worker {
    pub(crate) async fn run(mut self) -> Result<(), Error> {
        let id = self.target.id.clone();
        let kind = self.target.kind.name();
        let mut committed = match self.deps.registry.target_cursor(&id).await? {
            Some(c) => c,
            None => return Ok(()),
        };
        let mut scan = committed;
        let mut queue = Queue::default();
        let mut selector = Some(Selector::new(self.deps.registry.clone(), &self.deps.ingest));
        let mut last_commit = Instant::now();
        let batch_size = self.target.batch_size.max(1) as usize;
        let max_delay = Duration::from_millis(self.target.max_delay_ms);
        let idle_commit = Duration::from_millis(self.config.idle_commit_ms.max(1));
        self.live.set(|l| {
            l.state = LiveState::Idle;
            l.cursor = committed;
        });
        if let Step::Stop = self.replays().await? {
            return Ok(());
        }
        loop {
            if self.stop.is_cancelled() {
                return Ok(());
            }
            if self.live.take_replay()
                && let Step::Stop = self.replays().await?
            {
                return Ok(());
            }
            let due = queue.since.is_some_and(|s| s.elapsed() >= max_delay);
            if queue.records >= batch_size || (due && queue.records > 0) {
                let (records, first, end) = take_batch(&mut queue, batch_size, scan);
                match self.deliver(records, first, end).await? {
                    Step::Go => {
                        committed = end;
                        last_commit = Instant::now();
                        self.live.set(|l| {
                            l.cursor = committed;
                            if queue.records == 0 {
                                l.oldest_pending = None;
                            }
                        });
                        continue;
                    }
                    Step::Stop => return Ok(()),
                }
            }
            // Past readings that were not this target's: move the cursor now and then.
            if queue.records == 0 && committed < scan && last_commit.elapsed() >= idle_commit {
                let step = TargetCommit {
                    cursor: Some(scan),
                    ..TargetCommit::default()
                };
                if !self.deps.registry.commit_target(&id, step).await? {
                    return Ok(());
                }
                committed = scan;
                last_commit = Instant::now();
                self.live.set(|l| l.cursor = committed);
            }
            let durable = self.deps.journal.durable_offset();
            self.deps.metrics.set_lag(
                &id,
                kind,
                durable.saturating_sub(committed),
                self.live.oldest_age_secs((self.deps.clock)()),
            );
            let (entries, next) = if queue.records < batch_size {
                self.deps
                    .journal
                    .read(scan, self.config.read_entries.max(1))?
            } else {
                (Vec::new(), scan)
            };
            if entries.is_empty() {
                if queue.records == 0 {
                    self.live.set(|l| {
                        l.oldest_pending = None;
                        if l.state != LiveState::Retrying {
                            l.state = LiveState::Idle;
                        }
                    });
                }
                let batch_due = queue.since.map(|s| s + max_delay);
                let idle_due =
                    (queue.records == 0 && committed < scan).then(|| last_commit + idle_commit);
                let wake_at = [batch_due, idle_due].into_iter().flatten().min();
                tokio::select! {
                    () = self.deps.journal.wait_durable_beyond(scan) => {}
                    () = sleep_until(wake_at) => {}
                    () = self.kick.notified() => {}
                    () = self.stop.cancelled() => return Ok(()),
                }
                continue;
            }
            if let Some((_, bydata_schemas::JournalEntry::Uplink(u))) = entries.first() {
                let at = u.received_at;
                self.live.set(|l| {
                    l.oldest_pending.get_or_insert(at);
                });
            }
            // Script codecs may run for their CPU limit per uplink: select on a blocking thread.
            let (selected, counts, back) = {
                let mut held = selector.take().ok_or_else(|| Error::Task {
                    detail: "the selector was lost".into(),
                })?;
                let target = self.target.clone();
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let out = held.select(&handle, &target, &entries, next);
                    (out, held)
                })
                .await
                .map(|(out, held)| out.map(|(s, c)| (s, c, held)))
                .map_err(|e| Error::Task {
                    detail: e.to_string(),
                })??
            };
            selector = Some(back);
            if counts.undecodable > 0 {
                tracing::debug!(target = %id, uplinks = counts.undecodable, "undecodable uplinks not forwarded");
            }
            for s in selected {
                if queue.since.is_none() {
                    queue.since = Some(Instant::now());
                }
                queue.records += s.records.len();
                queue.entries.push_back(s);
            }
            scan = next;
        }
    }

    /// Sends one batch until it is delivered or dead-lettered (`Go`), or the worker is stopped or its target
    /// deleted (`Stop`: nothing committed, the batch is read again next time).
    async fn deliver(&mut self, records: Vec<Value>, first: u64, end: u64) -> Result<Step, Error> {
        let id = self.target.id.clone();
        let kind = self.target.kind.name();
        let batch_id = record::batch_id(&id, first, end);
        let batch = Batch {
            id: &batch_id,
            records: &records,
            test: false,
        };
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(self.config.backoff_initial_ms.max(1));
        self.live.set(|l| l.state = LiveState::Sending);
        loop {
            attempt += 1;
            let started = Instant::now();
            let outcome = tokio::select! {
                o = self.sender.send(&batch) => o,
                () = self.stop.cancelled() => return Ok(Step::Stop),
            };
            let mut delivery = TargetDelivery {
                seq: 0,
                time: (self.deps.clock)(),
                kind: DeliveryKind::Batch,
                outcome: DeliveryOutcome::Failed,
                batch: batch_id.clone(),
                readings: records.len() as u64,
                attempt,
                status: None,
                answer: None,
                reason: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            let (status, answer, error, final_failure) = match outcome {
                Outcome::Delivered { status, answer } => {
                    delivery.outcome = DeliveryOutcome::Delivered;
                    delivery.status = status;
                    delivery.answer = answer;
                    let step = TargetCommit {
                        cursor: Some(end),
                        deliveries: vec![delivery.clone()],
                        keep_deliveries: self.config.delivery_log,
                        ..TargetCommit::default()
                    };
                    if !self.deps.registry.commit_target(&id, step).await? {
                        return Ok(Step::Stop);
                    }
                    self.deps.metrics.delivered(kind, records.len() as u64);
                    self.live.set(|l| {
                        l.state = LiveState::Idle;
                        l.attempts = 0;
                        l.next_attempt_at = None;
                        l.last_success = Some(delivery);
                    });
                    return Ok(Step::Go);
                }
                Outcome::Refused { status, answer } => (
                    Some(status),
                    Some(answer),
                    format!(
                        "the receiver refused the batch ({status}); it will not be sent again unless replayed"
                    ),
                    true,
                ),
                Outcome::Failed {
                    status,
                    answer,
                    error,
                } => (
                    Some(status),
                    Some(answer),
                    error,
                    attempt >= self.target.max_attempts.max(1),
                ),
                Outcome::Unreachable { status, error } => (status, None, error, false),
            };
            self.deps.metrics.failed(kind);
            delivery.status = status;
            delivery.answer = answer.filter(|a| !a.is_empty());
            delivery.reason = Some(error.clone());
            let room = final_failure && {
                let (held, _) = self.deps.registry.dead_letters(&id, 0).await?;
                held < self.config.max_dead_letters
            };
            if room {
                delivery.outcome = DeliveryOutcome::DeadLettered;
                let letter = DeadLetter {
                    id: 0,
                    created_at: delivery.time,
                    batch: batch_id.clone(),
                    readings: records.clone(),
                    first_position: first,
                    end_position: end,
                    attempts: attempt,
                    status,
                    reason: error.clone(),
                    replay: false,
                };
                let step = TargetCommit {
                    cursor: Some(end),
                    deliveries: vec![delivery.clone()],
                    dead_letters: vec![letter],
                    keep_deliveries: self.config.delivery_log,
                    ..TargetCommit::default()
                };
                if !self.deps.registry.commit_target(&id, step).await? {
                    return Ok(Step::Stop);
                }
                self.deps.metrics.dead_lettered(kind);
                tracing::warn!(target = %id, batch = %batch_id, %error, "batch dead-lettered");
                self.live.set(|l| {
                    l.state = LiveState::Idle;
                    l.attempts = 0;
                    l.next_attempt_at = None;
                    l.last_error = Some(delivery);
                });
                return Ok(Step::Go);
            }
            if final_failure {
                delivery.reason = Some(format!(
                    "{error}; the dead-letter list is full ({} batches): replay or discard them, meanwhile the target waits",
                    self.config.max_dead_letters
                ));
            }
            let step = TargetCommit {
                deliveries: vec![delivery.clone()],
                keep_deliveries: self.config.delivery_log,
                ..TargetCommit::default()
            };
            if !self.deps.registry.commit_target(&id, step).await? {
                return Ok(Step::Stop);
            }
            let wait = backoff;
            backoff = (backoff * 2).min(Duration::from_millis(self.config.backoff_max_ms.max(1)));
            let next = (self.deps.clock)().saturating_add(wait.as_nanos() as i64);
            tracing::debug!(target = %id, batch = %batch_id, attempt, %error, "delivery failed; retrying");
            self.live.set(|l| {
                l.state = LiveState::Retrying;
                l.attempts = attempt;
                l.next_attempt_at = Some(next);
                l.last_error = Some(delivery);
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // A test that got through, a replay asked for: try again now.
                () = self.kick.notified() => {}
                () = self.stop.cancelled() => return Ok(Step::Stop),
            }
        }
    }

    /// Sends the dead letters asked to be replayed, oldest first, once each.
    async fn replays(&mut self) -> Result<Step, Error> {
        let id = self.target.id.clone();
        let kind = self.target.kind.name();
        let (_, letters) = self
            .deps
            .registry
            .dead_letters(&id, self.config.max_dead_letters)
            .await?;
        for letter in letters.into_iter().filter(|l| l.replay) {
            let batch = Batch {
                id: &letter.batch,
                records: &letter.readings,
                test: false,
            };
            let started = Instant::now();
            let outcome = tokio::select! {
                o = self.sender.send(&batch) => o,
                () = self.stop.cancelled() => return Ok(Step::Stop),
            };
            let mut delivery = TargetDelivery {
                seq: 0,
                time: (self.deps.clock)(),
                kind: DeliveryKind::Replay,
                outcome: DeliveryOutcome::Failed,
                batch: letter.batch.clone(),
                readings: letter.readings.len() as u64,
                attempt: letter.attempts + 1,
                status: None,
                answer: None,
                reason: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            let mut step = TargetCommit {
                keep_deliveries: self.config.delivery_log,
                ..TargetCommit::default()
            };
            match outcome {
                Outcome::Delivered { status, answer } => {
                    delivery.outcome = DeliveryOutcome::Delivered;
                    delivery.status = status;
                    delivery.answer = answer;
                    step.replayed.push(letter.id);
                    self.deps
                        .metrics
                        .delivered(kind, letter.readings.len() as u64);
                }
                other => {
                    let (status, answer, error) = match other {
                        Outcome::Refused { status, answer } => (
                            Some(status),
                            Some(answer),
                            format!("the receiver refused the batch again ({status})"),
                        ),
                        Outcome::Failed {
                            status,
                            answer,
                            error,
                        } => (Some(status), Some(answer), error),
                        Outcome::Unreachable { status, error } => (status, None, error),
                        Outcome::Delivered { .. } => (None, None, String::new()),
                    };
                    self.deps.metrics.failed(kind);
                    delivery.status = status;
                    delivery.answer = answer.filter(|a| !a.is_empty());
                    delivery.reason = Some(error.clone());
                    step.failed_replays.push((letter.id, status, error));
                }
            }
            step.deliveries.push(delivery);
            if !self.deps.registry.commit_target(&id, step).await? {
                return Ok(Step::Stop);
            }
        }
        Ok(Step::Go)
    }
}

/// Takes the oldest whole entries from the queue until `batch_size` records (or the whole queue): their
/// records, the first entry's position, and the cursor once they are delivered (`scan` when the queue is
/// emptied, so readings that were not the target's in between are passed too).
fn take_batch(queue: &mut Queue, batch_size: usize, scan: u64) -> (Vec<Value>, u64, u64) {
    let mut records = Vec::new();
    let mut first = None;
    let mut end = scan;
    while let Some(s) = queue.entries.front() {
        if !records.is_empty() && records.len() + s.records.len() > batch_size {
            break;
        }
        let Some(s) = queue.entries.pop_front() else {
            break;
        };
        first.get_or_insert(s.position);
        end = s.end;
        queue.records -= s.records.len();
        records.extend(s.records);
        if records.len() >= batch_size {
            break;
        }
    }
    if queue.entries.is_empty() {
        end = scan;
        queue.since = None;
    } else {
        queue.since = Some(Instant::now());
    }
    (records, first.unwrap_or(scan), end)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
