//! Open datasets (issue 6): a selection of series, an aggregation, and the DCAT-AP-DK metadata a portal
//! harvests. Stored as given after the API validated it; the privacy gate (`schemas::opendata::privacy`) has
//! already accepted its rules.
use super::Registry;
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

pub(super) const DATASETS: TableDefinition<&str, &[u8]> = TableDefinition::new("datasets");

/// A stored dataset definition: its id and the definition as JSON (the API owns its shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDataset {
    pub id: String,
    pub definition: serde_json::Value,
    pub created_at: UnixNanos,
    #[serde(default)]
    pub org: OrgId,
}

impl Registry {
    /// Stores a new dataset; `Conflict` if the id is taken.
    pub(crate) fn create_dataset(&self, dataset: StoredDataset) -> Result<StoredDataset> {
        let context = "creating a dataset";
        let json = serde_json::to_vec(&dataset).map_err(corrupt("dataset"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(DATASETS).map_err(db(context))?;
            if table
                .get(dataset.id.as_str())
                .map_err(db(context))?
                .is_some()
            {
                return Err(Error::Conflict {
                    what: "dataset",
                    id: dataset.id.clone(),
                });
            }
            table
                .insert(dataset.id.as_str(), json.as_slice())
                .map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok(dataset)
    }

    pub(crate) fn dataset(&self, id: &str) -> Result<Option<StoredDataset>> {
        let txn = self.db.begin_read().map_err(db("reading a dataset"))?;
        let table = txn.open_table(DATASETS).map_err(db("reading a dataset"))?;
        table
            .get(id)
            .map_err(db("reading a dataset"))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("dataset")))
            .transpose()
    }

    pub(crate) fn datasets(&self) -> Result<Vec<StoredDataset>> {
        let txn = self.db.begin_read().map_err(db("listing datasets"))?;
        let table = txn.open_table(DATASETS).map_err(db("listing datasets"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db("listing datasets"))? {
            let (_, v) = row.map_err(db("listing datasets"))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("dataset"))?);
        }
        Ok(out)
    }

    pub(crate) fn delete_dataset(&self, id: &str) -> Result<bool> {
        let context = "deleting a dataset";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(DATASETS).map_err(db(context))?;
            table.remove(id).map_err(db(context))?.is_some()
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }
}
