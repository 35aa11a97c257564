//! LoRaWAN devices' network sessions, keyed by DevAddr (what a frame carries in clear): the session keys and
//! the frame counters. Keys are secrets: their rows are sealed under the secrets key (`sealing`), and they are
//! never returned by the API or logged (`Debug` redacts them). The uplink counters of accepted frames are committed in groups, before the frames
//! are journaled, so a frame replayed after a crash is refused.
use super::sealing::{open_json, seal_json};
use super::{DEVICES, Device, Registry};
use crate::error::{corrupt, db};
use crate::{Error, Result, SecretKey};
use bydata_schemas::{DeviceId, Eui64, IntegrationId};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// DevAddr (8 hex digits) → session (sealed JSON).
pub(super) const LORAWAN_SESSIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("lorawan_sessions");
/// Device id → its DevAddr, to find the session of a device.
pub(super) const LORAWAN_DEVICES: TableDefinition<&str, &str> =
    TableDefinition::new("lorawan_devices");
/// DevEUI → an OTAA device's root key and the DevNonces it used (sealed JSON).
pub(super) const LORAWAN_OTAA: TableDefinition<&str, &[u8]> = TableDefinition::new("lorawan_otaa");
/// Device id → its DevEUI, for devices served by an external network server.
pub(super) const LORAWAN_EXTERNAL_DEVICES: TableDefinition<&str, &str> =
    TableDefinition::new("lorawan_external_devices");
/// Device id → its DevEUI, for OTAA devices.
pub(super) const LORAWAN_OTAA_DEVICES: TableDefinition<&str, &str> =
    TableDefinition::new("lorawan_otaa_devices");
/// DevEUI → device id, for every LoRaWAN device (ABP, OTAA, or served by an external network server):
/// how ChirpStack and The Things Stack events find their device.
pub(super) const DEV_EUIS: TableDefinition<&str, &str> = TableDefinition::new("lorawan_dev_euis");
/// DevEUI → `ExternalDevice` (JSON): devices whose network server is elsewhere, the only devices integration
/// events may speak for.
pub(super) const EXTERNAL: TableDefinition<&str, &[u8]> = TableDefinition::new("lorawan_external");
/// DevNonces remembered per device (LoRaWAN 1.0.x devices pick them at random; a reuse is refused).
const NONCES_KEPT: usize = 1024;

/// A device served by an external network server, and the integration it must come through (any, if none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalDevice {
    pub device: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<IntegrationId>,
}

/// An OTAA device: what a JoinRequest is checked against.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaaDevice {
    pub device: DeviceId,
    pub dev_eui: Eui64,
    pub join_eui: Eui64,
    #[serde(with = "hex_key")]
    pub app_key: [u8; 16],
    /// DevNonces of accepted joins, oldest first.
    #[serde(default)]
    pub dev_nonces: Vec<u16>,
}

impl std::fmt::Debug for OtaaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtaaDevice")
            .field("device", &self.device)
            .field("dev_eui", &self.dev_eui)
            .field("join_eui", &self.join_eui)
            .field("app_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A LoRaWAN 1.0.x session (ABP, or the result of an OTAA join).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LorawanSession {
    pub device: DeviceId,
    pub dev_eui: Eui64,
    pub dev_addr: u32,
    #[serde(with = "hex_key")]
    pub nwk_s_key: [u8; 16],
    #[serde(with = "hex_key")]
    pub app_s_key: [u8; 16],
    /// The last accepted uplink counter (32 bits), if any.
    pub fcnt_up: Option<u32>,
    pub fcnt_down: u32,
}

impl std::fmt::Debug for LorawanSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LorawanSession")
            .field("device", &self.device)
            .field("dev_eui", &self.dev_eui)
            .field("dev_addr", &format_args!("{:08x}", self.dev_addr))
            .field("keys", &"<redacted>")
            .field("fcnt_up", &self.fcnt_up)
            .field("fcnt_down", &self.fcnt_down)
            .finish()
    }
}

mod hex_key {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(key: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(key))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        <[u8; 16]>::try_from(bytes.as_slice())
            .map_err(|_| serde::de::Error::custom("a key is 16 bytes"))
    }
}

/// Where a new network device's record goes.
struct Record {
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    index: TableDefinition<'static, &'static str, &'static str>,
    key: String,
    what: &'static str,
    dev_eui: Eui64,
}

pub(super) fn addr_key(dev_addr: u32) -> String {
    format!("{dev_addr:08x}")
}

impl Registry {
    /// Registers a LoRaWAN device with its (ABP) session; `Conflict` if the id or the DevAddr is taken.
    pub(crate) fn create_lorawan_device(
        &self,
        device: Device,
        session: LorawanSession,
    ) -> Result<Device> {
        let key = addr_key(session.dev_addr);
        let json = seal_json(
            &self.secrets,
            LORAWAN_SESSIONS,
            &key,
            &session,
            "lorawan session",
        )?;
        let record = Record {
            table: LORAWAN_SESSIONS,
            index: LORAWAN_DEVICES,
            key,
            what: "LoRaWAN DevAddr",
            dev_eui: session.dev_eui,
        };
        let created = self.create_network_device(device, Some(&record), record.dev_eui, &json)?;
        self.sessions_changed();
        Ok(created)
    }

    /// Registers an OTAA LoRaWAN device (no session until it joins); `Conflict` if the id or DevEUI is taken.
    pub(crate) fn create_otaa_device(&self, device: Device, otaa: OtaaDevice) -> Result<Device> {
        let key = otaa.dev_eui.to_string();
        let json = seal_json(&self.secrets, LORAWAN_OTAA, &key, &otaa, "otaa device")?;
        let record = Record {
            table: LORAWAN_OTAA,
            index: LORAWAN_OTAA_DEVICES,
            key,
            what: "DevEUI",
            dev_eui: otaa.dev_eui,
        };
        self.create_network_device(device, Some(&record), record.dev_eui, &json)
    }

    /// Registers a LoRaWAN device whose network server is elsewhere (ChirpStack, The Things Stack): bydata
    /// holds no keys for it and hears it only through an integration, by its DevEUI — through `integration`
    /// alone when one is named.
    pub(crate) fn create_external_lorawan_device(
        &self,
        device: Device,
        dev_eui: Eui64,
        integration: Option<IntegrationId>,
    ) -> Result<Device> {
        let record = ExternalDevice {
            device: device.id.clone(),
            integration,
        };
        let json = serde_json::to_vec(&record).map_err(corrupt("external device"))?;
        let index = Record {
            table: EXTERNAL,
            index: LORAWAN_EXTERNAL_DEVICES,
            key: dev_eui.to_string(),
            what: "DevEUI",
            dev_eui,
        };
        self.create_network_device(device, Some(&index), dev_eui, &json)
    }

    /// Fills the DevEUI index from the ABP sessions and OTAA registrations of a registry written before the
    /// index existed (so a DevEUI stays unique across activations). Part of opening the registry.
    pub(super) fn index_dev_euis(txn: &redb::WriteTransaction, secrets: &SecretKey) -> Result<()> {
        let context = "indexing DevEUIs";
        let mut euis = txn.open_table(DEV_EUIS).map_err(db(context))?;
        if !euis.is_empty().map_err(db(context))? {
            return Ok(());
        }
        let mut found: Vec<(String, String)> = Vec::new();
        let sessions = txn.open_table(LORAWAN_SESSIONS).map_err(db(context))?;
        for row in sessions.iter().map_err(db(context))? {
            let (k, v) = row.map_err(db(context))?;
            let s: LorawanSession = open_json(
                secrets,
                LORAWAN_SESSIONS,
                k.value(),
                v.value(),
                "lorawan session",
            )?;
            found.push((s.dev_eui.to_string(), s.device.to_string()));
        }
        let otaas = txn.open_table(LORAWAN_OTAA).map_err(db(context))?;
        for row in otaas.iter().map_err(db(context))? {
            let (k, v) = row.map_err(db(context))?;
            let o: OtaaDevice =
                open_json(secrets, LORAWAN_OTAA, k.value(), v.value(), "otaa device")?;
            found.push((o.dev_eui.to_string(), o.device.to_string()));
        }
        for (eui, device) in found {
            euis.insert(eui.as_str(), device.as_str())
                .map_err(db(context))?;
        }
        Ok(())
    }

    /// The device an integration event with this DevEUI is for: only devices registered with
    /// `activation: network_server` (bydata's own ABP/OTAA devices are heard through its gateways only).
    pub(crate) fn external_device(&self, dev_eui: &Eui64) -> Result<Option<ExternalDevice>> {
        let txn = self.db.begin_read().map_err(db("reading a DevEUI"))?;
        let table = txn.open_table(EXTERNAL).map_err(db("reading a DevEUI"))?;
        table
            .get(dev_eui.to_string().as_str())
            .map_err(db("reading a DevEUI"))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("external device")))
            .transpose()
    }

    /// One transaction: the device, its DevEUI, its network record under `record.key` if any (all must be
    /// new), and the index from device id to that key.
    fn create_network_device(
        &self,
        device: Device,
        record: Option<&Record>,
        dev_eui: Eui64,
        json: &[u8],
    ) -> Result<Device> {
        let context = "creating a LoRaWAN device";
        let device_json = serde_json::to_vec(&device).map_err(corrupt("device"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut devices = txn.open_table(DEVICES).map_err(db(context))?;
            if devices
                .get(device.id.as_str())
                .map_err(db(context))?
                .is_some()
            {
                return Err(Error::Conflict {
                    what: "device",
                    id: device.id.to_string(),
                });
            }
            let mut euis = txn.open_table(DEV_EUIS).map_err(db(context))?;
            let eui = dev_eui.to_string();
            if euis.get(eui.as_str()).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what: "DevEUI",
                    id: eui,
                });
            }
            if let Some(record) = record {
                let mut records = txn.open_table(record.table).map_err(db(context))?;
                if records
                    .get(record.key.as_str())
                    .map_err(db(context))?
                    .is_some()
                {
                    return Err(Error::Conflict {
                        what: record.what,
                        id: record.key.clone(),
                    });
                }
                records
                    .insert(record.key.as_str(), json)
                    .map_err(db(context))?;
                let mut index = txn.open_table(record.index).map_err(db(context))?;
                index
                    .insert(device.id.as_str(), record.key.as_str())
                    .map_err(db(context))?;
            }
            devices
                .insert(device.id.as_str(), device_json.as_slice())
                .map_err(db(context))?;
            euis.insert(eui.as_str(), device.id.as_str())
                .map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok(device)
    }

    pub(crate) fn otaa_device(&self, dev_eui: &Eui64) -> Result<Option<OtaaDevice>> {
        let txn = self.db.begin_read().map_err(db("reading an OTAA device"))?;
        let otaas = txn
            .open_table(LORAWAN_OTAA)
            .map_err(db("reading an OTAA device"))?;
        let key = dev_eui.to_string();
        let value = otaas
            .get(key.as_str())
            .map_err(db("reading an OTAA device"))?;
        value
            .map(|v| open_json(&self.secrets, LORAWAN_OTAA, &key, v.value(), "otaa device"))
            .transpose()
    }

    /// Completes a join whose MIC checked out: refuses a DevNonce the device used before (`Ok(None)`),
    /// otherwise records it, picks a free DevAddr (`candidates` are tried in order), replaces the device's
    /// previous session with `session(dev_addr)` and returns it — all in one transaction.
    pub(crate) fn complete_join(
        &self,
        dev_eui: &Eui64,
        dev_nonce: u16,
        candidates: &[u32],
        session: impl FnOnce(u32) -> LorawanSession,
    ) -> Result<Option<LorawanSession>> {
        let eui = dev_eui.to_string();
        let txn = self.db.begin_write().map_err(db("completing a join"))?;
        let made = {
            let mut otaas = txn
                .open_table(LORAWAN_OTAA)
                .map_err(db("completing a join"))?;
            let current: Option<OtaaDevice> = otaas
                .get(eui.as_str())
                .map_err(db("completing a join"))?
                .map(|v| open_json(&self.secrets, LORAWAN_OTAA, &eui, v.value(), "otaa device"))
                .transpose()?;
            let Some(mut otaa) = current else {
                return Err(Error::NotFound {
                    what: "OTAA device",
                    id: eui,
                });
            };
            if otaa.dev_nonces.contains(&dev_nonce) {
                return Ok(None);
            }
            otaa.dev_nonces.push(dev_nonce);
            if otaa.dev_nonces.len() > NONCES_KEPT {
                otaa.dev_nonces.remove(0);
            }
            let json = seal_json(&self.secrets, LORAWAN_OTAA, &eui, &otaa, "otaa device")?;
            otaas
                .insert(eui.as_str(), json.as_slice())
                .map_err(db("completing a join"))?;
            Self::remove_session_only(&txn, &otaa.device)?;
            let mut sessions = txn
                .open_table(LORAWAN_SESSIONS)
                .map_err(db("completing a join"))?;
            let mut addr = None;
            for a in candidates {
                if sessions
                    .get(addr_key(*a).as_str())
                    .map_err(db("completing a join"))?
                    .is_none()
                {
                    addr = Some(*a);
                    break;
                }
            }
            let Some(addr) = addr else {
                return Err(Error::Conflict {
                    what: "DevAddr",
                    id: "every candidate address is taken".into(),
                });
            };
            let made = session(addr);
            let key = addr_key(addr);
            let json = seal_json(
                &self.secrets,
                LORAWAN_SESSIONS,
                &key,
                &made,
                "lorawan session",
            )?;
            sessions
                .insert(key.as_str(), json.as_slice())
                .map_err(db("completing a join"))?;
            let mut by_device = txn
                .open_table(LORAWAN_DEVICES)
                .map_err(db("completing a join"))?;
            by_device
                .insert(otaa.device.as_str(), addr_key(addr).as_str())
                .map_err(db("completing a join"))?;
            made
        };
        txn.commit().map_err(db("completing a join"))?;
        self.sessions_changed();
        Ok(Some(made))
    }

    /// Every identifier that names a device or a radio on the air: device ids, DevEUIs, DevAddrs (8 hex
    /// digits), JoinEUIs and gateway EUIs. What open data must never contain.
    pub(crate) fn device_identifiers(&self) -> Result<Vec<String>> {
        let context = "listing device identifiers";
        let mut out: Vec<String> = self
            .devices()?
            .into_iter()
            .map(|d| d.id.to_string())
            .collect();
        out.extend(self.gateways()?.into_iter().map(|g| g.eui.to_string()));
        let txn = self.db.begin_read().map_err(db(context))?;
        let euis = txn.open_table(DEV_EUIS).map_err(db(context))?;
        for row in euis.iter().map_err(db(context))? {
            out.push(row.map_err(db(context))?.0.value().to_owned());
        }
        let sessions = txn.open_table(LORAWAN_SESSIONS).map_err(db(context))?;
        for row in sessions.iter().map_err(db(context))? {
            out.push(row.map_err(db(context))?.0.value().to_owned());
        }
        let otaa = txn.open_table(LORAWAN_OTAA).map_err(db(context))?;
        for row in otaa.iter().map_err(db(context))? {
            let (k, v) = row.map_err(db(context))?;
            let device: OtaaDevice = open_json(
                &self.secrets,
                LORAWAN_OTAA,
                k.value(),
                v.value(),
                "otaa device",
            )?;
            out.push(device.join_eui.to_string());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The session of the device a frame with this DevAddr belongs to.
    pub(crate) fn lorawan_session(&self, dev_addr: u32) -> Result<Option<LorawanSession>> {
        let txn = self
            .db
            .begin_read()
            .map_err(db("reading a LoRaWAN session"))?;
        let sessions = txn
            .open_table(LORAWAN_SESSIONS)
            .map_err(db("reading a LoRaWAN session"))?;
        let key = addr_key(dev_addr);
        let value = sessions
            .get(key.as_str())
            .map_err(db("reading a LoRaWAN session"))?;
        value
            .map(|v| {
                open_json(
                    &self.secrets,
                    LORAWAN_SESSIONS,
                    &key,
                    v.value(),
                    "lorawan session",
                )
            })
            .transpose()
    }

    /// The session of a device, if it is a LoRaWAN device.
    pub(crate) fn lorawan_session_of(&self, device: &DeviceId) -> Result<Option<LorawanSession>> {
        let addr = {
            let txn = self
                .db
                .begin_read()
                .map_err(db("reading a LoRaWAN session"))?;
            let by_device = txn
                .open_table(LORAWAN_DEVICES)
                .map_err(db("reading a LoRaWAN session"))?;
            let value = by_device
                .get(device.as_str())
                .map_err(db("reading a LoRaWAN session"))?;
            value.map(|v| v.value().to_owned())
        };
        match addr.and_then(|a| u32::from_str_radix(&a, 16).ok()) {
            Some(a) => self.lorawan_session(a),
            None => Ok(None),
        }
    }

    /// Removes a device's session and OTAA registration (part of deleting the device).
    pub(super) fn remove_lorawan_session(
        txn: &redb::WriteTransaction,
        device: &DeviceId,
    ) -> Result<()> {
        Self::remove_session_only(txn, device)?;
        let mut euis = txn.open_table(DEV_EUIS).map_err(db("deleting a device"))?;
        euis.retain(|_, owner| owner != device.as_str())
            .map_err(db("deleting a device"))?;
        let mut external_ids = txn
            .open_table(LORAWAN_EXTERNAL_DEVICES)
            .map_err(db("deleting a device"))?;
        let eui = external_ids
            .remove(device.as_str())
            .map_err(db("deleting a device"))?
            .map(|v| v.value().to_owned());
        if let Some(eui) = eui {
            let mut external = txn.open_table(EXTERNAL).map_err(db("deleting a device"))?;
            external
                .remove(eui.as_str())
                .map_err(db("deleting a device"))?;
        }
        let mut by_device = txn
            .open_table(LORAWAN_OTAA_DEVICES)
            .map_err(db("deleting a device"))?;
        let eui = by_device
            .remove(device.as_str())
            .map_err(db("deleting a device"))?
            .map(|v| v.value().to_owned());
        if let Some(eui) = eui {
            let mut otaas = txn
                .open_table(LORAWAN_OTAA)
                .map_err(db("deleting a device"))?;
            otaas
                .remove(eui.as_str())
                .map_err(db("deleting a device"))?;
        }
        Ok(())
    }

    /// Removes a device's current session, if it has one.
    fn remove_session_only(txn: &redb::WriteTransaction, device: &DeviceId) -> Result<()> {
        let mut by_device = txn
            .open_table(LORAWAN_DEVICES)
            .map_err(db("deleting a device"))?;
        let addr = by_device
            .remove(device.as_str())
            .map_err(db("deleting a device"))?
            .map(|v| v.value().to_owned());
        if let Some(addr) = addr {
            let mut sessions = txn
                .open_table(LORAWAN_SESSIONS)
                .map_err(db("deleting a device"))?;
            sessions
                .remove(addr.as_str())
                .map_err(db("deleting a device"))?;
        }
        Ok(())
    }
}
