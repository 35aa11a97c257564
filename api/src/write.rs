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
use bydata_schemas::line_protocol::{FieldValue, Precision, parse_line};
use bydata_schemas::{DeviceId, MeasurementName, Point, SeriesKey};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Read;
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

impl Metrics {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE bydata_write_requests_total counter");
        let _ = writeln!(
            out,
            "bydata_write_requests_total{{outcome=\"written\"}} {}",
            get(&self.requests)
        );
        let _ = writeln!(
            out,
            "bydata_write_requests_total{{outcome=\"refused\"}} {}",
            get(&self.refused)
        );
        let _ = writeln!(out, "# TYPE bydata_write_points_total counter");
        let _ = writeln!(out, "bydata_write_points_total {}", get(&self.points));
        let _ = writeln!(
            out,
            "# TYPE bydata_write_string_fields_skipped_total counter"
        );
        let _ = writeln!(
            out,
            "bydata_write_string_fields_skipped_total {}",
            get(&self.string_fields_skipped)
        );
    }
}

fn invalid(message: String) -> Error {
    Error::bad("invalid_line_protocol", message)
}

fn body_text(headers: &HeaderMap, body: &Bytes) -> Result<String, Error> {
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
    let bytes = if gzip {
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
                format!(
                    "the decompressed body exceeds {MAX_BODY_BYTES} bytes; send smaller batches"
                ),
            ));
        }
        out
    } else {
        body.to_vec()
    };
    String::from_utf8(bytes).map_err(|e| {
        Error::bad(
            "invalid_body",
            format!(
                "line protocol must be UTF-8; byte {} is not",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// The points of a request, or the first reason (with its line number) to refuse it.
fn points(
    text: &str,
    precision: Precision,
    now: i64,
    state: &AppState,
) -> Result<(Vec<Point>, u64), Error> {
    let mut points = Vec::new();
    let mut skipped = 0u64;
    let mut device_tags: BTreeSet<(usize, String)> = BTreeSet::new();
    for (index, raw) in text.split('\n').enumerate() {
        let n = index + 1;
        let Some(line) =
            parse_line(raw, precision).map_err(|reason| invalid(format!("line {n}: {reason}")))?
        else {
            continue;
        };
        let measurement = MeasurementName::new(line.measurement.as_str())
            .map_err(|e| invalid(format!("line {n}: {e}")))?;
        if let Some((_, v)) = line.tags.iter().find(|(k, _)| k.as_str() == "device") {
            device_tags.insert((n, v.clone()));
        }
        let time = line.time.unwrap_or(now);
        for (key, value) in &line.fields {
            let value = match value {
                FieldValue::Float(v) => *v,
                FieldValue::Integer(v) => *v as f64,
                FieldValue::UInteger(v) => *v as f64,
                FieldValue::Boolean(b) => f64::from(u8::from(*b)),
                FieldValue::String(_) => {
                    skipped += 1;
                    continue;
                }
            };
            if !value.is_finite() {
                return Err(invalid(format!(
                    "line {n}: field {key:?} is not a finite number"
                )));
            }
            let field = MeasurementName::new(key.as_str())
                .map_err(|e| invalid(format!("line {n}: {e}")))?;
            points.push(Point {
                series: SeriesKey {
                    measurement: measurement.clone(),
                    tags: line.tags.clone(),
                    field,
                },
                unit: None,
                time,
                value,
            });
        }
    }
    // Identity is never taken from a payload: a registered device's series are written by that device alone.
    for (n, value) in device_tags {
        if let Ok(id) = DeviceId::new(value.as_str())
            && state.registry.device(&id)?.is_some()
        {
            return Err(Error::bad(
                "reserved_series",
                format!(
                    "line {n}: tag device={value} names a registered device; its series are written only by the device itself"
                ),
            ));
        }
    }
    Ok((points, skipped))
}

pub(crate) async fn write(
    State(state): State<AppState>,
    Writer(_token): Writer,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let result = async {
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
        let text = body_text(&headers, &body)?;
        points(&text, precision, (state.clock)(), &state)
    }
    .await;
    let (points, skipped) = match result {
        Ok(ok) => ok,
        Err(e) => {
            state.write_metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    };
    let count = points.len() as u64;
    state.writer.write(points).await?;
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
