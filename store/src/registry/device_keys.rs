//! Device keys: random per-device keys (`bdk_` + 40 characters) a device pushes its uplinks over HTTP with
//! instead of its MQTT password. Shown once; only their SHA-256 is stored (240 random bits: a fast hash is
//! enough, and it lets each push find its key in O(1)). A key names its device and nothing else: it cannot
//! read, and the API takes it for `POST /api/v1/devices/{id}/up` only. Revoked keys are kept (listed with
//! when they were revoked) until the device is deleted, which removes them all.
use super::{DEVICES, Registry};
use crate::error::{corrupt, db};
use crate::{Result, secret};
use bydata_schemas::{DeviceId, UnixNanos};
use redb::{ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction};
use serde::{Deserialize, Serialize};

/// SHA-256 of the key (hex) → the key's description.
const DEVICE_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_keys");
/// `{device}/{key id}` → the key's hash, so a device's keys are one range (device ids hold no `/`).
const DEVICE_KEY_IDS: TableDefinition<&str, &str> = TableDefinition::new("device_key_ids");

/// What every device key starts with, so a key in a log or a paste is recognisable for what it is.
pub const DEVICE_KEY_PREFIX: &str = "bdk_";
const KEY_LEN: usize = 40;

/// A device key's description; the key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKey {
    pub id: String,
    pub device: DeviceId,
    pub name: String,
    pub created_at: UnixNanos,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixNanos>,
}

fn range_of(device: &DeviceId) -> (String, String) {
    // `0` is the character after `/`: the range holds exactly `{device}/…`.
    (format!("{device}/"), format!("{device}0"))
}

/// The device's keys in a read transaction (none while the tables do not exist yet).
fn keys_in(txn: &ReadTransaction, device: &DeviceId) -> Result<Vec<DeviceKey>> {
    let context = "listing device keys";
    let ids = match txn.open_table(DEVICE_KEY_IDS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db(context)(e)),
    };
    let keys = txn.open_table(DEVICE_KEYS).map_err(db(context))?;
    let (from, to) = range_of(device);
    let mut out = Vec::new();
    for row in ids.range(from.as_str()..to.as_str()).map_err(db(context))? {
        let (_, hash) = row.map_err(db(context))?;
        if let Some(v) = keys.get(hash.value()).map_err(db(context))? {
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("device key"))?);
        }
    }
    Ok(out)
}

impl Registry {
    /// Makes a key for `device` (which must exist); the key is returned once and only its hash is kept.
    pub(crate) fn create_device_key(
        &self,
        device: &DeviceId,
        name: String,
        now: UnixNanos,
    ) -> Result<(DeviceKey, String)> {
        let context = "creating a device key";
        let secret = format!("{DEVICE_KEY_PREFIX}{}", secret::generate(KEY_LEN));
        let info = DeviceKey {
            id: secret::generate(12).to_lowercase(),
            device: device.clone(),
            name,
            created_at: now,
            revoked_at: None,
        };
        crate::audit::amend(|e| {
            e.object = format!("device:{device}");
            e.after["id"] = serde_json::json!(info.id);
        });
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let devices = txn.open_table(DEVICES).map_err(db(context))?;
            if devices.get(device.as_str()).map_err(db(context))?.is_none() {
                return Err(crate::Error::NotFound {
                    what: "device",
                    id: device.to_string(),
                });
            }
            let hash = secret::token_hash(&secret);
            let json = serde_json::to_vec(&info).map_err(corrupt("device key"))?;
            txn.open_table(DEVICE_KEYS)
                .map_err(db(context))?
                .insert(hash.as_str(), json.as_slice())
                .map_err(db(context))?;
            txn.open_table(DEVICE_KEY_IDS)
                .map_err(db(context))?
                .insert(format!("{device}/{}", info.id).as_str(), hash.as_str())
                .map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok((info, secret))
    }

    /// A device's keys, revoked ones included, oldest first.
    pub(crate) fn device_keys(&self, device: &DeviceId) -> Result<Vec<DeviceKey>> {
        let txn = self.db.begin_read().map_err(db("listing device keys"))?;
        let mut keys = keys_in(&txn, device)?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    /// Revokes a device's key (at once: the next push with it is refused); `None` if the device has no such
    /// key. Revoking a revoked key keeps its first revocation time.
    pub(crate) fn revoke_device_key(
        &self,
        device: &DeviceId,
        id: &str,
        now: UnixNanos,
    ) -> Result<Option<DeviceKey>> {
        let context = "revoking a device key";
        let txn = self.db.begin_write().map_err(db(context))?;
        let revoked = {
            let ids = txn.open_table(DEVICE_KEY_IDS).map_err(db(context))?;
            let mut keys = txn.open_table(DEVICE_KEYS).map_err(db(context))?;
            let hash = ids
                .get(format!("{device}/{id}").as_str())
                .map_err(db(context))?
                .map(|h| h.value().to_owned());
            let found: Option<DeviceKey> = match &hash {
                Some(hash) => keys
                    .get(hash.as_str())
                    .map_err(db(context))?
                    .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device key")))
                    .transpose()?,
                None => None,
            };
            match (hash, found) {
                (Some(hash), Some(mut key)) => {
                    key.revoked_at = key.revoked_at.or(Some(now));
                    let json = serde_json::to_vec(&key).map_err(corrupt("device key"))?;
                    keys.insert(hash.as_str(), json.as_slice())
                        .map_err(db(context))?;
                    Some(key)
                }
                _ => None,
            }
        };
        self.commit_if(txn, context, revoked.is_some())?;
        Ok(revoked)
    }

    /// The key's description if `secret` is a device key (revoked or not: the caller says which).
    pub(crate) fn device_key(&self, secret: &str) -> Result<Option<DeviceKey>> {
        let context = "checking a device key";
        let txn = self.db.begin_read().map_err(db(context))?;
        let keys = match txn.open_table(DEVICE_KEYS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(context)(e)),
        };
        keys.get(secret::token_hash(secret).as_str())
            .map_err(db(context))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device key")))
            .transpose()
    }

    /// Removes all of a device's keys, in the transaction that deletes the device (so a device created
    /// again with the same id does not inherit them).
    pub(super) fn remove_device_keys(txn: &WriteTransaction, device: &DeviceId) -> Result<()> {
        let context = "deleting a device";
        let mut ids = txn.open_table(DEVICE_KEY_IDS).map_err(db(context))?;
        let mut keys = txn.open_table(DEVICE_KEYS).map_err(db(context))?;
        let (from, to) = range_of(device);
        let rows: Vec<(String, String)> = ids
            .range(from.as_str()..to.as_str())
            .map_err(db(context))?
            .map(|row| {
                row.map(|(k, v)| (k.value().to_owned(), v.value().to_owned()))
                    .map_err(db(context))
            })
            .collect::<Result<_>>()?;
        for (id, hash) in rows {
            ids.remove(id.as_str()).map_err(db(context))?;
            keys.remove(hash.as_str()).map_err(db(context))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_listed_per_device_revoked_and_deleted_with_the_device() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(&dir.path().join("r.redb")).expect("open");
        let id = DeviceId::new("door-1").expect("id");
        // A device whose id extends another's must not see its keys.
        let neighbour = DeviceId::new("door-10").expect("id");
        assert!(reg.device_keys(&id).expect("none yet").is_empty());
        assert_eq!(reg.device_key("bdk_nothing").expect("none yet"), None);
        assert!(matches!(
            reg.create_device_key(&id, "k".into(), 1),
            Err(crate::Error::NotFound { .. })
        ));
        for d in ["door-1", "door-10"] {
            reg.create_device(super::super::tests::device(d))
                .expect("device");
        }
        let (key, secret) = reg
            .create_device_key(&id, "gateway".into(), 5)
            .expect("key");
        reg.create_device_key(&neighbour, "other".into(), 6)
            .expect("key");
        assert!(secret.starts_with(DEVICE_KEY_PREFIX) && secret.len() == 44);
        assert_eq!(reg.device_key(&secret).expect("found"), Some(key.clone()));
        assert_eq!(reg.device_keys(&id).expect("list"), vec![key.clone()]);
        let raw = std::fs::read(dir.path().join("r.redb")).expect("file");
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the key itself is not stored"
        );
        let revoked = reg
            .revoke_device_key(&id, &key.id, 9)
            .expect("revoke")
            .expect("exists");
        assert_eq!(revoked.revoked_at, Some(9));
        assert_eq!(
            reg.revoke_device_key(&id, &key.id, 11)
                .expect("again")
                .and_then(|k| k.revoked_at),
            Some(9)
        );
        assert_eq!(
            reg.revoke_device_key(&neighbour, &key.id, 9).expect("x"),
            None
        );
        assert_eq!(
            reg.device_key(&secret)
                .expect("found")
                .and_then(|k| k.revoked_at),
            Some(9)
        );
        assert!(reg.delete_device(&id).expect("delete"));
        assert_eq!(reg.device_key(&secret).expect("gone"), None);
        assert!(reg.device_keys(&id).expect("none").is_empty());
        assert_eq!(reg.device_keys(&neighbour).expect("kept").len(), 1);
    }
}
