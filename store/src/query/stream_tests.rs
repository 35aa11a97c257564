//! The streamed answer against the whole-answer rendering it replaced, and the gate's refusals that need a
//! hand on its internals (a deadline of zero, a store that underestimates).
use super::answer::{self, Answer};
use super::limits::{QueryGate, QueryLimits};
use super::params::parse;
use super::render::{self, CSV, CSV_DANISH_EXCEL, CsvDialect, Format, csv_field, time_in};
use crate::query::{self, Query, ResultSeries};
use crate::series::SeriesFilter;
use crate::{EmbeddedEngine, Error, SeriesInfo, SeriesReader, SeriesWriter};
use bydata_schemas::{MeasurementName, Point, SeriesKey, Unit, parse_rfc3339};
use chrono::TimeZone;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

const HOUR: i64 = 3_600_000_000_000;

fn key(measurement: &str, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey {
        measurement: MeasurementName::new(measurement).expect("name"),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        field: MeasurementName::new("value").expect("name"),
    }
}

fn point(key: &SeriesKey, unit: Option<&str>, time: i64, value: f64) -> Point {
    Point {
        series: key.clone(),
        unit: unit.and_then(|u| Unit::new(u).ok()),
        time,
        value,
    }
}

/// Three energy series over two buildings (one without a unit), a day of hourly readings each.
async fn engine(dir: &std::path::Path) -> Arc<EmbeddedEngine> {
    let e = Arc::new(EmbeddedEngine::open(&dir.join("series")).expect("open"));
    let mut points = Vec::new();
    for (i, (b, m, unit)) in [
        ("b1", "m1", Some("kWh")),
        ("b1", "m2", Some("kWh")),
        ("b2", "m3", None),
    ]
    .iter()
    .enumerate()
    {
        let k = key("energy", &[("building", b), ("meter", m)]);
        for h in 0..24 {
            points.push(point(
                &k,
                *unit,
                h * HOUR + 60_000_000_000,
                (h * (i as i64 + 1)) as f64 * 1.5,
            ));
        }
    }
    e.write(points).await.expect("write");
    e
}

fn params(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The JSON the handler wrote before answers streamed: the whole answer serialized at once.
fn whole_json(q: &Query, series: &[ResultSeries]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        every: Option<String>,
        field: &'a Option<MeasurementName>,
        #[serde(rename = "fn")]
        func: Option<String>,
        from: String,
        measurement: &'a Option<MeasurementName>,
        series: Vec<Series<'a>>,
        to: String,
        tz: &'a str,
        unit: Option<&'a Unit>,
    }
    #[derive(serde::Serialize)]
    struct Series<'a> {
        points: Vec<P>,
        tags: &'a BTreeMap<String, String>,
        unit: &'a Option<Unit>,
    }
    #[derive(serde::Serialize)]
    struct P {
        time: String,
        value: Option<f64>,
    }
    let units: BTreeSet<_> = series.iter().map(|s| s.unit.as_ref()).collect();
    let unit = if units.len() == 1 {
        units.into_iter().next().flatten()
    } else {
        None
    };
    serde_json::to_vec(&Answer {
        every: q.every.map(|e| e.to_string()),
        field: &q.filter.field,
        func: q.every.map(|_| q.func.to_string()),
        from: time_in(q.tz, q.from),
        measurement: &q.filter.measurement,
        series: series
            .iter()
            .map(|s| Series {
                points: s
                    .points
                    .iter()
                    .map(|(t, v)| P {
                        time: time_in(q.tz, *t),
                        value: shown(q, *v),
                    })
                    .collect(),
                tags: &s.tags,
                unit: &s.unit,
            })
            .collect(),
        to: time_in(q.tz, q.to),
        tz: q.tz.name(),
        unit,
    })
    .expect("json")
}

/// A value as answers show it: computed (bucketed) values rounded, raw points as written.
fn shown(q: &Query, v: Option<f64>) -> Option<f64> {
    if q.every.is_some() {
        query::round_opt(v)
    } else {
        v
    }
}

/// The CSV the handler wrote before answers streamed.
fn whole_csv(q: &Query, series: &[ResultSeries], d: CsvDialect) -> String {
    let sep = d.separator;
    let keys: BTreeSet<&String> = series.iter().flat_map(|s| s.tags.keys()).collect();
    let mut out = String::new();
    if d.bom {
        out.push('\u{feff}');
    }
    if d.excel_time {
        let _ = write!(out, "time{sep}utc_offset");
    } else {
        out.push_str("time");
    }
    for k in &keys {
        out.push(sep);
        out.push_str(&csv_field(k, sep));
    }
    let _ = write!(out, "{sep}value{sep}unit\r\n");
    for s in series {
        let unit = s
            .unit
            .as_ref()
            .map(|u| csv_field(u.as_str(), sep))
            .unwrap_or_default();
        for (t, v) in &s.points {
            if d.excel_time {
                let local = q.tz.timestamp_nanos(*t);
                let _ = write!(
                    out,
                    "{}{sep}{}",
                    local.format("%Y-%m-%d %H:%M:%S"),
                    local.format("%:z")
                );
            } else {
                out.push_str(&time_in(q.tz, *t));
            }
            for k in &keys {
                out.push(sep);
                out.push_str(&csv_field(
                    s.tags.get(*k).map(String::as_str).unwrap_or(""),
                    sep,
                ));
            }
            out.push(sep);
            if let Some(v) = shown(q, *v) {
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

/// Renders a plan's answer one series per chunk (the most chunk boundaries an answer can have).
async fn streamed(reader: &dyn SeriesReader, q: &Query, format: Format) -> Vec<u8> {
    let plan = query::plan(reader, q, &query::Limits::default())
        .await
        .expect("plan");
    let mut render = render::Render::new(&plan, format, None);
    let mut out = render.head().expect("head");
    let mut chunks = plan.chunks();
    while let Some(chunk) = chunks.next(reader).await.expect("chunk") {
        for one in chunk.chunks(1) {
            out.extend(render.series(one).expect("series"));
        }
    }
    out.extend(render.tail().expect("tail"));
    out
}

#[tokio::test]
async fn streamed_answers_are_byte_for_byte_the_whole_answers() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = engine(dir.path()).await;
    let now = parse_rfc3339("1970-01-02T00:00:00Z").expect("now");
    for query_string in [
        "measurement=energy&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z&every=1h&fn=mean&tz=UTC",
        "measurement=energy&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z&every=6h&fn=increase&group_by=building&tz=UTC",
        "measurement=energy&from=1970-01-01T00:00:00Z&to=1970-01-01T06:00:00Z&every=1h&fn=count",
        "measurement=energy&from=1970-01-01T00:00:00Z&to=1970-01-01T03:00:00Z&tag.building=b1",
        "measurement=energy&from=1970-01-01T00:00:00Z&to=1970-01-01T03:00:00Z",
        "measurement=nothing&every=1h",
    ] {
        let (q, _) = parse(&params(query_string), now).expect("query");
        let whole = query::run(e.as_ref(), &q).await.expect("run");
        assert_eq!(
            String::from_utf8(streamed(e.as_ref(), &q, Format::Json).await).expect("utf-8"),
            String::from_utf8(whole_json(&q, &whole)).expect("utf-8"),
            "{query_string}"
        );
        for d in [CSV, CSV_DANISH_EXCEL] {
            assert_eq!(
                String::from_utf8(streamed(e.as_ref(), &q, Format::Csv(d)).await).expect("utf-8"),
                whole_csv(&q, &whole, d),
                "{query_string}"
            );
        }
    }
}

#[tokio::test]
async fn a_cut_bucket_is_marked_partial_in_json_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = engine(dir.path()).await;
    let q = "measurement=energy&tag.meter=m1&every=1d&fn=sum&tz=UTC&from=1970-01-01T10:30:00Z&to=1970-01-01T12:30:00Z";
    let (q, _) = parse(&params(q), 0).expect("query");
    let json: Value =
        serde_json::from_slice(&streamed(e.as_ref(), &q, Format::Json).await).expect("json");
    // Readings at 11:01 and 12:01 (16.5 and 18): only they count, at the day's aligned start.
    assert_eq!(
        json["series"][0]["points"],
        json!([{"time": "1970-01-01T00:00:00+00:00", "value": 34.5, "partial": true}])
    );
    let csv = String::from_utf8(streamed(e.as_ref(), &q, Format::Csv(CSV)).await).expect("utf-8");
    assert_eq!(
        csv,
        "time,building,meter,value,unit\r\n1970-01-01T00:00:00+00:00,b1,m1,34.5,kWh\r\n"
    );
}

/// Reads through the engine but estimates every range as empty: the raw-point limit must still hold.
struct Underestimating(Arc<EmbeddedEngine>);

#[async_trait::async_trait]
impl SeriesReader for Underestimating {
    async fn series(&self, f: &SeriesFilter) -> crate::Result<Vec<SeriesInfo>> {
        self.0.series(f).await
    }
    async fn range(&self, k: &SeriesKey, from: i64, to: i64) -> crate::Result<Vec<(i64, f64)>> {
        self.0.range(k, from, to).await
    }
    async fn last_before(&self, k: &SeriesKey, before: i64) -> crate::Result<Option<(i64, f64)>> {
        self.0.last_before(k, before).await
    }
    async fn estimate_points(&self, _: &SeriesKey, _: i64, _: i64) -> crate::Result<Option<u64>> {
        Ok(Some(0))
    }
}

/// Every chunk of an answer, or the error that cut it.
async fn collect(mut answer: Answer) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = answer.next().await {
        out.extend(chunk?);
    }
    Ok(out)
}

fn gate(limits: QueryLimits) -> Arc<QueryGate> {
    Arc::new(QueryGate::new(limits))
}

fn refused(gate: &Arc<QueryGate>, reason: &str) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(gate.clone()));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
    out.lines()
        .find(|l| {
            l.starts_with(&format!(
                "bydata_query_refused_total{{reason=\"{reason}\"}}"
            ))
        })
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_raw_point_limit_holds_while_reading_and_cuts_a_started_answer() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = Arc::new(EmbeddedEngine::open(&dir.path().join("series")).expect("open"));
    // 300 series of one point: the first chunk (256 series) fits 280 points, the next passes them.
    let points = (0..300)
        .map(|i| {
            point(
                &key("t", &[("sensor", &format!("s{i:03}"))]),
                None,
                HOUR,
                1.0,
            )
        })
        .collect();
    e.write(points).await.expect("write");
    let reader: Arc<dyn SeriesReader> = Arc::new(Underestimating(e));
    let (q, format) = parse(
        &params("measurement=t&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z"),
        0,
    )
    .expect("query");
    let g = gate(QueryLimits {
        max_raw_points: 280,
        ..QueryLimits::default()
    });
    let body = answer::start(reader.clone(), g.clone(), q.clone(), format)
        .await
        .expect("started");
    let read = collect(body).await;
    let error = read.expect_err("the answer is cut");
    assert!(
        error.to_string().contains("more than 280 raw points"),
        "{error}"
    );
    assert_eq!(
        refused(&g, "too_large"),
        "bydata_query_refused_total{reason=\"too_large\"} 1"
    );
    // Over the limit within the first chunk: an ordinary 400 (the handler counts those).
    let g = gate(QueryLimits {
        max_raw_points: 200,
        ..QueryLimits::default()
    });
    match answer::start(reader, g, q, format).await {
        Err(e @ Error::QueryTooLarge { .. }) => {
            let message = e.to_string();
            assert!(
                message.starts_with("this query returns more than 200 raw points"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_query_past_its_deadline_before_its_answer_is_a_503_saying_how_to_narrow_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let e: Arc<dyn SeriesReader> = engine(dir.path()).await;
    let (q, format) = parse(
        &params("measurement=energy&every=1h&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z"),
        0,
    )
    .expect("query");
    let mut g = QueryGate::new(QueryLimits::default());
    g.deadline = Duration::ZERO;
    let g = Arc::new(g);
    match answer::start(e, g.clone(), q, format).await {
        Err(e @ Error::QueryTimeout { .. }) => {
            assert_eq!(
                e.to_string(),
                "this query (3 series × 24 buckets) did not finish within its deadline of 0 s. Narrow it: a wider \
                 bucket (every=…), a shorter range (from/to) or fewer series (device=…, tag.KEY=…)"
            );
            g.count(&e);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        refused(&g, "timeout"),
        "bydata_query_refused_total{reason=\"timeout\"} 1"
    );
}
