//! Opening the registry: the database file, and every table created in one transaction, so each kind of
//! metadata (its own file here) can rely on its tables existing; in the same transaction the secrets key is
//! checked and rows written in clear before sealing are sealed (`sealing`).
use super::{
    DEVICE_SECRETS, DEVICE_STATUS, DEVICES, POSITIONS, Registry, TOKENS, audit_log, buildings,
    codecs, datasets, downlinks, gateways, integrations, lorawan, orgs, sessions, targets, tokens,
    unsealed,
};
use crate::error::db;
use crate::{Result, SecretKey};
use redb::Database;
use std::path::Path;

impl Registry {
    /// Tests: a registry under a fixed secrets key.
    #[cfg(test)]
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Self::open_sealed(path, SecretKey::from_bytes([7; 32]))
    }

    /// Opens (or creates) the registry; its secrets are sealed under `key`. [`crate::Error::SecretsKey`] if
    /// `key` does not open the secrets already sealed.
    pub(crate) fn open_sealed(path: &Path, key: SecretKey) -> Result<Self> {
        let mut database = Database::create(path).map_err(db("opening the registry"))?;
        let txn = database.begin_write().map_err(db("opening the registry"))?;
        let sealed = {
            txn.open_table(DEVICES).map_err(db("creating tables"))?;
            txn.open_table(DEVICE_SECRETS)
                .map_err(db("creating tables"))?;
            txn.open_table(DEVICE_STATUS)
                .map_err(db("creating tables"))?;
            txn.open_table(TOKENS).map_err(db("creating tables"))?;
            txn.open_table(tokens::TOKEN_SERIES)
                .map_err(db("creating tables"))?;
            txn.open_table(POSITIONS).map_err(db("creating tables"))?;
            txn.open_table(sessions::SESSIONS)
                .map_err(db("creating tables"))?;
            txn.open_table(codecs::CODECS)
                .map_err(db("creating tables"))?;
            txn.open_table(buildings::BUILDINGS)
                .map_err(db("creating tables"))?;
            txn.open_table(datasets::DATASETS)
                .map_err(db("creating tables"))?;
            txn.open_table(gateways::GATEWAYS)
                .map_err(db("creating tables"))?;
            txn.open_table(downlinks::DOWNLINKS)
                .map_err(db("creating tables"))?;
            txn.open_table(downlinks::DOWNLINK_IDS)
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
            txn.open_table(integrations::INTEGRATIONS)
                .map_err(db("creating tables"))?;
            txn.open_table(integrations::INTEGRATION_SECRETS)
                .map_err(db("creating tables"))?;
            txn.open_table(integrations::INTEGRATION_REMOTE_PASSWORDS)
                .map_err(db("creating tables"))?;
            txn.open_table(tokens::TOKEN_USED)
                .map_err(db("creating tables"))?;
            txn.open_table(orgs::MEMBERS)
                .map_err(db("creating tables"))?;
            txn.open_table(audit_log::AUDIT)
                .map_err(db("creating tables"))?;
            targets::create_tables(&txn)?;
            Self::ensure_default_org(&txn)?;
            Self::open_notify_tables(&txn, &key)?;
            let sealed = unsealed::check_and_seal(&txn, &key)?;
            Self::index_dev_euis(&txn, &key)?;
            sealed
        };
        txn.commit().map_err(db("creating tables"))?;
        if sealed.any() {
            // redb does not overwrite the pages it frees: compacting moves live pages over them and cuts
            // the file, so the old clear copies do not linger in it.
            database.compact().map_err(db("compacting the registry"))?;
            tracing::info!(
                "sealed {} LoRaWAN sessions, {} OTAA root keys and {} integration passwords under the \
                 secrets key",
                sealed.sessions,
                sealed.otaa_keys,
                sealed.passwords
            );
        }
        Ok(Self {
            db: database,
            lorawan_generation: std::sync::atomic::AtomicU64::new(0),
            changes: std::sync::atomic::AtomicU64::new(0),
            secrets: key,
            status_log: Default::default(),
        })
    }
}
