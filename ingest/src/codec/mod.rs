//! Payload decoders: the bytes a device sent → [`Reading`]s, or a [`DecodeError`] written for the device's owner.
//!
//! Pure functions: no I/O, no clock, no globals — the receive time comes in the [`DecodeContext`], so replaying
//! the journal decodes every message exactly as the first time. [`decode`] dispatches over [`Codec`]:
//!
//! - **SenML JSON** (RFC 8428), an array of records (rules in `senml.rs`); readings come out in record order.
//! - **Flat JSON**, one object of `"measurement": number | bool` plus an optional `"time"`; readings come out
//!   sorted by measurement name.
//! - **Auto**: `[` → SenML, `{` → flat JSON, judged by the first byte that is not whitespace.
//! - **Cayenne LPP** (binary; `cayenne.rs`): channel-suffixed names such as `temperature_3`, the receive time.
//!
//! A message is all or nothing: if any value is invalid (not a number, not finite, too far in the future,
//! before [`DecodeContext::min_time`], an invalid name, …) the whole message is rejected, so a device never has
//! half of a message stored and the owner sees one error naming the first offending record or key.

pub mod cayenne;
mod error;
mod flat;
mod json;
#[cfg(test)]
mod proptests;
pub mod script;
mod senml;

use bydata_schemas::{Codec, Reading, UnixNanos};
use std::collections::HashSet;

pub use error::{DecodeError, JsonType};
pub(crate) use json::error_at as json_error_at;

/// At most this many readings are accepted from one message; a larger message is rejected whole.
pub const MAX_READINGS: usize = 1000;

/// How far ahead of the receive time a reading may be by default: device clocks drift (5 minutes).
pub const DEFAULT_MAX_FUTURE: i64 = 300 * NANOS_PER_SEC;

/// The earliest time accepted by default, 2000-01-01T00:00:00Z: anything older is a device whose clock was
/// never set (counting from 1970 after a power cut).
pub const DEFAULT_MIN_TIME: UnixNanos = 946_684_800 * NANOS_PER_SEC;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// What a decoder needs to know besides the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// When the edge received the message: the time of readings that carry none, and "now" for relative times.
    pub received_at: UnixNanos,
    /// How far (ns) after `received_at` a reading's time may be.
    pub max_future: i64,
    /// The earliest reading time accepted.
    pub min_time: UnixNanos,
}

impl DecodeContext {
    /// A context with the default limits ([`DEFAULT_MAX_FUTURE`], [`DEFAULT_MIN_TIME`]).
    pub fn new(received_at: UnixNanos) -> Self {
        Self {
            received_at,
            max_future: DEFAULT_MAX_FUTURE,
            min_time: DEFAULT_MIN_TIME,
        }
    }
}

/// Decodes one message. Readings come out in record order (SenML) or sorted by name (flat JSON), and every
/// reading has passed [`DecodeContext`]'s checks — or the whole message is rejected.
pub fn decode(
    codec: &Codec,
    payload: &[u8],
    ctx: &DecodeContext,
) -> Result<Vec<Reading>, DecodeError> {
    let readings = match codec {
        Codec::Senml => senml::decode(json::parse(payload)?, ctx)?,
        Codec::Json => flat::decode(json::parse(payload)?, ctx)?,
        Codec::Cayenne => from_cayenne(payload, ctx)?,
        // Script codecs hold a JavaScript runtime: the pipeline runs them (`script::…`), not this pure function.
        Codec::Script(r) => {
            return Err(DecodeError::Script {
                codec: format!("js:{}", r.name),
                code: "not_loaded",
                message: "a JavaScript codec is run by the ingest pipeline, not here".to_owned(),
            });
        }
        Codec::Auto => match json::first_significant_byte(payload)? {
            b'[' => senml::decode(json::parse(payload)?, ctx)?,
            b'{' => flat::decode(json::parse(payload)?, ctx)?,
            // Valid JSON of another type gets a better message than "not JSON"; anything else the parse explains.
            _ => {
                return Err(DecodeError::UnknownFormat {
                    found: json::json_type(&json::parse(payload)?),
                });
            }
        },
    };
    validate(&readings, ctx)?;
    Ok(readings)
}

/// Cayenne LPP carries no time: every reading gets the receive time; names and units come from the decoder.
fn from_cayenne(payload: &[u8], ctx: &DecodeContext) -> Result<Vec<Reading>, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    cayenne::decode(payload)?
        .into_iter()
        .map(|v| {
            let measurement =
                bydata_schemas::MeasurementName::new(v.name.as_str()).map_err(|e| {
                    DecodeError::InvalidName {
                        key: v.name.clone(),
                        reason: invalid_reason(&e),
                    }
                })?;
            Ok(Reading {
                measurement,
                unit: v.unit.and_then(|u| bydata_schemas::Unit::new(u).ok()),
                time: ctx.received_at,
                value: v.value,
            })
        })
        .collect()
}

fn validate(readings: &[Reading], ctx: &DecodeContext) -> Result<(), DecodeError> {
    if readings.is_empty() {
        return Err(DecodeError::NoReadings);
    }
    if readings.len() > MAX_READINGS {
        return Err(DecodeError::TooManyReadings {
            count: readings.len(),
            limit: MAX_READINGS,
        });
    }
    let latest = ctx.received_at.saturating_add(ctx.max_future);
    let mut seen = HashSet::with_capacity(readings.len());
    for r in readings {
        let measurement = || r.measurement.as_str().to_owned();
        if !r.value.is_finite() {
            return Err(DecodeError::NonFinite {
                measurement: measurement(),
            });
        }
        if r.time > latest {
            return Err(DecodeError::InFuture {
                measurement: measurement(),
                time: r.time,
                ahead: r.time.saturating_sub(ctx.received_at),
                max_future: ctx.max_future,
            });
        }
        if r.time < ctx.min_time {
            return Err(DecodeError::TooOld {
                measurement: measurement(),
                time: r.time,
                min_time: ctx.min_time,
            });
        }
        // The store keeps one point per series and time, so a second value would silently replace the first.
        if !seen.insert((r.measurement.as_str(), r.time)) {
            return Err(DecodeError::Duplicate {
                measurement: measurement(),
                time: r.time,
            });
        }
    }
    Ok(())
}

/// A numeric timestamp (`value` units of `unit_nanos` each) as nanoseconds, rounded to the microsecond: an f64
/// holding seconds since the epoch resolves about 0.2 µs, so finer digits would be noise.
fn numeric_time(value: f64, unit_nanos: i64) -> Option<i64> {
    let whole = value.trunc();
    // Outside ±2^62 units the product cannot fit an i64 anyway; the guard also keeps the cast below exact.
    if !whole.is_finite() || whole.abs() > 4.6e18 {
        return None;
    }
    let micros_per_unit = (unit_nanos / 1000) as f64;
    let frac_micros = ((value - whole) * micros_per_unit).round() as i64;
    (whole as i64)
        .checked_mul(unit_nanos)?
        .checked_add(frac_micros * 1000)
}

/// The reason text of a schemas validation error, for errors that carry it as data.
fn invalid_reason(e: &bydata_schemas::Error) -> &'static str {
    match e {
        bydata_schemas::Error::Invalid { reason, .. } => reason,
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_schemas::parse_rfc3339;

    pub(super) fn ctx() -> DecodeContext {
        DecodeContext::new(parse_rfc3339("2026-11-22T10:00:00Z").expect("valid"))
    }

    /// A decoded reading as plain values, for compact expectations in table tests.
    pub(super) type Row = (String, Option<String>, UnixNanos, f64);

    pub(super) fn rows(codec: Codec, payload: &str) -> Result<Vec<Row>, DecodeError> {
        decode(&codec, payload.as_bytes(), &ctx()).map(|readings| {
            readings
                .into_iter()
                .map(|r| {
                    (
                        r.measurement.to_string(),
                        r.unit.map(|u| u.to_string()),
                        r.time,
                        r.value,
                    )
                })
                .collect()
        })
    }

    #[test]
    fn auto_dispatch() {
        let ctx = ctx();
        let senml = decode(&Codec::Auto, br#" [{"n":"co2","v":640}]"#, &ctx).expect("senml");
        let flat = decode(&Codec::Auto, b"\n{\"co2\": 640}", &ctx).expect("flat");
        assert_eq!(senml, flat);
        assert_eq!(flat[0].unit.as_ref().map(|u| u.as_str()), Some("ppm"));

        let cases: &[(&[u8], DecodeError)] = &[
            (b"", DecodeError::Empty),
            (
                b"42",
                DecodeError::UnknownFormat {
                    found: JsonType::Number,
                },
            ),
            (
                b" \"hi\"",
                DecodeError::UnknownFormat {
                    found: JsonType::String,
                },
            ),
            (
                b"null",
                DecodeError::UnknownFormat {
                    found: JsonType::Null,
                },
            ),
            (b"\x01\x02", DecodeError::NotJson { first_byte: 1 }),
            (
                b"hello",
                DecodeError::Malformed {
                    line: 1,
                    column: 1,
                    reason: "expected value".into(),
                },
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(
                &decode(&Codec::Auto, payload, &ctx).expect_err("rejected"),
                want
            );
        }
    }

    #[test]
    fn explicit_codec_checks_the_shape() {
        let ctx = ctx();
        assert_eq!(
            decode(&Codec::Senml, br#"{"co2": 1}"#, &ctx),
            Err(DecodeError::WrongType {
                expected: "a SenML pack (a JSON array of records)",
                found: JsonType::Object
            })
        );
        assert_eq!(
            decode(&Codec::Json, br#"[{"n":"co2","v":1}]"#, &ctx),
            Err(DecodeError::WrongType {
                expected: "a JSON object of measurements",
                found: JsonType::Array
            })
        );
    }

    #[test]
    fn validation() {
        let ctx = ctx();
        let now = ctx.received_at;
        let at = |s: &str| parse_rfc3339(s).expect("valid");
        let many = format!(
            "[{}]",
            (0..=MAX_READINGS)
                .map(|i| format!(r#"{{"n":"c","t":-{i},"v":1}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let cases: &[(&str, DecodeError)] = &[
            ("{}", DecodeError::NoReadings),
            (r#"{"time": 1790000000}"#, DecodeError::NoReadings),
            ("[]", DecodeError::NoReadings),
            (
                &many,
                DecodeError::TooManyReadings {
                    count: MAX_READINGS + 1,
                    limit: MAX_READINGS,
                },
            ),
            (
                r#"{"co2": 1, "time": "2100-01-01T00:00:00Z"}"#,
                DecodeError::InFuture {
                    measurement: "co2".into(),
                    time: at("2100-01-01T00:00:00Z"),
                    ahead: at("2100-01-01T00:00:00Z") - now,
                    max_future: DEFAULT_MAX_FUTURE,
                },
            ),
            (
                r#"{"co2": 1, "time": 0}"#,
                DecodeError::TooOld {
                    measurement: "co2".into(),
                    time: 0,
                    min_time: DEFAULT_MIN_TIME,
                },
            ),
            (
                r#"[{"bv": 1e308, "n": "x", "v": 1e308}]"#,
                DecodeError::NonFinite {
                    measurement: "x".into(),
                },
            ),
            (
                r#"[{"n":"/3303/0/5700","v":21},{"n":"/3304/0/5700","v":40}]"#,
                DecodeError::Duplicate {
                    measurement: "5700".into(),
                    time: now,
                },
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(
                &decode(&Codec::Auto, payload.as_bytes(), &ctx).expect_err("rejected"),
                want,
                "{payload:.80}"
            );
        }
        let ahead = r#"{"co2": 1, "time": "2026-11-22T10:05:00Z"}"#;
        assert!(
            decode(&Codec::Auto, ahead.as_bytes(), &ctx).is_ok(),
            "exactly max_future ahead is fine"
        );
    }

    #[test]
    fn messages_read_well() {
        let ctx = ctx();
        let shown = |payload: &str| {
            decode(&Codec::Auto, payload.as_bytes(), &ctx)
                .expect_err("rejected")
                .to_string()
        };
        let cases = [
            (
                r#"{"temperature": }"#,
                "malformed JSON at line 1 column 17: expected value",
            ),
            (
                r#"{"t": NaN}"#,
                "malformed JSON at line 1 column 7: NaN is not a finite number; JSON has no NaN or Infinity, \
                 and numbers must fit a 64-bit float",
            ),
            (
                r#"{"temperature": 21.5, "time": "2100-01-01T00:00:00Z"}"#,
                "time 2100-01-01T00:00:00Z of \"temperature\" is 2307103200 s in the future (at most 300 s is \
                 accepted; is the device clock set?)",
            ),
            (
                r#"[{"n":"a","v":1},{"n":"label","vs":"Machine Room"}]"#,
                "SenML record 2 has a string value (vs); only numbers and booleans are stored",
            ),
            (
                r#"{"status": "ok"}"#,
                "value of \"status\" is a string; only numbers and booleans are stored",
            ),
            (
                "\u{1}",
                "payload is not JSON text (first byte 0x01); expected SenML JSON or a JSON object",
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(shown(payload), want);
        }
    }

    #[test]
    fn numeric_times() {
        assert_eq!(numeric_time(1.5, NANOS_PER_SEC), Some(1_500_000_000));
        assert_eq!(numeric_time(-1.5, NANOS_PER_SEC), Some(-1_500_000_000));
        // RFC 8428 §5.1.3's bt: the f64 is 1276020076.0009999275…, which is 1 ms after rounding to µs.
        assert_eq!(
            numeric_time(1.276020076001e9, NANOS_PER_SEC),
            Some(1_276_020_076_001_000_000)
        );
        assert_eq!(
            numeric_time(1_790_000_000_123.0, 1_000_000),
            Some(1_790_000_000_123_000_000)
        );
        assert_eq!(numeric_time(1e12, NANOS_PER_SEC), None);
        assert_eq!(numeric_time(f64::NAN, NANOS_PER_SEC), None);
    }
}
