//! `[opendata]` and `[opendata.ckan]` in the config file: what can be set, and the defaults.
use bydata_schemas::opendata::privacy::Minimums;
use serde::{Deserialize, Serialize};

/// `[opendata]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The public base URL used in catalogs and pushed to CKAN, e.g. `https://iot.aarhus.dk`; empty: the
    /// API's own address.
    pub public_url: String,
    pub catalog_title_da: String,
    pub catalog_title_en: String,
    pub publisher_name: String,
    /// A URI for the publishing organisation (e.g. its website), if any.
    pub publisher_uri: String,
    pub publisher_email: String,
    /// How often the scheduler looks for datasets that are due, in seconds.
    pub schedule_secs: u64,
    /// How long after a period ends late data is waited for before the period's version 1 is written.
    pub settle_secs: u64,
    /// The least a personal-data dataset must do.
    pub minimums: Minimums,
    pub ckan: CkanSettings,
}

/// `[opendata.ckan]`: where datasets with `ckan: true` are pushed. The API token is read from the
/// environment (`BYDATA_CKAN_TOKEN`), never from the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CkanSettings {
    /// The CKAN site, e.g. `https://admin.opendata.dk`; empty: no push.
    pub url: String,
    /// The CKAN organisation that owns the datasets.
    pub organization: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            catalog_title_da: "Åbne IoT-data".into(),
            catalog_title_en: "Open IoT data".into(),
            publisher_name: "bydata".into(),
            publisher_uri: String::new(),
            publisher_email: String::new(),
            schedule_secs: 60,
            settle_secs: 3600,
            minimums: Minimums::default(),
            ckan: CkanSettings::default(),
        }
    }
}
