//! The forwarder: one worker per enabled target, started, restarted and stopped as the registry's targets
//! change; and what the API asks of it (status, test message, "replay now").
use crate::record;
use crate::send::{ANSWER_CHARS, Batch, Outcome, Sender};
use crate::shared::{Deps, Live, LiveState};
use crate::worker::Worker;
use crate::{Config, Error};
use bydata_schemas::{JournalEntry, TargetId, UnixNanos};
use bydata_store::{
    DeliveryKind, DeliveryOutcome, Target, TargetCommit, TargetDelivery, TargetStatus,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most journal entries counted for a target's lag.
const LAG_COUNT_MAX: u64 = 1_000_000;

struct Handle {
    updated_at: UnixNanos,
    stop: CancellationToken,
    kick: Arc<Notify>,
    live: Arc<Live>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    /// Why the target's settings cannot be used (then no task runs until they change).
    broken: Option<String>,
    started: Instant,
}

/// The forwarder of every organisation's data targets.
pub struct Forwarder {
    config: Config,
    deps: Deps,
    workers: Mutex<HashMap<TargetId, Handle>>,
    reload: Notify,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    pub fn new(config: Config, deps: Deps) -> Arc<Self> {
        Arc::new(Self {
            config,
            deps,
            workers: Mutex::new(HashMap::new()),
            reload: Notify::new(),
        })
    }

    fn workers(&self) -> MutexGuard<'_, HashMap<TargetId, Handle>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the workers until `shutdown`, following the registry's targets; then stops them (a batch in
    /// flight is not committed, so it is sent again at the next start).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), Error> {
        if !self.config.enabled {
            tracing::info!("forwarding to data targets is off ([forward] enabled = false)");
            shutdown.cancelled().await;
            return Ok(());
        }
        let every = Duration::from_millis(self.config.reload_ms.max(10));
        let result = loop {
            if let Err(e) = self.reconcile().await {
                break Err(e);
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.reload.notified() => {}
                () = shutdown.cancelled() => break Ok(()),
            }
        };
        let all: Vec<(TargetId, Handle)> = self.workers().drain().collect();
        for (id, handle) in all {
            self.finish(&id, handle).await;
        }
        result
    }

    /// Starts, restarts and stops workers to match the registry.
    async fn reconcile(&self) -> Result<(), Error> {
        let targets: HashMap<TargetId, Target> = self
            .deps
            .registry
            .targets()
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let stale: Vec<(TargetId, Handle)> = {
            let mut workers = self.workers();
            let ids: Vec<TargetId> = workers
                .iter()
                .filter(|(id, h)| match targets.get(*id) {
                    None => true,
                    Some(t) => {
                        !t.enabled
                            || t.updated_at != h.updated_at
                            // A worker that ended by itself (an error, a panic) is started again, after
                            // a pause so a failing one does not spin.
                            || (h.broken.is_none()
                                && h.task.is_finished()
                                && h.started.elapsed() >= Duration::from_secs(1))
                    }
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| workers.remove(&id).map(|h| (id, h)))
                .collect()
        };
        for (id, handle) in stale {
            self.finish(&id, handle).await;
        }
        let missing: Vec<Target> = {
            let workers = self.workers();
            targets
                .into_values()
                .filter(|t| t.enabled && !workers.contains_key(&t.id))
                .collect()
        };
        for target in missing {
            let handle = self.start(target.clone()).await?;
            self.workers().insert(target.id, handle);
        }
        Ok(())
    }

    async fn start(&self, target: Target) -> Result<Handle, Error> {
        let secrets = self
            .deps
            .registry
            .target_secrets(&target.id)
            .await?
            .unwrap_or_default();
        let (stop, kick, live) = (
            CancellationToken::new(),
            Arc::new(Notify::new()),
            Arc::new(Live::default()),
        );
        // Dead letters asked for before this start are replayed by the worker as it starts.
        let (sender, broken) = match Sender::new(&target, secrets, &self.config) {
            Ok(s) => (Some(s), None),
            Err(e) => {
                tracing::warn!(target = %target.id, error = %e, "data target cannot be used");
                live.set(|l| l.state = LiveState::Stopped);
                (None, Some(e.to_string()))
            }
        };
        let task = match sender {
            Some(sender) => {
                tracing::info!(target = %target.id, kind = target.kind.name(), "forwarding to data target");
                let worker = Worker {
                    target: target.clone(),
                    deps: self.deps.clone(),
                    config: self.config.clone(),
                    sender,
                    live: live.clone(),
                    kick: kick.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(worker.run())
            }
            None => tokio::spawn(async { Ok(()) }),
        };
        Ok(Handle {
            updated_at: target.updated_at,
            stop,
            kick,
            live,
            task,
            broken,
            started: Instant::now(),
        })
    }

    async fn finish(&self, id: &TargetId, handle: Handle) {
        handle.stop.cancel();
        self.deps.metrics.forget(id);
        match tokio::time::timeout(Duration::from_secs(10), handle.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(target = %id, error = %e, "data target's worker failed; it starts again");
            }
            Ok(Err(e)) => {
                tracing::error!(target = %id, error = %e, "data target's worker panicked; it starts again");
            }
            Err(_) => tracing::warn!(target = %id, "data target's worker did not stop in time"),
        }
    }

    /// Reads the targets again now (after a change through the API).
    pub fn reload(&self) {
        self.reload.notify_one();
    }

    /// Wakes a target's worker: to replay the dead letters asked for, and to retry a waiting batch now.
    pub fn kick(&self, id: &TargetId, replay: bool) {
        if let Some(h) = self.workers().get(id) {
            if replay {
                h.live.request_replay();
            }
            h.kick.notify_one();
        }
    }

    /// The journal position a target created now starts from.
    pub fn journal_end(&self) -> u64 {
        self.deps.journal.durable_offset()
    }

    /// A target's status: its worker's state and the lag of its committed cursor.
    pub async fn status(&self, target: &Target) -> Result<TargetStatus, Error> {
        let id = &target.id;
        let cursor = self.deps.registry.target_cursor(id).await?.unwrap_or(0);
        let (dead_letters, _) = self.deps.registry.dead_letters(id, 0).await?;
        let log = self
            .deps
            .registry
            .target_deliveries(id, self.config.delivery_log)
            .await?;
        let (state, attempts, next_attempt_at, error) = {
            let workers = self.workers();
            match workers.get(id) {
                _ if !self.config.enabled => (
                    LiveState::Stopped,
                    0,
                    None,
                    Some(
                        "forwarding is off in the configuration ([forward] enabled = false)".into(),
                    ),
                ),
                _ if !target.enabled => (LiveState::Disabled, 0, None, None),
                Some(h) if h.broken.is_some() => (LiveState::Stopped, 0, None, h.broken.clone()),
                Some(h) => {
                    let l = h.live.lock();
                    (l.state, l.attempts, l.next_attempt_at, None)
                }
                None => (LiveState::Starting, 0, None, None),
            }
        };
        let journal = self.deps.journal.clone();
        let now = (self.deps.clock)();
        let (lag_entries, lag_bytes, lag_seconds) = tokio::task::spawn_blocking(move || {
            let durable = journal.durable_offset();
            let entries = journal.count_records(cursor, LAG_COUNT_MAX).unwrap_or(0);
            let oldest = match journal.read(cursor, 1) {
                Ok((e, _)) => e.first().map(|(_, entry)| match entry {
                    JournalEntry::Uplink(u) => u.received_at,
                    JournalEntry::Rejected(r) => r.received_at,
                }),
                Err(_) => None,
            };
            let secs = oldest.map_or(0, |t| (now.saturating_sub(t).max(0) / 1_000_000_000) as u64);
            (entries, durable.saturating_sub(cursor), secs)
        })
        .await
        .map_err(|e| Error::Task {
            detail: e.to_string(),
        })?;
        Ok(TargetStatus {
            state,
            cursor,
            lag_entries,
            lag_bytes,
            lag_seconds,
            attempts,
            next_attempt_at,
            dead_letters,
            last_success: log
                .iter()
                .find(|d| d.outcome == DeliveryOutcome::Delivered)
                .cloned(),
            last_error: log
                .iter()
                .find(|d| d.outcome != DeliveryOutcome::Delivered)
                .cloned(),
            reason: error,
        })
    }

    /// Sends a test message to the target now (a reading from the device `bydata-test`, marked as a test)
    /// and logs the attempt. When it is delivered, a waiting batch is tried again at once.
    pub async fn test(&self, target: &Target) -> Result<TargetDelivery, Error> {
        let secrets = self
            .deps
            .registry
            .target_secrets(&target.id)
            .await?
            .unwrap_or_default();
        let mut sender = Sender::new(target, secrets, &self.config)?;
        let now = (self.deps.clock)();
        let records = [record::test_record(&target.org, now)];
        let batch_id = format!("{}:test-{now}", target.id);
        let started = Instant::now();
        let outcome = sender
            .send(&Batch {
                id: &batch_id,
                records: &records,
                test: true,
            })
            .await;
        let mut delivery = TargetDelivery {
            seq: 0,
            time: now,
            kind: DeliveryKind::Test,
            outcome: DeliveryOutcome::Failed,
            batch: batch_id,
            readings: 1,
            attempt: 1,
            status: None,
            answer: None,
            reason: None,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        match outcome {
            Outcome::Delivered { status, answer } => {
                delivery.outcome = DeliveryOutcome::Delivered;
                delivery.status = status;
                delivery.answer = answer;
            }
            Outcome::Refused { status, answer } => {
                delivery.status = Some(status);
                delivery.reason = Some(format!("the receiver refused it ({status})"));
                delivery.answer =
                    Some(record::cut(&answer, ANSWER_CHARS)).filter(|a| !a.is_empty());
            }
            Outcome::Failed {
                status,
                answer,
                error,
            } => {
                delivery.status = Some(status);
                delivery.reason = Some(error);
                delivery.answer = Some(answer).filter(|a| !a.is_empty());
            }
            Outcome::Unreachable { status, error } => {
                delivery.status = status;
                delivery.reason = Some(error);
            }
        }
        self.deps
            .registry
            .commit_target(
                &target.id,
                TargetCommit {
                    deliveries: vec![delivery.clone()],
                    keep_deliveries: self.config.delivery_log,
                    ..TargetCommit::default()
                },
            )
            .await?;
        if delivery.outcome == DeliveryOutcome::Delivered {
            self.kick(&target.id, false);
        }
        Ok(delivery)
    }
}
