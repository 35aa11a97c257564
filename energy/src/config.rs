//! `[energy]`: what to import and from where. Defaults import nothing, so `bydata serve` contacts no outside
//! service unless told to.
use crate::eds::Dataset;
use crate::eloverblik::Api;
use bydata_schemas::{BuildingId, OrgId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;

/// The `[energy]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[energy.emission_factors]`: Energi Data Service.
    pub emission_factors: EmissionFactors,
    /// `[energy.eloverblik]`: DataHub meter data.
    pub eloverblik: EloverblikConfig,
}

/// `[energy.emission_factors]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmissionFactors {
    /// Fetch emission factors (off by default: it contacts api.energidataservice.dk).
    pub enabled: bool,
    /// The API's base URL.
    pub url: String,
    /// Which datasets: `CO2Emis` (measured), `CO2EmisProg` (prognosis).
    pub datasets: Vec<Dataset>,
    /// Price areas: `DK1` (west of the Great Belt), `DK2` (east).
    pub areas: Vec<String>,
    /// Seconds between runs.
    pub every_secs: u64,
    /// How far back the first run starts, in days.
    pub backfill_days: u32,
    /// Minutes before the cursor each run asks for again (late and revised values).
    pub overlap_minutes: u32,
    /// Hours ahead the prognosis is asked for.
    pub prognosis_hours: u32,
    /// Seconds one request may take.
    pub timeout_secs: u64,
}

impl Default for EmissionFactors {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "https://api.energidataservice.dk".to_owned(),
            datasets: vec![Dataset::CO2Emis, Dataset::CO2EmisProg],
            areas: vec!["DK1".to_owned(), "DK2".to_owned()],
            every_secs: 900,
            backfill_days: 7,
            overlap_minutes: 60,
            prognosis_hours: 48,
            timeout_secs: 60,
        }
    }
}

/// `[energy.eloverblik]`: imports run when metering points are listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EloverblikConfig {
    /// `customer` (the municipality's own meters) or `thirdparty` (meters authorised to it).
    pub api: Api,
    /// The API's base URL.
    pub url: String,
    /// A file holding the refresh token made on eloverblik.dk (`BYDATA_ELOVERBLIK_TOKEN` overrides it). Not in
    /// this file, so the configuration can be shared without the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Seconds between runs (a day: DataHub publishes yesterday's values during the morning).
    pub every_secs: u64,
    /// How far back the first run of a metering point starts, in days (DataHub keeps 5 years and this one).
    pub backfill_days: u32,
    /// Days before the cursor each run asks for again (values arrive late and are corrected).
    pub lookback_days: u32,
    /// Days asked for per request while catching up.
    pub days_per_request: u32,
    /// Seconds one request may take.
    pub timeout_secs: u64,
    /// `[[energy.eloverblik.metering_points]]`: which meters, for which building and organisation.
    pub metering_points: Vec<MeteringPoint>,
}

impl Default for EloverblikConfig {
    fn default() -> Self {
        Self {
            api: Api::Customer,
            url: "https://api.eloverblik.dk".to_owned(),
            token_file: None,
            every_secs: 86_400,
            backfill_days: 365,
            lookback_days: 7,
            days_per_request: 31,
            timeout_secs: 120,
            metering_points: Vec::new(),
        }
    }
}

/// One metering point and where its consumption belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteringPoint {
    /// The 18-digit metering point id (GSRN), as on the electricity bill or eloverblik.dk.
    pub id: String,
    /// The registered building whose consumption it is (tag `building`).
    pub building: BuildingId,
    /// The organisation the series belong to (the building's).
    pub org: OrgId,
}

impl Config {
    /// Refuses a configuration that cannot work, naming the setting and what to do.
    pub fn check(&self) -> Result<(), String> {
        let e = &self.emission_factors;
        if e.enabled {
            if e.areas.is_empty() || e.areas.iter().any(|a| a != "DK1" && a != "DK2") {
                return Err(format!(
                    "[energy.emission_factors] areas = {:?}: use \"DK1\" and/or \"DK2\"",
                    e.areas
                ));
            }
            if e.datasets.is_empty() {
                return Err(
                    "[energy.emission_factors] datasets is empty: list \"CO2Emis\" and/or \"CO2EmisProg\""
                        .to_owned(),
                );
            }
            if e.every_secs < 60 {
                return Err("[energy.emission_factors] every_secs must be at least 60".to_owned());
            }
        }
        let o = &self.eloverblik;
        let mut seen = HashSet::new();
        for mp in &o.metering_points {
            if mp.id.len() != 18 || !mp.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "[[energy.eloverblik.metering_points]] id = {:?}: a metering point id is 18 digits (GSRN)",
                    mp.id
                ));
            }
            if !seen.insert(&mp.id) {
                return Err(format!(
                    "[[energy.eloverblik.metering_points]] id = {:?} is listed twice",
                    mp.id
                ));
            }
        }
        if !o.metering_points.is_empty() {
            if o.every_secs < 600 {
                return Err("[energy.eloverblik] every_secs must be at least 600".to_owned());
            }
            if o.days_per_request == 0 || o.days_per_request > 365 {
                return Err("[energy.eloverblik] days_per_request must be 1 to 365".to_owned());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_imports_nothing_and_is_valid() {
        let c = Config::default();
        assert!(!c.emission_factors.enabled);
        assert!(c.eloverblik.metering_points.is_empty());
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn a_bad_metering_point_or_area_is_refused_by_name() {
        let mut c = Config::default();
        c.eloverblik.metering_points.push(MeteringPoint {
            id: "5713".into(),
            building: "town-hall".parse().expect("id"),
            org: OrgId::default_org(),
        });
        assert!(c.check().expect_err("refused").contains("18 digits"));
        c.eloverblik.metering_points.clear();
        c.emission_factors.enabled = true;
        c.emission_factors.areas = vec!["DK3".into()];
        assert!(c.check().expect_err("refused").contains("DK1"));
    }
}
