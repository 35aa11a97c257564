//! Alerts (issue 16): rules and silences as the API validated them (their shape is `bydata-alerts`'s), the
//! current alert of each (rule, object) with its history, and the notifications committed but not yet handed
//! to the notifier (the outbox).
//!
//! The evaluator commits a pass's transitions, their history and their notifications in one transaction
//! ([`Registry::commit_alerts`]), and only then hands the notifications on, removing them from the outbox
//! once the notifier has them. After a crash the outbox still holds what was committed and not handed on,
//! and is handed on again (the notifier drops keys it already has): nothing is lost, nothing sent twice.
//!
//! The evaluator also follows device statuses without scanning them: every status commit notes the devices
//! it touched in a change log kept in memory ([`StatusLog`](super::status_log::StatusLog)), and [`Registry::statuses_since`] answers only
//! those changed after a cursor (all of them for a cursor from before this process, as after a restart).
use super::{DEVICE_STATUS, DeviceStatus, GatewayStatus, Registry, gateways};
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{DeviceId, Eui64, OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

const ALERT_RULES: TableDefinition<&str, &[u8]> = TableDefinition::new("alert_rules");
const ALERT_SILENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("alert_silences");
/// Alert id (`{rule}:{object}`) → the alert.
const ALERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts");
/// `{alert id}\0{n:012}` → one transition; `n` increases per alert.
const ALERT_HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("alert_history");
/// `{channel}\0{key}` → a notification committed and not yet handed to the notifier.
const ALERT_OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("alert_outbox");

/// Most transitions kept per alert (the oldest give way).
pub const ALERT_HISTORY_MAX: u64 = 200;

/// An alert rule: its id and organisation, the rule as JSON (`bydata-alerts` owns its shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlertRule {
    pub id: String,
    pub org: OrgId,
    pub rule: serde_json::Value,
    pub created_at: UnixNanos,
    pub updated_at: UnixNanos,
}

/// A silence (maintenance window): its id and organisation, the silence as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSilence {
    pub id: String,
    pub org: OrgId,
    pub silence: serde_json::Value,
    pub created_at: UnixNanos,
}

/// The current alert of one (rule, object): its id `{rule}:{object}`, the alert as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub id: String,
    pub org: OrgId,
    pub rule: String,
    pub alert: serde_json::Value,
}

/// A notification committed with its transition, until the notifier has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingNotification {
    pub channel: String,
    /// The idempotency key (`alert:{rule}:{object}:{seq}:{firing|resolved}@{channel}`).
    pub key: String,
    pub notification: serde_json::Value,
}

/// What one evaluation pass changes, committed in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertCommit {
    /// Alerts created or changed (those of a rule deleted meanwhile are dropped).
    pub alerts: Vec<StoredAlert>,
    /// Alerts that are gone (a pending alert whose condition cleared before it fired).
    pub removed: Vec<String>,
    /// Transitions, by alert id.
    pub history: Vec<(String, serde_json::Value)>,
    pub outbox: Vec<PendingNotification>,
}

/// Where a reader of device statuses got to (see [`Registry::statuses_since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCursor {
    epoch: u64,
    seq: u64,
}

/// Statuses changed after a cursor.
#[derive(Debug, Clone, Default)]
pub struct StatusChanges {
    pub cursor: StatusCursor,
    /// Every status, not only changed ones (the cursor was from another process, or the first).
    pub full: bool,
    pub statuses: Vec<(DeviceId, DeviceStatus)>,
}

fn history_key(alert: &str, n: u64) -> String {
    format!("{alert}\0{n:012}")
}

fn outbox_key(channel: &str, key: &str) -> String {
    format!("{channel}\0{key}")
}

impl Registry {
    /// Notes devices whose status a committed transaction changed.
    pub(crate) fn statuses_touched<'a>(&self, ids: impl IntoIterator<Item = &'a DeviceId>) {
        self.status_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .touched(ids);
    }

    /// Device statuses changed after `cursor`, and the cursor to ask with next time.
    pub(crate) fn statuses_since(&self, cursor: StatusCursor) -> Result<StatusChanges> {
        let context = "reading device statuses";
        // The cursor is taken before the rows are read: a change committed meanwhile is read again next time.
        let (now, changed) = {
            let log = self
                .status_log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = StatusCursor {
                epoch: log.epoch,
                seq: log.next,
            };
            let changed: Option<Vec<DeviceId>> = (cursor.epoch == log.epoch).then(|| {
                log.by_seq
                    .range(cursor.seq + 1..)
                    .map(|(_, id)| id.clone())
                    .collect()
            });
            (now, changed)
        };
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(DEVICE_STATUS).map_err(db(context))?;
        let parse = |bytes: &[u8]| -> Result<DeviceStatus> {
            serde_json::from_slice(bytes).map_err(corrupt("device status"))
        };
        let mut statuses = Vec::new();
        let full = changed.is_none();
        match changed {
            Some(ids) => {
                for id in ids {
                    if let Some(v) = table.get(id.as_str()).map_err(db(context))? {
                        statuses.push((id, parse(v.value())?));
                    }
                }
            }
            None => {
                for row in table.iter().map_err(db(context))? {
                    let (k, v) = row.map_err(db(context))?;
                    // A key that is no device id cannot have been written by ingest: skip it.
                    if let Ok(id) = DeviceId::new(k.value()) {
                        statuses.push((id, parse(v.value())?));
                    }
                }
            }
        }
        Ok(StatusChanges {
            cursor: now,
            full,
            statuses,
        })
    }

    /// Every registered gateway's status, in one read.
    pub(crate) fn gateway_statuses(&self) -> Result<Vec<(Eui64, GatewayStatus)>> {
        let context = "reading gateway statuses";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn
            .open_table(gateways::GATEWAY_STATUS)
            .map_err(db(context))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            let (k, v) = row.map_err(db(context))?;
            if let Ok(eui) = Eui64::new(k.value()) {
                out.push((
                    eui,
                    serde_json::from_slice(v.value()).map_err(corrupt("gateway status"))?,
                ));
            }
        }
        Ok(out)
    }

    pub(crate) fn create_alert_rule(&self, rule: StoredAlertRule) -> Result<StoredAlertRule> {
        self.insert_new(ALERT_RULES, "alert rule", &rule.id, &rule)?;
        Ok(rule)
    }

    /// Replaces a rule (`None` if there is none with its id). Its alerts stay: the evaluator judges them
    /// by the new rule at its next pass.
    pub(crate) fn update_alert_rule(
        &self,
        rule: StoredAlertRule,
    ) -> Result<Option<StoredAlertRule>> {
        let context = "changing an alert rule";
        let txn = self.db.begin_write().map_err(db(context))?;
        let exists = {
            let mut table = txn.open_table(ALERT_RULES).map_err(db(context))?;
            let exists = table.get(rule.id.as_str()).map_err(db(context))?.is_some();
            if exists {
                let json = serde_json::to_vec(&rule).map_err(corrupt("alert rule"))?;
                table
                    .insert(rule.id.as_str(), json.as_slice())
                    .map_err(db(context))?;
            }
            exists
        };
        self.commit_if(txn, context, exists)?;
        Ok(exists.then_some(rule))
    }

    pub(crate) fn alert_rule(&self, id: &str) -> Result<Option<StoredAlertRule>> {
        self.get_one(ALERT_RULES, "alert rule", id)
    }

    pub(crate) fn alert_rules(&self) -> Result<Vec<StoredAlertRule>> {
        self.get_all(ALERT_RULES, "alert rule")
    }

    /// Removes a rule with its alerts and their history (notifications already committed still go out).
    pub(crate) fn delete_alert_rule(&self, id: &str) -> Result<bool> {
        let context = "deleting an alert rule";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut rules = txn.open_table(ALERT_RULES).map_err(db(context))?;
            let existed = rules.remove(id).map_err(db(context))?.is_some();
            let prefix = format!("{id}:");
            let mut alerts = txn.open_table(ALERTS).map_err(db(context))?;
            let ids: Vec<String> = alerts
                .range(prefix.as_str()..)
                .map_err(db(context))?
                .map(|row| row.map(|(k, _)| k.value().to_owned()))
                .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(&prefix)))
                .collect::<std::result::Result<_, _>>()
                .map_err(db(context))?;
            let mut history = txn.open_table(ALERT_HISTORY).map_err(db(context))?;
            for alert in &ids {
                alerts.remove(alert.as_str()).map_err(db(context))?;
                let (from, to) = (history_key(alert, 0), history_key(alert, u64::MAX / 2));
                history
                    .retain_in(from.as_str()..to.as_str(), |_, _| false)
                    .map_err(db(context))?;
            }
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    pub(crate) fn create_silence(&self, silence: StoredSilence) -> Result<StoredSilence> {
        self.insert_new(ALERT_SILENCES, "silence", &silence.id, &silence)?;
        Ok(silence)
    }

    pub(crate) fn silence(&self, id: &str) -> Result<Option<StoredSilence>> {
        self.get_one(ALERT_SILENCES, "silence", id)
    }

    pub(crate) fn silences(&self) -> Result<Vec<StoredSilence>> {
        self.get_all(ALERT_SILENCES, "silence")
    }

    pub(crate) fn delete_silence(&self, id: &str) -> Result<bool> {
        let context = "deleting a silence";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(ALERT_SILENCES).map_err(db(context))?;
            table.remove(id).map_err(db(context))?.is_some()
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    pub(crate) fn alerts(&self) -> Result<Vec<StoredAlert>> {
        self.get_all(ALERTS, "alert")
    }

    pub(crate) fn alert(&self, id: &str) -> Result<Option<StoredAlert>> {
        self.get_one(ALERTS, "alert", id)
    }

    /// An alert's transitions, newest first, at most `limit`.
    pub(crate) fn alert_history(&self, id: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        let context = "reading an alert's history";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = match txn.open_table(ALERT_HISTORY) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(context)(e)),
        };
        let (from, to) = (history_key(id, 0), history_key(id, u64::MAX / 2));
        let mut out = Vec::new();
        for row in table
            .range(from.as_str()..to.as_str())
            .map_err(db(context))?
            .rev()
            .take(limit)
        {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("alert history"))?);
        }
        Ok(out)
    }

    /// Commits one evaluation pass: alerts, their history and their notifications, or none of it.
    pub(crate) fn commit_alerts(&self, commit: &AlertCommit) -> Result<()> {
        let context = "committing alerts";
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let rules = txn.open_table(ALERT_RULES).map_err(db(context))?;
            let mut alerts = txn.open_table(ALERTS).map_err(db(context))?;
            for alert in &commit.alerts {
                // A rule deleted while the pass ran takes its alerts with it.
                if rules
                    .get(alert.rule.as_str())
                    .map_err(db(context))?
                    .is_none()
                {
                    continue;
                }
                let json = serde_json::to_vec(alert).map_err(corrupt("alert"))?;
                alerts
                    .insert(alert.id.as_str(), json.as_slice())
                    .map_err(db(context))?;
            }
            for id in &commit.removed {
                alerts.remove(id.as_str()).map_err(db(context))?;
            }
            Self::append_history(&txn, &commit.history)?;
            let mut outbox = txn.open_table(ALERT_OUTBOX).map_err(db(context))?;
            for n in &commit.outbox {
                let json = serde_json::to_vec(n).map_err(corrupt("notification"))?;
                outbox
                    .insert(outbox_key(&n.channel, &n.key).as_str(), json.as_slice())
                    .map_err(db(context))?;
            }
        }
        txn.commit().map_err(db(context))
    }

    fn append_history(
        txn: &WriteTransaction,
        entries: &[(String, serde_json::Value)],
    ) -> Result<()> {
        let context = "committing alert history";
        let mut table = txn.open_table(ALERT_HISTORY).map_err(db(context))?;
        for (alert, entry) in entries {
            let (from, to) = (history_key(alert, 0), history_key(alert, u64::MAX / 2));
            let last = table
                .range(from.as_str()..to.as_str())
                .map_err(db(context))?
                .next_back()
                .transpose()
                .map_err(db(context))?
                .and_then(|(k, _)| k.value().rsplit('\0').next()?.parse::<u64>().ok());
            let n = last.map_or(1, |n| n + 1);
            let json = serde_json::to_vec(entry).map_err(corrupt("alert history"))?;
            table
                .insert(history_key(alert, n).as_str(), json.as_slice())
                .map_err(db(context))?;
            if n > ALERT_HISTORY_MAX {
                let cut = history_key(alert, n + 1 - ALERT_HISTORY_MAX);
                table
                    .retain_in(from.as_str()..cut.as_str(), |_, _| false)
                    .map_err(db(context))?;
            }
        }
        Ok(())
    }

    /// Notifications committed and not yet handed to the notifier.
    pub(crate) fn alert_outbox(&self) -> Result<Vec<PendingNotification>> {
        self.get_all(ALERT_OUTBOX, "notification")
    }

    /// Forgets notifications the notifier has: `(channel, key)` pairs.
    pub(crate) fn alert_outbox_handed(&self, handed: &[(String, String)]) -> Result<()> {
        let context = "updating the alert outbox";
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(ALERT_OUTBOX).map_err(db(context))?;
            for (channel, key) in handed {
                table
                    .remove(outbox_key(channel, key).as_str())
                    .map_err(db(context))?;
            }
        }
        txn.commit().map_err(db(context))
    }

    fn insert_new<T: Serialize>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        what: &'static str,
        id: &str,
        value: &T,
    ) -> Result<()> {
        let context = "creating an alert rule or silence";
        let json = serde_json::to_vec(value).map_err(corrupt(what))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(def).map_err(db(context))?;
            if table.get(id).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what,
                    id: id.to_owned(),
                });
            }
            table.insert(id, json.as_slice()).map_err(db(context))?;
        }
        self.commit(txn, context)
    }

    fn get_one<T: serde::de::DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        what: &'static str,
        id: &str,
    ) -> Result<Option<T>> {
        let context = "reading alerts";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = match txn.open_table(def) {
            Ok(t) => t,
            // Tables of alerts are made by their first write (a registry from before alerts has none).
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(context)(e)),
        };
        let value = table.get(id).map_err(db(context))?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt(what)))
            .transpose()
    }

    fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        what: &'static str,
    ) -> Result<Vec<T>> {
        let context = "reading alerts";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(context)(e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt(what))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn rule(id: &str) -> StoredAlertRule {
        StoredAlertRule {
            id: id.into(),
            org: OrgId::default(),
            rule: json!({"name": id}),
            created_at: 1,
            updated_at: 1,
        }
    }

    fn alert(rule: &str, object: &str) -> StoredAlert {
        StoredAlert {
            id: format!("{rule}:{object}"),
            org: OrgId::default(),
            rule: rule.into(),
            alert: json!({"state": "firing"}),
        }
    }

    #[test]
    fn a_pass_commits_alerts_history_and_outbox_and_a_deleted_rule_takes_its_alerts() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Registry::open(&dir.path().join("r.redb")).expect("open");
        assert!(r.alerts().expect("none yet").is_empty());
        assert!(
            r.alert_history("r1:device:a", 10)
                .expect("none yet")
                .is_empty()
        );
        assert!(r.alert_outbox().expect("none yet").is_empty());
        r.create_alert_rule(rule("r1")).expect("create");
        r.create_alert_rule(rule("r10")).expect("create");
        assert!(matches!(
            r.create_alert_rule(rule("r1")),
            Err(Error::Conflict { .. })
        ));
        let n = PendingNotification {
            channel: "ops".into(),
            key: "alert:r1:device:a:1:firing".into(),
            notification: json!({}),
        };
        let mut history = Vec::new();
        for i in 0..(ALERT_HISTORY_MAX + 5) {
            history.push(("r1:device:a".to_owned(), json!({"i": i})));
        }
        r.commit_alerts(&AlertCommit {
            alerts: vec![
                alert("r1", "device:a"),
                alert("r10", "device:a"),
                alert("gone", "device:a"),
            ],
            removed: vec![],
            history,
            outbox: vec![n.clone()],
        })
        .expect("commit");
        assert_eq!(r.alerts().expect("alerts").len(), 2, "no rule, no alert");
        let h = r.alert_history("r1:device:a", 1000).expect("history");
        assert_eq!(h.len() as u64, ALERT_HISTORY_MAX);
        assert_eq!(h[0], json!({"i": ALERT_HISTORY_MAX + 4}), "newest first");
        assert_eq!(r.alert_outbox().expect("outbox"), vec![n.clone()]);
        r.alert_outbox_handed(&[(n.channel.clone(), n.key.clone())])
            .expect("handed");
        assert!(r.alert_outbox().expect("outbox").is_empty());
        assert!(r.delete_alert_rule("r1").expect("delete"));
        let left = r.alerts().expect("alerts");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].rule, "r10", "r1's alerts only, not r10's");
        assert!(r.alert_history("r1:device:a", 10).expect("h").is_empty());
    }

    #[test]
    fn statuses_since_answers_only_what_changed_after_the_cursor() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Registry::open(&dir.path().join("r.redb")).expect("open");
        for id in ["a", "b", "c"] {
            r.create_device(super::super::tests::device(id))
                .expect("device");
        }
        let status = |n| DeviceStatus {
            received: n,
            last_seen: Some(n as i64),
            ..Default::default()
        };
        let id = |s: &str| DeviceId::new(s).expect("id");
        let deltas: HashMap<DeviceId, DeviceStatus> =
            [(id("a"), status(1)), (id("b"), status(1))].into();
        r.commit_ingest("ingest", 1, &deltas).expect("commit");
        let first = r.statuses_since(StatusCursor::default()).expect("all");
        assert!(first.full);
        assert_eq!(first.statuses.len(), 2);
        let none = r.statuses_since(first.cursor).expect("none");
        assert!(!none.full && none.statuses.is_empty());
        r.add_statuses([(&id("b"), &status(2))]).expect("add");
        let changed = r.statuses_since(none.cursor).expect("changed");
        assert_eq!(changed.statuses.len(), 1);
        assert_eq!(changed.statuses[0].0, id("b"));
        assert_eq!(changed.statuses[0].1.received, 3);
    }
}
