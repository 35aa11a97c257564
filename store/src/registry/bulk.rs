//! Onboarding many MQTT devices at once: every device and its password hash in one transaction, so a bulk
//! import either lands whole or not at all (one existing id refuses them all).
use super::{DEVICE_SECRETS, DEVICES, Device, MqttCredentials, PASSWORD_LEN, Registry};
use crate::error::{corrupt, db};
use crate::{Error, Result, secret};
use redb::ReadableTable;

const CONTEXT: &str = "creating devices";

impl Registry {
    /// Registers every device of `devices` with a new MQTT password each (returned once, in order), or none:
    /// an id that exists already, or twice in `devices`, answers `Conflict` naming it and stores nothing.
    pub(crate) fn create_devices(
        &self,
        devices: Vec<Device>,
    ) -> Result<Vec<(Device, MqttCredentials)>> {
        // Argon2id is slow by design: hash before the write transaction, which would otherwise be held open.
        let mut hashed = Vec::with_capacity(devices.len());
        for device in devices {
            let password = secret::generate(PASSWORD_LEN);
            let hash = secret::hash_password(&password)?;
            hashed.push((device, password, hash));
        }
        let txn = self.db.begin_write().map_err(db(CONTEXT))?;
        {
            let mut table = txn.open_table(DEVICES).map_err(db(CONTEXT))?;
            let mut secrets = txn.open_table(DEVICE_SECRETS).map_err(db(CONTEXT))?;
            for (device, _, hash) in &hashed {
                let id = device.id.as_str();
                if table.get(id).map_err(db(CONTEXT))?.is_some() {
                    // Dropping the transaction uncommitted stores nothing.
                    return Err(Error::Conflict {
                        what: "device",
                        id: id.to_owned(),
                    });
                }
                let json = serde_json::to_vec(device).map_err(corrupt("device"))?;
                table.insert(id, json.as_slice()).map_err(db(CONTEXT))?;
                secrets.insert(id, hash.as_str()).map_err(db(CONTEXT))?;
            }
        }
        self.commit(txn, CONTEXT)?;
        Ok(hashed
            .into_iter()
            .map(|(device, password, _)| {
                let creds = MqttCredentials::new(&device.id, password);
                (device, creds)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::device;
    use super::*;

    #[test]
    fn all_or_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(&dir.path().join("registry.redb")).expect("open");
        reg.create_device(device("taken")).expect("create");
        for batch in [
            vec![device("a-1"), device("taken"), device("a-2")],
            vec![device("b-1"), device("b-1")],
        ] {
            assert!(matches!(
                reg.create_devices(batch),
                Err(Error::Conflict { .. })
            ));
            assert_eq!(reg.devices().expect("list").len(), 1, "nothing stored");
        }
        let made = reg
            .create_devices(vec![device("c-1"), device("c-2")])
            .expect("create");
        assert_eq!(made.len(), 2);
        assert_eq!(made[1].1.username, "c-2");
        assert_eq!(reg.devices().expect("list").len(), 3);
        for (d, creds) in &made {
            assert_eq!(
                reg.check_password(&d.id, &creds.password).expect("check"),
                super::super::PasswordCheck::Valid
            );
        }
    }
}
