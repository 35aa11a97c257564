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
//!
//! `channels` holds the first, `outbox` the other two; the tables and their opening are here.
pub(super) mod channels;
mod outbox;

use super::Registry;
use crate::Result;
use crate::error::{corrupt, db};
use redb::{TableDefinition, WriteTransaction};

pub use channels::{Channel, ChannelId, ChannelKind, ChannelTarget, WebhookSecrets};
pub use outbox::{
    Attempt, Delivery, DeliveryState, DeliveryStatus, Notification, NotificationKind, Outbox,
    Stored,
};

/// Every notification enqueued (key → [`Stored`]), until pruned.
const NOTIFICATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_notifications");
/// Notifications not yet folded into a delivery (key → enqueue time).
const PENDING: TableDefinition<&str, i64> = TableDefinition::new("notify_pending");
/// Messages to send or sent (delivery key → [`Delivery`]).
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_deliveries");
/// Deliveries still to be attempted (delivery key → time of the next attempt).
const DUE: TableDefinition<&str, i64> = TableDefinition::new("notify_due");

fn open_row<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(corrupt(what))
}

impl Registry {
    /// Commits outbox bookkeeping: not a change of the API's objects, so the change counter (which
    /// invalidates caches of devices and keys) is not bumped and no audit entry is taken.
    fn commit_quietly(&self, txn: WriteTransaction, context: &'static str) -> Result<()> {
        txn.commit().map_err(db(context))
    }

    /// Part of opening: creates the tables, and refuses a secrets key that does not open a sealed webhook
    /// secret.
    pub(super) fn open_notify_tables(txn: &WriteTransaction, key: &crate::SecretKey) -> Result<()> {
        let context = "creating tables";
        txn.open_table(NOTIFICATIONS).map_err(db(context))?;
        txn.open_table(PENDING).map_err(db(context))?;
        txn.open_table(DELIVERIES).map_err(db(context))?;
        txn.open_table(DUE).map_err(db(context))?;
        channels::open_tables(txn, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_schemas::OrgId;

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
