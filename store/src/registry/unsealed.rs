//! Opening the registry with its secrets key: refuses a key that does not open the rows already sealed, and
//! seals, in one transaction, the rows a bydata before sealing wrote in clear (see `sealing`).
use super::integrations::{INTEGRATION_REMOTE_PASSWORDS, INTEGRATION_SECRETS, INTEGRATIONS};
use super::lorawan::{LORAWAN_OTAA, LORAWAN_SESSIONS};
use super::sealing::{aad, seal_text};
use super::targets::TARGET_SECRETS;
use super::{Integration, IntegrationMode};
use crate::error::{corrupt, db};
use crate::sealed::{self, SecretKey};
use crate::{Error, Result};
use redb::{ReadableTable, ReadableTableMetadata};
use std::path::Path;

/// What [`check_and_seal`] sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sealed {
    pub(super) sessions: usize,
    pub(super) otaa_keys: usize,
    pub(super) passwords: usize,
}

impl Sealed {
    pub(super) fn any(&self) -> bool {
        self.sessions + self.otaa_keys + self.passwords > 0
    }
}

/// Part of opening the registry: refuses a key that does not open the rows already sealed
/// ([`Error::SecretsKey`]), then seals the rows written in clear. Idempotent.
pub(super) fn check_and_seal(txn: &redb::WriteTransaction, key: &SecretKey) -> Result<Sealed> {
    let context = "sealing secrets";
    let mut done = Sealed::default();
    for (table, count) in [
        (LORAWAN_SESSIONS, &mut done.sessions),
        (LORAWAN_OTAA, &mut done.otaa_keys),
    ] {
        let mut rows = txn.open_table(table).map_err(db(context))?;
        let mut clear: Vec<(String, Vec<u8>)> = Vec::new();
        let mut checked = false;
        for row in rows.iter().map_err(db(context))? {
            let (k, v) = row.map_err(db(context))?;
            if !sealed::is_sealed(v.value()) {
                clear.push((k.value().to_owned(), v.value().to_vec()));
            } else if !checked {
                sealed::open(key, v.value(), &aad(table, k.value()))
                    .map_err(|_| Error::SecretsKey)?;
                checked = true;
            }
        }
        for (k, json) in &clear {
            let value = sealed::seal(key, json, &aad(table, k))?;
            rows.insert(k.as_str(), value.as_slice())
                .map_err(db(context))?;
        }
        *count = clear.len();
    }

    let mut passwords = txn
        .open_table(INTEGRATION_REMOTE_PASSWORDS)
        .map_err(db(context))?;
    if let Some(row) = passwords.first().map_err(db(context))? {
        sealed::open(
            key,
            row.1.value(),
            &aad(INTEGRATION_REMOTE_PASSWORDS, row.0.value()),
        )
        .map_err(|_| Error::SecretsKey)?;
    }
    // Data targets' secrets were sealed from the start: only the key is checked.
    let target_secrets = txn.open_table(TARGET_SECRETS).map_err(db(context))?;
    if let Some(row) = target_secrets.first().map_err(db(context))? {
        sealed::open(key, row.1.value(), &aad(TARGET_SECRETS, row.0.value()))
            .map_err(|_| Error::SecretsKey)?;
    }
    // Before sealing, a subscribe integration's password was kept in clear beside inbound password hashes.
    let integrations = txn.open_table(INTEGRATIONS).map_err(db(context))?;
    let mut secrets = txn.open_table(INTEGRATION_SECRETS).map_err(db(context))?;
    let mut clear: Vec<(String, String)> = Vec::new();
    for row in secrets.iter().map_err(db(context))? {
        let (id, secret) = row.map_err(db(context))?;
        let subscribe = match integrations.get(id.value()).map_err(db(context))? {
            Some(v) => matches!(
                serde_json::from_slice::<Integration>(v.value())
                    .map_err(corrupt("integration"))?
                    .mode,
                IntegrationMode::Subscribe { .. }
            ),
            None => false,
        };
        if subscribe {
            clear.push((id.value().to_owned(), secret.value().to_owned()));
        }
    }
    for (id, password) in &clear {
        let value = seal_text(key, INTEGRATION_REMOTE_PASSWORDS, id, password)?;
        passwords
            .insert(id.as_str(), value.as_slice())
            .map_err(db(context))?;
        secrets.remove(id.as_str()).map_err(db(context))?;
    }
    done.passwords = clear.len();
    Ok(done)
}

/// Whether the registry at `path` holds any sealed secret (so a new key would not open it). `false` when
/// there is no registry yet.
pub(super) fn holds_sealed_secrets(path: &Path) -> Result<bool> {
    let context = "looking for sealed secrets";
    if !path.exists() {
        return Ok(false);
    }
    let database = redb::Database::open(path).map_err(db(context))?;
    let txn = database.begin_read().map_err(db(context))?;
    for table in [
        LORAWAN_SESSIONS,
        LORAWAN_OTAA,
        INTEGRATION_REMOTE_PASSWORDS,
        super::notify::channels::CHANNEL_SECRETS,
        TARGET_SECRETS,
    ] {
        let rows = match txn.open_table(table) {
            Ok(rows) => rows,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(db(context)(e)),
        };
        if rows.is_empty().map_err(db(context))? {
            continue;
        }
        for row in rows.iter().map_err(db(context))? {
            if sealed::is_sealed(row.map_err(db(context))?.1.value()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
#[path = "sealing_tests.rs"]
mod tests;
