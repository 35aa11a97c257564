//! Municipal buildings: what the climate team's KPIs divide and compare by. A building's series are those
//! tagged `building={id}`; its floor area turns consumption into consumption per m².
use super::Registry;
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{BuildingId, Location, OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

pub(super) const BUILDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("buildings");

/// A registered building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Building {
    pub id: BuildingId,
    pub name: String,
    /// Heated floor area, m².
    pub floor_area_m2: f64,
    /// What it is used as: `office`, `school`, `daycare`, `library`, `sports`, … (free text, for grouping).
    pub kind: String,
    pub location: Option<Location>,
    /// The electricity price area whose emission factors apply (`DK1` west of the Great Belt, `DK2` east).
    pub price_area: String,
    pub created_at: UnixNanos,
    #[serde(default)]
    pub org: OrgId,
}

impl Registry {
    /// Registers a building; `Conflict` if its id is taken.
    pub(crate) fn create_building(&self, building: Building) -> Result<Building> {
        let context = "creating a building";
        let json = serde_json::to_vec(&building).map_err(corrupt("building"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(BUILDINGS).map_err(db(context))?;
            if table
                .get(building.id.as_str())
                .map_err(db(context))?
                .is_some()
            {
                return Err(Error::Conflict {
                    what: "building",
                    id: building.id.to_string(),
                });
            }
            table
                .insert(building.id.as_str(), json.as_slice())
                .map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok(building)
    }

    pub(crate) fn building(&self, id: &BuildingId) -> Result<Option<Building>> {
        let txn = self.db.begin_read().map_err(db("reading a building"))?;
        let table = txn
            .open_table(BUILDINGS)
            .map_err(db("reading a building"))?;
        table
            .get(id.as_str())
            .map_err(db("reading a building"))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("building")))
            .transpose()
    }

    pub(crate) fn buildings(&self) -> Result<Vec<Building>> {
        let txn = self.db.begin_read().map_err(db("listing buildings"))?;
        let table = txn.open_table(BUILDINGS).map_err(db("listing buildings"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db("listing buildings"))? {
            let (_, v) = row.map_err(db("listing buildings"))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("building"))?);
        }
        Ok(out)
    }

    /// Removes a building (its series stay: they are history).
    pub(crate) fn delete_building(&self, id: &BuildingId) -> Result<bool> {
        let context = "deleting a building";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(BUILDINGS).map_err(db(context))?;
            table.remove(id.as_str()).map_err(db(context))?.is_some()
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }
}
