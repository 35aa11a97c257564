//! The fields of a codec example, each read or explained: ports, times, payloads (hex, base64, byte arrays)
//! and message lists. A problem is added to the list and `None` returned, so every problem is reported.

use super::error::Problem;
use base64::Engine as _;
use bydata_schemas::{UnixNanos, parse_rfc3339};
use serde_json::Value;

pub(super) fn problem(problems: &mut Vec<Problem>, field: &str, message: impl Into<String>) {
    problems.push(Problem {
        field: field.to_owned(),
        message: message.into(),
    });
}

pub(super) fn texts(value: Option<&Value>, at: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            problem(problems, at, "must be an array of texts");
            Vec::new()
        }
    }
}

pub(super) fn fport(value: Option<&Value>, at: &str, problems: &mut Vec<Problem>) -> Option<u8> {
    let port = value
        .and_then(Value::as_u64)
        .and_then(|n| u8::try_from(n).ok());
    if port.is_none() {
        problem(
            problems,
            at,
            "must be the LoRaWAN port, a whole number 0–255 (most codecs use 1–223)",
        );
    }
    port
}

pub(super) fn recv_time(
    value: Option<&Value>,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<Option<UnixNanos>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) if parse_rfc3339(s).is_ok() => parse_rfc3339(s).ok().map(Some),
        Some(_) => {
            problem(
                problems,
                at,
                "must be an RFC 3339 time, e.g. \"2026-01-01T00:00:00Z\"",
            );
            None
        }
    }
}

/// Hex digits, two per byte; white space between them is ignored. `Err` says what is wrong, for the sender.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<(usize, char)> = text
        .char_indices()
        .filter(|(_, c)| !c.is_ascii_whitespace())
        .collect();
    if let Some((offset, c)) = digits.iter().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("{c:?} at offset {offset} is not a hex digit"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "{} hex digits; two are needed per byte",
            digits.len()
        ));
    }
    Ok(digits
        .chunks(2)
        .map(|pair| {
            // Both are hex digits (checked above), so each is below 16.
            let high = pair[0].1.to_digit(16).unwrap_or(0) as u8;
            let low = pair[1].1.to_digit(16).unwrap_or(0) as u8;
            high << 4 | low
        })
        .collect())
}

pub(super) fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn hex_bytes(value: &Value, at: &str, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
    match value.as_str().map(decode_hex) {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(why)) => {
            problem(problems, at, format!("not hex: {why}"));
            None
        }
        None => {
            problem(problems, at, "must be a hex string, e.g. \"0100e5\"");
            None
        }
    }
}

/// Standard base64 (white space around it ignored), as network servers write payloads.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

pub(super) fn base64_bytes(
    value: &Value,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<u8>> {
    match value.as_str().map(decode_base64) {
        Some(Some(bytes)) => Some(bytes),
        _ => {
            problem(problems, at, "must be base64 text, e.g. \"AQDl\"");
            None
        }
    }
}

pub(super) fn number_bytes(
    items: &[Value],
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<u8>> {
    let bytes: Option<Vec<u8>> = items
        .iter()
        .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect();
    if bytes.is_none() {
        problem(problems, at, "every byte must be a whole number 0–255");
    }
    bytes
}
