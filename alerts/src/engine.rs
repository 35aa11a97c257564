//! The evaluator as a server task: load rules, silences and alerts; hand on the notifications a previous
//! run committed but did not hand on; then every `evaluate_every_ms`: refresh what changed, run a pass,
//! commit it, hand its notifications to the sink and forget them from the outbox.
use crate::evaluate::{Evaluator, parse_alert};
use crate::metrics::Metrics;
use crate::rule::Rule;
use crate::silence::Window;
use crate::sink::{AlertSink, Notification};
use bydata_schemas::UnixNanos;
use bydata_store::{SeriesReader, SharedRegistry};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Alert settings (`[alerts]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How often every rule is evaluated, in milliseconds. An alert fires at most this long after its
    /// rule's interval (and `for`) has passed.
    pub evaluate_every_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            evaluate_every_ms: 10_000,
        }
    }
}

/// What the evaluator uses.
#[derive(Clone)]
pub struct Deps {
    pub registry: SharedRegistry,
    pub reader: Arc<dyn SeriesReader>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub sink: Arc<dyn AlertSink>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The evaluator with what it reads from.
#[derive(Debug)]
pub struct Engine {
    pub evaluator: Evaluator,
    deps: Deps,
    /// The registry's change counter when rules, silences and devices were last read.
    changes: Option<u64>,
    /// The outbox may hold notifications not yet handed on.
    outbox_dirty: bool,
}

impl Engine {
    /// Loads the alerts committed before (so a restart keeps firing alerts firing, with their episode).
    pub async fn open(deps: Deps) -> crate::Result<Engine> {
        let mut evaluator = Evaluator::default();
        for stored in deps.registry.alerts().await? {
            match parse_alert(&stored) {
                Some(a) => evaluator.remember(a),
                None => {
                    tracing::warn!(alert = %stored.id, "a stored alert is unreadable; it starts afresh")
                }
            }
        }
        Ok(Engine {
            evaluator,
            deps,
            changes: None,
            outbox_dirty: true,
        })
    }

    /// Rules, silences and devices when the registry changed; statuses changed since the last pass.
    async fn refresh(&mut self, now: UnixNanos) -> crate::Result<()> {
        let registry = &self.deps.registry;
        let changes = registry.changes();
        if self.changes != Some(changes) {
            let mut rules = Vec::new();
            for stored in registry.alert_rules().await? {
                match Rule::from_stored(&stored) {
                    Ok(r) => rules.push(r),
                    Err(e) => tracing::error!(rule = %stored.id, "alert rule skipped: {e}"),
                }
            }
            self.evaluator.rules = rules;
            self.evaluator.retain_rules();
            self.evaluator.silences = registry
                .silences()
                .await?
                .iter()
                .filter_map(|s| Window::from_stored(s).ok())
                .collect();
            let devices = registry.devices().await?;
            self.evaluator.index.set_devices(&devices, now);
            let gateways = registry.gateways().await?;
            self.evaluator.index.set_gateways(&gateways);
            self.changes = Some(changes);
        }
        let statuses = registry
            .statuses_since(self.evaluator.index.cursor())
            .await?;
        let keep = self.evaluator.longest_window();
        self.evaluator.index.apply(&statuses, keep, now);
        // Gateways' last seen times: for gateway rules, and to group silent devices by their gateway.
        if self
            .evaluator
            .rules
            .iter()
            .any(|r| matches!(r.check, crate::rule::Check::Silence(_)))
        {
            let g = registry.gateway_statuses().await?;
            self.evaluator.index.set_gateway_statuses(&g);
        }
        Ok(())
    }

    /// One pass: refresh, evaluate, commit, hand on. Answers how many notifications were handed on.
    pub async fn tick(&mut self) -> crate::Result<usize> {
        let started = Instant::now();
        let now = (self.deps.clock)();
        let mut handed = 0;
        if self.outbox_dirty {
            handed += self.hand_on_outbox().await?;
        }
        self.refresh(now).await?;
        self.evaluator
            .read_levels(self.deps.reader.as_ref())
            .await?;
        let out = self.evaluator.pass(now);
        let commit_needed = !out.commit.alerts.is_empty()
            || !out.commit.removed.is_empty()
            || !out.commit.history.is_empty();
        if commit_needed || !out.commit.outbox.is_empty() {
            // Committed first: a crash from here on finds the notifications in the outbox.
            self.deps.registry.commit_alerts(out.commit).await?;
        }
        if !out.notifications.is_empty() {
            self.outbox_dirty = true;
            handed += self.hand_on(out.notifications).await?;
        }
        self.deps.metrics.pass_done(
            started.elapsed(),
            self.evaluator.counts(),
            self.evaluator.index.devices.len(),
        );
        Ok(handed)
    }

    /// Hands on what the outbox holds (after a restart: what was committed and not handed on).
    async fn hand_on_outbox(&mut self) -> crate::Result<usize> {
        let pending = self.deps.registry.alert_outbox().await?;
        let notifications: Vec<Notification> = pending
            .iter()
            .filter_map(|p| serde_json::from_value(p.notification.clone()).ok())
            .collect();
        if notifications.len() < pending.len() {
            tracing::error!(
                unreadable = pending.len() - notifications.len(),
                "unreadable notifications in the alert outbox were dropped"
            );
            let bad: Vec<(String, String)> = pending
                .iter()
                .filter(|p| serde_json::from_value::<Notification>(p.notification.clone()).is_err())
                .map(|p| (p.channel.clone(), p.key.clone()))
                .collect();
            self.deps.registry.alert_outbox_handed(bad).await?;
        }
        if notifications.is_empty() {
            self.outbox_dirty = false;
            return Ok(0);
        }
        tracing::info!(
            count = notifications.len(),
            "handing on notifications committed before"
        );
        self.hand_on(notifications).await
    }

    async fn hand_on(&mut self, notifications: Vec<Notification>) -> crate::Result<usize> {
        let keys: Vec<(String, String)> = notifications
            .iter()
            .map(|n| (n.channel.clone(), n.key.clone()))
            .collect();
        let n = keys.len();
        if let Err(e) = self.deps.sink.enqueue(notifications).await {
            self.deps.metrics.sink_failed();
            tracing::warn!(
                "notifications stay in the alert outbox, handed on again at the next pass: {e}"
            );
            return Ok(0);
        }
        self.deps.metrics.handed(n);
        self.deps.registry.alert_outbox_handed(keys).await?;
        self.outbox_dirty = false;
        Ok(n)
    }
}

/// Runs the evaluator until `shutdown`. A failed pass is logged and retried at the next tick; an error
/// here (the first load) ends the task, which its supervisor restarts.
pub async fn run(
    settings: Settings,
    deps: Deps,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let metrics = deps.metrics.clone();
    let mut engine = Engine::open(deps.clone())
        .await
        .map_err(|e| format!("cannot load alerts: {e}"))?;
    let every = Duration::from_millis(settings.evaluate_every_ms.max(100));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        if let Err(e) = engine.tick().await {
            metrics.pass_failed();
            tracing::warn!("alert evaluation failed; trying again at the next pass: {e}");
            // What the failed pass moved in memory may not be committed: start again from the registry.
            match Engine::open(deps.clone()).await {
                Ok(fresh) => engine = fresh,
                Err(e) => return Err(format!("cannot reload alerts: {e}")),
            }
        }
    }
}
