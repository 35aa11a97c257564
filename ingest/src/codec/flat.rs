//! Flat JSON objects: `{"temperature": 21.5, "co2": 640, "firmware": "1.2.3", "time": "2026-11-22T10:00:00Z"}`.
//!
//! - The message time is read from `time`, `timestamp`, `ts` or `t` (rules in `time.rs`); absent, the
//!   receive time is used. A time key is never a measurement.
//! - Every other key is a field name (validated as is, never rewritten; an invalid name refuses the message).
//!   A number is a reading, a boolean too (`true` = 1, `false` = 0); a string is text, kept as the device's
//!   latest state; null, an object or an array is skipped and named in a warning (see `decoded.rs`).
//! - Units come from [`Unit::for_measurement`]; readings are sorted by measurement name (serde_json's map is
//!   ordered by key). A key given twice keeps its last value, as serde_json does.

use super::decoded::{Decoded, Sorter};
use super::json::json_type;
use super::time::{is_time_key, message_time};
use super::{DecodeContext, DecodeError, invalid_reason};
use bydata_schemas::{MeasurementName, Reading, Unit};
use serde_json::Value;

pub(super) fn decode(value: Value, ctx: &DecodeContext) -> Result<Decoded, DecodeError> {
    let Value::Object(map) = value else {
        return Err(DecodeError::WrongType {
            expected: "a JSON object of measurements",
            found: json_type(&value),
        });
    };
    let mut sorter = Sorter::with_time_keys();
    let time = match message_time(&map)? {
        None => ctx.received_at,
        Some(t) => {
            if !t.ignored.is_empty() {
                sorter.note(format!(
                    "time keys ignored: {} (the message time is taken from {:?})",
                    t.ignored.join(", "),
                    t.key
                ));
            }
            t.time
        }
    };
    for (key, v) in map.iter().filter(|(k, v)| !is_time_key(k, v)) {
        let measurement =
            MeasurementName::new(key.as_str()).map_err(|e| DecodeError::InvalidName {
                key: key.clone(),
                reason: invalid_reason(&e),
            })?;
        let value = match v {
            // Without serde_json's arbitrary_precision every number has an f64 form.
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::String(s) => {
                sorter.text(measurement, s, time);
                continue;
            }
            other => {
                sorter.skip(key.clone(), json_type(other).to_string());
                continue;
            }
        };
        sorter.reading(Reading {
            unit: Unit::for_measurement(measurement.as_str()),
            measurement,
            time,
            value,
        });
    }
    sorter.finish(ctx)
}

#[cfg(test)]
mod tests {
    use super::super::JsonType;
    use super::super::tests::{Row, ctx, rows};
    use super::*;
    use bydata_schemas::{Codec, UnixNanos, parse_rfc3339};

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
                r#"{"co2": null}"#,
                DecodeError::NothingStored {
                    skipped: "co2 (null)".into(),
                },
            ),
            (
                r#"{"status": "ok", "co2 ppm": 1}"#,
                DecodeError::InvalidName {
                    key: "co2 ppm".into(),
                    reason: "may only contain A-Z, a-z, 0-9, '-', '_' and '.'",
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
                    key: "time".into(),
                    value: "yesterday".into(),
                },
            ),
            (
                r#"{"co2": 1, "time": true}"#,
                DecodeError::TimeType {
                    key: "time".into(),
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
