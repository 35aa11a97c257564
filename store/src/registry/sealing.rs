//! The registry's sealed rows: LoRaWAN sessions (`lorawan_sessions`), OTAA root keys (`lorawan_otaa`) and
//! the passwords of network servers' brokers (`integration_remote_passwords`) are stored sealed under the
//! registry's [`SecretKey`], bound to their table and row. Sealing and opening a row is here; checking the key
//! and sealing old clear rows when the registry opens is `unsealed`'s.
use crate::error::corrupt;
use crate::sealed::{self, SecretKey};
use crate::{Error, Result};
use redb::{TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(super) type BytesTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// The associated data of a row: its table and key.
pub(super) fn aad(table: BytesTable, row: &str) -> Vec<u8> {
    [table.name().as_bytes(), b"\0", row.as_bytes()].concat()
}

/// `value` as JSON, sealed for `row` of `table`.
pub(super) fn seal_json<T: Serialize>(
    key: &SecretKey,
    table: BytesTable,
    row: &str,
    value: &T,
    what: &'static str,
) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(value).map_err(corrupt(what))?;
    sealed::seal(key, &json, &aad(table, row))
}

/// The value [`seal_json`] sealed for `row` of `table`.
pub(super) fn open_json<T: DeserializeOwned>(
    key: &SecretKey,
    table: BytesTable,
    row: &str,
    value: &[u8],
    what: &'static str,
) -> Result<T> {
    let json = sealed::open(key, value, &aad(table, row)).map_err(|_| Error::Corrupt {
        what,
        detail: "a sealed row does not open (damaged, or moved from another row)".into(),
    })?;
    serde_json::from_slice(&json).map_err(corrupt(what))
}

/// `text` sealed for `row` of `table`.
pub(super) fn seal_text(
    key: &SecretKey,
    table: BytesTable,
    row: &str,
    text: &str,
) -> Result<Vec<u8>> {
    sealed::seal(key, text.as_bytes(), &aad(table, row))
}

/// The text [`seal_text`] sealed for `row` of `table`.
pub(super) fn open_text(
    key: &SecretKey,
    table: BytesTable,
    row: &str,
    value: &[u8],
    what: &'static str,
) -> Result<String> {
    let bytes = sealed::open(key, value, &aad(table, row)).map_err(|_| Error::Corrupt {
        what,
        detail: "a sealed row does not open (damaged, or moved from another row)".into(),
    })?;
    String::from_utf8(bytes).map_err(|_| Error::Corrupt {
        what,
        detail: "not UTF-8".into(),
    })
}
