//! Supervision: every long-running part of `serve` runs here under a name, and its state is kept in
//! [`Health`] (what `/ready` and `/metrics` show).
//!
//! - An **essential** component (broker, HTTP, ingest pipeline, journal, store threads) that ends before it
//!   was asked to, returns an error or panics is a failure: `serve` stops new data at once
//!   (`Health::stop_intake`), logs the cause once at ERROR, and shuts down in order with a non-zero exit.
//! - A **restartable** component (LoRaWAN listener, integrations, open-data scheduler, refusals flusher) holds
//!   nothing that a restart could lose, so it is started again after a pause (1 s, doubling to 1 min); while
//!   it is down `/ready` says so.
//! - A component that is a thread inside a library (the journal's sync thread, the store's writer and merger)
//!   is **watched**: its `check` is polled, and a failed check is an essential failure.
use bydata_store::health::{Health, State};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

/// An essential component that stopped, and why.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) component: &'static str,
    pub(crate) cause: String,
}

/// What a task's output says about how it ended.
pub(crate) trait Outcome {
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);
/// A restartable component that ran this long before failing starts its pauses over.
const STABLE_RUN: Duration = Duration::from_secs(60);

pub(crate) struct Supervisor {
    health: Arc<Health>,
    /// Bounded by the number of essential components (each reports at most once); overflow is impossible.
    report: mpsc::Sender<Failure>,
    failures: mpsc::Receiver<Failure>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

fn why(result: Result<Result<(), String>, JoinError>, stop: &CancellationToken) -> Option<String> {
    match result {
        Ok(Ok(())) if stop.is_cancelled() => None,
        Ok(Ok(())) => Some("it ended without being asked to stop".to_owned()),
        Ok(Err(e)) => Some(e),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Some(format!("it panicked: {message}"))
        }
        Err(_) => Some("its task was cancelled".to_owned()),
    }
}

impl Supervisor {
    pub(crate) fn new(health: Arc<Health>) -> Self {
        let (report, failures) = mpsc::channel(64);
        Self {
            health,
            report,
            failures,
            tasks: Vec::new(),
        }
    }

    fn fail(
        health: &Health,
        report: &mpsc::Sender<Failure>,
        component: &'static str,
        cause: String,
    ) {
        health.set(
            component,
            true,
            State::Down {
                cause: cause.clone(),
            },
        );
        // Full only if far more failures than components arrived; the first ones are what matters.
        let _ = report.try_send(Failure { component, cause });
    }

    /// Runs `task` as an essential component; `stop` is the token that asks it to stop.
    pub(crate) fn essential<T>(
        &mut self,
        name: &'static str,
        stop: CancellationToken,
        task: impl Future<Output = T> + Send + 'static,
    ) where
        T: Outcome + Send + 'static,
    {
        let (health, report) = (self.health.clone(), self.report.clone());
        health.set(name, true, State::Up);
        let inner = tokio::spawn(async move { task.await.into_result() });
        let handle = tokio::spawn(async move {
            match why(inner.await, &stop) {
                None => health.set(name, true, State::Stopped),
                Some(cause) => Self::fail(&health, &report, name, cause),
            }
        });
        self.tasks.push((name, handle));
    }

    /// Runs `make()` as a restartable component, again after a pause whenever it ends on its own.
    pub(crate) fn restartable<T, Fut>(
        &mut self,
        name: &'static str,
        stop: CancellationToken,
        mut make: impl FnMut() -> Fut + Send + 'static,
    ) where
        Fut: Future<Output = T> + Send + 'static,
        T: Outcome + Send + 'static,
    {
        let health = self.health.clone();
        health.set(name, false, State::Up);
        let handle = tokio::spawn(async move {
            let mut pause = FIRST_PAUSE;
            loop {
                let started = Instant::now();
                let run = make();
                let inner = tokio::spawn(async move { run.await.into_result() });
                let Some(cause) = why(inner.await, &stop) else {
                    health.set(name, false, State::Stopped);
                    return;
                };
                if stop.is_cancelled() {
                    tracing::warn!(component = name, %cause, "failed while stopping");
                    health.set(name, false, State::Down { cause });
                    return;
                }
                if started.elapsed() > STABLE_RUN {
                    pause = FIRST_PAUSE;
                }
                tracing::warn!(component = name, %cause, pause_ms = pause.as_millis() as u64,
                    "component stopped; restarting it after a pause");
                health.set(name, false, State::Restarting { cause });
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => {
                        health.set(name, false, State::Stopped);
                        return;
                    }
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
                health.set(name, false, State::Up);
            }
        });
        self.tasks.push((name, handle));
    }

    /// Watches an essential component that is not a task here, by polling `check` every `every`.
    pub(crate) fn watch(
        &mut self,
        name: &'static str,
        every: Duration,
        stop: CancellationToken,
        check: impl Fn() -> Result<(), String> + Send + 'static,
    ) {
        let (health, report) = (self.health.clone(), self.report.clone());
        health.set(name, true, State::Up);
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(cause) = check() {
                            Self::fail(&health, &report, name, cause);
                            return;
                        }
                    }
                    () = stop.cancelled() => {
                        health.set(name, true, State::Stopped);
                        return;
                    }
                }
            }
        });
        self.tasks.push((name, handle));
    }

    /// The first essential failure (waits for one).
    pub(crate) async fn failure(&mut self) -> Option<Failure> {
        self.failures.recv().await
    }

    /// Failures reported since the last look, without waiting.
    pub(crate) fn more_failures(&mut self) -> Vec<Failure> {
        std::iter::from_fn(|| self.failures.try_recv().ok()).collect()
    }

    /// Waits until the component `name` has ended (after its stop token was cancelled).
    pub(crate) async fn join(&mut self, name: &'static str) {
        let mut i = 0;
        while i < self.tasks.len() {
            if self.tasks[i].0 == name {
                let (_, handle) = self.tasks.swap_remove(i);
                let _ = handle.await;
            } else {
                i += 1;
            }
        }
    }
}

/// Measures the data directory's free space every `every`, refusing new data below `reserve` (through
/// `health`) and accepting again above it; each change is logged once.
pub(crate) async fn watch_disk(
    health: Arc<Health>,
    dir: std::path::PathBuf,
    reserve: u64,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_full = false;
    let mut unreadable = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let free = match bydata_store::health::free_bytes(&dir) {
            Ok(free) => {
                unreadable = false;
                free
            }
            Err(e) => {
                if !std::mem::replace(&mut unreadable, true) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot measure the data directory's free space");
                }
                continue;
            }
        };
        let full = health.set_disk(&dir, free, reserve);
        if full && !was_full {
            if let Some(reason) = health.refusal() {
                tracing::error!(free_bytes = free, reserve_bytes = reserve, "{reason}");
            }
        } else if !full && was_full {
            tracing::info!(
                free_bytes = free,
                reserve_bytes = reserve,
                "free space is back above the reserve: new data is accepted again"
            );
        }
        was_full = full;
    }
}
