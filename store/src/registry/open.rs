//! Opening the registry: the database file, and every table created in one transaction, so each kind of
//! metadata (its own file here) can rely on its tables existing.
use super::{
    DEVICE_SECRETS, DEVICE_STATUS, DEVICES, POSITIONS, Registry, TOKENS, buildings, codecs,
    datasets, gateways, integrations, lorawan, orgs, tokens,
};
use crate::Result;
use crate::error::db;
use redb::Database;
use std::path::Path;

impl Registry {
    pub(crate) fn open(path: &Path) -> Result<Self> {
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
            txn.open_table(tokens::TOKEN_USED)
                .map_err(db("creating tables"))?;
            txn.open_table(orgs::MEMBERS)
                .map_err(db("creating tables"))?;
            Self::ensure_default_org(&txn)?;
        }
        txn.commit().map_err(db("creating tables"))?;
        Ok(Self {
            db: database,
            lorawan_generation: std::sync::atomic::AtomicU64::new(0),
        })
    }
}
