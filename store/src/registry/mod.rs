//! Persistent metadata: devices and their hashed credentials, API tokens, per-device ingest status and the
//! ingest consumer's journal position — one redb database (`registry.redb`), every change one ACID transaction.
//!
//! The consumer's position and the status counters it derives are committed in the same transaction
//! (`commit_ingest`), so after any crash the counters match exactly the journal entries consumed.
use crate::error::{corrupt, db};
use crate::{Error, Result, secret};
use bydata_schemas::{Codec, DeviceId, Domain, Location, TagKey, Transport, UnixNanos};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

mod gateways;
mod lorawan;
mod tokens;
pub use gateways::{Gateway, GatewayStatus};
pub use lorawan::{LorawanSession, OtaaDevice};
pub use tokens::{Role, TokenInfo};

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

/// The last thing that went wrong with a device's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub time: UnixNanos,
    pub reason: String,
}

/// Ingest status of one device, derived from the journal by the ingest consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub last_seen: Option<UnixNanos>,
    pub last_decoded: Option<UnixNanos>,
    pub received: u64,
    pub decoded: u64,
    pub rejected: u64,
    pub values_stored: u64,
    pub last_error: Option<LastError>,
}

impl DeviceStatus {
    fn merge(&mut self, d: &DeviceStatus) {
        self.last_seen = self.last_seen.max(d.last_seen);
        self.last_decoded = self.last_decoded.max(d.last_decoded);
        self.received += d.received;
        self.decoded += d.decoded;
        self.rejected += d.rejected;
        self.values_stored += d.values_stored;
        if d.last_error.is_some() {
            self.last_error = d.last_error.clone();
        }
    }
}

/// The metadata registry.
#[derive(Debug)]
pub struct Registry {
    db: Database,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Self> {
        let database = Database::create(path).map_err(db("opening the registry"))?;
        let txn = database.begin_write().map_err(db("opening the registry"))?;
        {
            txn.open_table(DEVICES).map_err(db("creating tables"))?;
            txn.open_table(DEVICE_SECRETS)
                .map_err(db("creating tables"))?;
            txn.open_table(DEVICE_STATUS)
                .map_err(db("creating tables"))?;
            txn.open_table(TOKENS).map_err(db("creating tables"))?;
            txn.open_table(POSITIONS).map_err(db("creating tables"))?;
            txn.open_table(gateways::GATEWAYS)
                .map_err(db("creating tables"))?;
            txn.open_table(gateways::GATEWAY_STATUS)
                .map_err(db("creating tables"))?;
            txn.open_table(lorawan::LORAWAN_SESSIONS)
                .map_err(db("creating tables"))?;
            txn.open_table(lorawan::LORAWAN_DEVICES)
                .map_err(db("creating tables"))?;
            txn.open_table(lorawan::LORAWAN_OTAA)
                .map_err(db("creating tables"))?;
            txn.open_table(lorawan::LORAWAN_OTAA_DEVICES)
                .map_err(db("creating tables"))?;
        }
        txn.commit().map_err(db("creating tables"))?;
        Ok(Self { db: database })
    }

    /// Registers a device and generates its MQTT password (returned once, stored as an Argon2id hash).
    pub fn create_device(&self, device: Device) -> Result<(Device, MqttCredentials)> {
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
        txn.commit().map_err(db("creating a device"))?;
        let creds = MqttCredentials::new(&device.id, password);
        Ok((device, creds))
    }

    pub fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        let txn = self.db.begin_read().map_err(db("reading a device"))?;
        let devices = txn.open_table(DEVICES).map_err(db("reading a device"))?;
        let value = devices.get(id.as_str()).map_err(db("reading a device"))?;
        value
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device")))
            .transpose()
    }

    pub fn devices(&self) -> Result<Vec<Device>> {
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
    pub fn delete_device(&self, id: &DeviceId) -> Result<bool> {
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
            existed
        };
        txn.commit().map_err(db("deleting a device"))?;
        Ok(existed)
    }

    /// Replaces a device's MQTT password; the old one stops working for new connections at once.
    pub fn rotate_credentials(&self, id: &DeviceId) -> Result<MqttCredentials> {
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
        txn.commit().map_err(db("rotating credentials"))?;
        Ok(MqttCredentials::new(id, password))
    }

    /// Checks a device's MQTT password. Slow by design (Argon2id): call it off the async runtime.
    pub fn check_password(&self, id: &DeviceId, password: &str) -> Result<PasswordCheck> {
        let hash = {
            let txn = self.db.begin_read().map_err(db("checking a password"))?;
            let secrets = txn
                .open_table(DEVICE_SECRETS)
                .map_err(db("checking a password"))?;
            match secrets
                .get(id.as_str())
                .map_err(db("checking a password"))?
            {
                Some(h) => h.value().to_owned(),
                None => return Ok(PasswordCheck::UnknownDevice),
            }
        };
        Ok(if secret::verify_password(password, &hash)? {
            PasswordCheck::Valid
        } else {
            PasswordCheck::Wrong
        })
    }

    pub fn status(&self, id: &DeviceId) -> Result<DeviceStatus> {
        let txn = self.db.begin_read().map_err(db("reading a status"))?;
        let status = txn
            .open_table(DEVICE_STATUS)
            .map_err(db("reading a status"))?;
        let row = status.get(id.as_str()).map_err(db("reading a status"))?;
        Ok(row
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device status")))
            .transpose()?
            .unwrap_or_default())
    }

    /// The journal position a consumer has committed (0 if it never ran).
    pub fn position(&self, consumer: &str) -> Result<u64> {
        let txn = self.db.begin_read().map_err(db("reading a position"))?;
        let positions = txn
            .open_table(POSITIONS)
            .map_err(db("reading a position"))?;
        Ok(positions
            .get(consumer)
            .map_err(db("reading a position"))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Atomically advances a consumer's journal position and adds the status changes derived from the
    /// entries it consumed. Changes for devices that no longer exist are dropped.
    pub fn commit_ingest(
        &self,
        consumer: &str,
        position: u64,
        deltas: &HashMap<DeviceId, DeviceStatus>,
    ) -> Result<()> {
        let txn = self.db.begin_write().map_err(db("committing ingest"))?;
        {
            let devices = txn.open_table(DEVICES).map_err(db("committing ingest"))?;
            let mut status = txn
                .open_table(DEVICE_STATUS)
                .map_err(db("committing ingest"))?;
            for (id, delta) in deltas {
                if devices
                    .get(id.as_str())
                    .map_err(db("committing ingest"))?
                    .is_none()
                {
                    continue;
                }
                let mut current: DeviceStatus =
                    match status.get(id.as_str()).map_err(db("committing ingest"))? {
                        Some(v) => {
                            serde_json::from_slice(v.value()).map_err(corrupt("device status"))?
                        }
                        None => DeviceStatus::default(),
                    };
                current.merge(delta);
                let json = serde_json::to_vec(&current).map_err(corrupt("device status"))?;
                status
                    .insert(id.as_str(), json.as_slice())
                    .map_err(db("committing ingest"))?;
            }
            let mut positions = txn.open_table(POSITIONS).map_err(db("committing ingest"))?;
            positions
                .insert(consumer, position)
                .map_err(db("committing ingest"))?;
        }
        txn.commit().map_err(db("committing ingest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str) -> Device {
        Device {
            id: DeviceId::new(id).expect("id"),
            name: "Room 1.12".into(),
            transport: Transport::Mqtt,
            domain: Domain::new("building").expect("domain"),
            location: Some(Location::new(56.15, 10.2).expect("loc")),
            tags: BTreeMap::new(),
            codec: Codec::Auto,
            created_at: 0,
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
