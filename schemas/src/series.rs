use crate::device::{check_name, string_newtype};
use crate::{Error, Result, Unit, UnixNanos};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A measurement (or field) name: `a-z A-Z 0-9 _ - .`, 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MeasurementName(String);
string_newtype!(MeasurementName, "measurement name", check_name);

/// One decoded value, before it is placed in a series: what a decoder returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub measurement: MeasurementName,
    pub unit: Option<Unit>,
    pub time: UnixNanos,
    pub value: f64,
}

/// InfluxDB's series identity: measurement, tag set, field. Tags are kept sorted, so equal series have equal
/// keys and the same canonical text (`temperature,device=b7,domain=building value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub measurement: MeasurementName,
    pub tags: BTreeMap<String, String>,
    pub field: MeasurementName,
}

impl SeriesKey {
    /// The field every decoded device value is written to.
    pub const DEFAULT_FIELD: &'static str = "value";

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line-protocol escaping keeps the text unambiguous: `,` `=` and space are escaped in tags.
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('=', "\\=")
                .replace(' ', "\\ ")
        };
        f.write_str(&esc(self.measurement.as_str()))?;
        for (k, v) in &self.tags {
            write!(f, ",{}={}", esc(k), esc(v))?;
        }
        write!(f, " {}", esc(self.field.as_str()))
    }
}

/// A value in a series at a time: what the store writes. Writing the same series and time twice keeps one
/// point (the later value), so replaying the journal is idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub series: SeriesKey,
    pub unit: Option<Unit>,
    pub time: UnixNanos,
    pub value: f64,
}
