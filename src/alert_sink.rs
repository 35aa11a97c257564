//! The alert evaluator's notifications into the notifier's durable outbox. Both crates take the same
//! `Notification` (the outbox's, from `bydata-store`); neither depends on the other, so this joins their
//! traits and puts the notifier's error in the alerts' words.
use bydata_alerts::{AlertSink, Notification, SinkError};
use bydata_notify::Notifier;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct NotifierSink(pub(crate) Arc<dyn Notifier>);

#[async_trait::async_trait]
impl AlertSink for NotifierSink {
    async fn enqueue(&self, notifications: Vec<Notification>) -> Result<(), SinkError> {
        self.0.enqueue(notifications).await.map_err(|e| SinkError {
            message: e.to_string(),
        })
    }
}
