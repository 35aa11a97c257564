/// Why a value could not become one of the validated domain types.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("invalid {kind} {value:?}: {reason}")]
    Invalid {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(
        "latitude {lat} / longitude {lon} is not a WGS84 position (lat -90..=90, lon -180..=180)"
    )]
    Location { lat: f64, lon: f64 },
    #[error("domain {value:?} is not one of {}", crate::Domain::KNOWN.join(", "))]
    UnknownDomain { value: String },
    #[error("invalid time {value:?}: expected RFC 3339, e.g. 2026-11-22T10:00:00Z")]
    Time { value: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
