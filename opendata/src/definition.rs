//! A dataset's definition, as posted and as stored: the selection of series, the aggregation, DCAT-AP-DK
//! metadata and privacy rules; and a stored dataset parsed once into a [`Dataset`].
use crate::error::{Error, Result};
use bydata_schemas::UnixNanos;
use bydata_schemas::opendata::privacy::Rules;
use bydata_store::StoredDataset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Text in Danish and English.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub da: String,
    pub en: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub measurement: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub devices: Vec<String>,
    /// Series tags published as columns besides `domain` (never a device's or radio's identifier).
    #[serde(default)]
    pub publish_tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Temporal {
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// A bucket width such as `1h`, `1d`, `1mo`.
    pub every: String,
    /// `mean`, `min`, `max`, `sum`, `count`, `first`, `last` or `increase`.
    #[serde(rename = "fn")]
    pub func: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRules {
    #[serde(default)]
    pub location_grid_m: Option<u32>,
    #[serde(default)]
    pub suppress_counts_below: Option<u32>,
    #[serde(default)]
    pub count_measurements: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    /// A slug: `a-z 0-9 - _ .`, 1–64 characters.
    pub id: String,
    pub title: Text,
    pub description: Text,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// EU data themes, e.g. `ENER`, `ENVI`, `TRAN`.
    pub themes: Vec<String>,
    /// `CC0-1.0` or `CC-BY-4.0`.
    pub licence: String,
    /// `HOURLY`, `DAILY`, `WEEKLY`, `MONTHLY`, `QUARTERLY`, `ANNUAL` or `CONT`.
    pub update_frequency: String,
    pub publisher: Agent,
    pub contact_point: Agent,
    /// A URI of a place (e.g. the municipality in DAGI) or a place name.
    #[serde(default)]
    pub spatial: Option<String>,
    /// The covered time (RFC 3339); files are published from `from` (default: when the dataset was defined).
    #[serde(default)]
    pub temporal: Option<Temporal>,
    /// The time zone of buckets and periods (default `Europe/Copenhagen`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Push to the CKAN site configured in `[opendata.ckan]` after each publication.
    #[serde(default)]
    pub ckan: bool,
    pub selection: Selection,
    pub aggregation: Aggregation,
    #[serde(default)]
    pub personal_data: bool,
    #[serde(default)]
    pub privacy: Option<PrivacyRules>,
}

/// A stored dataset with its definition parsed: what publishing, catalogs and the scheduler work from.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub id: String,
    pub created_at: UnixNanos,
    pub definition: NewDataset,
    /// Whose series it publishes: only its organisation's.
    pub org: bydata_schemas::OrgId,
}

impl Dataset {
    /// Parses a stored definition (written by `create`, so always readable unless the registry was edited).
    pub fn parse(stored: &StoredDataset) -> Result<Self> {
        let definition = serde_json::from_value(stored.definition.clone()).map_err(|source| {
            Error::UnreadableDefinition {
                id: stored.id.clone(),
                source,
            }
        })?;
        Ok(Self {
            id: stored.id.clone(),
            created_at: stored.created_at,
            definition,
            org: stored.org.clone(),
        })
    }
}

impl NewDataset {
    /// The privacy rules, none when the definition gives none.
    pub fn rules(&self) -> Rules {
        let p = self.privacy.clone().unwrap_or(PrivacyRules {
            location_grid_m: None,
            suppress_counts_below: None,
            count_measurements: Vec::new(),
        });
        Rules {
            location_grid_m: p.location_grid_m,
            suppress_counts_below: p.suppress_counts_below,
            count_measurements: p.count_measurements,
        }
    }
}
