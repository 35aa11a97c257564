//! The outbox: notifications committed before `enqueue` returns, pending until folded into deliveries —
//! messages on the wire (one notification or a digest), their attempts and their state. One file: a
//! notification and the delivery it is folded into are written in the same transactions.
use super::Registry;
use super::{ChannelKind, DELIVERIES, DUE, NOTIFICATIONS, PENDING, open_row};
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{OrgId, UnixNanos};
use redb::{ReadableTable, WriteTransaction};
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

// --- deliveries ---

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not attempted yet (or waiting for its digest window).
    Queued,
    /// Attempted and failed; another attempt is due at `next_attempt_at`.
    Retrying,
    Delivered,
    /// Given up: out of attempts, refused for good, or its channel is gone.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Failed)
    }
}

/// One message on the wire: one notification, or a digest of several of one channel, group and kind. Its key
/// is the `X-Bydata-Delivery` header (a single notification's own key; `digest:…` for a digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub key: String,
    pub org: OrgId,
    pub channel: String,
    pub kind: NotificationKind,
    pub subject: String,
    pub group: Option<String>,
    /// The keys of the notifications it carries, in order.
    pub members: Vec<String>,
    pub digest: bool,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The channel's kind when the delivery was made (`None`: the channel did not exist).
    pub channel_kind: Option<ChannelKind>,
    /// Why the last attempt failed, in words (the receiver's answer included).
    pub last_error: Option<String>,
    /// The receiver's last answer (`HTTP 200`, `250 2.0.0 Ok`), success or not.
    pub answer: Option<String>,
    pub created_at: UnixNanos,
    pub updated_at: UnixNanos,
    pub next_attempt_at: UnixNanos,
    pub delivered_at: Option<UnixNanos>,
}

/// Where a notification (or a delivery) is, as `Notifier::delivery` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// The delivery carrying it (its `X-Bydata-Delivery`); `None` while it waits for its digest window.
    pub delivery: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub answer: Option<String>,
    pub digest: bool,
    pub updated_at: UnixNanos,
}

/// How an attempt went, to be recorded on its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub status: DeliveryStatus,
    pub error: Option<String>,
    pub answer: Option<String>,
    pub at: UnixNanos,
    /// When to try again (for `Retrying`).
    pub next_attempt_at: UnixNanos,
}

impl Registry {
    pub(super) fn insert_delivery(
        txn: &WriteTransaction,
        delivery: &Delivery,
        context: &'static str,
    ) -> Result<bool> {
        let mut deliveries = txn.open_table(DELIVERIES).map_err(db(context))?;
        if deliveries
            .get(delivery.key.as_str())
            .map_err(db(context))?
            .is_some()
        {
            return Ok(false);
        }
        let json = serde_json::to_vec(delivery).map_err(corrupt("delivery"))?;
        deliveries
            .insert(delivery.key.as_str(), json.as_slice())
            .map_err(db(context))?;
        if !delivery.status.is_final() {
            let mut due = txn.open_table(DUE).map_err(db(context))?;
            due.insert(delivery.key.as_str(), delivery.next_attempt_at)
                .map_err(db(context))?;
        }
        Ok(true)
    }

    /// The notifications a delivery carries, in its order.
    pub(crate) fn delivery_members(&self, delivery: &Delivery) -> Result<Vec<Notification>> {
        let context = "reading a delivery's notifications";
        let txn = self.db.begin_read().map_err(db(context))?;
        let rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
        let mut out = Vec::with_capacity(delivery.members.len());
        for key in &delivery.members {
            if let Some(v) = rows.get(key.as_str()).map_err(db(context))? {
                out.push(open_row::<Stored>(v.value(), "notification")?.notification);
            }
        }
        Ok(out)
    }

    /// Records an attempt on a delivery; answers it as updated (`None`: no such delivery).
    pub(crate) fn record_attempt(&self, key: &str, attempt: Attempt) -> Result<Option<Delivery>> {
        let context = "recording a delivery attempt";
        let txn = self.db.begin_write().map_err(db(context))?;
        let updated = {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(db(context))?;
            let current = deliveries
                .get(key)
                .map_err(db(context))?
                .map(|v| open_row::<Delivery>(v.value(), "delivery"))
                .transpose()?;
            match current {
                None => None,
                Some(mut d) => {
                    d.attempts += 1;
                    d.status = attempt.status;
                    d.updated_at = attempt.at;
                    d.answer = attempt.answer;
                    if attempt.status == DeliveryStatus::Delivered {
                        d.delivered_at = Some(attempt.at);
                    } else {
                        d.last_error = attempt.error;
                    }
                    d.next_attempt_at = attempt.next_attempt_at;
                    let json = serde_json::to_vec(&d).map_err(corrupt("delivery"))?;
                    deliveries
                        .insert(key, json.as_slice())
                        .map_err(db(context))?;
                    let mut due = txn.open_table(DUE).map_err(db(context))?;
                    if d.status.is_final() {
                        due.remove(key).map_err(db(context))?;
                    } else {
                        due.insert(key, d.next_attempt_at).map_err(db(context))?;
                    }
                    Some(d)
                }
            }
        };
        self.commit_quietly(txn, context)?;
        Ok(updated)
    }

    /// Where the notification (or delivery) `key` is.
    pub(crate) fn delivery_state(&self, key: &str) -> Result<Option<DeliveryState>> {
        let context = "reading a delivery";
        let txn = self.db.begin_read().map_err(db(context))?;
        let deliveries = txn.open_table(DELIVERIES).map_err(db(context))?;
        let rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
        let state = |d: Delivery| DeliveryState {
            delivery: Some(d.key),
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            answer: d.answer,
            digest: d.digest,
            updated_at: d.updated_at,
        };
        let stored = rows
            .get(key)
            .map_err(db(context))?
            .map(|v| open_row::<Stored>(v.value(), "notification"))
            .transpose()?;
        let delivery_key = match &stored {
            Some(s) => s.delivery.clone(),
            None => Some(key.to_owned()),
        };
        if let Some(dk) = delivery_key
            && let Some(v) = deliveries.get(dk.as_str()).map_err(db(context))?
        {
            return Ok(Some(state(open_row(v.value(), "delivery")?)));
        }
        Ok(stored.map(|s| DeliveryState {
            delivery: None,
            status: DeliveryStatus::Queued,
            attempts: 0,
            last_error: None,
            answer: None,
            digest: false,
            updated_at: s.enqueued_at,
        }))
    }

    /// Every delivery, newest first.
    pub(crate) fn deliveries(&self) -> Result<Vec<Delivery>> {
        let context = "listing deliveries";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(DELIVERIES).map_err(db(context))?;
        let mut out: Vec<Delivery> = Vec::new();
        for row in table.iter().map_err(db(context))? {
            out.push(open_row(row.map_err(db(context))?.1.value(), "delivery")?);
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.key.cmp(&a.key)));
        Ok(out)
    }

    /// Forgets delivered and failed deliveries (and their notifications) updated before `before`, and the
    /// oldest such beyond `keep`; answers how many deliveries went. A key forgotten may be enqueued anew.
    pub(crate) fn prune_deliveries(&self, before: UnixNanos, keep: usize) -> Result<usize> {
        let context = "pruning deliveries";
        let finished: Vec<Delivery> = self
            .deliveries()?
            .into_iter()
            .filter(|d| d.status.is_final())
            .collect();
        let gone: Vec<&Delivery> = finished
            .iter()
            .enumerate()
            .filter(|(i, d)| *i >= keep || d.updated_at < before)
            .map(|(_, d)| d)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(db(context))?;
            let mut rows = txn.open_table(NOTIFICATIONS).map_err(db(context))?;
            for d in &gone {
                deliveries.remove(d.key.as_str()).map_err(db(context))?;
                for member in &d.members {
                    rows.remove(member.as_str()).map_err(db(context))?;
                }
            }
        }
        self.commit_quietly(txn, context)?;
        Ok(gone.len())
    }
}
