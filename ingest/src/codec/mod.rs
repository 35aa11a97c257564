//! Payload decoders: the bytes a device sent → [`Decoded`] (readings, text state, warnings), or a
//! [`DecodeError`] written for the device's owner.
//!
//! Pure functions: no I/O, no clock, no globals — the receive time comes in the [`DecodeContext`], so replaying
//! the journal decodes every message exactly as the first time. [`decode`] dispatches over [`Codec`]:
//!
//! - **SenML JSON** (RFC 8428), an array of records (rules in `senml.rs`); readings come out in record order.
//! - **Flat JSON**, one object of `"field": number | bool | text` plus an optional time under `time`,
//!   `timestamp`, `ts` or `t` (`flat.rs`, `time.rs`); readings come out sorted by measurement name.
//! - **Auto**: `[` → SenML, `{` → flat JSON, judged by the first byte that is not whitespace.
//! - **Cayenne LPP** (binary; `cayenne.rs`): channel-suffixed names such as `temperature_3`, the receive time.
//!
//! Numbers are stored as series, text is kept as the device's latest state, anything else is skipped and
//! named in a warning (`decoded.rs`). A message is refused whole when it holds nothing to keep or when a value
//! is invalid (not finite, too far in the future, before [`DecodeContext::min_time`], an invalid name, …), so
//! a device never has half of a message stored and the owner sees one error naming the offending record or key.

pub mod cayenne;
mod decoded;
mod error;
mod flat;
mod json;
#[cfg(test)]
mod proptests;
pub mod script;
mod senml;
mod time;

use bydata_schemas::{Codec, Reading, UnixNanos};

pub(crate) use decoded::Sorter;
pub use decoded::{Decoded, MAX_READINGS, MAX_TEXT_BYTES, MAX_TEXT_FIELDS, TextValue};
pub use error::{DecodeError, JsonType};
pub(crate) use json::error_at as json_error_at;
pub use time::TIME_KEYS;

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
/// value has passed [`DecodeContext`]'s checks — or the whole message is rejected.
pub fn decode(codec: &Codec, payload: &[u8], ctx: &DecodeContext) -> Result<Decoded, DecodeError> {
    match codec {
        Codec::Senml => senml::decode(json::parse(payload)?, ctx),
        Codec::Json => flat::decode(json::parse(payload)?, ctx),
        Codec::Cayenne => from_cayenne(payload, ctx),
        // Script codecs hold a JavaScript runtime: the pipeline runs them (`script::…`), not this pure function.
        Codec::Script(r) => Err(DecodeError::Script {
            codec: format!("js:{}", r.name),
            code: "not_loaded",
            message: "a JavaScript codec is run by the ingest pipeline, not here".to_owned(),
        }),
        Codec::Auto => match json::first_significant_byte(payload)? {
            b'[' => senml::decode(json::parse(payload)?, ctx),
            b'{' => flat::decode(json::parse(payload)?, ctx),
            // Valid JSON of another type gets a better message than "not JSON"; anything else the parse explains.
            _ => Err(DecodeError::UnknownFormat {
                found: json::json_type(&json::parse(payload)?),
            }),
        },
    }
}

/// Cayenne LPP carries no time: every reading gets the receive time; names and units come from the decoder.
fn from_cayenne(payload: &[u8], ctx: &DecodeContext) -> Result<Decoded, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut sorter = Sorter::default();
    for v in cayenne::decode(payload)? {
        let measurement = bydata_schemas::MeasurementName::new(v.name.as_str()).map_err(|e| {
            DecodeError::InvalidName {
                key: v.name.clone(),
                reason: invalid_reason(&e),
            }
        })?;
        sorter.reading(Reading {
            measurement,
            unit: v.unit.and_then(|u| bydata_schemas::Unit::new(u).ok()),
            time: ctx.received_at,
            value: v.value,
        });
    }
    sorter.finish(ctx)
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
mod tests;
