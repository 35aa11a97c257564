//! A period's published table: what the privacy gate lets through, ready to render.
use crate::identifiers::Identifiers;
use bydata_schemas::{Location, UnixNanos};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// One published series: no device id, only its public id.
#[derive(Debug)]
pub(crate) struct PublicSeries {
    pub(crate) device: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) unit: Option<String>,
    pub(crate) location: Option<Location>,
    /// Bucket start, value (`None`: empty or suppressed), suppressed.
    pub(crate) points: Vec<(UnixNanos, Option<f64>, bool)>,
}

/// A period's answer after the gate, ready to render.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) measurement: String,
    pub(crate) field: String,
    pub(crate) every: String,
    pub(crate) func: String,
    pub(crate) tz: Tz,
    pub(crate) columns: Vec<String>,
    pub(crate) series: Vec<PublicSeries>,
}

impl Table {
    /// The first published tag whose value contains an identifier, if any.
    pub(crate) fn exposes(&self, ids: &Identifiers) -> Option<String> {
        self.series.iter().find_map(|s| {
            s.tags
                .iter()
                .find(|(_, v)| ids.exposed_by(v))
                .map(|(k, _)| k.clone())
        })
    }
}
