//! Why a message was rejected, as data; the `Display` text is what the device's owner reads.

use super::NANOS_PER_SEC;
use bydata_schemas::{UnixNanos, format_rfc3339};
use std::fmt;

/// The JSON type found where another was expected; displays as "a string", "an object", ….
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::Null => "null",
            JsonType::Boolean => "a boolean",
            JsonType::Number => "a number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        })
    }
}

/// Why a message was rejected. The `Display` text is shown to the sensor's owner on the device-status page.
/// SenML `record` numbers count from 1 (the first record of the pack is record 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is empty")]
    Empty,
    /// A JavaScript codec failed (time or memory limit, an exception, its own `errors`, bad output).
    #[error("codec {codec} failed ({code}): {message}")]
    Script {
        codec: String,
        code: &'static str,
        message: String,
    },
    #[error(
        "payload is not JSON text (first byte 0x{first_byte:02x}); expected SenML JSON or a JSON object"
    )]
    NotJson { first_byte: u8 },
    #[error(
        "payload is not valid UTF-8 (byte 0x{byte:02x} at offset {offset}); JSON must be UTF-8 text"
    )]
    InvalidUtf8 { offset: usize, byte: u8 },
    #[error("malformed JSON at line {line} column {column}: {reason}")]
    Malformed {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error(
        "malformed JSON at line {line} column {column}: {token} is not a finite number; \
         JSON has no NaN or Infinity, and numbers must fit a 64-bit float"
    )]
    NonFiniteNumber {
        line: usize,
        column: usize,
        token: String,
    },
    #[error("payload is {found}; expected a SenML array [...] or a JSON object {{...}}")]
    UnknownFormat { found: JsonType },
    #[error("payload is {found}; expected {expected}")]
    WrongType {
        expected: &'static str,
        found: JsonType,
    },

    // Flat JSON objects.
    #[error("{key:?} is not a valid measurement name: {reason}")]
    InvalidName { key: String, reason: &'static str },
    #[error(
        "time key {key:?} is {found}; a time is RFC 3339 text (e.g. 2026-11-22T10:00:00Z) or a number of \
         seconds or milliseconds since the epoch"
    )]
    TimeType { key: String, found: JsonType },
    #[error(
        "time key {key:?} is {value:?}, which is not an RFC 3339 time (e.g. 2026-11-22T10:00:00Z); give \
         RFC 3339 text or seconds or milliseconds since the epoch"
    )]
    TimeText { key: String, value: String },
    #[error("time {} s cannot be stored (outside the years 1677 to 2262)", short_number(*seconds))]
    TimeOutOfRange { seconds: f64 },

    // SenML packs.
    #[error("SenML record {record} is {found}; every record must be a JSON object")]
    SenmlRecordType { record: usize, found: JsonType },
    #[error("SenML record {record} field {field:?} is {found}; expected {expected}")]
    SenmlFieldType {
        record: usize,
        field: &'static str,
        expected: JsonType,
        found: JsonType,
    },
    #[error(
        "SenML record {record} has more than one of v, vb, vs and vd; a record carries one value"
    )]
    SenmlMultipleValues { record: usize },
    #[error(
        "SenML record {record} has both a value and a sum (s); send the sum in a record of its own"
    )]
    SenmlValueAndSum { record: usize },
    #[error("SenML record {record} has no value (v, vb or s)")]
    SenmlNoValue { record: usize },
    #[error("SenML record {record} has no name (n, or bn in this or an earlier record)")]
    SenmlNoName { record: usize },
    #[error(
        "SenML record {record} has field {field:?}, which must be understood (it ends in '_') and is not supported"
    )]
    SenmlMustUnderstand { record: usize, field: String },
    #[error(
        "SenML record {record} has version {version}; versions up to 10 (RFC 8428) are supported"
    )]
    SenmlVersion { record: usize, version: f64 },
    #[error("SenML record {record} has unit {unit:?}: {reason}")]
    SenmlUnit {
        record: usize,
        unit: String,
        reason: &'static str,
    },
    #[error(
        "SenML record {record} has name {name:?}, which is not a valid measurement name even after \
         keeping only the part after the last ':' or '/': {reason}"
    )]
    SenmlName {
        record: usize,
        name: String,
        reason: &'static str,
    },

    // Binary payloads.
    #[error("Cayenne LPP: {0}")]
    Cayenne(#[from] super::cayenne::CayenneError),

    // Checks on every reading, whatever the format.
    #[error("message contains no values (numbers, booleans or text)")]
    NoReadings,
    #[error(
        "message contains nothing bydata keeps: {skipped}; send numbers or booleans (stored as series) \
         or text (kept as the device's state)"
    )]
    NothingStored { skipped: String },
    #[error("message has {count} readings; at most {limit} are accepted in one message")]
    TooManyReadings { count: usize, limit: usize },
    #[error("value of {measurement:?} is not finite")]
    NonFinite { measurement: String },
    #[error(
        "time {} of {measurement:?} is {} s in the future (at most {} s is accepted; is the device clock set?)",
        format_rfc3339(*time), ceil_secs(*ahead), ceil_secs(*max_future)
    )]
    InFuture {
        measurement: String,
        time: UnixNanos,
        /// Nanoseconds after the receive time.
        ahead: i64,
        /// The limit that was exceeded, in nanoseconds.
        max_future: i64,
    },
    #[error(
        "time {} of {measurement:?} is before {}, the earliest accepted time (is the device clock set?)",
        format_rfc3339(*time), format_rfc3339(*min_time)
    )]
    TooOld {
        measurement: String,
        time: UnixNanos,
        min_time: UnixNanos,
    },
    #[error(
        "message has two values of {measurement:?} at {}; give each measurement its own name",
        format_rfc3339(*time)
    )]
    Duplicate {
        measurement: String,
        time: UnixNanos,
    },
}

/// Rust prints 1e300 with all its 301 digits; an error message wants the short form.
fn short_number(x: f64) -> String {
    if x.abs() < 1e15 {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

fn ceil_secs(nanos: i64) -> i64 {
    nanos.div_euclid(NANOS_PER_SEC) + i64::from(nanos.rem_euclid(NANOS_PER_SEC) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_messages() {
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(2 * NANOS_PER_SEC), 2);
        assert_eq!(ceil_secs(2 * NANOS_PER_SEC + 1), 3);
        assert_eq!(
            DecodeError::TimeOutOfRange { seconds: -1e300 }.to_string(),
            "time -1e300 s cannot be stored (outside the years 1677 to 2262)"
        );
        assert_eq!(
            DecodeError::TimeOutOfRange { seconds: 1e12 }.to_string(),
            "time 1000000000000 s cannot be stored (outside the years 1677 to 2262)"
        );
    }
}
