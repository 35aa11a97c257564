//! InfluxDB v2 line protocol parser: a request body in, [`Line`]s or the first [`LineError`] out. Pure (no I/O,
//! no clock) and total: it never panics, whatever the input.
//!
//! Source: the InfluxDB v2 "Line protocol" reference,
//! <https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/>. Where that page is silent, we follow
//! InfluxDB 2.x's own parser (`models/points.go`), so a body Telegraf sends to InfluxDB is read the same way here:
//! - runs of spaces between the sections, leading whitespace and trailing spaces are tolerated;
//! - a tag key given twice on one line is an error ([`LineErrorReason::DuplicateTag`]);
//! - a field key given twice on one line keeps the **last** value, at the position of the first occurrence;
//! - a tag value containing an unescaped `=` is an error.
//!
//! Escaping follows the reference's table (measurement: comma, space; tag keys, tag values and field keys:
//! comma, equals sign, space; string field values: double quote, backslash) and its "Escaping backslashes"
//! table, which makes `\\` an escaped backslash in every element. A backslash before any other character is kept.
//! The reference's naming restriction (names may not begin with `_`) is a storage rule, not syntax; it is left
//! to the caller, as is the "no timestamp means now" default (`Line::time` is `None`).

use crate::UnixNanos;
use std::collections::{BTreeMap, HashMap, btree_map::Entry};
use std::fmt;
use std::str::FromStr;

mod lexer;
#[cfg(test)]
mod tests;

use lexer::{Cursor, is_float_literal, is_integer, unescape};

/// Longest string field value accepted, in bytes after unescaping (the reference's "Length limit 64KB").
pub const MAX_STRING_FIELD_BYTES: usize = 64 * 1024;
/// Earliest timestamp the reference accepts, in nanoseconds (`-9223372036854775806`).
pub const MIN_TIME: UnixNanos = i64::MIN + 2;
/// Latest timestamp the reference accepts, in nanoseconds (`9223372036854775806`).
pub const MAX_TIME: UnixNanos = i64::MAX - 1;

/// The unit of the timestamps in a body: the `precision` query parameter of the v2 write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ns => "ns",
            Self::Us => "us",
            Self::Ms => "ms",
            Self::S => "s",
        }
    }

    pub const fn nanos_per_unit(self) -> i64 {
        match self {
            Self::Ns => 1,
            Self::Us => 1_000,
            Self::Ms => 1_000_000,
            Self::S => 1_000_000_000,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `precision` that is not one of the v2 API's four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {value:?}: expected one of ns, us, ms, s")]
pub struct UnknownPrecision {
    pub value: String,
}

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ns" => Ok(Self::Ns),
            "us" => Ok(Self::Us),
            "ms" => Ok(Self::Ms),
            "s" => Ok(Self::S),
            _ => Err(UnknownPrecision { value: snippet(s) }),
        }
    }
}

/// A field value, typed as line protocol writes it (`1.5`, `1i`, `1u`, `"s"`, `true`).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Always finite: `NaN` and infinities are refused.
    Float(f64),
    Integer(i64),
    UInteger(u64),
    String(String),
    Boolean(bool),
}

/// One parsed point, with every escape sequence resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub measurement: String,
    /// Sorted by key, as InfluxDB stores them; keys are unique.
    pub tags: BTreeMap<String, String>,
    /// In the order written, at least one, keys unique.
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds; `None` when the line has no timestamp (InfluxDB would use the time of receipt).
    pub time: Option<UnixNanos>,
}

/// The first line of a body that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based, counting every `\n`-separated line of the body, blank and comment lines included.
    pub line: usize,
    pub reason: LineErrorReason,
}

/// Why a line is not valid line protocol. Quoted text is shortened to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineErrorReason {
    #[error("missing measurement name: a line starts with `measurement[,tag=value…] field=value`")]
    EmptyMeasurement,
    #[error(
        "missing field set: a point needs at least one `field=value` after the first unescaped space \
         (escape spaces in names as `\\ `)"
    )]
    MissingFields,
    #[error(
        "empty tag key: `,` after the measurement must be followed by `key=value` (escape a comma as `\\,`)"
    )]
    EmptyTagKey,
    #[error("tag {key:?} has no `=value` (escape `,` `=` and spaces in tags with `\\`)")]
    MissingTagValue { key: String },
    #[error("tag {key:?} has an empty value: omit the tag instead")]
    EmptyTagValue { key: String },
    #[error("the value of tag {key:?} contains an unescaped `=`: write it as `\\=`")]
    UnescapedEqualsInTagValue { key: String },
    #[error("tag {key:?} is given more than once")]
    DuplicateTag { key: String },
    #[error(
        "empty field key: expected `key=value` (after the first space or a `,` in the field set)"
    )]
    EmptyFieldKey,
    #[error(
        "field {key:?} has no value: expected `key=value` (escape `,` `=` and spaces in keys with `\\`)"
    )]
    MissingFieldValue { key: String },
    #[error(
        "field {key:?} has invalid value {value:?}: expected a float (1.5, -1e3), integer (42i), unsigned \
         (42u), double-quoted string or boolean (true, false); NaN and infinity are not accepted"
    )]
    InvalidFieldValue { key: String, value: String },
    #[error(
        "field {key:?} value {value:?} is out of range (integer: i64, unsigned: u64, float: finite f64)"
    )]
    FieldValueOutOfRange { key: String, value: String },
    #[error(
        "field {key:?} has a string with no closing `\"` (escape quotes in strings as `\\\"`; strings cannot \
         span lines)"
    )]
    UnterminatedString { key: String },
    #[error("field {key:?} has a {len}-byte string, over the 64 KiB limit")]
    StringTooLong { key: String, len: usize },
    #[error(
        "invalid timestamp {value:?}: expected an integer Unix time in the request's precision"
    )]
    InvalidTimestamp { value: String },
    #[error(
        "timestamp {value:?} is out of range in the request's precision (nanoseconds must lie within \
         ±9223372036854775806, years 1677–2262)"
    )]
    TimestampOutOfRange { value: String },
    #[error("unexpected {rest:?} after the timestamp (an unescaped space in a key or tag value?)")]
    TrailingCharacters { rest: String },
}

/// Parses a whole request body: every line except blank ones and comments (`#` after optional leading
/// whitespace). Lines end with `\n`; a `\r` before it is dropped. Stops at, and returns, the first error.
pub fn parse(body: &str, precision: Precision) -> Result<Vec<Line>, LineError> {
    let mut lines = Vec::new();
    for (index, text) in body.split('\n').enumerate() {
        match parse_line(text, precision) {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => {}
            Err(reason) => {
                return Err(LineError {
                    line: index + 1,
                    reason,
                });
            }
        }
    }
    Ok(lines)
}

/// Parses one line (without its `\n`; a trailing `\r` is dropped). `Ok(None)` for a blank or comment line.
pub fn parse_line(line: &str, precision: Precision) -> Result<Option<Line>, LineErrorReason> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut cur = Cursor { text: line, pos: 0 };

    let raw = cur.take_escaped(b", ");
    if raw.is_empty() {
        return Err(LineErrorReason::EmptyMeasurement);
    }
    let measurement = unescape(raw, b", ");
    let tags = tag_set(&mut cur)?;
    if cur.skip_spaces() == 0 || cur.at_end() {
        return Err(LineErrorReason::MissingFields);
    }
    let fields = field_set(&mut cur)?;
    cur.skip_spaces();
    let time = if cur.at_end() {
        None
    } else {
        let raw = cur.take_until(b" ");
        let time = timestamp(raw, precision)?;
        cur.skip_spaces();
        if !cur.at_end() {
            return Err(LineErrorReason::TrailingCharacters {
                rest: snippet(cur.rest()),
            });
        }
        Some(time)
    };
    Ok(Some(Line {
        measurement,
        tags,
        fields,
        time,
    }))
}

/// `[,key=value…]`, starting just after the measurement; stops before the space that ends the key.
fn tag_set(cur: &mut Cursor<'_>) -> Result<BTreeMap<String, String>, LineErrorReason> {
    let mut tags = BTreeMap::new();
    while cur.eat(b',') {
        let raw_key = cur.take_escaped(b"=, ");
        if raw_key.is_empty() {
            return Err(LineErrorReason::EmptyTagKey);
        }
        let key = unescape(raw_key, b",= ");
        if !cur.eat(b'=') {
            return Err(LineErrorReason::MissingTagValue { key: snippet(&key) });
        }
        let raw_value = cur.take_escaped(b"=, ");
        if cur.peek() == Some(b'=') {
            return Err(LineErrorReason::UnescapedEqualsInTagValue { key: snippet(&key) });
        }
        if raw_value.is_empty() {
            return Err(LineErrorReason::EmptyTagValue { key: snippet(&key) });
        }
        match tags.entry(key) {
            Entry::Occupied(entry) => {
                return Err(LineErrorReason::DuplicateTag {
                    key: snippet(entry.key()),
                });
            }
            Entry::Vacant(entry) => {
                entry.insert(unescape(raw_value, b",= "));
            }
        }
    }
    Ok(tags)
}

/// `key=value[,key=value…]`; stops before the space that ends it (or at the end of the line).
fn field_set(cur: &mut Cursor<'_>) -> Result<Vec<(String, FieldValue)>, LineErrorReason> {
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    // Index by key, so a line with many fields stays linear while the last duplicate wins.
    let mut positions: HashMap<String, usize> = HashMap::new();
    loop {
        let raw_key = cur.take_escaped(b"=, ");
        if raw_key.is_empty() {
            return Err(LineErrorReason::EmptyFieldKey);
        }
        let key = unescape(raw_key, b",= ");
        if !cur.eat(b'=') {
            return Err(LineErrorReason::MissingFieldValue { key: snippet(&key) });
        }
        let value = field_value(cur, &key)?;
        match positions.get(&key) {
            Some(&at) => {
                if let Some(slot) = fields.get_mut(at) {
                    slot.1 = value;
                }
            }
            None => {
                positions.insert(key.clone(), fields.len());
                fields.push((key, value));
            }
        }
        if !cur.eat(b',') {
            return Ok(fields);
        }
    }
}

fn field_value(cur: &mut Cursor<'_>, key: &str) -> Result<FieldValue, LineErrorReason> {
    if cur.peek() != Some(b'"') {
        let raw = cur.take_until(b", ");
        return scalar(key, raw);
    }
    let start = cur.pos;
    let body = cur
        .take_quoted()
        .ok_or_else(|| LineErrorReason::UnterminatedString { key: snippet(key) })?;
    if !matches!(cur.peek(), None | Some(b',' | b' ')) {
        cur.take_until(b", ");
        return Err(LineErrorReason::InvalidFieldValue {
            key: snippet(key),
            value: snippet(cur.slice_from(start)),
        });
    }
    let value = unescape(body, b"\"");
    if value.len() > MAX_STRING_FIELD_BYTES {
        return Err(LineErrorReason::StringTooLong {
            key: snippet(key),
            len: value.len(),
        });
    }
    Ok(FieldValue::String(value))
}

/// An unquoted field value: boolean, `…i`, `…u` or a float literal.
fn scalar(key: &str, raw: &str) -> Result<FieldValue, LineErrorReason> {
    let invalid = || LineErrorReason::InvalidFieldValue {
        key: snippet(key),
        value: snippet(raw),
    };
    let out_of_range = || LineErrorReason::FieldValueOutOfRange {
        key: snippet(key),
        value: snippet(raw),
    };
    match raw {
        "" => return Err(LineErrorReason::MissingFieldValue { key: snippet(key) }),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Boolean(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Boolean(false)),
        _ => {}
    }
    if let Some(digits) = raw.strip_suffix('i') {
        if !is_integer(digits) {
            return Err(invalid());
        }
        return digits
            .parse()
            .map(FieldValue::Integer)
            .map_err(|_| out_of_range());
    }
    if let Some(digits) = raw.strip_suffix('u') {
        if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
            return Err(invalid());
        }
        return digits
            .parse()
            .map(FieldValue::UInteger)
            .map_err(|_| out_of_range());
    }
    if !is_float_literal(raw) {
        return Err(invalid());
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(FieldValue::Float(v)),
        Ok(_) => Err(out_of_range()),
        Err(_) => Err(invalid()),
    }
}

fn timestamp(raw: &str, precision: Precision) -> Result<UnixNanos, LineErrorReason> {
    if !is_integer(raw) {
        return Err(LineErrorReason::InvalidTimestamp {
            value: snippet(raw),
        });
    }
    raw.parse::<i64>()
        .ok()
        .and_then(|units| units.checked_mul(precision.nanos_per_unit()))
        .filter(|nanos| (MIN_TIME..=MAX_TIME).contains(nanos))
        .ok_or_else(|| LineErrorReason::TimestampOutOfRange {
            value: snippet(raw),
        })
}

/// Quoted user input in an error message, cut so a bad line cannot make an error response huge.
fn snippet(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_owned(),
    }
}
