//! InfluxDB v2 line protocol bodies (`POST /api/v2/write`) read into points for the store: the body decoded
//! (identity or gzip, at most [`MAX_BODY_BYTES`] once decompressed, UTF-8), every line parsed
//! (`schemas::line_protocol`) and validated, each series text turned into a series key once however many
//! lines repeat it, and the points grouped by key in the order written — what `SeriesWriter::write_grouped`
//! takes. Pure: no registry, no clock, no HTTP; the API maps [`BodyError`] and [`LineProtocolError`] to its
//! answers.
use bydata_schemas::line_protocol::{FieldRef, FieldValue, Precision, SeriesRef, parse_line_ref};
use bydata_schemas::{MeasurementName, SeriesKey, UnixNanos};
use bydata_store::SeriesPoints;
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Largest body accepted after decompression; a gzip bomb stops here.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Why a body cannot be read as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("line protocol must be UTF-8; byte {valid_up_to} is not")]
    NotUtf8 { valid_up_to: usize },
    #[error("gzip body does not decompress: {reason}")]
    NotGzip { reason: String },
    #[error("the decompressed body exceeds {MAX_BODY_BYTES} bytes; send smaller batches")]
    TooLarge,
}

/// A line that does not parse or names something invalid; the message names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LineProtocolError {
    pub message: String,
}

fn invalid(message: String) -> LineProtocolError {
    LineProtocolError { message }
}

/// The body as text, borrowed unless it was compressed (`gzip`).
pub fn body_text(body: &[u8], gzip: bool) -> Result<Cow<'_, str>, BodyError> {
    let not_utf8 = |e: std::str::Utf8Error| BodyError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    };
    if !gzip {
        return std::str::from_utf8(body)
            .map(Cow::Borrowed)
            .map_err(not_utf8);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::NotGzip {
            reason: e.to_string(),
        })?;
    if out.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|e| not_utf8(e.utf8_error()))
}

/// A request's measurement and tag set, parsed and validated once however many lines repeat it.
struct Series {
    template: Template,
    /// Indexes into [`Batch::keys`], in the order the fields first appeared. Lines of one series usually list
    /// the same fields in the same order, so a field is looked for at its own position first.
    fields: Vec<usize>,
    /// Field name → index into [`Batch::keys`], once a series has more fields than a scan handles well.
    by_field: HashMap<String, usize>,
}

/// Where the next key of a series takes its measurement and tags from.
enum Template {
    /// The parse, moved into the first key.
    Parsed {
        measurement: MeasurementName,
        tags: BTreeMap<String, String>,
    },
    /// A key of the series, cloned.
    Key(usize),
}

/// A series key with the number of values written to it.
struct Key {
    series: SeriesKey,
    uses: usize,
}

/// The values of a request, each naming its series key by index: a key is built and validated once per
/// request, and cloned for each of its values but the last, which takes it.
#[derive(Default)]
struct Batch<'a> {
    /// Series text (measurement and tag set as written) → index into `series`.
    by_text: HashMap<&'a str, usize>,
    /// Measurement and tag set → index into `series`: texts that differ in tag order or escapes (`\\(` and
    /// `\(` both read as `\(`) name one series, which the store must receive once, its points in the order
    /// written, so that the value written last at a time is the one kept.
    by_series: HashMap<(MeasurementName, BTreeMap<String, String>), usize>,
    series: Vec<Series>,
    keys: Vec<Key>,
    /// (index into `keys`, time, value), in the order written.
    values: Vec<(usize, UnixNanos, f64)>,
    skipped: u64,
    /// Value of a `device` tag → the first line that has it.
    device_tags: HashMap<String, usize>,
}

impl<'a> Batch<'a> {
    /// Parses line `n` and adds its values.
    fn line(
        &mut self,
        n: usize,
        raw: &'a str,
        precision: Precision,
        now: UnixNanos,
        fields: &mut Vec<FieldRef<'a>>,
    ) -> Result<(), LineProtocolError> {
        let known = |text| self.by_text.get(text).copied();
        let Some(line) = parse_line_ref(raw, precision, known, fields)
            .map_err(|reason| invalid(format!("line {n}: {reason}")))?
        else {
            return Ok(());
        };
        let at = match line.series {
            SeriesRef::Known(at) => at,
            SeriesRef::Parsed { measurement, tags } => {
                let measurement = MeasurementName::new(measurement)
                    .map_err(|e| invalid(format!("line {n}: {e}")))?;
                if let Some(device) = tags.get("device")
                    && !self.device_tags.contains_key(device)
                {
                    self.device_tags.insert(device.clone(), n);
                }
                let at = match self.by_series.entry((measurement, tags)) {
                    Entry::Occupied(known) => *known.get(),
                    Entry::Vacant(new) => {
                        let (measurement, tags) = new.key().clone();
                        self.series.push(Series {
                            template: Template::Parsed { measurement, tags },
                            fields: Vec::new(),
                            by_field: HashMap::new(),
                        });
                        *new.insert(self.series.len() - 1)
                    }
                };
                self.by_text.insert(line.series_text, at);
                at
            }
        };
        let time = line.time.unwrap_or(now);
        for (position, (field, value)) in fields.iter().enumerate() {
            let value = match value {
                FieldValue::Float(v) => *v,
                FieldValue::Integer(v) => *v as f64,
                FieldValue::UInteger(v) => *v as f64,
                FieldValue::Boolean(b) => f64::from(u8::from(*b)),
                FieldValue::String(_) => {
                    self.skipped += 1;
                    continue;
                }
            };
            if !value.is_finite() {
                return Err(invalid(format!(
                    "line {n}: field {field:?} is not a finite number"
                )));
            }
            let key = self
                .key(at, position, field)
                .map_err(|e| invalid(format!("line {n}: {e}")))?;
            self.keys[key].uses += 1;
            self.values.push((key, time, value));
        }
        Ok(())
    }

    /// The key of `field` in series `at`, built (and the field name validated) the first time it is seen.
    fn key(
        &mut self,
        at: usize,
        position: usize,
        field: &str,
    ) -> Result<usize, bydata_schemas::Error> {
        const SCAN_UP_TO: usize = 16;
        let series = &mut self.series[at];
        let keys = &self.keys;
        let is_field = |key: &&usize| keys[**key].series.field.as_str() == field;
        let found = match series.fields.get(position).filter(is_field) {
            Some(key) => Some(key),
            None if series.fields.len() <= SCAN_UP_TO => series.fields.iter().find(is_field),
            None => series.by_field.get(field),
        };
        if let Some(&key) = found {
            return Ok(key);
        }
        let field_name = MeasurementName::new(field)?;
        let new = self.keys.len();
        let series_key = match std::mem::replace(&mut series.template, Template::Key(new)) {
            Template::Parsed { measurement, tags } => SeriesKey {
                measurement,
                tags,
                field: field_name,
            },
            Template::Key(key) => {
                let template = &self.keys[key].series;
                SeriesKey {
                    measurement: template.measurement.clone(),
                    tags: template.tags.clone(),
                    field: field_name,
                }
            }
        };
        self.keys.push(Key {
            series: series_key,
            uses: 0,
        });
        series.fields.push(new);
        if series.fields.len() > SCAN_UP_TO {
            if series.by_field.is_empty() {
                let keys = &self.keys;
                series.by_field = series
                    .fields
                    .iter()
                    .map(|&key| (keys[key].series.field.to_string(), key))
                    .collect();
            } else {
                series.by_field.insert(field.to_owned(), new);
            }
        }
        Ok(new)
    }

    /// The points grouped by series key, each series' points in the order written.
    fn into_groups(self) -> Vec<SeriesPoints> {
        let mut groups: Vec<SeriesPoints> = self
            .keys
            .into_iter()
            .map(|key| SeriesPoints {
                series: key.series,
                unit: None,
                points: Vec::with_capacity(key.uses),
            })
            .collect();
        for (key, time, value) in self.values {
            if let Some(group) = groups.get_mut(key) {
                group.points.push((time, value));
            }
        }
        groups.retain(|g| !g.points.is_empty());
        groups
    }
}

/// A body read into points, before anything is checked against the registry.
#[derive(Debug)]
pub struct Body {
    /// Grouped by series key, each series' points in the order written.
    pub groups: Vec<SeriesPoints>,
    /// String fields, which bydata does not store.
    pub skipped: u64,
    /// Each value of a `device` tag with the first line that has it, by line.
    pub device_tags: Vec<(usize, String)>,
}

/// Parses and validates a whole body, or returns the first reason (with its line number) to refuse it. Pure:
/// no registry, no clock (`now` is the time of lines without one).
pub fn parse_body(
    text: &str,
    precision: Precision,
    now: UnixNanos,
) -> Result<Body, LineProtocolError> {
    parse_body_checked(text, precision, now, |_| Ok::<(), LineProtocolError>(()))
}

/// While a body is read, the series keys it adds are shown to a check in chunks of this many, so a request
/// with more new series than its token may add is refused before all of it is parsed (parsed series are
/// what costs memory: about a kilobyte each).
const CHECK_SERIES_EVERY: usize = 10_000;

/// [`parse_body`], showing each chunk of new series keys to `check` as it goes; its error ends the parse. The
/// caller's error type carries both: a line that does not parse becomes one through `From`.
pub fn parse_body_checked<E: From<LineProtocolError>>(
    text: &str,
    precision: Precision,
    now: UnixNanos,
    mut check: impl FnMut(&[&SeriesKey]) -> Result<(), E>,
) -> Result<Body, E> {
    let mut batch = Batch::default();
    let mut fields = Vec::new();
    let mut checked = 0;
    for (index, raw) in text.split('\n').enumerate() {
        batch.line(index + 1, raw, precision, now, &mut fields)?;
        if batch.keys.len() - checked >= CHECK_SERIES_EVERY {
            let chunk: Vec<&SeriesKey> = batch.keys[checked..].iter().map(|k| &k.series).collect();
            check(&chunk)?;
            checked = batch.keys.len();
        }
    }
    let mut device_tags: Vec<(usize, String)> = batch
        .device_tags
        .drain()
        .map(|(value, n)| (n, value))
        .collect();
    device_tags.sort_unstable();
    let skipped = batch.skipped;
    Ok(Body {
        groups: batch.into_groups(),
        skipped,
        device_tags,
    })
}

#[cfg(test)]
#[path = "line_protocol_tests.rs"]
mod tests;
