//! The alert evaluator's notifications into the notifier's durable outbox. The two crates agree on the
//! notification's fields (the issue fixed them) but neither depends on the other, so this copies them over.
use bydata_alerts::{AlertSink, NotificationKind, SinkError};
use bydata_notify::Notifier;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct NotifierSink(pub(crate) Arc<dyn Notifier>);

#[async_trait::async_trait]
impl AlertSink for NotifierSink {
    async fn enqueue(
        &self,
        notifications: Vec<bydata_alerts::Notification>,
    ) -> Result<(), SinkError> {
        let notifications = notifications
            .into_iter()
            .map(|n| bydata_notify::Notification {
                org: n.org,
                channel: n.channel,
                key: n.key,
                kind: match n.kind {
                    NotificationKind::Firing => bydata_notify::NotificationKind::Firing,
                    NotificationKind::Resolved => bydata_notify::NotificationKind::Resolved,
                    NotificationKind::Test => bydata_notify::NotificationKind::Test,
                },
                subject: n.subject,
                body: n.body,
                group: n.group,
                at: n.at,
            })
            .collect();
        self.0.enqueue(notifications).await.map_err(|e| SinkError {
            message: e.to_string(),
        })
    }
}
