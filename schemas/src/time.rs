use crate::{Error, Result};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Nanoseconds since the Unix epoch, UTC (InfluxDB's time model: covers 1677..2262).
pub type UnixNanos = i64;

/// Parses an RFC 3339 timestamp into nanoseconds since the epoch.
pub fn parse_rfc3339(value: &str) -> Result<UnixNanos> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| Error::Time {
            value: value.to_owned(),
        })
}

/// Formats nanoseconds since the epoch as RFC 3339 in UTC (`Z`), with only as many fractional digits as needed.
pub fn format_rfc3339(t: UnixNanos) -> String {
    Utc.timestamp_nanos(t)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = parse_rfc3339("2026-11-22T10:00:00.5+01:00").expect("valid");
        assert_eq!(format_rfc3339(t), "2026-11-22T09:00:00.500Z");
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(
            parse_rfc3339("2500-01-01T00:00:00Z").is_err(),
            "outside i64 nanoseconds"
        );
    }
}
