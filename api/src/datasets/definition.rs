//! A dataset's definition, as posted and as stored: the selection of series, the aggregation, DCAT-AP-DK
//! metadata and privacy rules.
use crate::Error;
use bydata_schemas::opendata::privacy::Rules;
use bydata_store::StoredDataset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Text in Danish and English.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Text {
    pub(crate) da: String,
    pub(crate) en: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Selection {
    pub(crate) measurement: String,
    #[serde(default)]
    pub(crate) field: Option<String>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) devices: Vec<String>,
    /// Series tags published as columns besides `domain` (never a device's or radio's identifier).
    #[serde(default)]
    pub(crate) publish_tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Temporal {
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Aggregation {
    /// A bucket width such as `1h`, `1d`, `1mo`.
    pub(crate) every: String,
    /// `mean`, `min`, `max`, `sum`, `count`, `first`, `last` or `increase`.
    #[serde(rename = "fn")]
    pub(crate) func: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Agent {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivacyRules {
    #[serde(default)]
    pub(crate) location_grid_m: Option<u32>,
    #[serde(default)]
    pub(crate) suppress_counts_below: Option<u32>,
    #[serde(default)]
    pub(crate) count_measurements: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDataset {
    /// A slug: `a-z 0-9 - _ .`, 1–64 characters.
    pub(crate) id: String,
    pub(crate) title: Text,
    pub(crate) description: Text,
    #[serde(default)]
    pub(crate) keywords: Vec<String>,
    /// EU data themes, e.g. `ENER`, `ENVI`, `TRAN`.
    pub(crate) themes: Vec<String>,
    /// `CC0-1.0` or `CC-BY-4.0`.
    pub(crate) licence: String,
    /// `HOURLY`, `DAILY`, `WEEKLY`, `MONTHLY`, `QUARTERLY`, `ANNUAL` or `CONT`.
    pub(crate) update_frequency: String,
    pub(crate) publisher: Agent,
    pub(crate) contact_point: Agent,
    /// A URI of a place (e.g. the municipality in DAGI) or a place name.
    #[serde(default)]
    pub(crate) spatial: Option<String>,
    /// The covered time (RFC 3339); files are published from `from` (default: when the dataset was defined).
    #[serde(default)]
    pub(crate) temporal: Option<Temporal>,
    /// The time zone of buckets and periods (default `Europe/Copenhagen`).
    #[serde(default)]
    pub(crate) time_zone: Option<String>,
    /// Push to the CKAN site configured in `[opendata.ckan]` after each publication.
    #[serde(default)]
    pub(crate) ckan: bool,
    pub(crate) selection: Selection,
    pub(crate) aggregation: Aggregation,
    #[serde(default)]
    pub(crate) personal_data: bool,
    #[serde(default)]
    pub(crate) privacy: Option<PrivacyRules>,
}

impl NewDataset {
    /// A stored definition (written by `create`, so always readable unless the registry was edited).
    pub(crate) fn of(stored: &StoredDataset) -> Result<Self, Error> {
        serde_json::from_value(stored.definition.clone()).map_err(|e| Error::Internal {
            message: format!("dataset {}: stored definition unreadable: {e}", stored.id),
        })
    }

    pub(crate) fn rules(&self) -> Rules {
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
