//! Persistent metadata: devices and their hashed credentials, API tokens, per-device ingest status and the
//! ingest consumer's journal position (`status`) — one redb database (`registry.redb`), every change one ACID
//! transaction. This file holds the devices; each other kind of metadata has a file of its own.
use crate::error::{corrupt, db};
use crate::{Error, Result, secret};
use bydata_schemas::{Codec, DeviceId, Domain, Location, OrgId, TagKey, Transport, UnixNanos};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

mod alerts;
mod audit_log;
mod buildings;
mod bulk;
mod codecs;
mod datasets;
mod device_keys;
mod downlinks;
// --- energy imports ---
mod energy;
mod gateways;
mod integrations;
mod lorawan;
mod lorawan_counters;
mod lorawan_downlink;
mod notify;
mod open;
mod orgs;
mod port;
mod sealing;
mod sessions;
mod state;
mod status;
mod status_log;
mod targets;
mod tokens;
mod unsealed;
pub use alerts::{
    ALERT_HISTORY_MAX, AlertCommit, PendingNotification, StatusChanges, StatusCursor, StoredAlert,
    StoredAlertRule, StoredSilence,
};
pub use buildings::Building;
pub use codecs::{CodecAdded, CodecSummary, StoredCodec};
pub use datasets::StoredDataset;
pub use device_keys::{DEVICE_KEY_PREFIX, DeviceKey};
pub use downlinks::{DOWNLINK_HISTORY, MAX_OPEN_DOWNLINKS};
// --- energy imports ---
pub use energy::EnergyCursor;
pub use gateways::{Gateway, GatewayStatus};
pub use integrations::{Integration, IntegrationMode};
pub use lorawan::{ExternalDevice, LorawanSession, OtaaDevice};
pub use lorawan_counters::{Advanced, CounterAdvance};
pub use notify::{
    Attempt, Channel, ChannelId, ChannelKind, ChannelTarget, Delivery, DeliveryState,
    DeliveryStatus, Notification, NotificationKind, Outbox, Stored, WebhookSecrets,
};
pub use orgs::{Member, OrgContents, Organisation};
pub use port::{RedbRegistry, RegistryPort, SessionForAddr, SharedRegistry};
pub use sessions::Session;
pub use state::{MAX_STATE_FIELDS, TextState};
pub use status::{DecodeRun, DeviceStatus, LastError};
pub use targets::{
    DeadLetter, DeliveryKind, DeliveryOutcome, HttpAuth, Target, TargetCommit, TargetDelivery,
    TargetFilter, TargetKind, TargetSecrets, TargetState, TargetStatus,
};
pub use tokens::{NewToken, Restriction, TokenInfo};

const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
const DEVICE_SECRETS: TableDefinition<&str, &str> = TableDefinition::new("device_secrets");
const DEVICE_STATUS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_status");
pub(super) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
const POSITIONS: TableDefinition<&str, u64> = TableDefinition::new("positions");

const PASSWORD_LEN: usize = 32;

/// A registered device, as stored and as the API shows it (no secret in here, ever).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub name: String,
    pub transport: Transport,
    pub domain: Domain,
    pub location: Option<Location>,
    #[serde(default)]
    pub tags: BTreeMap<TagKey, String>,
    #[serde(default)]
    pub codec: Codec,
    pub created_at: UnixNanos,
    /// The organisation it belongs to (its series follow it when it moves).
    #[serde(default)]
    pub org: OrgId,
}

/// MQTT credentials of a device; the password exists only in this value, returned once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MqttCredentials {
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub publish_topic: String,
}

impl MqttCredentials {
    fn new(id: &DeviceId, password: String) -> Self {
        Self {
            client_id: id.to_string(),
            username: id.to_string(),
            password,
            publish_topic: format!("devices/{id}/up"),
        }
    }
}

/// Outcome of checking a device's MQTT password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Valid,
    Wrong,
    UnknownDevice,
}

/// The metadata registry.
#[derive(Debug)]
pub(crate) struct Registry {
    db: Database,
    /// Bumped after every committed write that can change which LoRaWAN session a DevAddr has (see
    /// [`Registry::lorawan_generation`]).
    lorawan_generation: AtomicU64,
    /// What LoRaWAN keys and remote passwords are sealed under (`sealing`).
    secrets: crate::SecretKey,
    /// Bumped after every change committed through [`Registry::commit`] (everything the API changes), so a
    /// caller's cache of, say, which organisation owns which device can tell it is stale without I/O.
    changes: AtomicU64,
    /// Devices whose status changed, for the alert evaluator (`alerts`).
    status_log: std::sync::Mutex<status_log::StatusLog>,
}

impl Registry {
    /// Changes a device's codec; `None` if the device does not exist.
    pub(crate) fn set_codec(&self, id: &DeviceId, codec: Codec) -> Result<Option<Device>> {
        self.modify_device(id, "changing a codec", |d| d.codec = codec)
    }

    /// Moves a device to another organisation; its series follow it (they are owned through the device).
    pub(crate) fn move_device(&self, id: &DeviceId, org: OrgId) -> Result<Option<Device>> {
        self.modify_device(id, "moving a device", |d| d.org = org)
    }

    fn modify_device(
        &self,
        id: &DeviceId,
        context: &'static str,
        change: impl FnOnce(&mut Device),
    ) -> Result<Option<Device>> {
        let txn = self.db.begin_write().map_err(db(context))?;
        let updated = {
            let mut devices = txn.open_table(DEVICES).map_err(db(context))?;
            let current: Option<Device> = devices
                .get(id.as_str())
                .map_err(db(context))?
                .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device")))
                .transpose()?;
            match current {
                None => None,
                Some(mut device) => {
                    change(&mut device);
                    let json = serde_json::to_vec(&device).map_err(corrupt("device"))?;
                    devices
                        .insert(id.as_str(), json.as_slice())
                        .map_err(db(context))?;
                    Some(device)
                }
            }
        };
        self.commit_if(txn, context, updated.is_some())?;
        Ok(updated)
    }

    /// Registers a device and generates its MQTT password (returned once, stored as an Argon2id hash).
    pub(crate) fn create_device(&self, device: Device) -> Result<(Device, MqttCredentials)> {
        let password = secret::generate(PASSWORD_LEN);
        let hash = secret::hash_password(&password)?;
        let txn = self.db.begin_write().map_err(db("creating a device"))?;
        {
            let mut devices = txn.open_table(DEVICES).map_err(db("creating a device"))?;
            if devices
                .get(device.id.as_str())
                .map_err(db("creating a device"))?
                .is_some()
            {
                return Err(Error::Conflict {
                    what: "device",
                    id: device.id.to_string(),
                });
            }
            let json = serde_json::to_vec(&device).map_err(corrupt("device"))?;
            devices
                .insert(device.id.as_str(), json.as_slice())
                .map_err(db("creating a device"))?;
            let mut secrets = txn
                .open_table(DEVICE_SECRETS)
                .map_err(db("creating a device"))?;
            secrets
                .insert(device.id.as_str(), hash.as_str())
                .map_err(db("creating a device"))?;
        }
        self.commit(txn, "creating a device")?;
        let creds = MqttCredentials::new(&device.id, password);
        Ok((device, creds))
    }

    pub(crate) fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        let txn = self.db.begin_read().map_err(db("reading a device"))?;
        let devices = txn.open_table(DEVICES).map_err(db("reading a device"))?;
        let value = devices.get(id.as_str()).map_err(db("reading a device"))?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device")))
            .transpose()
    }

    pub(crate) fn devices(&self) -> Result<Vec<Device>> {
        let txn = self.db.begin_read().map_err(db("listing devices"))?;
        let devices = txn.open_table(DEVICES).map_err(db("listing devices"))?;
        let mut out = Vec::new();
        for row in devices.iter().map_err(db("listing devices"))? {
            let (_, v) = row.map_err(db("listing devices"))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("device"))?);
        }
        Ok(out)
    }

    /// Removes a device and its credentials and status. Its stored series stay (they are history).
    pub(crate) fn delete_device(&self, id: &DeviceId) -> Result<bool> {
        let txn = self.db.begin_write().map_err(db("deleting a device"))?;
        let existed = {
            let mut devices = txn.open_table(DEVICES).map_err(db("deleting a device"))?;
            let existed = devices
                .remove(id.as_str())
                .map_err(db("deleting a device"))?
                .is_some();
            let mut secrets = txn
                .open_table(DEVICE_SECRETS)
                .map_err(db("deleting a device"))?;
            secrets
                .remove(id.as_str())
                .map_err(db("deleting a device"))?;
            let mut status = txn
                .open_table(DEVICE_STATUS)
                .map_err(db("deleting a device"))?;
            status
                .remove(id.as_str())
                .map_err(db("deleting a device"))?;
            Self::remove_lorawan_session(&txn, id)?;
            Self::remove_downlinks(&txn, id)?;
            Self::remove_device_keys(&txn, id)?;
            existed
        };
        self.commit_if(txn, "deleting a device", existed)?;
        self.sessions_changed();
        Ok(existed)
    }

    /// Replaces a device's MQTT password; the old one stops working for new connections at once.
    pub(crate) fn rotate_credentials(&self, id: &DeviceId) -> Result<MqttCredentials> {
        let password = secret::generate(PASSWORD_LEN);
        let hash = secret::hash_password(&password)?;
        let txn = self.db.begin_write().map_err(db("rotating credentials"))?;
        {
            let devices = txn
                .open_table(DEVICES)
                .map_err(db("rotating credentials"))?;
            if devices
                .get(id.as_str())
                .map_err(db("rotating credentials"))?
                .is_none()
            {
                return Err(Error::NotFound {
                    what: "device",
                    id: id.to_string(),
                });
            }
            let mut secrets = txn
                .open_table(DEVICE_SECRETS)
                .map_err(db("rotating credentials"))?;
            secrets
                .insert(id.as_str(), hash.as_str())
                .map_err(db("rotating credentials"))?;
        }
        self.commit(txn, "rotating credentials")?;
        self.sessions_changed();
        Ok(MqttCredentials::new(id, password))
    }

    /// Checks a device's MQTT password. Slow by design (Argon2id): call it off the async runtime.
    pub(crate) fn check_password(&self, id: &DeviceId, password: &str) -> Result<PasswordCheck> {
        let Some(hash) = self.device_password_hash(id)? else {
            return Ok(PasswordCheck::UnknownDevice);
        };
        Ok(if secret::verify_password(password, &hash)? {
            PasswordCheck::Valid
        } else {
            PasswordCheck::Wrong
        })
    }

    /// The stored Argon2id hash of a device's MQTT password (one read; the slow check is the caller's, see
    /// [`crate::verify_password`]).
    pub(crate) fn device_password_hash(&self, id: &DeviceId) -> Result<Option<String>> {
        let txn = self.db.begin_read().map_err(db("checking a password"))?;
        let secrets = txn
            .open_table(DEVICE_SECRETS)
            .map_err(db("checking a password"))?;
        Ok(secrets
            .get(id.as_str())
            .map_err(db("checking a password"))?
            .map(|h| h.value().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(super) fn device(id: &str) -> Device {
        Device {
            id: DeviceId::new(id).expect("id"),
            name: "Room 1.12".into(),
            transport: Transport::Mqtt,
            domain: Domain::new("building").expect("domain"),
            location: Some(Location::new(56.15, 10.2).expect("loc")),
            tags: BTreeMap::new(),
            codec: Codec::Auto,
            created_at: 0,
            org: OrgId::default(),
        }
    }

    #[test]
    fn devices_credentials_and_status_survive_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        let id = DeviceId::new("room-1").expect("id");
        let creds = {
            let reg = Registry::open(&path).expect("open");
            let (_, creds) = reg.create_device(device("room-1")).expect("create");
            assert!(matches!(
                reg.create_device(device("room-1")),
                Err(Error::Conflict { .. })
            ));
            let mut d = HashMap::new();
            d.insert(
                id.clone(),
                DeviceStatus {
                    received: 2,
                    decoded: 1,
                    rejected: 1,
                    ..Default::default()
                },
            );
            reg.commit_ingest("ingest", 42, &d).expect("commit");
            creds
        };
        let reg = Registry::open(&path).expect("reopen");
        assert_eq!(reg.devices().expect("list").len(), 1);
        assert_eq!(reg.position("ingest").expect("pos"), 42);
        assert_eq!(reg.status(&id).expect("status").received, 2);
        assert_eq!(
            reg.check_password(&id, &creds.password).expect("check"),
            PasswordCheck::Valid
        );
        assert_eq!(
            reg.check_password(&id, "nope").expect("check"),
            PasswordCheck::Wrong
        );
        let rotated = reg.rotate_credentials(&id).expect("rotate");
        assert_eq!(
            reg.check_password(&id, &creds.password).expect("check"),
            PasswordCheck::Wrong
        );
        assert_eq!(
            reg.check_password(&id, &rotated.password).expect("check"),
            PasswordCheck::Valid
        );
        assert!(reg.delete_device(&id).expect("delete"));
        assert_eq!(
            reg.check_password(&id, &rotated.password).expect("check"),
            PasswordCheck::UnknownDevice
        );
    }
}
