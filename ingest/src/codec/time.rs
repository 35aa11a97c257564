//! The message time of a flat JSON object: `time`, `timestamp`, `ts` or `t`.
//!
//! - The value is RFC 3339 text, or a number since the Unix epoch: seconds, or milliseconds above 1e11 (as
//!   seconds that would be the year 5138), microseconds above 1e14, nanoseconds above 1e17.
//! - `t` is a time only when it reads as one — RFC 3339 text, or a number of at least 1e9 (September 2001 as
//!   seconds): otherwise a `t` is a field like any other (a temperature, say), as it always was.
//! - When more than one is given, the first in the order `time`, `timestamp`, `ts`, `t` is the message time
//!   and the others are ignored with a warning; none of them is ever stored as a measurement.

use super::json::json_type;
use super::{DecodeError, NANOS_PER_SEC, numeric_time};
use bydata_schemas::{UnixNanos, parse_rfc3339};
use serde_json::{Map, Value};

/// The keys a flat object's time may be given under, in order of precedence.
pub const TIME_KEYS: [&str; 4] = ["time", "timestamp", "ts", "t"];

/// A `t` below this is a measurement, not a time.
const T_TIME_FROM: f64 = 1e9;

/// Whether `key` holds the message time (rather than a measurement) in this object.
pub(super) fn is_time_key(key: &str, value: &Value) -> bool {
    match key {
        "t" => match value {
            Value::Number(n) => n.as_f64().is_some_and(|n| n >= T_TIME_FROM),
            Value::String(s) => parse_rfc3339(s).is_ok(),
            _ => false,
        },
        _ => TIME_KEYS.contains(&key),
    }
}

/// The time of a flat object: the key it was read from, the time, and the time keys given besides it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct MessageTime {
    pub(super) key: &'static str,
    pub(super) time: UnixNanos,
    pub(super) ignored: Vec<&'static str>,
}

/// The message time, or `None` if no time key is given.
pub(super) fn message_time(map: &Map<String, Value>) -> Result<Option<MessageTime>, DecodeError> {
    let mut given = TIME_KEYS
        .iter()
        .filter(|k| map.get(**k).is_some_and(|v| is_time_key(k, v)));
    let Some(key) = given.next() else {
        return Ok(None);
    };
    Ok(Some(MessageTime {
        key,
        time: parse(key, &map[*key])?,
        ignored: given.copied().collect(),
    }))
}

/// A time value under `key` as nanoseconds since the epoch.
pub(super) fn parse(key: &str, value: &Value) -> Result<UnixNanos, DecodeError> {
    match value {
        Value::String(s) => parse_rfc3339(s).map_err(|_| DecodeError::TimeText {
            key: key.to_owned(),
            value: s.chars().take(64).collect(),
        }),
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            let unit = match n.abs() {
                a if a > 1e17 => 1,
                a if a > 1e14 => 1_000,
                a if a > 1e11 => 1_000_000,
                _ => NANOS_PER_SEC,
            };
            numeric_time(n, unit).ok_or(DecodeError::TimeOutOfRange { seconds: n })
        }
        other => Err(DecodeError::TimeType {
            key: key.to_owned(),
            found: json_type(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units_and_keys() {
        let s = 1_796_623_800i64;
        let at = s * NANOS_PER_SEC;
        for v in [
            json!(s),
            json!(s * 1_000),
            json!(s * 1_000_000),
            json!(s * 1_000_000_000),
            json!("2026-12-07T06:10:00Z"),
        ] {
            assert_eq!(parse("ts", &v), Ok(at), "{v}");
        }
        assert!(is_time_key("t", &json!(s)));
        assert!(is_time_key("t", &json!("2026-12-07T06:10:00Z")));
        assert!(
            !is_time_key("t", &json!(21.5)),
            "a small t is a measurement"
        );
        assert!(!is_time_key("t", &json!(true)));
        assert!(
            !is_time_key("t", &json!("hot")),
            "text that is not a time is text"
        );
        assert!(is_time_key("timestamp", &json!(null)));
        assert!(!is_time_key("date", &json!(s)));
        let map = json!({"ts": s, "time": "2026-12-07T06:10:01Z", "t": 3})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            message_time(&map),
            Ok(Some(MessageTime {
                key: "time",
                time: at + NANOS_PER_SEC,
                ignored: vec!["ts"]
            }))
        );
        assert_eq!(
            parse("timestamp", &json!("yesterday")),
            Err(DecodeError::TimeText {
                key: "timestamp".into(),
                value: "yesterday".into()
            })
        );
    }
}
