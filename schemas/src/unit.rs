use crate::device::string_newtype;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A unit symbol, as in the SenML units registry (RFC 8428 §12.1): `Cel`, `%RH`, `ppm`, `kWh`, `W`, `count`…
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Unit(String);
string_newtype!(Unit, "unit", check_unit);

fn check_unit(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() || s.len() > 32 {
        Err("must be 1 to 32 characters")
    } else if s.chars().any(|c| c.is_control() || c == ',' || c == '"') {
        Err("may not contain control characters, ',' or '\"'")
    } else {
        Ok(())
    }
}

impl Unit {
    /// The unit bydata assumes for a well-known measurement name when the payload does not say
    /// (flat JSON objects carry no units). Unknown names have no unit.
    pub fn for_measurement(measurement: &str) -> Option<Unit> {
        let symbol = match measurement {
            "temperature" => "Cel",
            "humidity" => "%RH",
            "co2" => "ppm",
            "energy_kwh" => "kWh",
            "power_w" | "power" => "W",
            "voltage" => "V",
            "current" => "A",
            "pressure" => "Pa",
            "illuminance" | "lux" => "lx",
            "vehicles" | "people" | "count" => "count",
            "speed_kmh" => "km/h",
            "battery" => "%EL",
            "water_m3" | "volume_m3" => "m3",
            "heat_kwh" => "kWh",
            _ => return None,
        };
        Some(Unit(symbol.to_owned()))
    }
}
