//! Bytes → `serde_json::Value`, with errors a sensor owner can act on: binary payloads are named by their first
//! byte, syntax errors by line and column, and NaN/Infinity/out-of-range numbers get their own message because
//! "expected value" does not tell anyone that JSON has no NaN.

use super::{DecodeError, JsonType};
use serde_json::Value;

/// JSON's four whitespace bytes (RFC 8259 §2).
pub(super) fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The payload without a leading UTF-8 byte-order mark: some device SDKs write one, and it carries no meaning.
pub(super) fn strip_bom(payload: &[u8]) -> &[u8] {
    payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload)
}

/// The first byte that is not JSON whitespace, after an optional byte-order mark.
pub(super) fn first_significant_byte(payload: &[u8]) -> Result<u8, DecodeError> {
    strip_bom(payload)
        .iter()
        .copied()
        .find(|&b| !is_json_whitespace(b))
        .ok_or(DecodeError::Empty)
}

/// Parses a whole payload as one JSON value.
pub(super) fn parse(payload: &[u8]) -> Result<Value, DecodeError> {
    let first = first_significant_byte(payload)?;
    // Printable ASCII may be a typo in JSON (let the parser say where); anything else is binary or not JSON text.
    if !first.is_ascii_graphic() {
        return Err(DecodeError::NotJson { first_byte: first });
    }
    let bom = payload.len() - strip_bom(payload).len();
    let text = std::str::from_utf8(&payload[bom..]).map_err(|e| {
        let offset = bom + e.valid_up_to();
        DecodeError::InvalidUtf8 {
            offset,
            byte: payload.get(offset).copied().unwrap_or_default(),
        }
    })?;
    serde_json::from_str(text).map_err(|e| syntax_error(text, &e))
}

pub(super) fn json_type(value: &Value) -> JsonType {
    match value {
        Value::Null => JsonType::Null,
        Value::Bool(_) => JsonType::Boolean,
        Value::Number(_) => JsonType::Number,
        Value::String(_) => JsonType::String,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

/// A serde_json error as (line, column, reason without serde's " at line L column C" suffix), so messages
/// can place the position themselves.
pub(crate) fn error_at(e: &serde_json::Error) -> (usize, usize, String) {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let reason = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full)
        .to_owned();
    (line, column, reason)
}

/// Turns a serde_json error into `Malformed`, or `NonFiniteNumber` when the offending token is NaN, Infinity
/// or a number too large for an f64 (serde_json reports those as "expected value" / "number out of range").
fn syntax_error(text: &str, e: &serde_json::Error) -> DecodeError {
    let (line, column, reason) = error_at(e);
    let token = token_at(text, line, column);
    let bare = token.trim_start_matches(['-', '+']);
    let non_finite_word = ["nan", "inf", "infinity"]
        .iter()
        .any(|w| bare.eq_ignore_ascii_case(w));
    if non_finite_word || reason == "number out of range" {
        DecodeError::NonFiniteNumber {
            line,
            column,
            token,
        }
    } else {
        DecodeError::Malformed {
            line,
            column,
            reason,
        }
    }
}

/// The run of number-or-word bytes around serde_json's error position (line and column are 1-based, column
/// counts bytes), capped so an error message never quotes a whole payload.
fn token_at(text: &str, line: usize, column: usize) -> String {
    const MAX_TOKEN: usize = 32;
    let bytes = text.as_bytes();
    let line_start = if line <= 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(bytes.len(), |(i, _)| i + 1)
    };
    let at = (line_start + column.saturating_sub(1)).min(bytes.len());
    let is_token = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-');
    let start = bytes[..at]
        .iter()
        .rposition(|&b| !is_token(b))
        .map_or(0, |i| i + 1);
    let end = bytes[at..]
        .iter()
        .position(|&b| !is_token(b))
        .map_or(bytes.len(), |i| at + i);
    let token = &bytes[start..end.min(start + MAX_TOKEN)];
    String::from_utf8_lossy(token).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, DecodeError)] = &[
            (
                r#"{"temperature": }"#,
                DecodeError::Malformed {
                    line: 1,
                    column: 17,
                    reason: "expected value".into(),
                },
            ),
            (
                r#"{"t": NaN}"#,
                DecodeError::NonFiniteNumber {
                    line: 1,
                    column: 7,
                    token: "NaN".into(),
                },
            ),
            (
                r#"{"t": -Infinity}"#,
                DecodeError::NonFiniteNumber {
                    line: 1,
                    column: 8,
                    token: "-Infinity".into(),
                },
            ),
            (
                "[1,\n 2, nan]",
                DecodeError::NonFiniteNumber {
                    line: 2,
                    column: 6,
                    token: "nan".into(),
                },
            ),
            (
                r#"{"t": 1e999}"#,
                DecodeError::NonFiniteNumber {
                    line: 1,
                    column: 11,
                    token: "1e999".into(),
                },
            ),
            (
                "[1",
                DecodeError::Malformed {
                    line: 1,
                    column: 2,
                    reason: "EOF while parsing a list".into(),
                },
            ),
            (
                "\u{feff}{\"a\": x}",
                DecodeError::Malformed {
                    line: 1,
                    column: 7,
                    reason: "expected value".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                &parse(text.as_bytes()).expect_err("rejected"),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn not_text() {
        assert_eq!(
            parse(b"\x89PNG"),
            Err(DecodeError::NotJson { first_byte: 0x89 })
        );
        assert_eq!(parse(b" \0"), Err(DecodeError::NotJson { first_byte: 0 }));
        assert_eq!(parse(b" \r\n\t"), Err(DecodeError::Empty));
        assert_eq!(
            parse(b"{\"a\xff\": 1}"),
            Err(DecodeError::InvalidUtf8 {
                offset: 3,
                byte: 0xff
            })
        );
        assert!(
            parse(b"\xEF\xBB\xBF[1]").is_ok(),
            "a byte-order mark is skipped"
        );
    }

    #[test]
    fn long_tokens_are_capped() {
        let text = format!("[1e{}]", "9".repeat(100));
        let Err(DecodeError::NonFiniteNumber { token, .. }) = parse(text.as_bytes()) else {
            panic!("expected NonFiniteNumber");
        };
        assert_eq!(token.len(), 32);
    }
}
