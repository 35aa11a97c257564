//! The outbox: notifications committed before `enqueue` returns, pending until folded into deliveries.
use super::Registry;
use super::{
    ChannelKind, DELIVERIES, DUE, Delivery, DeliveryStatus, NOTIFICATIONS, PENDING, open_row,
};
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{OrgId, UnixNanos};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// Why something is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Firing,
    Resolved,
    /// Sent by the channel's "send a test notification" action.
    Test,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Test => "test",
        }
    }
}

/// One thing to tell one channel: the shape `bydata-notify`'s `Notifier` takes and `bydata-alerts` makes
/// (one type for both, so the two cannot drift apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub org: OrgId,
    /// The channel's id; it must be the organisation's own.
    pub channel: String,
    /// Idempotency key; an alert's is `alert:{rule}:{object}:{transition_seq}:{firing|resolved}@{channel}`.
    pub key: String,
    pub kind: NotificationKind,
    /// One line, e.g. "room-1 silent for 2h (expected every 15m) — rule 'quiet sensors'".
    pub subject: String,
    /// An alert's notification carries the alert as JSON.
    pub body: serde_json::Value,
    /// Digest group: many of one group for one channel within the digest window become one message. An
    /// alert's is `rule:{rule id}`, or `gateway:{eui}` when the gateway that last heard a silent device is
    /// silent too.
    pub group: Option<String>,
    pub at: UnixNanos,
}

/// A notification as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub notification: Notification,
    pub enqueued_at: UnixNanos,
    /// The delivery it was folded into (`None` while pending).
    pub delivery: Option<String>,
}

/// What the sender has to do: notifications waiting to be folded, deliveries due now, and when the next
/// later one is due.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    pub pending: Vec<Stored>,
    pub due: Vec<Delivery>,
    pub next_due: Option<UnixNanos>,
    /// Every delivery not yet delivered nor given up: its channel's kind and status (for the gauges).
    pub undelivered: Vec<(Option<ChannelKind>, DeliveryStatus)>,
}

impl Registry {
    /// Commits the notifications whose key is new; answers how many were new. One transaction.
    pub(crate) fn enqueue_notifications(
        &self,
        notifications: Vec<Notification>,
        now: UnixNanos,
    ) -> Result<usize> {
        let context = "enqueueing notifications";
        let txn = self.db.begin_write().map_err(db(context))?;
        let mut added = 0;
        {
            let mut rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
            let mut pending = txn.open_table(PENDING).map_err(db(context))?;
            for n in notifications {
                if rows.get(n.key.as_str()).map_err(db(context))?.is_some() {
                    continue;
                }
                let key = n.key.clone();
                let stored = Stored {
                    notification: n,
                    enqueued_at: now,
                    delivery: None,
                };
                let json = serde_json::to_vec(&stored).map_err(corrupt("notification"))?;
                rows.insert(key.as_str(), json.as_slice())
                    .map_err(db(context))?;
                pending.insert(key.as_str(), now).map_err(db(context))?;
                added += 1;
            }
        }
        self.commit_quietly(txn, context)?;
        Ok(added)
    }

    /// Commits a notification and its delivery at once (no digest window: the channel test action). `false`
    /// if the key is already present.
    pub(crate) fn enqueue_delivery(
        &self,
        notification: Notification,
        delivery: Delivery,
    ) -> Result<bool> {
        let context = "enqueueing a notification";
        let txn = self.db.begin_write().map_err(db(context))?;
        let added = {
            let mut rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
            if rows
                .get(notification.key.as_str())
                .map_err(db(context))?
                .is_some()
            {
                false
            } else {
                let stored = Stored {
                    enqueued_at: delivery.created_at,
                    delivery: Some(delivery.key.clone()),
                    notification,
                };
                let json = serde_json::to_vec(&stored).map_err(corrupt("notification"))?;
                rows.insert(stored.notification.key.as_str(), json.as_slice())
                    .map_err(db(context))?;
                Self::insert_delivery(&txn, &delivery, context)?;
                true
            }
        };
        self.commit_quietly(txn, context)?;
        Ok(added)
    }

    /// Pending notifications, deliveries due at `now`, and when the next later delivery is due.
    pub(crate) fn outbox(&self, now: UnixNanos) -> Result<Outbox> {
        let context = "reading the notification outbox";
        let txn = self.db.begin_read().map_err(db(context))?;
        let rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
        let pending = txn.open_table(PENDING).map_err(db(context))?;
        let deliveries = txn.open_table(DELIVERIES).map_err(db(context))?;
        let due = txn.open_table(DUE).map_err(db(context))?;
        let mut out = Outbox::default();
        for row in pending.iter().map_err(db(context))? {
            let (key, _) = row.map_err(db(context))?;
            if let Some(v) = rows.get(key.value()).map_err(db(context))? {
                out.pending.push(open_row(v.value(), "notification")?);
            }
        }
        for row in due.iter().map_err(db(context))? {
            let (key, at) = row.map_err(db(context))?;
            let Some(v) = deliveries.get(key.value()).map_err(db(context))? else {
                continue;
            };
            let delivery: Delivery = open_row(v.value(), "delivery")?;
            out.undelivered
                .push((delivery.channel_kind, delivery.status));
            if at.value() > now {
                out.next_due = Some(out.next_due.map_or(at.value(), |n| n.min(at.value())));
            } else {
                out.due.push(delivery);
            }
        }
        out.due.sort_by_key(|d| (d.next_attempt_at, d.created_at));
        Ok(out)
    }

    /// Commits deliveries folded from pending notifications: each member leaves `notify_pending` and points
    /// at its delivery, in the transaction that creates the delivery. A delivery whose key exists is skipped.
    pub(crate) fn create_deliveries(&self, new: Vec<Delivery>) -> Result<()> {
        let context = "folding notifications into deliveries";
        let txn = self.db.begin_write().map_err(db(context))?;
        for delivery in &new {
            let created = Self::insert_delivery(&txn, delivery, context)?;
            let mut rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
            let mut pending = txn.open_table(PENDING).map_err(db(context))?;
            for member in &delivery.members {
                // Out of pending even when the delivery existed already: it is not folded again and again.
                pending.remove(member.as_str()).map_err(db(context))?;
                if !created {
                    continue;
                }
                let stored = rows
                    .get(member.as_str())
                    .map_err(db(context))?
                    .map(|v| open_row::<Stored>(v.value(), "notification"))
                    .transpose()?;
                if let Some(mut stored) = stored {
                    stored.delivery = Some(delivery.key.clone());
                    let json = serde_json::to_vec(&stored).map_err(corrupt("notification"))?;
                    rows.insert(member.as_str(), json.as_slice())
                        .map_err(db(context))?;
                }
            }
        }
        self.commit_quietly(txn, context)
    }
}
