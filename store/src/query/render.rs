//! A query's answer as bytes, a chunk of series at a time: a head written before any value is known (what the
//! plan says about the answer's series is enough for the JSON keys before `series`, the overall unit and the
//! CSV columns), the series as they come, then a tail. The concatenation is byte for byte what serialising
//! the whole answer at once gives, so streaming changed no client's view. A JSON point of a bucket cut by
//! `from` or `to` carries `"partial": true`; CSV has no place for it and is unchanged.
use super::{Plan, Query, ResultSeries};
use crate::Error;
use bydata_schemas::{MeasurementName, Unit, UnixNanos};
use chrono::{SecondsFormat, TimeZone};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;

/// An answer's format: JSON, or CSV in a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv(CsvDialect),
}

/// How a CSV answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    pub(super) separator: char,
    pub(super) decimal_comma: bool,
    /// A UTF-8 byte-order mark first: how Excel knows the file is UTF-8 (æ, ø, å, °C).
    pub(super) bom: bool,
    /// `2026-03-29 02:00:00` plus a `utc_offset` column, which Excel reads as a date and time; RFC 3339
    /// (`2026-03-29T02:00:00+02:00`) it would keep as text.
    pub(super) excel_time: bool,
}

/// RFC 4180: comma-separated, decimal point, RFC 3339 times.
pub const CSV: CsvDialect = CsvDialect {
    separator: ',',
    decimal_comma: false,
    bom: false,
    excel_time: false,
};

/// What Excel with Danish regional settings opens by double-click: semicolons (the list separator where the
/// comma is the decimal sign), decimal commas, a BOM for UTF-8, and date-times it recognises.
pub const CSV_DANISH_EXCEL: CsvDialect = CsvDialect {
    separator: ';',
    decimal_comma: true,
    bom: true,
    excel_time: true,
};

/// A time as RFC 3339 in `tz`.
pub fn time_in(tz: Tz, t: UnixNanos) -> String {
    tz.timestamp_nanos(t)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A CSV field, quoted when it holds the separator, a quote or a line break.
pub fn csv_field(s: &str, separator: char) -> String {
    if s.contains([separator, '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// What every chunk of one answer is rendered with.
#[derive(Debug, Clone)]
pub(crate) struct Render {
    query: Query,
    format: Format,
    /// The overall unit: the answer series' one unit, if they share it.
    unit: Option<Unit>,
    /// CSV: every tag key of the answer series, sorted (one column each).
    keys: Arc<Vec<String>>,
    /// Bucketed answers: each bucket's time as text, and whether `from` or `to` cuts it.
    buckets: Option<Arc<Vec<(String, bool)>>>,
    /// Whether a series has been written (JSON needs the comma before the next).
    wrote_series: bool,
    /// JSON: `"notice"`, said when nothing matched.
    notice: Option<String>,
}

#[derive(serde::Serialize)]
struct AnswerSeries<'a> {
    points: Vec<AnswerPoint<'a>>,
    tags: &'a BTreeMap<String, String>,
    unit: &'a Option<Unit>,
}

#[derive(serde::Serialize)]
struct AnswerPoint<'a> {
    time: &'a str,
    value: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    serde_json::to_writer(out, value).map_err(|e| Error::Task {
        detail: format!("encoding the answer: {e}"),
    })
}

impl Render {
    pub(crate) fn new(plan: &Plan, format: Format, notice: Option<String>) -> Self {
        let query = plan.query().clone();
        let units: BTreeSet<Option<&Unit>> = plan.answer_series().map(|(_, u)| u).collect();
        let unit = match units.len() {
            1 => units.into_iter().next().flatten().cloned(),
            _ => None,
        };
        let keys: BTreeSet<&String> = plan
            .answer_series()
            .flat_map(|(tags, _)| tags.keys())
            .collect();
        let buckets = plan.bounds().map(|bounds| {
            let starts = &bounds[..bounds.len().saturating_sub(1)];
            Arc::new(
                starts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (time_in(query.tz, *t), plan.is_partial(i)))
                    .collect(),
            )
        });
        Self {
            format,
            unit,
            keys: Arc::new(keys.into_iter().cloned().collect()),
            buckets,
            query,
            wrote_series: false,
            notice,
        }
    }

    /// What comes before the first series.
    pub(crate) fn head(&self) -> Result<Vec<u8>, Error> {
        let q = &self.query;
        let mut out = Vec::new();
        match self.format {
            Format::Json => {
                out.extend_from_slice(b"{\"every\":");
                json(&mut out, &q.every.map(|e| e.to_string()))?;
                out.extend_from_slice(b",\"field\":");
                json(&mut out, &q.filter.field)?;
                out.extend_from_slice(b",\"fn\":");
                json(&mut out, &q.every.map(|_| q.func.to_string()))?;
                out.extend_from_slice(b",\"from\":");
                json(&mut out, &time_in(q.tz, q.from))?;
                out.extend_from_slice(b",\"measurement\":");
                json::<Option<MeasurementName>>(&mut out, &q.filter.measurement)?;
                if let Some(notice) = &self.notice {
                    out.extend_from_slice(b",\"notice\":");
                    json(&mut out, notice)?;
                }
                out.extend_from_slice(b",\"series\":[");
            }
            Format::Csv(d) => {
                let sep = d.separator;
                let mut head = String::new();
                if d.bom {
                    head.push('\u{feff}');
                }
                if d.excel_time {
                    let _ = write!(head, "time{sep}utc_offset");
                } else {
                    head.push_str("time");
                }
                for k in self.keys.iter() {
                    head.push(sep);
                    head.push_str(&csv_field(k, sep));
                }
                let _ = write!(head, "{sep}value{sep}unit\r\n");
                out = head.into_bytes();
            }
        }
        Ok(out)
    }

    /// The next series of the answer.
    pub(crate) fn series(&mut self, chunk: &[ResultSeries]) -> Result<Vec<u8>, Error> {
        match self.format {
            Format::Json => self.json_series(chunk),
            Format::Csv(d) => Ok(self.csv_series(chunk, d).into_bytes()),
        }
    }

    /// What comes after the last series.
    pub(crate) fn tail(&self) -> Result<Vec<u8>, Error> {
        let q = &self.query;
        let mut out = Vec::new();
        if self.format == Format::Json {
            out.extend_from_slice(b"],\"to\":");
            json(&mut out, &time_in(q.tz, q.to))?;
            out.extend_from_slice(b",\"tz\":");
            json(&mut out, q.tz.name())?;
            out.extend_from_slice(b",\"unit\":");
            json(&mut out, &self.unit)?;
            out.push(b'}');
        }
        Ok(out)
    }

    /// A value as the answer shows it: computed values (buckets) rounded to what the data carries, raw points
    /// as they were written.
    fn value(&self, v: Option<f64>) -> Option<f64> {
        if self.buckets.is_some() {
            super::round_opt(v)
        } else {
            v
        }
    }

    fn json_series(&mut self, chunk: &[ResultSeries]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut raw_times: Vec<String> = Vec::new();
        for s in chunk {
            if self.buckets.is_none() {
                raw_times.clear();
                raw_times.extend(s.points.iter().map(|(t, _)| time_in(self.query.tz, *t)));
            }
            let points = s
                .points
                .iter()
                .enumerate()
                .map(|(i, (_, value))| {
                    let (time, partial) = match &self.buckets {
                        Some(b) => b.get(i).map_or(("", false), |(t, p)| (t.as_str(), *p)),
                        None => (raw_times.get(i).map_or("", String::as_str), false),
                    };
                    AnswerPoint {
                        time,
                        value: self.value(*value),
                        partial,
                    }
                })
                .collect();
            if self.wrote_series {
                out.push(b',');
            }
            json(
                &mut out,
                &AnswerSeries {
                    points,
                    tags: &s.tags,
                    unit: &s.unit,
                },
            )?;
            self.wrote_series = true;
        }
        Ok(out)
    }

    /// One row per point: `time` (and `utc_offset` for Excel), one column per tag key, `value` (empty for an
    /// empty bucket), `unit`.
    fn csv_series(&self, chunk: &[ResultSeries], d: CsvDialect) -> String {
        let sep = d.separator;
        let tz = self.query.tz;
        let mut out = String::new();
        for s in chunk {
            let unit = s
                .unit
                .as_ref()
                .map(|u| csv_field(u.as_str(), sep))
                .unwrap_or_default();
            for (i, (t, v)) in s.points.iter().enumerate() {
                if d.excel_time {
                    let local = tz.timestamp_nanos(*t);
                    let _ = write!(
                        out,
                        "{}{sep}{}",
                        local.format("%Y-%m-%d %H:%M:%S"),
                        local.format("%:z")
                    );
                } else {
                    match self.buckets.as_ref().and_then(|b| b.get(i)) {
                        Some((time, _)) => out.push_str(time),
                        None => out.push_str(&time_in(tz, *t)),
                    }
                }
                for k in self.keys.iter() {
                    out.push(sep);
                    out.push_str(&csv_field(
                        s.tags.get(k).map(String::as_str).unwrap_or(""),
                        sep,
                    ));
                }
                out.push(sep);
                if let Some(v) = self.value(*v) {
                    let text = v.to_string();
                    out.push_str(&if d.decimal_comma {
                        text.replace('.', ",")
                    } else {
                        text
                    });
                }
                let _ = write!(out, "{sep}{unit}\r\n");
            }
        }
        out
    }
}
