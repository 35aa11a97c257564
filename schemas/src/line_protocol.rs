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
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, btree_map::Entry};
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

mod lexer;
#[cfg(test)]
mod tests;

use lexer::{Cursor, is_float_literal, parse_integer, unescape};

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
    let mut fields = Vec::new();
    let unknown = |_: &str| None::<Infallible>;
    let Some(parsed) = parse_line_ref(line, precision, unknown, &mut fields)? else {
        return Ok(None);
    };
    let (measurement, tags) = match parsed.series {
        SeriesRef::Known(never) => match never {},
        SeriesRef::Parsed { measurement, tags } => (measurement, tags),
    };
    Ok(Some(Line {
        measurement,
        tags,
        fields: fields
            .into_iter()
            .map(|(key, value)| (key.into_owned(), value))
            .collect(),
        time: parsed.time,
    }))
}

/// A field as [`parse_line_ref`] reads it: the key borrows from the line unless it had escapes.
pub type FieldRef<'a> = (Cow<'a, str>, FieldValue);

/// The measurement and tag set of a [`LineRef`].
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesRef<K> {
    /// What the caller's `known` returned for the series text; the measurement and tags were not parsed.
    Known(K),
    Parsed {
        measurement: String,
        /// Sorted by key, keys unique.
        tags: BTreeMap<String, String>,
    },
}

/// One line read by [`parse_line_ref`]; its fields are in the caller's buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRef<'a, K> {
    /// The measurement and tag set as written, escapes unresolved. Equal text means an equal measurement and
    /// tag set, so a caller can key what it derives from them by this text.
    pub series_text: &'a str,
    pub series: SeriesRef<K>,
    /// Nanoseconds; `None` when the line has no timestamp.
    pub time: Option<UnixNanos>,
}

/// [`parse_line`] for bodies where many lines share a series. Once the measurement and tag set are delimited,
/// `known(series_text)` is asked; when it returns `Some`, they are not parsed again (a series text that parsed
/// once parses the same way again). The fields replace the content of `fields`, in the order written, keys
/// unique. Accepts and refuses exactly what `parse_line` does, with the same reasons.
pub fn parse_line_ref<'a, K>(
    line: &'a str,
    precision: Precision,
    known: impl FnOnce(&'a str) -> Option<K>,
    fields: &mut Vec<FieldRef<'a>>,
) -> Result<Option<LineRef<'a, K>>, LineErrorReason> {
    fields.clear();
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut cur = Cursor { text: line, pos: 0 };

    // The series section ends at the first unescaped space: the measurement and the tags stop only at
    // unescaped `,` `=` or space, and a valid section consumes every `,` and `=` it meets.
    let series_text = Cursor { text: line, pos: 0 }.take_escaped(b" ");
    let series = if let Some(known) = known(series_text) {
        cur.pos = series_text.len();
        SeriesRef::Known(known)
    } else {
        let raw = cur.take_escaped(b", ");
        if raw.is_empty() {
            return Err(LineErrorReason::EmptyMeasurement);
        }
        let measurement = unescape(raw, b", ").into_owned();
        let tags = tag_set(&mut cur)?;
        SeriesRef::Parsed { measurement, tags }
    };
    if cur.skip_spaces() == 0 || cur.at_end() {
        return Err(LineErrorReason::MissingFields);
    }
    field_set(&mut cur, fields)?;
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
    Ok(Some(LineRef {
        series_text,
        series,
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
        match tags.entry(key.into_owned()) {
            Entry::Occupied(entry) => {
                return Err(LineErrorReason::DuplicateTag {
                    key: snippet(entry.key()),
                });
            }
            Entry::Vacant(entry) => {
                entry.insert(unescape(raw_value, b",= ").into_owned());
            }
        }
    }
    Ok(tags)
}

/// `key=value[,key=value…]` into `fields`; stops before the space that ends it (or at the end of the line).
fn field_set<'a>(
    cur: &mut Cursor<'a>,
    fields: &mut Vec<FieldRef<'a>>,
) -> Result<(), LineErrorReason> {
    // Few fields: a scan finds a duplicate key faster than hashing. Many: an index keeps the line linear.
    const SCAN_UP_TO: usize = 16;
    let mut positions: Option<HashMap<Cow<'a, str>, usize>> = None;
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
        let seen = match &positions {
            Some(positions) => positions.get(&key).copied(),
            None => fields.iter().position(|(k, _)| *k == key),
        };
        match seen.and_then(|at| fields.get_mut(at)) {
            Some(slot) => slot.1 = value,
            None => {
                if let Some(positions) = &mut positions {
                    positions.insert(key.clone(), fields.len());
                }
                fields.push((key, value));
                if positions.is_none() && fields.len() > SCAN_UP_TO {
                    let index = fields.iter().enumerate();
                    positions = Some(index.map(|(at, (k, _))| (k.clone(), at)).collect());
                }
            }
        }
        if !cur.eat(b',') {
            return Ok(());
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
    let value = unescape(body, b"\"").into_owned();
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
        let value = parse_integer(digits).ok_or_else(invalid)?;
        return value.map(FieldValue::Integer).ok_or_else(out_of_range);
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
    let Some(units) = parse_integer(raw) else {
        return Err(LineErrorReason::InvalidTimestamp {
            value: snippet(raw),
        });
    };
    units
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
