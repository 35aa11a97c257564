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
//! in one transaction, so a `kill -9` at any point leaves either the batch to be sent again or nothing to do.//!
//! The settings and secrets are here; the cursor, delivery log and forwarder commits in `deliveries`; dead
//! letters in `dead_letters`.
mod dead_letters;
mod deliveries;

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

pub use dead_letters::DeadLetter;
pub use deliveries::{
    DeliveryKind, DeliveryOutcome, TargetCommit, TargetDelivery, TargetState, TargetStatus,
};

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
