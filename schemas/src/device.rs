use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! string_newtype {
    ($name:ident, $kind:literal, $check:path) => {
        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                match $check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(Error::Invalid {
                        kind: $kind,
                        value,
                        reason,
                    }),
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use string_newtype;

/// A device's identity: its MQTT client id and username, and the `{id}` in `devices/{id}/…`.
/// 1–64 characters of `a-z 0-9 - _ .`, starting with a letter or digit — so it can never contain an MQTT
/// wildcard (`+`, `#`) or a level separator (`/`), and is safe in a URL path and a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);
string_newtype!(DeviceId, "device id", check_slug);

/// A device's domain (`building`, `energy`, `mobility`, …). A new device names one of [`Domain::KNOWN`]
/// ([`Domain::known`]), so a typo such as `buildings` is refused; reading a stored device accepts any slug, so
/// data written before the list existed still loads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);
string_newtype!(Domain, "domain", check_slug);

impl Domain {
    /// The domains a new device may name: what the demo, the README and city dashboards use.
    pub const KNOWN: [&'static str; 11] = [
        "air",
        "building",
        "energy",
        "environment",
        "lighting",
        "mobility",
        "noise",
        "parking",
        "waste",
        "water",
        "weather",
    ];

    /// A domain for a new device: one of [`Domain::KNOWN`], or an error that lists them.
    pub fn known(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if Self::KNOWN.contains(&value.as_str()) {
            Ok(Self(value))
        } else {
            Err(Error::UnknownDomain { value })
        }
    }
}

/// A building's id: a slug like a device id (`dokk1`, `rådhuset` is not: `raadhuset`). It is also the value of
/// the `building` tag on the building's series, which is how consumption is found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BuildingId(String);
string_newtype!(BuildingId, "building id", check_slug);

/// A tag key: `a-z A-Z 0-9 _ - .`, 1–64 characters; `device` and `domain` are set by bydata itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagKey(String);
string_newtype!(TagKey, "tag key", check_name);

pub(crate) fn check_slug(s: &str) -> std::result::Result<(), &'static str> {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if s.is_empty() || s.len() > 64 {
        Err("must be 1 to 64 characters")
    } else if !first_ok {
        Err("must start with a lowercase letter or a digit")
    } else if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        Err("may only contain a-z, 0-9, '-', '_' and '.'")
    } else {
        Ok(())
    }
}

pub(crate) fn check_name(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 {
        Err("must be 1 to 64 characters")
    } else if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Err("may only contain A-Z, a-z, 0-9, '-', '_' and '.'")
    } else {
        Ok(())
    }
}

/// How a device reaches bydata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Mqtt,
    Lorawan,
    Http,
}

/// How a device's payload bytes become values. `auto` accepts SenML JSON (an array) or a flat JSON object.
///
/// On the wire a codec is a string: `auto`, `senml`, `json`, `cayenne`, or `js:{name}` for an uploaded
/// JavaScript codec (its newest version) and `js:{name}@{version}` for one pinned version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Codec {
    #[default]
    Auto,
    Senml,
    Json,
    /// Cayenne Low Power Payload: binary records of channel, type and value (common on LoRaWAN sensors).
    Cayenne,
    /// An uploaded JavaScript codec (LoRa Alliance TS013 `decodeUplink`).
    Script(ScriptRef),
}

/// A reference to an uploaded script codec: its name and, if pinned, a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScriptRef {
    pub name: CodecName,
    pub version: Option<u32>,
}

/// An uploaded codec's name: a slug like a device id (`elsys-ers`, `decentlab.dl-pr26`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodecName(String);
string_newtype!(CodecName, "codec name", check_slug);

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::Auto => f.write_str("auto"),
            Codec::Senml => f.write_str("senml"),
            Codec::Json => f.write_str("json"),
            Codec::Cayenne => f.write_str("cayenne"),
            Codec::Script(ScriptRef {
                name,
                version: None,
            }) => write!(f, "js:{name}"),
            Codec::Script(ScriptRef {
                name,
                version: Some(v),
            }) => write!(f, "js:{name}@{v}"),
        }
    }
}

impl FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::Invalid {
            kind: "codec",
            value: s.to_owned(),
            reason,
        };
        Ok(match s {
            "auto" => Codec::Auto,
            "senml" => Codec::Senml,
            "json" => Codec::Json,
            "cayenne" => Codec::Cayenne,
            _ => {
                let Some(script) = s.strip_prefix("js:") else {
                    return Err(invalid(
                        "must be auto, senml, json, cayenne, js:<name> or js:<name>@<version>",
                    ));
                };
                let (name, version) = match script.split_once('@') {
                    Some((name, v)) => (
                        name,
                        Some(v.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
                            invalid("the version after @ must be a number from 1")
                        })?),
                    ),
                    None => (script, None),
                };
                Codec::Script(ScriptRef {
                    name: CodecName::new(name)?,
                    version,
                })
            }
        })
    }
}

impl TryFrom<String> for Codec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Codec> for String {
    fn from(c: Codec) -> String {
        c.to_string()
    }
}

/// A WGS84 position, validated on construction and on deserialisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLocation")]
pub struct Location {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct RawLocation {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawLocation> for Location {
    type Error = Error;
    fn try_from(raw: RawLocation) -> Result<Self> {
        Location::new(raw.lat, raw.lon)
    }
}

impl Location {
    pub fn new(lat: f64, lon: f64) -> Result<Self> {
        if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
            Ok(Self { lat, lon })
        } else {
            Err(Error::Location { lat, lon })
        }
    }
    pub fn lat(&self) -> f64 {
        self.lat
    }
    pub fn lon(&self) -> f64 {
        self.lon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids() {
        for ok in ["b7-co2", "meter.12", "0abc", "a_b"] {
            assert!(DeviceId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "-x", "a/b", "a+", "a#", "ü", &"x".repeat(65)] {
            assert!(DeviceId::new(bad).is_err(), "{bad}");
        }
        let id: DeviceId = serde_json::from_str("\"b7\"").expect("valid");
        assert_eq!(id.as_str(), "b7");
        assert!(serde_json::from_str::<DeviceId>("\"a/b\"").is_err());
    }

    #[test]
    fn new_devices_name_a_known_domain() {
        for d in Domain::KNOWN {
            assert!(Domain::known(d).is_ok(), "{d}");
            assert!(Domain::new(d).is_ok(), "{d}");
        }
        let e = Domain::known("buildings").expect_err("a typo");
        assert!(
            e.to_string()
                .contains("\"buildings\" is not one of air, building, energy"),
            "{e}"
        );
        // Stored devices keep loading whatever their domain.
        let stored: Domain = serde_json::from_str("\"harbour\"").expect("any slug loads");
        assert_eq!(stored.as_str(), "harbour");
    }

    #[test]
    fn locations() {
        assert!(Location::new(56.15, 10.2).is_ok());
        assert!(Location::new(91.0, 0.0).is_err());
        assert!(Location::new(0.0, -180.5).is_err());
        assert!(Location::new(f64::NAN, 0.0).is_err());
        assert!(serde_json::from_str::<Location>(r#"{"lat": 100, "lon": 0}"#).is_err());
    }

    #[test]
    fn codecs_are_strings() {
        for s in [
            "auto",
            "senml",
            "json",
            "cayenne",
            "js:elsys-ers",
            "js:dl.pr26@3",
        ] {
            let c: Codec = s.parse().expect(s);
            assert_eq!(c.to_string(), s);
            let json = serde_json::to_string(&c).expect("serialises");
            assert_eq!(serde_json::from_str::<Codec>(&json).expect("parses"), c);
        }
        for bad in [
            "", "lua:x", "js:", "js:Bad", "js:x@0", "js:x@", "js:x@1.2", "JSON",
        ] {
            assert!(bad.parse::<Codec>().is_err(), "{bad}");
        }
    }
}
