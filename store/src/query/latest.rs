//! A device's newest value of every series (`GET /api/v1/devices/{id}/latest`).
use super::params::DEFAULT_TZ;
use super::render::time_in;
use crate::Result;
use crate::series::{SeriesFilter, SeriesReader};
use bydata_schemas::{DeviceId, MeasurementName, Unit};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// One series' newest value. Its fields are in the order of the JSON keys the API has always written.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Latest {
    pub field: MeasurementName,
    pub measurement: MeasurementName,
    /// RFC 3339, in Europe/Copenhagen.
    pub time: String,
    pub unit: Option<Unit>,
    pub value: f64,
}

/// The newest value of each of `device`'s series, with unit and time.
/// A device's newest value of each of its series that `scope` sees (`None`: all).
pub async fn latest(
    reader: &dyn SeriesReader,
    device: &DeviceId,
    scope: Option<std::sync::Arc<crate::series::Scope>>,
) -> Result<Vec<Latest>> {
    let filter = SeriesFilter {
        scope,
        measurement: None,
        field: None,
        tags: BTreeMap::from([("device".to_owned(), device.to_string())]),
    };
    let tz: Tz = DEFAULT_TZ.parse().unwrap_or(Tz::UTC);
    let mut latest = Vec::new();
    for s in reader.series(&filter).await? {
        if let Some((t, value)) = reader.last_before(&s.key, i64::MAX).await? {
            latest.push(Latest {
                field: s.key.field,
                measurement: s.key.measurement,
                time: time_in(tz, t),
                unit: s.unit,
                value,
            });
        }
    }
    Ok(latest)
}
