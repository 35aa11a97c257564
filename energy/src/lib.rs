//! Real Danish energy data in: Energinet's emission factors and DataHub's hourly meter data, fetched on a
//! schedule and written to the series store like any other data.
//!
//! - [`eds`]: Energi Data Service, datasets `CO2Emis` (measured) and `CO2EmisProg` (prognosis), 5-minute g CO2e
//!   per kWh per price area → series `emission_factor,area=DK1|DK2,source=CO2Emis|CO2EmisProg value`, at each
//!   interval's start (UTC). No organisation tag: emission factors are everyone's.
//! - [`eloverblik`]: the customer or third-party API, hourly kWh of the configured metering points →
//!   `energy_kwh,building=…,metering_point=…,org=…,reading=interval,source=eloverblik value`, at each hour's start,
//!   the consumption of that hour; the `org` tag makes the series the configured organisation's.
//!
//! [`run`] loops until shutdown: each import asks for what its cursor (in the registry) says is missing, a
//! window back for late or corrected values, writes the points (a point written twice is one point: the store
//! replaces a series' value at the same time) and then commits the cursor. Nothing runs unless configured.
mod config;
pub mod eds;
pub mod eloverblik;
mod error;
mod http;
mod import;
mod metrics;

pub use config::{Config, EloverblikConfig, EmissionFactors, MeteringPoint};
pub use eloverblik::RefreshToken;
pub use error::{Error, Result};
pub use import::{Deps, run};
pub use metrics::Metrics;
