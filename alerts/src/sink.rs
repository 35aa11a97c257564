//! Where notifications go: [`AlertSink`] mirrors the notifier's `enqueue` (crate `bydata-notify`, trait
//! `Notifier`), field for field, so this crate needs none of the notifier's code; the binary adapts one to
//! the other (`src/alert_sink.rs`).
use bydata_schemas::{OrgId, UnixNanos};
use serde::{Deserialize, Serialize};

/// A notification, as `bydata-notify` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub org: OrgId,
    /// A channel id of the organisation's.
    pub channel: String,
    /// Idempotency key: `alert:{rule}:{object}:{seq}:{firing|resolved}@{channel}`.
    pub key: String,
    pub kind: NotificationKind,
    /// One line, e.g. `room-1 silent for 2h (expected every 15m) — rule 'quiet sensors'`.
    pub subject: String,
    /// The alert as JSON.
    pub body: serde_json::Value,
    /// Digest group: `rule:{rule id}`, or `gateway:{eui}` when the gateway that last heard a silent device
    /// is silent too; the notifier folds a group's notifications on one channel into one message.
    pub group: Option<String>,
    pub at: UnixNanos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Firing,
    Resolved,
    Test,
}

/// Why notifications could not be queued (they stay in the alert outbox and are handed on again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
}

/// What takes notifications: `bydata-notify`'s `Notifier::enqueue`, adapted.
#[async_trait::async_trait]
pub trait AlertSink: Send + Sync + std::fmt::Debug {
    /// Durably queued when this returns `Ok`. A key already queued or delivered is dropped, so handing the
    /// same notification again (after a restart) sends nothing twice.
    async fn enqueue(&self, notifications: Vec<Notification>) -> Result<(), SinkError>;
}
