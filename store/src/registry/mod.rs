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

mod buildings;
mod codecs;
mod datasets;
mod gateways;
mod integrations;
mod lorawan;
mod tokens;
pub use buildings::Building;
pub use codecs::{CodecSummary, StoredCodec};
pub use datasets::StoredDataset;
pub use gateways::{Gateway, GatewayStatus};
pub use integrations::{Integration, IntegrationMode};
pub use lorawan::{ExternalDevice, LorawanSession, OtaaDevice};
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
    /// The warnings of the last decode that had any (a JavaScript codec's `warnings`, skipped keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_warning: Option<LastError>,
    /// Which codec (and version) decoded the device's uplinks, as runs of receive time: every stored value
    /// of the device was produced by the run whose span holds its uplink's receive time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoded_by: Vec<DecodeRun>,
    /// The gateways that heard the last LoRaWAN uplink, with their signal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_radio: Vec<bydata_schemas::Reception>,
}

/// A span of uplinks (by receive time) decoded by one codec version, e.g. `js:elsys@3` or `cayenne`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeRun {
    pub codec: String,
    pub from: UnixNanos,
    pub to: UnixNanos,
    pub uplinks: u64,
}

/// Most runs kept per device; beyond it the two oldest are folded into one (labelled with both codecs).
const MAX_DECODE_RUNS: usize = 64;

impl DeviceStatus {
    /// Records that the uplink received at `time` was decoded by `codec`.
    pub fn decoded_with(&mut self, codec: &str, time: UnixNanos) {
        push_run(
            &mut self.decoded_by,
            DecodeRun {
                codec: codec.to_owned(),
                from: time,
                to: time,
                uplinks: 1,
            },
        );
    }

    fn merge(&mut self, d: &DeviceStatus) {
        for run in &d.decoded_by {
            push_run(&mut self.decoded_by, run.clone());
        }
        if d.last_warning.is_some() {
            self.last_warning = d.last_warning.clone();
        }
        if !d.last_radio.is_empty() {
            self.last_radio = d.last_radio.clone();
        }
        self.last_seen = self.last_seen.max(d.last_seen);
        self.last_decoded = self.last_decoded.max(d.last_decoded);
        self.received += d.received;
        self.decoded += d.decoded;
        self.rejected += d.rejected;
        self.values_stored += d.values_stored;
        // Refusals at the edges and decode errors arrive by different paths: keep the latest.
        if let Some(e) = &d.last_error
            && self
                .last_error
                .as_ref()
                .is_none_or(|mine| e.time >= mine.time)
        {
            self.last_error = Some(e.clone());
        }
    }
}

/// `runs` with `[from, to)` taken out of each (the part before and the part after stay, each with the
/// uplinks of `times` that fall in it subtracted from the whole) and a run of `codec` over the span.
fn replace_span(
    runs: &[DecodeRun],
    codec: &str,
    from: UnixNanos,
    to: UnixNanos,
    times: &[UnixNanos],
) -> Vec<DecodeRun> {
    let in_span = |a: UnixNanos, b: UnixNanos| {
        times
            .iter()
            .filter(|t| **t >= a && **t <= b && **t >= from && **t < to)
            .count() as u64
    };
    let mut out: Vec<DecodeRun> = Vec::new();
    let mut placed = false;
    for run in runs {
        if run.to < from || run.from >= to {
            if run.from >= to && !placed {
                out.push(span_run(codec, from, to, times));
                placed = true;
            }
            out.push(run.clone());
            continue;
        }
        let left = run.uplinks.saturating_sub(in_span(run.from, run.to));
        if run.from < from {
            out.push(DecodeRun {
                codec: run.codec.clone(),
                from: run.from,
                to: from - 1,
                uplinks: if run.to >= to { left / 2 } else { left },
            });
        }
        if !placed {
            out.push(span_run(codec, from, to, times));
            placed = true;
        }
        if run.to >= to {
            out.push(DecodeRun {
                codec: run.codec.clone(),
                from: to,
                to: run.to,
                uplinks: if run.from < from {
                    left - left / 2
                } else {
                    left
                },
            });
        }
    }
    if !placed {
        out.push(span_run(codec, from, to, times));
    }
    out
}

fn span_run(codec: &str, from: UnixNanos, to: UnixNanos, times: &[UnixNanos]) -> DecodeRun {
    DecodeRun {
        codec: codec.to_owned(),
        from: times.iter().copied().min().unwrap_or(from),
        to: times.iter().copied().max().unwrap_or(to - 1),
        uplinks: times.len() as u64,
    }
}

fn push_run(runs: &mut Vec<DecodeRun>, run: DecodeRun) {
    match runs.last_mut() {
        Some(last) if last.codec == run.codec && run.from >= last.from => {
            last.to = last.to.max(run.to);
            last.uplinks += run.uplinks;
        }
        _ => runs.push(run),
    }
    if runs.len() > MAX_DECODE_RUNS {
        let second = runs.remove(1);
        let first = &mut runs[0];
        if first.codec != second.codec {
            first.codec = format!("{} / {}", first.codec, second.codec);
        }
        first.to = first.to.max(second.to);
        first.uplinks += second.uplinks;
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
            txn.open_table(tokens::TOKEN_SERIES)
                .map_err(db("creating tables"))?;
            txn.open_table(POSITIONS).map_err(db("creating tables"))?;
            txn.open_table(codecs::CODECS)
                .map_err(db("creating tables"))?;
            txn.open_table(buildings::BUILDINGS)
                .map_err(db("creating tables"))?;
            txn.open_table(datasets::DATASETS)
                .map_err(db("creating tables"))?;
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
            txn.open_table(lorawan::DEV_EUIS)
                .map_err(db("creating tables"))?;
            txn.open_table(lorawan::EXTERNAL)
                .map_err(db("creating tables"))?;
            txn.open_table(lorawan::LORAWAN_EXTERNAL_DEVICES)
                .map_err(db("creating tables"))?;
            Self::index_dev_euis(&txn)?;
            txn.open_table(integrations::INTEGRATIONS)
                .map_err(db("creating tables"))?;
            txn.open_table(integrations::INTEGRATION_SECRETS)
                .map_err(db("creating tables"))?;
        }
        txn.commit().map_err(db("creating tables"))?;
        Ok(Self { db: database })
    }

    /// Changes a device's codec; `false` if the device does not exist.
    pub fn set_codec(&self, id: &DeviceId, codec: Codec) -> Result<Option<Device>> {
        let txn = self.db.begin_write().map_err(db("changing a codec"))?;
        let updated = {
            let mut devices = txn.open_table(DEVICES).map_err(db("changing a codec"))?;
            let current: Option<Device> = devices
                .get(id.as_str())
                .map_err(db("changing a codec"))?
                .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device")))
                .transpose()?;
            match current {
                None => None,
                Some(mut device) => {
                    device.codec = codec;
                    let json = serde_json::to_vec(&device).map_err(corrupt("device"))?;
                    devices
                        .insert(id.as_str(), json.as_slice())
                        .map_err(db("changing a codec"))?;
                    Some(device)
                }
            }
        };
        txn.commit().map_err(db("changing a codec"))?;
        Ok(updated)
    }

    /// Records that the uplinks of `id` received in `[from, to)` (at `times`) are now decoded by `codec`:
    /// earlier runs lose that span (and the uplinks in it), and a run for `codec` covers it.
    pub fn record_redecode(
        &self,
        id: &DeviceId,
        codec: &str,
        from: UnixNanos,
        to: UnixNanos,
        times: &[UnixNanos],
    ) -> Result<()> {
        let context = "recording a re-decode";
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut status = txn.open_table(DEVICE_STATUS).map_err(db(context))?;
            let mut current: DeviceStatus = match status.get(id.as_str()).map_err(db(context))? {
                Some(v) => serde_json::from_slice(v.value()).map_err(corrupt("device status"))?,
                None => DeviceStatus::default(),
            };
            current.decoded_by = replace_span(&current.decoded_by, codec, from, to, times);
            let json = serde_json::to_vec(&current).map_err(corrupt("device status"))?;
            status
                .insert(id.as_str(), json.as_slice())
                .map_err(db(context))?;
        }
        txn.commit().map_err(db(context))
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
    pub fn device_password_hash(&self, id: &DeviceId) -> Result<Option<String>> {
        let txn = self.db.begin_read().map_err(db("checking a password"))?;
        let secrets = txn
            .open_table(DEVICE_SECRETS)
            .map_err(db("checking a password"))?;
        Ok(secrets
            .get(id.as_str())
            .map_err(db("checking a password"))?
            .map(|h| h.value().to_owned()))
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
        merge_statuses(&txn, deltas.iter(), "committing ingest")?;
        {
            let mut positions = txn.open_table(POSITIONS).map_err(db("committing ingest"))?;
            positions
                .insert(consumer, position)
                .map_err(db("committing ingest"))?;
        }
        txn.commit().map_err(db("committing ingest"))
    }

    /// Adds status changes that did not come through the journal (refusals at the edges, aggregated), in one
    /// transaction. Changes for devices that no longer exist are dropped.
    pub fn add_statuses<'a>(
        &self,
        deltas: impl IntoIterator<Item = (&'a DeviceId, &'a DeviceStatus)>,
    ) -> Result<()> {
        let txn = self.db.begin_write().map_err(db("recording refusals"))?;
        merge_statuses(&txn, deltas, "recording refusals")?;
        txn.commit().map_err(db("recording refusals"))
    }
}

/// Merges each delta into its device's stored status, inside `txn`.
fn merge_statuses<'a>(
    txn: &redb::WriteTransaction,
    deltas: impl IntoIterator<Item = (&'a DeviceId, &'a DeviceStatus)>,
    context: &'static str,
) -> Result<()> {
    let devices = txn.open_table(DEVICES).map_err(db(context))?;
    let mut status = txn.open_table(DEVICE_STATUS).map_err(db(context))?;
    for (id, delta) in deltas {
        if devices.get(id.as_str()).map_err(db(context))?.is_none() {
            continue;
        }
        let mut current: DeviceStatus = match status.get(id.as_str()).map_err(db(context))? {
            Some(v) => serde_json::from_slice(v.value()).map_err(corrupt("device status"))?,
            None => DeviceStatus::default(),
        };
        current.merge(delta);
        let json = serde_json::to_vec(&current).map_err(corrupt("device status"))?;
        status
            .insert(id.as_str(), json.as_slice())
            .map_err(db(context))?;
    }
    Ok(())
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
