//! `GET/POST /query`: InfluxDB 1.x's query endpoint, so Grafana's built-in InfluxDB data source (InfluxQL) and
//! InfluxDB 1.x clients read bydata unchanged.
//!
//! The text is parsed by `bydata-influxql`; each statement is answered from the series the caller may read
//! (the same scope as `GET /api/v1/query`, policy `viewer`): `show` lists databases, retention policies,
//! measurements, tag keys and values and field keys; `select` folds the store's partial aggregates into the
//! buckets of `GROUP BY time(…)` and does what the store does not (`fill`, order, limits). Answers and errors
//! take InfluxDB's shapes: `{"results": [{"statement_id", "series" | "error"}]}`, a refused statement is an
//! `error` in its result (HTTP 200, as InfluxDB answers), a query that does not parse is a 400 with
//! `{"error": "error parsing query: …"}`; `compat` turns credentials InfluxDB clients send (Basic auth, `u`/`p`)
//! into the key they carry and every other error of this path into `{"error": "…"}`.
pub(crate) mod compat;
mod cond;
mod fill;
mod select;
mod show;

use crate::auth::Principal;
use crate::{AppState, Error};
use axum::body::Bytes;
use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bydata_influxql::Statement;
use bydata_schemas::{UnixNanos, format_rfc3339};
use bydata_store::query::{Cost, Limits, QueryGate};
use bydata_store::{Scope, SeriesReader};
use chrono::TimeZone;
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The parameters of InfluxDB 1.x's `/query`; `u` and `p` are credentials (`compat`), `rp`, `pretty` and the
/// chunking ones change nothing here.
const PARAMS: [&str; 9] = [
    "q",
    "db",
    "rp",
    "epoch",
    "u",
    "p",
    "pretty",
    "chunked",
    "chunk_size",
];

/// Why a statement is not answered: the message of its result's `error`, in the user's words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal(pub(crate) String);

/// What a statement reads with.
pub(crate) struct Ctx<'a> {
    reader: &'a dyn SeriesReader,
    scope: Option<Arc<Scope>>,
    now: UnixNanos,
    /// The `[api.query]` limits and heavy-query permits, as for `/api/v1/query`.
    gate: Arc<QueryGate>,
    limits: Limits,
    /// When the request must be answered (the gate's deadline from its start).
    deadline: tokio::time::Instant,
}

impl Ctx<'_> {
    /// A heavy-query permit when `cost` is heavy, held while reading, as `/api/v1/query` takes one: heavy
    /// InfluxQL panels wait their turn (then 503 `busy`) instead of crowding out the light ones.
    pub(crate) async fn admit(
        &self,
        cost: &Cost,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Error> {
        if !self.gate.is_heavy(cost) {
            return Ok(None);
        }
        match self.gate.admit(cost, self.deadline).await {
            Ok(permit) => Ok(Some(permit)),
            Err(e) => {
                self.gate.count(&e);
                Err(e.into())
            }
        }
    }
}

/// One value of an answer row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Time(UnixNanos),
    Num(f64),
    Int(i64),
    Str(String),
    Bool(bool),
    Null,
}

/// One series of a statement's result, as InfluxDB shapes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    name: String,
    tags: Option<BTreeMap<String, String>>,
    columns: Vec<String>,
    values: Vec<Vec<Cell>>,
}

/// How times are written: `epoch=ns|u|µ|ms|s|m|h` as whole numbers in that unit, otherwise RFC 3339 (in the
/// statement's `tz()` if it has one).
#[derive(Debug, Clone, Copy)]
enum Epoch {
    Rfc3339,
    Divisor(i64),
}

fn epoch(params: &HashMap<String, String>) -> Result<Epoch, String> {
    Ok(match params.get("epoch").map(String::as_str) {
        None | Some("") => Epoch::Rfc3339,
        Some("ns" | "n") => Epoch::Divisor(1),
        Some("u" | "µ") => Epoch::Divisor(1_000),
        Some("ms") => Epoch::Divisor(1_000_000),
        Some("s") => Epoch::Divisor(1_000_000_000),
        Some("m") => Epoch::Divisor(60_000_000_000),
        Some("h") => Epoch::Divisor(3_600_000_000_000),
        Some(other) => {
            return Err(format!(
                "epoch={other:?} is not a precision: use ns, u, ms, s, m or h (or leave it out for RFC 3339 times)"
            ));
        }
    })
}

impl Cell {
    fn json(&self, epoch: Epoch, tz: Option<Tz>) -> Value {
        match self {
            Cell::Time(t) => match (epoch, tz) {
                (Epoch::Divisor(d), _) => json!(t.div_euclid(d)),
                (Epoch::Rfc3339, Some(tz)) => json!(
                    tz.timestamp_nanos(*t)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
                (Epoch::Rfc3339, None) => json!(format_rfc3339(*t)),
            },
            Cell::Num(x) if x.is_finite() => json!(x),
            Cell::Num(_) | Cell::Null => Value::Null,
            Cell::Int(n) => json!(n),
            Cell::Str(s) => json!(s),
            Cell::Bool(b) => json!(b),
        }
    }
}

/// An answer in InfluxDB's error shape.
/// InfluxDB 1.x's error shape, which `/query` answers with instead of bydata's `ErrorBody`: Grafana and the
/// InfluxDB clients show `error` as it is.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct InfluxError {
    /// What went wrong and what to do, e.g. `error parsing query: found …, expected … at char 7`.
    pub(crate) error: String,
}

fn influx_error(status: StatusCode, message: &str) -> Response {
    (status, [VERSION], axum::Json(json!({ "error": message }))).into_response()
}

/// InfluxDB 1.x answers carry their version; some clients read it to tell 1.x from 2.x.
const VERSION: (header::HeaderName, HeaderValue) = (
    header::HeaderName::from_static("x-influxdb-version"),
    HeaderValue::from_static("1.8.10-bydata"),
);

/// A form-encoded body (`application/x-www-form-urlencoded`, as Grafana posts `q`) into its pairs.
fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/query",
    operation_id = "influxql_query",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "query",
    summary = "InfluxDB 1.x query (InfluxQL), for Grafana's InfluxDB data source and InfluxDB 1.x clients",
    params(
        ("q" = String, Query, description = "InfluxQL: one or more statements separated by `;` — SELECT with mean, min, max, sum, count, first, last or spread, tag conditions, a time range, GROUP BY time(…) and tags, fill(null|none|previous|linear|number), ORDER BY time DESC, LIMIT, SLIMIT, tz(…); SHOW DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, RETENTION POLICIES"),
        ("db" = Option<String>, Query, description = "Accepted and ignored: bydata has one database (`bydata`); the key decides which series are read"),
        ("epoch" = Option<String>, Query, description = "Times as whole numbers in `ns`, `u`, `ms`, `s`, `m` or `h`; without it RFC 3339"),
        ("u" = Option<String>, Query, description = "User name (ignored; InfluxDB 1.x clients send one)"),
        ("p" = Option<String>, Query, description = "An API key, as InfluxDB 1.x clients send a password (or use HTTP Basic auth with the key as password, or `Authorization: Token <key>`)"),
    ),
    responses(
        (status = 200, description = "InfluxDB's answer: `{\"results\": [{\"statement_id\": 0, \"series\": [{\"name\", \"tags\", \"columns\", \"values\"}]}]}`; a statement bydata does not answer has `error` (the function, clause or condition named) instead of `series`", body = Value),
        (status = 400, description = "The query does not parse, `q` is missing, or a parameter is unknown: `{\"error\": \"error parsing query: …\"}`", body = InfluxError),
        (status = 401, description = "No key, or not a valid one: `{\"error\": \"…\"}`", body = InfluxError),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn query_get(
    State(state): State<AppState>,
    by: Principal,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> Result<Response, Error> {
    answer(&state, &by, params).await
}

#[utoipa::path(
    post,
    path = "/query",
    operation_id = "influxql_query_post",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "query",
    summary = "InfluxDB 1.x query (InfluxQL) sent by POST, as Grafana's data source does with HTTP method POST",
    params(
        ("q" = Option<String>, Query, description = "InfluxQL, here or in the form-encoded body (`q=…`)"),
        ("db" = Option<String>, Query, description = "Accepted and ignored"),
        ("epoch" = Option<String>, Query, description = "Times as whole numbers in `ns`, `u`, `ms`, `s`, `m` or `h`; without it RFC 3339"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`q=<InfluxQL>` (and any other parameter)"),
    responses(
        (status = 200, description = "InfluxDB's answer, as for GET", body = Value),
        (status = 400, description = "The query does not parse, `q` is missing, or a parameter is unknown", body = InfluxError),
        (status = 401, description = "No key, or not a valid one", body = InfluxError),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn query_post(
    State(state): State<AppState>,
    by: Principal,
    QueryParams(mut params): QueryParams<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, Error> {
    // The body's parameters win over the URL's, as InfluxDB reads them.
    params.extend(form_pairs(&body));
    answer(&state, &by, params).await
}

async fn answer(
    state: &AppState,
    by: &Principal,
    params: HashMap<String, String>,
) -> Result<Response, Error> {
    if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Ok(influx_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "unknown parameter {unknown:?}; /query takes {}",
                PARAMS.join(", ")
            ),
        ));
    }
    let epoch = match epoch(&params) {
        Ok(e) => e,
        Err(message) => return Ok(influx_error(StatusCode::BAD_REQUEST, &message)),
    };
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return Ok(influx_error(
            StatusCode::BAD_REQUEST,
            "missing required parameter \"q\": send InfluxQL, e.g. q=SHOW MEASUREMENTS",
        ));
    };
    let statements = match bydata_influxql::parse(q) {
        Ok(s) => s,
        Err(e) => {
            return Ok(influx_error(
                StatusCode::BAD_REQUEST,
                &format!("error parsing query: {e}"),
            ));
        }
    };
    let ctx = Ctx {
        reader: state.reader.as_ref(),
        scope: by.scope(&state.registry, &state.auth_cache.owners).await?,
        now: (state.clock)(),
        limits: state.queries.store_limits(),
        gate: state.queries.clone(),
        deadline: tokio::time::Instant::now() + state.queries.deadline,
    };
    let mut results = Vec::with_capacity(statements.len());
    for (id, statement) in statements.iter().enumerate() {
        let tz = match statement {
            Statement::Select(s) => s.tz.as_deref().and_then(|z| z.parse::<Tz>().ok()),
            _ => None,
        };
        let mut result = Map::new();
        result.insert("statement_id".into(), json!(id));
        match run(&ctx, statement).await? {
            Ok(series) if series.is_empty() => {}
            Ok(series) => {
                let series: Vec<Value> = series.iter().map(|s| render(s, epoch, tz)).collect();
                result.insert("series".into(), Value::Array(series));
            }
            Err(Refusal(message)) => {
                result.insert("error".into(), json!(message));
            }
        }
        results.push(Value::Object(result));
    }
    Ok(([VERSION], axum::Json(json!({ "results": results }))).into_response())
}

async fn run(ctx: &Ctx<'_>, statement: &Statement) -> Result<Result<Vec<Series>, Refusal>, Error> {
    Ok(match statement {
        Statement::Select(s) => select::run(ctx, s).await?,
        Statement::ShowDatabases => Ok(show::databases()),
        Statement::ShowRetentionPolicies { .. } => Ok(show::retention_policies()),
        Statement::ShowMeasurements {
            with,
            condition,
            limit,
            offset,
            ..
        } => show::measurements(ctx, with.as_ref(), condition.as_ref(), (*limit, *offset)).await?,
        Statement::ShowTagKeys {
            from,
            condition,
            limit,
            offset,
            ..
        } => show::tag_keys(ctx, from, condition.as_ref(), (*limit, *offset)).await?,
        Statement::ShowTagValues {
            from,
            key,
            condition,
            limit,
            offset,
            ..
        } => show::tag_values(ctx, from, key, condition.as_ref(), (*limit, *offset)).await?,
        Statement::ShowFieldKeys {
            from,
            limit,
            offset,
            ..
        } => show::field_keys(ctx, from, (*limit, *offset)).await?,
    })
}

fn render(s: &Series, epoch: Epoch, tz: Option<Tz>) -> Value {
    let mut out = Map::new();
    if !s.name.is_empty() {
        out.insert("name".into(), json!(s.name));
    }
    if let Some(tags) = &s.tags {
        out.insert("tags".into(), json!(tags));
    }
    out.insert("columns".into(), json!(s.columns));
    out.insert(
        "values".into(),
        Value::Array(
            s.values
                .iter()
                .map(|row| Value::Array(row.iter().map(|c| c.json(epoch, tz)).collect()))
                .collect(),
        ),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_form_bodies() {
        let p = form_pairs(b"q=SELECT+mean%28%22value%22%29+FROM+%22m%22&db=x&bad=%zz%4");
        assert_eq!(p["q"], "SELECT mean(\"value\") FROM \"m\"");
        assert_eq!(p["db"], "x");
        assert_eq!(p["bad"], "%zz%4");
    }

    #[test]
    fn writes_times_as_asked() {
        let t = Cell::Time(1_596_240_000_123_000_000);
        assert_eq!(
            t.json(Epoch::Divisor(1_000_000), None),
            json!(1_596_240_000_123i64)
        );
        assert_eq!(
            t.json(Epoch::Rfc3339, None),
            json!("2020-08-01T00:00:00.123Z")
        );
        let cph: Tz = "Europe/Copenhagen".parse().expect("tz");
        assert_eq!(
            t.json(Epoch::Rfc3339, Some(cph)),
            json!("2020-08-01T02:00:00.123+02:00")
        );
        assert_eq!(Cell::Num(f64::NAN).json(Epoch::Rfc3339, None), Value::Null);
    }
}
