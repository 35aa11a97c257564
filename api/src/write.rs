//! `POST /api/v2/write`: InfluxDB v2 line protocol, so Telegraf, Node-RED and a network server's InfluxDB
//! integration write to bydata unchanged (`Authorization: Token …`, `bucket`, `org`, `precision`, gzip bodies).
//!
//! A request is all or nothing: every line is parsed and validated first; one bad line refuses the whole
//! request with a 400 naming the line, and nothing is written. The valid request becomes one store write
//! (one transaction in the embedded engine), durable when the 204 is sent. Lines go straight to the store,
//! not through the raw journal: they arrive already decoded, and there is no device identity to record.
use crate::auth::Writer;
use crate::{AppState, Error};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bydata_admission::metrics::{Collector, DescriptorEncoder, counter, counters, get};
use bydata_schemas::line_protocol::{FieldRef, FieldValue, Precision, SeriesRef, parse_line_ref};
use bydata_schemas::{DeviceId, MeasurementName, SeriesKey, UnixNanos};
use bydata_store::{SeriesPoints, TokenInfo};
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::str::Utf8Error;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest body accepted after decompression; a gzip bomb stops here.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const PARAMS: [&str; 4] = ["bucket", "org", "orgID", "precision"];

/// Counters of the write endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    refused: AtomicU64,
    points: AtomicU64,
    string_fields_skipped: AtomicU64,
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        counters(
            e,
            "bydata_write_requests",
            "Line-protocol write requests, by outcome",
            "outcome",
            &[
                ("written", get(&self.requests)),
                ("refused", get(&self.refused)),
            ],
        )?;
        counter(
            e,
            "bydata_write_points",
            "Points written through line protocol",
            get(&self.points),
        )?;
        counter(
            e,
            "bydata_write_string_fields_skipped",
            "String fields skipped (bydata stores numbers)",
            get(&self.string_fields_skipped),
        )
    }
}

fn invalid(message: String) -> Error {
    Error::bad("invalid_line_protocol", message)
}

/// The body as text, borrowed unless it was compressed.
fn body_text<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<Cow<'a, str>, Error> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::to_str)
    {
        None | Some(Ok("identity")) => false,
        Some(Ok("gzip")) => true,
        Some(other) => {
            return Err(Error::bad(
                "unsupported_encoding",
                format!(
                    "Content-Encoding {:?} is not supported: send identity or gzip",
                    other.unwrap_or("?")
                ),
            ));
        }
    };
    let not_utf8 = |e: Utf8Error| {
        Error::bad(
            "invalid_body",
            format!(
                "line protocol must be UTF-8; byte {} is not",
                e.valid_up_to()
            ),
        )
    };
    if !gzip {
        return std::str::from_utf8(body)
            .map(Cow::Borrowed)
            .map_err(not_utf8);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body.as_ref())
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            Error::bad(
                "invalid_body",
                format!("gzip body does not decompress: {e}"),
            )
        })?;
    if out.len() > MAX_BODY_BYTES {
        return Err(Error::bad(
            "body_too_large",
            format!("the decompressed body exceeds {MAX_BODY_BYTES} bytes; send smaller batches"),
        ));
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
    ) -> Result<(), Error> {
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
pub(crate) struct Body {
    /// Grouped by series key, each series' points in the order written.
    pub(crate) groups: Vec<SeriesPoints>,
    /// String fields, which bydata does not store.
    pub(crate) skipped: u64,
    /// Each value of a `device` tag with the first line that has it, by line.
    pub(crate) device_tags: Vec<(usize, String)>,
}

/// Parses and validates a whole body, or returns the first reason (with its line number) to refuse it. Pure:
/// no registry, no clock (`now` is the time of lines without one).
pub(crate) fn parse_body(text: &str, precision: Precision, now: UnixNanos) -> Result<Body, Error> {
    parse_body_checked(text, precision, now, |_| Ok(()))
}

/// While a body is read, the series keys it adds are shown to a check in chunks of this many, so a request
/// with more new series than its token may add is refused before all of it is parsed (parsed series are
/// what costs memory: about a kilobyte each).
const CHECK_SERIES_EVERY: usize = 10_000;

/// [`parse_body`], showing each chunk of new series keys to `check` as it goes; its error ends the parse.
pub(crate) fn parse_body_checked(
    text: &str,
    precision: Precision,
    now: UnixNanos,
    mut check: impl FnMut(&[&SeriesKey]) -> Result<(), Error>,
) -> Result<Body, Error> {
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

/// The points of a request, or why it is refused. Runs on a blocking thread: `handle` reaches the store to
/// count new series while parsing, against the token's `added` series.
fn points(
    text: &str,
    precision: Precision,
    now: UnixNanos,
    (state, token, added): (&AppState, &TokenInfo, u64),
    handle: &tokio::runtime::Handle,
) -> Result<Body, Error> {
    let room = state.series_quota.room(token, added);
    let mut new = 0u64;
    parse_body_checked(text, precision, now, |keys| {
        if let Some(n) = handle.block_on(state.reader.count_unknown(keys))? {
            new += n as u64;
            if new > room {
                return Err(state.series_quota.refusal(token, added, new, true));
            }
        }
        Ok(())
    })
}

/// Identity is never taken from a payload: a registered device's series are written by that device alone.
async fn check_device_tags(state: &AppState, body: &Body) -> Result<(), Error> {
    for (n, value) in &body.device_tags {
        if let Ok(id) = DeviceId::new(value.as_str())
            && state.registry.device(&id).await?.is_some()
        {
            return Err(Error::bad(
                "reserved_series",
                format!(
                    "line {n}: tag device={value} names a registered device; its series are written only by the device itself"
                ),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v2/write",
    operation_id = "write",
    tag = "write",
    summary = "Write line protocol (InfluxDB v2 compatible)",
    params(
        ("bucket" = String, Query, description = "Any name (bydata keeps one namespace); required"),
        ("org" = Option<String>, Query, description = "Accepted and ignored"),
        ("precision" = Option<String>, Query, description = "`ns` (default), `us`, `ms` or `s`"),
    ),
    request_body(content = String, content_type = "text/plain", description = "Line protocol, optionally gzip-compressed (`Content-Encoding: gzip`)"),
    responses(
        (status = 204, description = "Stored (header `x-bydata-skipped-string-fields` counts string fields skipped)"),
        (status = 400, description = "Missing or unknown parameter, a line that does not parse, or more new series than the token may add (nothing is stored)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token may not write (needs an admin or write token)", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body larger than the limit"),
        (status = 503, description = "bydata is shutting down after a component failed; nothing is stored", body = crate::openapi::ErrorBody),
        (status = 507, description = "Disk full: free space is below `[store] min_free_bytes`; nothing is stored, send again once space is freed", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = []), ("influx_token" = [])),
)]
pub(crate) async fn write(
    State(state): State<AppState>,
    Writer(token): Writer,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let result = async {
        if let Some(reason) = state.health.refusal() {
            return Err(Error::NotAccepting { reason });
        }
        if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
            return Err(Error::bad(
                "unknown_parameter",
                format!(
                    "unknown parameter {unknown:?}; known: {}",
                    PARAMS.join(", ")
                ),
            ));
        }
        if params.get("bucket").is_none_or(|b| b.is_empty()) {
            return Err(Error::bad(
                "missing_parameter",
                "bucket is required (any name: bydata keeps one namespace)",
            ));
        }
        let precision: Precision = params
            .get("precision")
            .map(|p| {
                p.parse()
                    .map_err(|e| Error::bad("invalid_parameter", format!("precision: {e}")))
            })
            .transpose()?
            .unwrap_or_default();
        // Decompressing and parsing up to 32 MB is CPU work: off the async workers.
        let added = state.registry.token_series(&token.id).await?;
        let (parse_state, token, now) = (state.clone(), token.clone(), (state.clock)());
        let handle = tokio::runtime::Handle::current();
        let body = tokio::task::spawn_blocking(move || {
            let text = body_text(&headers, &body)?;
            points(
                &text,
                precision,
                now,
                (&parse_state, &token, added),
                &handle,
            )
        })
        .await
        .map_err(|e| Error::Internal {
            message: format!("parsing a write failed: {e}"),
        })??;
        check_device_tags(&state, &body).await?;
        Ok((body.groups, body.skipped))
    }
    .await;
    let (points, skipped) = match result {
        Ok(ok) => ok,
        Err(e) => {
            state.write_metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    };
    let keys: Vec<&SeriesKey> = points.iter().map(|s| &s.series).collect();
    let reservation = match state.series_quota.reserve(&state, &token, &keys).await {
        Ok(r) => r,
        Err(e) => {
            state.write_metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    };
    let count: u64 = points.iter().map(|s| s.points.len() as u64).sum();
    state.writer.write_grouped(points).await?;
    if let Some(reservation) = reservation {
        reservation.commit(&state).await?;
    }
    state.write_metrics.requests.fetch_add(1, Ordering::Relaxed);
    state
        .write_metrics
        .points
        .fetch_add(count, Ordering::Relaxed);
    state
        .write_metrics
        .string_fields_skipped
        .fetch_add(skipped, Ordering::Relaxed);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if skipped > 0 {
        // bydata stores numbers only; say so rather than drop string fields silently.
        response
            .headers_mut()
            .insert("x-bydata-skipped-string-fields", HeaderValue::from(skipped));
    }
    Ok(response)
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
