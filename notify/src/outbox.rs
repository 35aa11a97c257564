//! The delivery loop and the [`Notify`] service (the `Notifier` the rest of bydata holds).
use crate::config::{Config, SmtpConfig};
use crate::digest::{self, Rules};
use crate::email::{Smtp, SmtpConfigError};
use crate::metrics::Metrics;
use crate::webhook::{self, Sent};
use crate::{MAX_KEY_LEN, Notifier, NotifyError, payload};
use bydata_schemas::UnixNanos;
use bydata_store::{
    Attempt, Channel, ChannelKind, ChannelTarget, Delivery, DeliveryState, DeliveryStatus,
    Notification, NotificationKind, SharedRegistry,
};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const SECOND: i64 = 1_000_000_000;
/// Most webhook requests, and most mails, in flight at once.
const WEBHOOK_LANE: usize = 16;
const EMAIL_LANE: usize = 2;
/// Most notifications in one digest message.
const MAX_DIGEST: usize = 1000;
/// How long a delivery the test action sends itself is kept from the loop, beyond the send's own timeout.
const TEST_LEASE_MARGIN: i64 = 5 * SECOND;
/// The loop looks at the outbox at least this often (a wake-up may be missed by another node's enqueue).
const MAX_IDLE: Duration = Duration::from_secs(1);
const PRUNE_EVERY: i64 = 3600 * SECOND;

/// What the service needs.
#[derive(Clone)]
pub struct Deps {
    pub registry: SharedRegistry,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The notification service: takes notifications ([`Notifier`]), sends them ([`Notify::run`]), and runs a
/// channel's test action. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Notify {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    deps: Deps,
    config: Config,
    http: reqwest::Client,
    smtp: Option<Smtp>,
    smtp_timeout_secs: u64,
    wake: tokio::sync::Notify,
    /// Deliveries being attempted by this process (the loop skips them).
    in_flight: Mutex<HashSet<String>>,
    webhook_lane: Arc<Semaphore>,
    email_lane: Arc<Semaphore>,
}

impl Notify {
    /// A bad `[smtp]` (unreadable CA file, a `from` that is no address) is an error here, at start.
    pub fn new(deps: Deps, config: Config, smtp: &SmtpConfig) -> Result<Self, SmtpConfigError> {
        let http = webhook::client(
            Duration::from_secs(config.webhook_timeout_secs.max(1)),
            config.webhook_private_addresses,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                deps,
                http,
                smtp: Smtp::new(smtp)?,
                smtp_timeout_secs: smtp.timeout_secs,
                config,
                wake: tokio::sync::Notify::new(),
                in_flight: Mutex::new(HashSet::new()),
                webhook_lane: Arc::new(Semaphore::new(WEBHOOK_LANE)),
                email_lane: Arc::new(Semaphore::new(EMAIL_LANE)),
            }),
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.deps.metrics.clone()
    }

    /// Whether e-mail can be sent (`[smtp] host` is set).
    pub fn has_smtp(&self) -> bool {
        self.inner.smtp.is_some()
    }

    /// The delivery loop, until `shutdown`. Sends still running then are abandoned; they are sent again at
    /// the next start (at least once).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut last_prune = i64::MIN;
        let mut failing = false;
        loop {
            let now = (self.inner.deps.clock)();
            let next = match self.pass(now, &mut tasks).await {
                Ok(next) => {
                    if failing {
                        tracing::info!("the notification outbox can be read again");
                    }
                    failing = false;
                    next
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "cannot read the notification outbox; notifications wait");
                    }
                    failing = true;
                    None
                }
            };
            if now.saturating_sub(last_prune) >= PRUNE_EVERY {
                last_prune = now;
                self.prune(now).await;
            }
            let wait = next
                .map(|at| Duration::from_nanos(u64::try_from(at.saturating_sub(now)).unwrap_or(0)))
                .unwrap_or(MAX_IDLE)
                .clamp(Duration::from_millis(20), MAX_IDLE);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.abort_all();
    }

    /// One look at the outbox: fold what is pending, start what is due. Answers when to look again.
    async fn pass(
        &self,
        now: UnixNanos,
        tasks: &mut JoinSet<()>,
    ) -> Result<Option<UnixNanos>, bydata_store::Error> {
        let registry = &self.inner.deps.registry;
        let outbox = registry.outbox(now).await?;
        let kinds: HashMap<String, ChannelKind> = if outbox.pending.is_empty() {
            HashMap::new()
        } else {
            registry
                .channels()
                .await?
                .into_iter()
                .map(|c| (c.id.to_string(), c.target.kind()))
                .collect()
        };
        let kind_of = |c: &str| kinds.get(c).copied();
        self.inner.deps.metrics.waiting(
            outbox.undelivered.iter().copied().chain(
                outbox
                    .pending
                    .iter()
                    .map(|s| (kind_of(&s.notification.channel), DeliveryStatus::Queued)),
            ),
        );
        let rules = Rules {
            window: i64::try_from(self.inner.config.digest_window_secs)
                .unwrap_or(i64::MAX / SECOND)
                .saturating_mul(SECOND),
            threshold: self.inner.config.digest_threshold,
            max_members: MAX_DIGEST,
        };
        let folded = digest::fold(&outbox.pending, now, rules, kind_of);
        let mut next = [folded.next_close, outbox.next_due]
            .into_iter()
            .flatten()
            .min();
        if !folded.deliveries.is_empty() {
            registry.create_deliveries(folded.deliveries).await?;
            // The new deliveries are due now.
            next = Some(now);
        }
        for delivery in outbox.due {
            let lane = match delivery.channel_kind {
                Some(ChannelKind::Email) => &self.inner.email_lane,
                _ => &self.inner.webhook_lane,
            };
            let Ok(permit) = lane.clone().try_acquire_owned() else {
                // The lane is full: the rest waits for a send to finish (which wakes the loop).
                continue;
            };
            if !self.claim(&delivery.key) {
                continue;
            }
            let this = self.clone();
            tasks.spawn(async move {
                let key = delivery.key.clone();
                let attempted = match this.still_due(&delivery).await {
                    Ok(true) => this.attempt(delivery).await.map(|_| ()),
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Err(e) = attempted {
                    // Sent (maybe) but not recorded: it stays due and is sent again (same key).
                    tracing::warn!(delivery = %key, error = %e, "cannot record a notification attempt");
                }
                this.release(&key);
                drop(permit);
            });
        }
        Ok(next)
    }

    /// Whether `delivery`, as the loop read it, is still to be attempted: a send that finished between the
    /// loop's read and this claim has recorded another attempt (or the end), and must not be repeated.
    async fn still_due(&self, delivery: &Delivery) -> Result<bool, bydata_store::Error> {
        let state = self
            .inner
            .deps
            .registry
            .delivery_state(&delivery.key)
            .await?;
        Ok(state.is_some_and(|s| {
            s.delivery.as_deref() == Some(delivery.key.as_str())
                && s.attempts == delivery.attempts
                && !s.status.is_final()
        }))
    }

    fn claim(&self, key: &str) -> bool {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_owned())
    }

    fn release(&self, key: &str) {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    async fn prune(&self, now: UnixNanos) {
        let keep = i64::from(self.inner.config.retention_days).saturating_mul(86_400 * SECOND);
        match self
            .inner
            .deps
            .registry
            .prune_deliveries(now.saturating_sub(keep), self.inner.config.keep_deliveries)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "forgot old notification deliveries"),
            Err(e) => tracing::warn!(error = %e, "cannot prune old notification deliveries"),
        }
    }

    /// Sends a delivery once and records how it went; answers the delivery as recorded.
    async fn attempt(&self, delivery: Delivery) -> Result<Delivery, bydata_store::Error> {
        let sent = self.send(&delivery).await?;
        let now = (self.inner.deps.clock)();
        let attempts = delivery.attempts + 1;
        let (status, error, answer, next) = match sent {
            Sent::Delivered { answer } => (DeliveryStatus::Delivered, None, Some(answer), now),
            Sent::Refused { error, answer } => (DeliveryStatus::Failed, Some(error), answer, now),
            Sent::Retry {
                error,
                answer,
                retry_after,
            } => {
                if attempts >= self.inner.config.max_attempts.max(1) {
                    let error = format!("{error} (gave up after {attempts} attempts)");
                    (DeliveryStatus::Failed, Some(error), answer, now)
                } else {
                    let wait = retry_after.unwrap_or_else(|| self.backoff(attempts));
                    let wait = i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX);
                    (
                        DeliveryStatus::Retrying,
                        Some(error),
                        answer,
                        now.saturating_add(wait),
                    )
                }
            }
        };
        match status {
            DeliveryStatus::Delivered => {
                tracing::info!(delivery = %delivery.key, channel = %delivery.channel, attempts, "notification delivered");
            }
            DeliveryStatus::Failed => {
                tracing::warn!(delivery = %delivery.key, channel = %delivery.channel, attempts,
                    error = error.as_deref().unwrap_or(""), "notification failed; not tried again");
            }
            _ => {
                tracing::info!(delivery = %delivery.key, channel = %delivery.channel, attempts,
                    error = error.as_deref().unwrap_or(""), "notification attempt failed; will retry");
            }
        }
        self.inner
            .deps
            .metrics
            .attempt(delivery.channel_kind, status);
        let recorded = self
            .inner
            .deps
            .registry
            .record_attempt(
                &delivery.key,
                Attempt {
                    status,
                    error,
                    answer,
                    at: now,
                    next_attempt_at: next,
                },
            )
            .await?;
        self.inner.wake.notify_one();
        Ok(recorded.unwrap_or(delivery))
    }

    /// Exponential backoff with jitter: attempt n waits between half and all of `initial × 2^(n-1)`, at most
    /// `max_backoff_secs` (jitter keeps many failed deliveries from retrying in one burst).
    fn backoff(&self, attempts: u32) -> Duration {
        let initial = self.inner.config.initial_backoff_ms.max(1);
        let max = self
            .inner
            .config
            .max_backoff_secs
            .max(1)
            .saturating_mul(1000);
        let full = initial
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
            .min(max);
        Duration::from_millis(rand::thread_rng().gen_range(full / 2..=full))
    }

    /// One attempt on the wire.
    async fn send(&self, delivery: &Delivery) -> Result<Sent, bydata_store::Error> {
        let registry = &self.inner.deps.registry;
        let channel = registry
            .channel(&delivery.channel)
            .await?
            .filter(|c| c.org == delivery.org);
        let Some(channel) = channel else {
            return Ok(Sent::Refused {
                error: format!(
                    "organisation {} has no notification channel {:?} (deleted, or never created)",
                    delivery.org, delivery.channel
                ),
                answer: None,
            });
        };
        let members = registry.delivery_members(delivery).await?;
        Ok(match &channel.target {
            ChannelTarget::Webhook { url, .. } => {
                let Some(secrets) = registry.webhook_secrets(channel.id.as_str()).await? else {
                    return Ok(Sent::Refused {
                        error: "the webhook's signing secret is missing".into(),
                        answer: None,
                    });
                };
                let body = payload::webhook_json(delivery, &members).to_string();
                let now_secs = (self.inner.deps.clock)() / SECOND;
                webhook::post(
                    &self.inner.http,
                    url,
                    &secrets,
                    &delivery.key,
                    body.into_bytes(),
                    now_secs,
                    self.inner.config.webhook_private_addresses,
                )
                .await
            }
            ChannelTarget::Email { to } => match &self.inner.smtp {
                None => Sent::Retry {
                    error:
                        "no SMTP relay is configured: set [smtp] host (and from) in bydata's config"
                            .into(),
                    answer: None,
                    retry_after: None,
                },
                Some(smtp) => {
                    smtp.send(
                        to,
                        &delivery.key,
                        payload::mail_subject(delivery),
                        payload::mail_text(delivery, &members),
                    )
                    .await
                }
            },
        })
    }

    /// The channel's "send a test notification" action: queued durably like any notification, attempted
    /// once at once; answers the delivery after that attempt (delivered, or retrying/failed with the
    /// receiver's answer). Later attempts are the loop's.
    pub async fn test_channel(
        &self,
        channel: &Channel,
        requested_by: &str,
    ) -> Result<Delivery, NotifyError> {
        let now = (self.inner.deps.clock)();
        let key = format!("test:{}:{now}", channel.id);
        let timeout = match channel.target.kind() {
            ChannelKind::Webhook => self.inner.config.webhook_timeout_secs,
            ChannelKind::Email => self.inner.smtp_timeout_secs,
        };
        let lease = i64::try_from(timeout)
            .unwrap_or(3600)
            .saturating_mul(SECOND)
            .saturating_add(TEST_LEASE_MARGIN);
        let notification = Notification {
            org: channel.org.clone(),
            channel: channel.id.to_string(),
            key: key.clone(),
            kind: NotificationKind::Test,
            subject: format!("Test notification for channel {:?}", channel.id.as_str()),
            body: serde_json::json!({
                "message": "This is a test notification from bydata: the channel works.",
                "requested_by": requested_by,
            }),
            group: None,
            at: now,
        };
        let delivery = Delivery {
            key: key.clone(),
            org: channel.org.clone(),
            channel: channel.id.to_string(),
            kind: NotificationKind::Test,
            subject: notification.subject.clone(),
            group: None,
            members: vec![key.clone()],
            digest: false,
            status: DeliveryStatus::Queued,
            attempts: 0,
            channel_kind: Some(channel.target.kind()),
            last_error: None,
            answer: None,
            created_at: now,
            updated_at: now,
            // Kept from the loop while this request sends it; the loop takes over if the process dies.
            next_attempt_at: now.saturating_add(lease),
            delivered_at: None,
        };
        self.inner
            .deps
            .registry
            .enqueue_delivery(notification, delivery.clone())
            .await?;
        self.claim(&key);
        let result = self.attempt(delivery).await;
        self.release(&key);
        Ok(result?)
    }
}

#[async_trait::async_trait]
impl Notifier for Notify {
    async fn enqueue(&self, notifications: Vec<Notification>) -> Result<(), NotifyError> {
        for n in &notifications {
            let reason = if n.key.is_empty() || n.key.len() > MAX_KEY_LEN {
                Some(format!("the key must be 1 to {MAX_KEY_LEN} bytes"))
            } else if n.key.starts_with("digest:") || n.key.starts_with("test:") {
                Some("keys starting with \"digest:\" or \"test:\" are bydata's own".to_owned())
            } else if n.channel.is_empty() {
                Some("no channel is named".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(NotifyError::Invalid {
                    key: n.key.chars().take(80).collect(),
                    reason,
                });
            }
        }
        let now = (self.inner.deps.clock)();
        self.inner
            .deps
            .registry
            .enqueue_notifications(notifications, now)
            .await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    async fn delivery(&self, key: &str) -> Result<Option<DeliveryState>, NotifyError> {
        Ok(self.inner.deps.registry.delivery_state(key).await?)
    }
}
