//! Flat JSON objects: `{"temperature": 21.5, "co2": 640, "time": "2026-11-22T10:00:00Z"}`.
//!
//! - Every key except `time` is a measurement name (validated as is, never rewritten); its value must be a
//!   number or a boolean (`true` = 1, `false` = 0). Anything else, nested objects included, rejects the message.
//! - `time` (optional) is an RFC 3339 string or a number of seconds since the epoch — or milliseconds when it
//!   is above 1e11, which as seconds would be the year 5138. Absent, the receive time is used.
//! - Units come from [`Unit::for_measurement`]; readings are sorted by measurement name (serde_json's map is
//!   ordered by key). A key given twice keeps its last value, as serde_json does.

use super::json::json_type;
use super::{DecodeContext, DecodeError, NANOS_PER_SEC, invalid_reason, numeric_time};
use bydata_schemas::{MeasurementName, Reading, Unit, UnixNanos, parse_rfc3339};
use serde_json::Value;

const TIME_KEY: &str = "time";
/// Epoch numbers above this are milliseconds.
const MILLIS_ABOVE: f64 = 1e11;

pub(super) fn decode(value: Value, ctx: &DecodeContext) -> Result<Vec<Reading>, DecodeError> {
    let Value::Object(map) = value else {
        return Err(DecodeError::WrongType {
            expected: "a JSON object of measurements",
            found: json_type(&value),
        });
    };
    let time = match map.get(TIME_KEY) {
        None => ctx.received_at,
        Some(t) => time(t)?,
    };
    map.iter()
        .filter(|(key, _)| key.as_str() != TIME_KEY)
        .map(|(key, v)| {
            let measurement =
                MeasurementName::new(key.as_str()).map_err(|e| DecodeError::InvalidName {
                    key: key.clone(),
                    reason: invalid_reason(&e),
                })?;
            let value = match v {
                // Without serde_json's arbitrary_precision every number has an f64 form.
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                Value::Bool(b) => f64::from(u8::from(*b)),
                other => {
                    return Err(DecodeError::UnsupportedValue {
                        key: key.clone(),
                        found: json_type(other),
                    });
                }
            };
            Ok(Reading {
                unit: Unit::for_measurement(measurement.as_str()),
                measurement,
                time,
                value,
            })
        })
        .collect()
}

fn time(value: &Value) -> Result<UnixNanos, DecodeError> {
    match value {
        Value::String(s) => {
            parse_rfc3339(s).map_err(|_| DecodeError::TimeText { value: s.clone() })
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            let nanos = if n > MILLIS_ABOVE {
                numeric_time(n, NANOS_PER_SEC / 1000)
            } else {
                numeric_time(n, NANOS_PER_SEC)
            };
            nanos.ok_or(DecodeError::TimeOutOfRange { seconds: n })
        }
        other => Err(DecodeError::TimeType {
            found: json_type(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::JsonType;
    use super::super::tests::{Row, ctx, rows};
    use super::*;
    use bydata_schemas::Codec;

    fn decode(payload: &str) -> Result<Vec<Row>, DecodeError> {
        rows(Codec::Json, payload)
    }

    #[test]
    fn accepted() {
        let now = ctx().received_at;
        let t = |s: &str| parse_rfc3339(s).expect("valid");
        let row = |n: &str, u: Option<&str>, time: UnixNanos, v: f64| {
            (n.to_owned(), u.map(str::to_owned), time, v)
        };
        let cases: &[(&str, Vec<Row>)] = &[
            (
                r#"{"temperature": 21.5, "co2": 640, "time": "2026-11-22T10:00:00Z"}"#,
                vec![
                    row("co2", Some("ppm"), t("2026-11-22T10:00:00Z"), 640.0),
                    row("temperature", Some("Cel"), t("2026-11-22T10:00:00Z"), 21.5),
                ],
            ),
            (
                r#"{"door_open": true, "alarm": false, "my.sensor-1": -3}"#,
                vec![
                    row("alarm", None, now, 0.0),
                    row("door_open", None, now, 1.0),
                    row("my.sensor-1", None, now, -3.0),
                ],
            ),
            (
                r#"{"co2": 1, "time": 1795340000.25}"#,
                vec![row("co2", Some("ppm"), 1_795_340_000_250_000_000, 1.0)],
            ),
            (
                r#"{"co2": 1, "time": 1795340000250}"#,
                vec![row("co2", Some("ppm"), 1_795_340_000_250_000_000, 1.0)],
            ),
            (
                r#"{"co2": 1, "time": "2026-11-22T11:00:00+01:00"}"#,
                vec![row("co2", Some("ppm"), now, 1.0)],
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(&decode(payload).expect(payload), want, "{payload}");
        }
    }

    #[test]
    fn rejected() {
        let cases: &[(&str, DecodeError)] = &[
            (
                r#"{"co2": 1, "status": "ok"}"#,
                DecodeError::UnsupportedValue {
                    key: "status".into(),
                    found: JsonType::String,
                },
            ),
            (
                r#"{"co2": null}"#,
                DecodeError::UnsupportedValue {
                    key: "co2".into(),
                    found: JsonType::Null,
                },
            ),
            (
                r#"{"env": {"co2": 1}}"#,
                DecodeError::UnsupportedValue {
                    key: "env".into(),
                    found: JsonType::Object,
                },
            ),
            (
                r#"{"co2": [1, 2]}"#,
                DecodeError::UnsupportedValue {
                    key: "co2".into(),
                    found: JsonType::Array,
                },
            ),
            (
                r#"{"co2 ppm": 1}"#,
                DecodeError::InvalidName {
                    key: "co2 ppm".into(),
                    reason: "may only contain A-Z, a-z, 0-9, '-', '_' and '.'",
                },
            ),
            (
                r#"{"": 1}"#,
                DecodeError::InvalidName {
                    key: "".into(),
                    reason: "must be 1 to 64 characters",
                },
            ),
            (
                r#"{"co2": 1, "time": "yesterday"}"#,
                DecodeError::TimeText {
                    value: "yesterday".into(),
                },
            ),
            (
                r#"{"co2": 1, "time": true}"#,
                DecodeError::TimeType {
                    found: JsonType::Boolean,
                },
            ),
            (
                r#"{"co2": 1, "time": -1e300}"#,
                DecodeError::TimeOutOfRange { seconds: -1e300 },
            ),
            (
                r#"{"co2": 1, "time": 1e300}"#,
                DecodeError::TimeOutOfRange { seconds: 1e300 },
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(&decode(payload).expect_err("rejected"), want, "{payload}");
        }
    }
}
