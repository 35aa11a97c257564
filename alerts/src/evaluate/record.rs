//! What a pass writes: history entries, alerts as the registry stores them, and notifications (into the
//! outbox and for the notifier).
use super::PassOutput;
use crate::alert::{Alert, Event, notification_key};
use crate::rule::Rule;
use crate::sink::{Notification, NotificationKind};
use bydata_schemas::{UnixNanos, format_rfc3339};
use bydata_store::{PendingNotification, StoredAlert};
use serde_json::json;

pub(super) fn history(
    event: Event,
    value: Option<f64>,
    summary: &str,
    silenced: bool,
    now: UnixNanos,
) -> serde_json::Value {
    json!({
        "at": format_rfc3339(now),
        "event": event,
        "value": value,
        "summary": summary,
        "silenced": silenced,
    })
}

pub(super) fn stored(alert: &Alert) -> StoredAlert {
    StoredAlert {
        id: alert.id.clone(),
        org: alert.org.clone(),
        rule: alert.rule.clone(),
        alert: serde_json::to_value(alert).unwrap_or(serde_json::Value::Null),
    }
}

/// The alert as notifications carry it (and the API shows it).
pub fn alert_json(alert: &Alert) -> serde_json::Value {
    json!({
        "id": alert.id,
        "rule": alert.rule,
        "rule_name": alert.rule_name,
        "kind": alert.kind,
        "org": alert.org,
        "object": alert.object,
        "state": alert.phase.state,
        "since": format_rfc3339(alert.phase.since),
        "seq": alert.phase.seq,
        "value": alert.value,
        "summary": alert.summary,
        "group": alert.group,
        "silenced": alert.silenced,
        "updated_at": format_rfc3339(alert.updated_at),
    })
}

pub(super) fn notify(
    rule: &Rule,
    alert: &Alert,
    event: Event,
    now: UnixNanos,
    out: &mut PassOutput,
) {
    let (kind, subject) = match event {
        Event::Resolved => (
            NotificationKind::Resolved,
            format!("resolved: {} — rule '{}'", alert.summary, rule.name),
        ),
        _ => (
            NotificationKind::Firing,
            format!("{} — rule '{}'", alert.summary, rule.name),
        ),
    };
    for channel in &rule.channels {
        let key = notification_key(alert, event, channel);
        let n = Notification {
            org: alert.org.clone(),
            channel: channel.clone(),
            key: key.clone(),
            kind,
            subject: subject.clone(),
            body: alert_json(alert),
            group: Some(alert.group.clone()),
            at: now,
        };
        out.commit.outbox.push(PendingNotification {
            channel: channel.clone(),
            key: key.clone(),
            notification: serde_json::to_value(&n).unwrap_or(serde_json::Value::Null),
        });
        out.notifications.push(n);
    }
}

/// Reads an alert stored by [`Evaluator::pass`].
pub fn parse_alert(stored: &StoredAlert) -> Option<Alert> {
    serde_json::from_value(stored.alert.clone()).ok()
}
