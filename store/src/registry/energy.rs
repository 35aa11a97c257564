//! Import cursors of the Danish energy data imports (`bydata-energy`): per import (a dataset of Energi Data
//! Service, a metering point of Eloverblik) how far it is complete, when it last ran and what went wrong.
//!
//! A cursor is committed after the points it covers are durable in the series store, so a `kill -9` between
//! the two only makes the next run fetch those points again; writing a point twice leaves one point.
use super::Registry;
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition, TableError};
use serde::{Deserialize, Serialize};

const ENERGY_CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("energy_cursors");

/// Where one import stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyCursor {
    /// Everything before this instant has been imported (the end of the last interval with a value).
    pub done_until: Option<UnixNanos>,
    /// When the import last ran, successful or not.
    pub last_run_at: Option<UnixNanos>,
    /// What the last run could not do, in the operator's words; `None` when it went well.
    pub last_error: Option<String>,
    /// Points written since the cursor was created.
    pub points: u64,
    /// Records refused since the cursor was created (missing quantities, unparsable values).
    pub refused: u64,
    /// Whose data the import writes (a metering point's organisation); `None` for everyone's (emission factors).
    #[serde(default)]
    pub org: Option<OrgId>,
}

impl Registry {
    pub(crate) fn energy_cursor(&self, key: &str) -> Result<Option<EnergyCursor>> {
        let context = "reading an energy import cursor";
        let txn = self.db.begin_read().map_err(db(context))?;
        // The table is created by the first import, so a registry that never imported has none.
        let table = match txn.open_table(ENERGY_CURSORS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(context)(e)),
        };
        table
            .get(key)
            .map_err(db(context))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("energy cursor")))
            .transpose()
    }

    pub(crate) fn energy_cursors(&self) -> Result<Vec<(String, EnergyCursor)>> {
        let context = "listing energy import cursors";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = match txn.open_table(ENERGY_CURSORS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(context)(e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            let (k, v) = row.map_err(db(context))?;
            let cursor = serde_json::from_slice(v.value()).map_err(corrupt("energy cursor"))?;
            out.push((k.value().to_owned(), cursor));
        }
        Ok(out)
    }

    pub(crate) fn set_energy_cursor(&self, key: &str, cursor: &EnergyCursor) -> Result<()> {
        let context = "saving an energy import cursor";
        let json = serde_json::to_vec(cursor).map_err(corrupt("energy cursor"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(ENERGY_CURSORS).map_err(db(context))?;
            table.insert(key, json.as_slice()).map_err(db(context))?;
        }
        self.commit(txn, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_none_before_the_first_import() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Registry::open(&dir.path().join("r.redb")).expect("open");
        assert_eq!(r.energy_cursor("eds/CO2Emis").expect("read"), None);
        assert!(r.energy_cursors().expect("list").is_empty());
        let c = EnergyCursor {
            done_until: Some(5),
            points: 2,
            ..EnergyCursor::default()
        };
        r.set_energy_cursor("eds/CO2Emis", &c).expect("save");
        assert_eq!(
            r.energy_cursor("eds/CO2Emis").expect("read"),
            Some(c.clone())
        );
        assert_eq!(
            r.energy_cursors().expect("list"),
            vec![("eds/CO2Emis".to_owned(), c)]
        );
    }
}
