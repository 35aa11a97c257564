//! Notifications: telling an organisation's channels — a signed webhook, e-mail over SMTP — that an alert
//! fired or resolved, at least once, folded into digests when many come at once.
//!
//! Flow: a producer (alerts) calls [`Notifier::enqueue`]; the notifications are committed in the registry's
//! outbox before it returns (a key already there is a no-op). [`Notify::run`], the delivery loop, folds
//! pending notifications into deliveries (`digest`), commits them, and sends each due delivery in a task of
//! its own, bounded per channel kind, so a slow SMTP relay never holds up webhooks (`webhook`, `email`). Each
//! attempt is recorded on its delivery (attempts, last error, the receiver's answer); failures are retried
//! with exponential backoff and jitter up to `max_attempts`. A delivery not yet recorded as delivered is sent
//! again after a restart with the same `X-Bydata-Delivery` key, which receivers deduplicate by.
mod config;
mod digest;
mod email;
mod metrics;
mod outbox;
mod payload;
mod sign;
mod webhook;

pub use bydata_store::{
    Channel, ChannelId, ChannelKind, ChannelTarget, Delivery, DeliveryState, DeliveryStatus,
    Notification, NotificationKind,
};
pub use config::{Config, SmtpConfig, StartTls};
pub use email::{SmtpConfigError, check_address};
pub use metrics::Metrics;
pub use outbox::{Deps, Notify};
pub use sign::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, VerifyError, sign, verify};
pub use webhook::check_url;

/// What alerts (or anything else) tell channels through.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Durably queued when this returns Ok (committed in the registry). Enqueueing a key that is already
    /// queued or delivered is a no-op (so a restart can re-enqueue without sending twice).
    async fn enqueue(&self, n: Vec<Notification>) -> Result<(), NotifyError>;
    /// Delivery state of a key (queued / delivered / failed with the last error), for the alert's history.
    async fn delivery(&self, key: &str) -> Result<Option<DeliveryState>, NotifyError>;
}

/// What can go wrong handing notifications over.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A notification the outbox cannot take (nothing of its batch was queued).
    #[error("notification {key:?}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("the notification outbox cannot be reached: {0}")]
    Store(#[from] bydata_store::Error),
}

/// Longest idempotency key taken.
pub const MAX_KEY_LEN: usize = 512;
