//! Data targets (forwarding): an organisation's HTTP endpoints and outside MQTT brokers, what each has been
//! sent, and what it refused.
//!
//! - `targets`: the settings (no secret in them, ever);
//! - `target_secrets`: the bearer token or password and the extra headers' values, sealed under the secrets
//!   key (`sealing`) — bydata must send them, so they are kept readable, but never shown or logged;
//! - `target_cursors`: how far into the journal a target's readings are delivered (the forwarder's
//!   committed position; everything before it was accepted by the receiver or is a dead letter);
//! - `target_deliveries`: the delivery log, the last few hundred attempts per target;
//! - `target_dead_letters`: batches the receiver refused for good, with their readings, until replayed or
//!   discarded.
//!
//! A delivered batch moves the cursor, logs the delivery and (when it was a replay) removes its dead letter
//! in one transaction, so a `kill -9` at any point leaves either the batch to be sent again or nothing to do.
use super::Registry;
use super::sealing::{open_json, seal_json};
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{DeviceId, MeasurementName, OrgId, TargetId, UnixNanos};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(super) const TARGETS: TableDefinition<&str, &[u8]> = TableDefinition::new("targets");
pub(super) const TARGET_SECRETS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("target_secrets");
const TARGET_CURSORS: TableDefinition<&str, u64> = TableDefinition::new("target_cursors");
const TARGET_DELIVERIES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("target_deliveries");
const TARGET_DEAD_LETTERS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("target_dead_letters");

/// A data target, as stored and as the API shows it (its secrets are kept apart, see [`TargetSecrets`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub id: TargetId,
    pub org: OrgId,
    pub name: String,
    #[serde(flatten)]
    pub kind: TargetKind,
    /// Which of the organisation's readings it receives.
    #[serde(default)]
    pub filter: TargetFilter,
    /// Most readings sent in one request (HTTP) or awaited together (MQTT).
    pub batch_size: u32,
    /// Longest a reading waits for its batch to fill, in milliseconds.
    pub max_delay_ms: u64,
    /// Attempts a batch the receiver answers with a server error (5xx) gets before it is a dead letter.
    pub max_attempts: u32,
    /// A disabled target keeps its cursor; enabled again, it catches up from there.
    pub enabled: bool,
    pub created_at: UnixNanos,
    pub updated_at: UnixNanos,
}

/// Where a target sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    /// POST of a JSON batch to `url`.
    Http {
        url: String,
        auth: HttpAuth,
        /// The names of the extra headers sent; their values are sealed with the secrets.
        #[serde(default)]
        headers: Vec<String>,
    },
    /// One QoS 1 PUBLISH per reading to an outside broker.
    Mqtt {
        host: String,
        port: u16,
        tls: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// `bydata-{target}` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// The topic of each reading: `{device}`, `{measurement}`, `{org}` and `{target}` are filled in.
        topic: String,
    },
}

impl TargetKind {
    /// `http` or `mqtt`, the label of the target's metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::Mqtt { .. } => "mqtt",
        }
    }
}

/// How an HTTP target authenticates (the token or password is in [`TargetSecrets::secret`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HttpAuth {
    #[default]
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// `Authorization: Basic` of `username` and the secret.
    Basic { username: String },
}

/// Which readings of its organisation a target receives: every condition given must hold (an empty list or
/// map is no condition).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetFilter {
    /// Only these devices.
    pub devices: Vec<DeviceId>,
    /// Only devices with all of these tags (`domain` is one of them too).
    pub tags: BTreeMap<String, String>,
    /// Only these measurements.
    pub measurements: Vec<MeasurementName>,
}

/// What a target must send but nobody may read back: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetSecrets {
    /// The bearer token, the basic-auth password, or the MQTT password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Extra HTTP headers (an API key in `X-Api-Key`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for TargetSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSecrets")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What an attempt was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// Readings from the journal.
    Batch,
    /// A dead letter sent again.
    Replay,
    /// The "send a test message" action.
    Test,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver accepted it (2xx, PUBACK).
    Delivered,
    /// It failed and will be tried again (the cursor waits).
    Failed,
    /// It failed for good and became a dead letter (the cursor moved on).
    DeadLettered,
}

/// One attempt in a target's delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDelivery {
    /// Position in the target's log, given when stored.
    #[serde(default)]
    pub seq: u64,
    pub time: UnixNanos,
    pub kind: DeliveryKind,
    pub outcome: DeliveryOutcome,
    /// The batch id (`X-Bydata-Batch`).
    pub batch: String,
    pub readings: u64,
    /// The attempt's number for this batch, from 1.
    pub attempt: u32,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The start of the receiver's answer (a few hundred characters), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why it failed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: u64,
}

/// A batch the receiver refused for good, kept with its readings until replayed or discarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Given when stored; increases per target.
    #[serde(default)]
    pub id: u64,
    pub created_at: UnixNanos,
    pub batch: String,
    /// The forwarded readings, as sent (each with its idempotency key).
    pub readings: Vec<serde_json::Value>,
    /// The journal range they came from.
    pub first_position: u64,
    pub end_position: u64,
    /// Attempts so far (replays included).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was refused, in words.
    pub reason: String,
    /// Asked to be sent again.
    #[serde(default)]
    pub replay: bool,
}

/// What a target's worker is doing (not stored: the forwarder knows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not started yet (it starts within a second of being created or enabled).
    Starting,
    /// Caught up, or filling a batch.
    Idle,
    /// A batch is on its way.
    Sending,
    /// The last attempt failed; the next one is at `next_attempt_at` (the cursor waits).
    Retrying,
    /// The target is disabled.
    Disabled,
    /// Its settings cannot be used (the reason is `reason`), or forwarding is off in the configuration.
    Stopped,
}

/// A target's status: where its cursor is, how far behind the journal, and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub state: TargetState,
    /// The committed journal position.
    pub cursor: u64,
    /// Journal entries after the cursor (every organisation's; counted up to a million).
    pub lag_entries: u64,
    pub lag_bytes: u64,
    /// Age of the first entry after the cursor, in seconds (0 when caught up).
    pub lag_seconds: u64,
    /// Failed attempts of the batch being retried.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<UnixNanos>,
    pub dead_letters: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<TargetDelivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TargetDelivery>,
    /// Why the target is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One step of a forwarder, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct TargetCommit {
    /// The new cursor (`None`: unchanged).
    pub cursor: Option<u64>,
    pub deliveries: Vec<TargetDelivery>,
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters delivered by a replay.
    pub replayed: Vec<u64>,
    /// Dead letters whose replay failed: the attempt is counted, the error kept, the replay request cleared.
    pub failed_replays: Vec<(u64, Option<u16>, String)>,
    /// Delivery log entries kept per target (older ones are removed).
    pub keep_deliveries: usize,
}

impl Registry {
    /// Registers a target with its secrets and its starting cursor.
    pub(crate) fn create_target(
        &self,
        target: Target,
        secrets: TargetSecrets,
        cursor: u64,
    ) -> Result<Target> {
        let context = "creating a data target";
        let key = target.id.as_str();
        let json = serde_json::to_vec(&target).map_err(corrupt("target"))?;
        let sealed = seal_json(
            &self.secrets,
            TARGET_SECRETS,
            key,
            &secrets,
            "target secrets",
        )?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(TARGETS).map_err(db(context))?;
            if table.get(key).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what: "target",
                    id: key.to_owned(),
                });
            }
            table.insert(key, json.as_slice()).map_err(db(context))?;
            let mut s = txn.open_table(TARGET_SECRETS).map_err(db(context))?;
            s.insert(key, sealed.as_slice()).map_err(db(context))?;
            let mut c = txn.open_table(TARGET_CURSORS).map_err(db(context))?;
            c.insert(key, cursor).map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok(target)
    }

    /// Replaces a target's settings, and its secrets when `secrets` is given; its cursor, log and dead
    /// letters stay. `None` if there is no such target.
    pub(crate) fn update_target(
        &self,
        target: Target,
        secrets: Option<TargetSecrets>,
    ) -> Result<Option<Target>> {
        let context = "changing a data target";
        let key = target.id.as_str();
        let json = serde_json::to_vec(&target).map_err(corrupt("target"))?;
        let sealed = secrets
            .map(|s| seal_json(&self.secrets, TARGET_SECRETS, key, &s, "target secrets"))
            .transpose()?;
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(TARGETS).map_err(db(context))?;
            let existed = table.get(key).map_err(db(context))?.is_some();
            if existed {
                table.insert(key, json.as_slice()).map_err(db(context))?;
                if let Some(sealed) = &sealed {
                    let mut s = txn.open_table(TARGET_SECRETS).map_err(db(context))?;
                    s.insert(key, sealed.as_slice()).map_err(db(context))?;
                }
            }
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed.then_some(target))
    }

    pub(crate) fn target(&self, id: &TargetId) -> Result<Option<Target>> {
        let context = "reading a data target";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGETS).map_err(db(context))?;
        let value = table.get(id.as_str()).map_err(db(context))?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("target")))
            .transpose()
    }

    pub(crate) fn targets(&self) -> Result<Vec<Target>> {
        let context = "listing data targets";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGETS).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("target"))?);
        }
        Ok(out)
    }

    /// Removes a target with its secrets, cursor, log and dead letters.
    pub(crate) fn delete_target(&self, id: &TargetId) -> Result<bool> {
        let context = "deleting a data target";
        let key = id.as_str();
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(TARGETS).map_err(db(context))?;
            let existed = table.remove(key).map_err(db(context))?.is_some();
            txn.open_table(TARGET_SECRETS)
                .map_err(db(context))?
                .remove(key)
                .map_err(db(context))?;
            txn.open_table(TARGET_CURSORS)
                .map_err(db(context))?
                .remove(key)
                .map_err(db(context))?;
            for table in [TARGET_DELIVERIES, TARGET_DEAD_LETTERS] {
                let mut t = txn.open_table(table).map_err(db(context))?;
                t.retain_in((key, 0)..=(key, u64::MAX), |_, _| false)
                    .map_err(db(context))?;
            }
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    pub(crate) fn target_secrets(&self, id: &TargetId) -> Result<Option<TargetSecrets>> {
        let context = "reading a data target";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_SECRETS).map_err(db(context))?;
        let value = table.get(id.as_str()).map_err(db(context))?;
        value
            .map(|v| {
                open_json(
                    &self.secrets,
                    TARGET_SECRETS,
                    id.as_str(),
                    v.value(),
                    "target secrets",
                )
            })
            .transpose()
    }

    pub(crate) fn target_cursor(&self, id: &TargetId) -> Result<Option<u64>> {
        let context = "reading a target's cursor";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_CURSORS).map_err(db(context))?;
        Ok(table
            .get(id.as_str())
            .map_err(db(context))?
            .map(|v| v.value()))
    }

    /// Commits one forwarder step; `false` (and nothing written) if the target was deleted meanwhile.
    pub(crate) fn commit_target(&self, id: &TargetId, step: TargetCommit) -> Result<bool> {
        let context = "committing a target's deliveries";
        let key = id.as_str();
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let targets = txn.open_table(TARGETS).map_err(db(context))?;
            if targets.get(key).map_err(db(context))?.is_none() {
                return Ok(false);
            }
        }
        if let Some(cursor) = step.cursor {
            let mut c = txn.open_table(TARGET_CURSORS).map_err(db(context))?;
            c.insert(key, cursor).map_err(db(context))?;
        }
        if !step.deliveries.is_empty() {
            let mut log = txn.open_table(TARGET_DELIVERIES).map_err(db(context))?;
            let mut seq = last_seq(&log, key, context)?;
            for mut d in step.deliveries {
                seq += 1;
                d.seq = seq;
                let json = serde_json::to_vec(&d).map_err(corrupt("delivery"))?;
                log.insert((key, seq), json.as_slice())
                    .map_err(db(context))?;
            }
            let keep = step.keep_deliveries.max(1) as u64;
            if seq > keep {
                log.retain_in((key, 0)..=(key, seq - keep), |_, _| false)
                    .map_err(db(context))?;
            }
        }
        if !(step.dead_letters.is_empty()
            && step.replayed.is_empty()
            && step.failed_replays.is_empty())
        {
            let mut dead = txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
            let mut seq = last_seq(&dead, key, context)?;
            for mut letter in step.dead_letters {
                seq += 1;
                letter.id = seq;
                let json = serde_json::to_vec(&letter).map_err(corrupt("dead letter"))?;
                dead.insert((key, seq), json.as_slice())
                    .map_err(db(context))?;
            }
            for id in step.replayed {
                dead.remove((key, id)).map_err(db(context))?;
            }
            for (id, status, error) in step.failed_replays {
                let current: Option<DeadLetter> = dead
                    .get((key, id))
                    .map_err(db(context))?
                    .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("dead letter")))
                    .transpose()?;
                if let Some(mut letter) = current {
                    letter.attempts += 1;
                    letter.status = status;
                    letter.reason = error;
                    letter.replay = false;
                    let json = serde_json::to_vec(&letter).map_err(corrupt("dead letter"))?;
                    dead.insert((key, id), json.as_slice())
                        .map_err(db(context))?;
                }
            }
        }
        txn.commit().map_err(db(context))?;
        Ok(true)
    }

    /// The last `limit` attempts, newest first.
    pub(crate) fn target_deliveries(
        &self,
        id: &TargetId,
        limit: usize,
    ) -> Result<Vec<TargetDelivery>> {
        let context = "reading a target's deliveries";
        let key = id.as_str();
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_DELIVERIES).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(db(context))?
            .rev()
            .take(limit)
        {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("delivery"))?);
        }
        Ok(out)
    }

    /// How many dead letters the target holds, and the oldest `limit` of them.
    pub(crate) fn dead_letters(
        &self,
        id: &TargetId,
        limit: usize,
    ) -> Result<(usize, Vec<DeadLetter>)> {
        let context = "reading a target's dead letters";
        let key = id.as_str();
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
        let mut out = Vec::new();
        let mut total = 0;
        for row in table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(db(context))?
        {
            let (_, v) = row.map_err(db(context))?;
            total += 1;
            if out.len() < limit {
                out.push(serde_json::from_slice(v.value()).map_err(corrupt("dead letter"))?);
            }
        }
        Ok((total, out))
    }

    /// Asks for the target's dead letters (`ids`, or all of them) to be sent again; answers how many.
    pub(crate) fn replay_dead_letters(
        &self,
        id: &TargetId,
        ids: Option<Vec<u64>>,
    ) -> Result<usize> {
        self.change_dead_letters(id, "replaying dead letters", |letter| {
            if ids.as_ref().is_none_or(|ids| ids.contains(&letter.id)) && !letter.replay {
                letter.replay = true;
                Some(true)
            } else {
                None
            }
        })
    }

    /// Removes the target's dead letters (their readings stay in the journal); answers how many.
    pub(crate) fn discard_dead_letters(&self, id: &TargetId) -> Result<usize> {
        self.change_dead_letters(id, "discarding dead letters", |_| Some(false))
    }

    /// Applies `change` to each dead letter: `Some(true)` rewrites it, `Some(false)` removes it, `None`
    /// leaves it. Answers how many changed.
    fn change_dead_letters(
        &self,
        id: &TargetId,
        context: &'static str,
        mut change: impl FnMut(&mut DeadLetter) -> Option<bool>,
    ) -> Result<usize> {
        let key = id.as_str();
        let txn = self.db.begin_write().map_err(db(context))?;
        let changed = {
            let mut table = txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
            let mut rewrite = Vec::new();
            let mut remove = Vec::new();
            for row in table
                .range((key, 0)..=(key, u64::MAX))
                .map_err(db(context))?
            {
                let (k, v) = row.map_err(db(context))?;
                let mut letter: DeadLetter =
                    serde_json::from_slice(v.value()).map_err(corrupt("dead letter"))?;
                match change(&mut letter) {
                    Some(true) => rewrite.push((k.value().1, letter)),
                    Some(false) => remove.push(k.value().1),
                    None => {}
                }
            }
            for (seq, letter) in &rewrite {
                let json = serde_json::to_vec(letter).map_err(corrupt("dead letter"))?;
                table
                    .insert((key, *seq), json.as_slice())
                    .map_err(db(context))?;
            }
            for seq in &remove {
                table.remove((key, *seq)).map_err(db(context))?;
            }
            rewrite.len() + remove.len()
        };
        self.commit_if(txn, context, changed > 0)?;
        Ok(changed)
    }
}

/// The highest sequence number used for `key` in a per-target table (0 for none).
fn last_seq(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    key: &str,
    context: &'static str,
) -> Result<u64> {
    Ok(table
        .range((key, 0)..=(key, u64::MAX))
        .map_err(db(context))?
        .next_back()
        .transpose()
        .map_err(db(context))?
        .map_or(0, |(k, _)| k.value().1))
}

/// Creates the tables (part of opening the registry).
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    let context = "creating tables";
    txn.open_table(TARGETS).map_err(db(context))?;
    txn.open_table(TARGET_SECRETS).map_err(db(context))?;
    txn.open_table(TARGET_CURSORS).map_err(db(context))?;
    txn.open_table(TARGET_DELIVERIES).map_err(db(context))?;
    txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
    Ok(())
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
