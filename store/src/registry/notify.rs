//! Notification channels and the notification outbox (`bydata-notify` is the crate that sends).
//!
//! A *channel* is where an organisation wants to be told: a webhook (its URL and extra header names here,
//! the signing secret and the header values sealed in `notify_channel_secrets`, because bydata must read them
//! back to sign and send) or e-mail recipients.
//!
//! The *outbox* is durable: a notification is committed here before `enqueue` returns, keyed by its
//! idempotency key (a key already present is a no-op, so a restart may enqueue again). A notification waits in
//! `notify_pending` until the sender folds it into a *delivery* — one message on the wire, for one
//! notification or a digest of many — in the same transaction that removes it from there. A delivery not yet
//! delivered or given up is in `notify_due` with the time of its next attempt, so after `kill -9` it is sent
//! again with the same key (at least once; receivers drop duplicates by key).
use super::Registry;
use super::sealing::{open_json, seal_json};
use crate::error::{corrupt, db};
use crate::{Error, Result, secret};
use bydata_schemas::{OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

pub(super) const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_channels");
/// A webhook channel's [`WebhookSecrets`], sealed.
pub(super) const CHANNEL_SECRETS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("notify_channel_secrets");
/// Every notification enqueued (key → [`Stored`]), until pruned.
const NOTIFICATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_notifications");
/// Notifications not yet folded into a delivery (key → enqueue time).
const PENDING: TableDefinition<&str, i64> = TableDefinition::new("notify_pending");
/// Messages to send or sent (delivery key → [`Delivery`]).
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_deliveries");
/// Deliveries still to be attempted (delivery key → time of the next attempt).
const DUE: TableDefinition<&str, i64> = TableDefinition::new("notify_due");

/// Length of a generated webhook signing secret (after its `whsec_` prefix): ~190 random bits.
const SECRET_LEN: usize = 32;

/// A channel's id: 1–64 characters of `a-z 0-9 - _ .`, starting with a letter or digit (alert rules name it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelId(String);

impl ChannelId {
    /// `Err` says what is wrong, in words.
    pub fn new(id: impl Into<String>) -> std::result::Result<Self, String> {
        let id = id.into();
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if id.is_empty() || id.len() > 64 {
            Err("a channel id must be 1 to 64 characters".into())
        } else if !id.starts_with(ok_char) {
            Err("a channel id must start with a lowercase letter or a digit".into())
        } else if !id
            .chars()
            .all(|c| ok_char(c) || matches!(c, '-' | '_' | '.'))
        {
            Err("a channel id may only contain a-z, 0-9, '-', '_' and '.'".into())
        } else {
            Ok(Self(id))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChannelId {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        Self::new(s)
    }
}

impl From<ChannelId> for String {
    fn from(id: ChannelId) -> String {
        id.0
    }
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an organisation is told (no secret in here, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub org: OrgId,
    pub target: ChannelTarget,
    pub created_at: UnixNanos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelTarget {
    /// POST of signed JSON. `headers` names the extra headers sent; their values are sealed.
    Webhook { url: String, headers: Vec<String> },
    /// A mail to these recipients through the `[smtp]` relay.
    Email { to: Vec<String> },
}

impl ChannelTarget {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelTarget::Webhook { .. } => ChannelKind::Webhook,
            ChannelTarget::Email { .. } => ChannelKind::Email,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 2] = [ChannelKind::Webhook, ChannelKind::Email];
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
        }
    }
}

/// What a webhook channel keeps sealed: the secret its requests are signed with and the extra headers'
/// values (an `Authorization` for the receiver, say). `Debug` redacts both.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    pub signing_secret: String,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("signing_secret", &"<redacted>")
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

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

/// One thing to tell one channel (the shape `bydata-notify`'s `Notifier` takes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub org: OrgId,
    /// The channel's id; it must be the organisation's own.
    pub channel: String,
    /// Idempotency key, e.g. `alert:{rule}:{object}:{transition_seq}:firing`.
    pub key: String,
    pub kind: NotificationKind,
    /// One line, e.g. "room-1 silent for 2h (rule 'quiet sensors')".
    pub subject: String,
    pub body: serde_json::Value,
    /// Digest group: many of one group for one channel within the digest window become one message.
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

fn open_row<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(corrupt(what))
}

impl Registry {
    /// Registers a channel. A webhook gets a new signing secret, returned here once and kept sealed with
    /// `header_values` (in the order of the target's header names).
    pub(crate) fn create_channel(
        &self,
        channel: Channel,
        header_values: Vec<String>,
    ) -> Result<(Channel, Option<String>)> {
        let context = "creating a notification channel";
        let key = channel.id.as_str();
        let secret = match &channel.target {
            ChannelTarget::Webhook { headers, .. } => {
                let signing_secret = format!("whsec_{}", secret::generate(SECRET_LEN));
                let secrets = WebhookSecrets {
                    signing_secret: signing_secret.clone(),
                    headers: headers.iter().cloned().zip(header_values).collect(),
                };
                let sealed = seal_json(&self.secrets, CHANNEL_SECRETS, key, &secrets, "channel")?;
                Some((signing_secret, sealed))
            }
            ChannelTarget::Email { .. } => None,
        };
        let json = serde_json::to_vec(&channel).map_err(corrupt("channel"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(CHANNELS).map_err(db(context))?;
            if table.get(key).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what: "notification channel",
                    id: key.to_owned(),
                });
            }
            table.insert(key, json.as_slice()).map_err(db(context))?;
            if let Some((_, sealed)) = &secret {
                let mut secrets = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
                secrets
                    .insert(key, sealed.as_slice())
                    .map_err(db(context))?;
            }
        }
        self.commit(txn, context)?;
        Ok((channel, secret.map(|(s, _)| s)))
    }

    pub(crate) fn channel(&self, id: &str) -> Result<Option<Channel>> {
        let context = "reading a notification channel";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(CHANNELS).map_err(db(context))?;
        let row = table.get(id).map_err(db(context))?;
        row.map(|v| open_row(v.value(), "channel")).transpose()
    }

    pub(crate) fn channels(&self) -> Result<Vec<Channel>> {
        let context = "listing notification channels";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(CHANNELS).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            out.push(open_row(row.map_err(db(context))?.1.value(), "channel")?);
        }
        Ok(out)
    }

    /// Removes a channel and its secrets. Deliveries still due to it fail when attempted ("channel deleted").
    pub(crate) fn delete_channel(&self, id: &str) -> Result<bool> {
        let context = "deleting a notification channel";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(CHANNELS).map_err(db(context))?;
            let existed = table.remove(id).map_err(db(context))?.is_some();
            let mut secrets = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
            secrets.remove(id).map_err(db(context))?;
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    pub(crate) fn webhook_secrets(&self, id: &str) -> Result<Option<WebhookSecrets>> {
        let context = "reading a webhook's secret";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
        let row = table.get(id).map_err(db(context))?;
        row.map(|v| open_json(&self.secrets, CHANNEL_SECRETS, id, v.value(), "channel"))
            .transpose()
    }

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

    fn insert_delivery(
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

    /// Commits outbox bookkeeping: not a change of the API's objects, so the change counter (which
    /// invalidates caches of devices and keys) is not bumped and no audit entry is taken.
    fn commit_quietly(&self, txn: WriteTransaction, context: &'static str) -> Result<()> {
        txn.commit().map_err(db(context))
    }

    /// Part of opening: creates the tables, and refuses a secrets key that does not open a sealed webhook
    /// secret.
    pub(super) fn open_notify_tables(txn: &WriteTransaction, key: &crate::SecretKey) -> Result<()> {
        let context = "creating tables";
        txn.open_table(CHANNELS).map_err(db(context))?;
        txn.open_table(NOTIFICATIONS).map_err(db(context))?;
        txn.open_table(PENDING).map_err(db(context))?;
        txn.open_table(DELIVERIES).map_err(db(context))?;
        txn.open_table(DUE).map_err(db(context))?;
        let secrets = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
        if let Some(row) = secrets.first().map_err(db(context))? {
            open_json::<WebhookSecrets>(
                key,
                CHANNEL_SECRETS,
                row.0.value(),
                row.1.value(),
                "channel",
            )
            .map_err(|_| Error::SecretsKey)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(key: &str, group: Option<&str>) -> Notification {
        Notification {
            org: OrgId::default(),
            channel: "ops".into(),
            key: key.into(),
            kind: NotificationKind::Firing,
            subject: format!("{key} fired"),
            body: serde_json::json!({"k": key}),
            group: group.map(str::to_owned),
            at: 5,
        }
    }

    fn delivery(key: &str, members: &[&str]) -> Delivery {
        Delivery {
            key: key.into(),
            org: OrgId::default(),
            channel: "ops".into(),
            kind: NotificationKind::Firing,
            subject: "s".into(),
            group: None,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            digest: members.len() > 1,
            status: DeliveryStatus::Queued,
            attempts: 0,
            channel_kind: Some(ChannelKind::Webhook),
            last_error: None,
            answer: None,
            created_at: 10,
            updated_at: 10,
            next_attempt_at: 10,
            delivered_at: None,
        }
    }

    #[test]
    fn webhook_secrets_are_sealed_and_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(&dir.path().join("r.redb")).expect("open");
        let channel = Channel {
            id: ChannelId::new("ops").expect("id"),
            name: "Ops".into(),
            org: OrgId::default(),
            target: ChannelTarget::Webhook {
                url: "https://example.invalid/hook".into(),
                headers: vec!["Authorization".into()],
            },
            created_at: 1,
        };
        let (_, secret) = reg
            .create_channel(channel.clone(), vec!["Bearer x".into()])
            .expect("create");
        let secret = secret.expect("shown once");
        assert!(secret.starts_with("whsec_"));
        assert!(matches!(
            reg.create_channel(channel, Vec::new()),
            Err(Error::Conflict { .. })
        ));
        let secrets = reg.webhook_secrets("ops").expect("read").expect("some");
        assert_eq!(secrets.signing_secret, secret);
        assert_eq!(
            secrets.headers,
            vec![("Authorization".to_owned(), "Bearer x".to_owned())]
        );
        assert!(!format!("{secrets:?}").contains(&secret));
        assert!(reg.delete_channel("ops").expect("delete"));
        assert_eq!(reg.webhook_secrets("ops").expect("read"), None);
    }

    #[test]
    fn the_outbox_is_idempotent_by_key_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("r.redb");
        {
            let reg = Registry::open(&path).expect("open");
            let batch = vec![notification("a", Some("g")), notification("b", Some("g"))];
            assert_eq!(reg.enqueue_notifications(batch.clone(), 1).expect("q"), 2);
            assert_eq!(reg.enqueue_notifications(batch, 2).expect("q"), 0);
            let outbox = reg.outbox(3).expect("outbox");
            assert_eq!(outbox.pending.len(), 2);
            assert_eq!(
                reg.delivery_state("a")
                    .expect("state")
                    .expect("some")
                    .status,
                DeliveryStatus::Queued
            );
            reg.create_deliveries(vec![delivery("digest:ops:1", &["a", "b"])])
                .expect("fold");
        }
        let reg = Registry::open(&path).expect("reopen");
        let outbox = reg.outbox(10).expect("outbox");
        assert!(outbox.pending.is_empty());
        assert_eq!(outbox.due.len(), 1);
        assert_eq!(
            reg.delivery_members(&outbox.due[0]).expect("members").len(),
            2
        );
        let retry = Attempt {
            status: DeliveryStatus::Retrying,
            error: Some("HTTP 503".into()),
            answer: Some("HTTP 503".into()),
            at: 11,
            next_attempt_at: 100,
        };
        reg.record_attempt("digest:ops:1", retry).expect("record");
        let outbox = reg.outbox(20).expect("outbox");
        assert!(outbox.due.is_empty());
        assert_eq!(outbox.next_due, Some(100));
        let state = reg.delivery_state("b").expect("state").expect("some");
        assert_eq!(
            (state.status, state.attempts, state.digest),
            (DeliveryStatus::Retrying, 1, true)
        );
        let done = Attempt {
            status: DeliveryStatus::Delivered,
            error: None,
            answer: Some("HTTP 200".into()),
            at: 101,
            next_attempt_at: 101,
        };
        reg.record_attempt("digest:ops:1", done).expect("record");
        let state = reg.delivery_state("a").expect("state").expect("some");
        assert_eq!(state.status, DeliveryStatus::Delivered);
        assert_eq!(state.last_error.as_deref(), Some("HTTP 503"));
        let empty = reg.outbox(1000).expect("outbox");
        assert!(empty.due.is_empty() && empty.pending.is_empty() && empty.undelivered.is_empty());
        // Delivered: enqueueing the same key again is still a no-op.
        assert_eq!(
            reg.enqueue_notifications(vec![notification("a", None)], 200)
                .expect("q"),
            0
        );
        assert_eq!(reg.prune_deliveries(1000, 100).expect("prune"), 1);
        assert_eq!(reg.delivery_state("a").expect("state"), None);
    }
}
