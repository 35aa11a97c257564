//! Where notifications go: [`AlertSink`] mirrors the notifier's `enqueue` (crate `bydata-notify`, trait
//! `Notifier`) and takes the one [`Notification`] type both crates share (the outbox's, in `bydata-store`),
//! so this crate needs none of the notifier's code; the binary adapts the trait, not the type
//! (`src/alert_sink.rs`).
pub use bydata_store::{Notification, NotificationKind};

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
