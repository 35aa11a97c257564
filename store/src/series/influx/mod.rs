//! The InfluxDB 2 adapter: [`InfluxStore`] implements `SeriesWriter` and `SeriesReader` over InfluxDB's v2 HTTP
//! API, so bydata can keep its series in a shared InfluxDB instead of the embedded engine.
//!
//! **Why a small client of our own, not the `influxdb2` crate** (DESIGN.md §4): `influxdb2` 0.5.2 (last release
//! 2024-07) panics on empty values and pivots in query results and on a bad URL in `Client::new`, and pins
//! reqwest 0.11 (a second HTTP stack in the build). We need two endpoints and one response format, so this module
//! speaks them directly with the workspace's reqwest and never panics on what a server sends.
//!
//! - **Write** (`POST {url}/api/v2/write?org=&bucket=&precision=ns`, `Authorization: Token …`; InfluxDB v2 API
//!   reference "Write data", <https://docs.influxdata.com/influxdb/v2/api/write-data/>): line protocol built by
//!   [`line`], up to [`MAX_LINES_PER_REQUEST`] lines per request, requests in order. InfluxDB OSS writes a
//!   request synchronously and all-or-nothing and answers 204; a batch split in several requests is not atomic
//!   as a whole — a failure leaves the earlier requests written, which is safe because writes are idempotent
//!   (same series and time replaces the value) and the caller retries or replays the whole batch.
//! - **Read** (`POST {url}/api/v2/query?org=`, JSON body with the Flux text and the annotated-CSV dialect,
//!   `Accept: application/csv`): queries from [`flux`], responses parsed by [`csv`], rows read by [`rows`].
//! - **Delete** (`POST {url}/api/v2/delete?org=&bucket=`, JSON body with `start`, inclusive `stop` and a
//!   predicate on measurement and tags, built by [`delete`]): InfluxDB OSS deletes synchronously and answers
//!   204, after which no query returns the points. A field cannot be deleted alone in InfluxDB 2, so a filter
//!   naming one is refused. The unit fields go with the series' values.
//!
//! **Units.** InfluxDB has no place for a series' unit, so each line also carries a string field
//! `{field}#unit` (empty for no unit): `#` cannot occur in a bydata field name, so it never collides with a
//! real field, and `series()` reports the unit of the latest write as the engine does. Other InfluxDB readers
//! see it as an extra string field (and VictoriaMetrics, which ignores strings, as a metric of zeros).
//!
//! **Exact series.** A Flux filter on a key's tags also matches series with *more* tags, so range and
//! last-point queries keep the tag columns and drop rows whose tag set is not exactly the key's.
//!
//! Errors: transport failures and non-2xx answers become `Error::Task` (status and a body excerpt, never the
//! token); a response that is not the documented annotated CSV, or a Flux error table in a 200 answer,
//! becomes `Error::Corrupt`; a point line protocol cannot carry becomes `Error::InvalidQuery`.

mod csv;
mod delete;
mod flux;
mod line;
mod rows;
#[cfg(test)]
mod tests;

use crate::series::{SeriesFilter, SeriesInfo, SeriesReader, SeriesWriter};
use crate::{Error, Result};
use bydata_schemas::{MeasurementName, Point, SeriesKey, Unit, UnixNanos};
use line::UNIT_FIELD_SUFFIX;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Lines per write request: InfluxDB's guidance is batches of about 5,000 lines.
pub(crate) const MAX_LINES_PER_REQUEST: usize = 5_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request, including reading a large query answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Characters of an error response kept in the error.
const MAX_BODY_EXCERPT: usize = 512;

/// Where and as whom to reach InfluxDB 2. `url` is the server's base URL (`http://influx:8086`, or with a path
/// prefix behind a proxy).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    pub url: String,
    pub org: String,
    pub bucket: String,
    pub token: String,
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// An InfluxDB 2 bucket behind the series traits. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct InfluxStore {
    http: reqwest::Client,
    write_url: Url,
    query_url: Url,
    delete_url: Url,
    /// `Token …`, marked sensitive so it is never logged by the HTTP stack.
    auth: HeaderValue,
    base: String,
    org: String,
    bucket: String,
}

impl fmt::Debug for InfluxStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxStore")
            .field("url", &self.base)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidQuery { reason }
}

impl InfluxStore {
    /// Checks the configuration and builds the HTTP client. Sends nothing: an unreachable server shows up at
    /// the first write or read.
    pub fn new(config: InfluxConfig) -> Result<Self> {
        let base = Url::parse(&config.url)
            .map_err(|e| invalid(format!("InfluxDB url {:?}: {e}", config.url)))?;
        match base.scheme() {
            "http" => {}
            // reqwest is built without TLS in this workspace; say so now rather than at the first write.
            "https" => {
                return Err(invalid(format!(
                    "InfluxDB url {:?}: https is not supported by this build (no TLS); use http or a local \
                     TLS-terminating proxy",
                    config.url
                )));
            }
            other => {
                return Err(invalid(format!(
                    "InfluxDB url {:?}: scheme {other:?} is not http",
                    config.url
                )));
            }
        }
        if base.query().is_some() || base.fragment().is_some() || base.cannot_be_a_base() {
            return Err(invalid(format!(
                "InfluxDB url {:?}: expected the server's base URL, without query or fragment",
                config.url
            )));
        }
        if config.org.is_empty() || config.bucket.is_empty() {
            return Err(invalid(
                "InfluxDB org and bucket must not be empty".to_owned(),
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Token {}", config.token)).map_err(|_| {
            invalid("InfluxDB token contains characters not allowed in an HTTP header".to_owned())
        })?;
        auth.set_sensitive(true);

        let mut write_url = endpoint(&base, &["api", "v2", "write"])?;
        write_url
            .query_pairs_mut()
            .append_pair("org", &config.org)
            .append_pair("bucket", &config.bucket)
            .append_pair("precision", "ns");
        let mut query_url = endpoint(&base, &["api", "v2", "query"])?;
        query_url.query_pairs_mut().append_pair("org", &config.org);
        let mut delete_url = endpoint(&base, &["api", "v2", "delete"])?;
        delete_url
            .query_pairs_mut()
            .append_pair("org", &config.org)
            .append_pair("bucket", &config.bucket);

        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Task {
                detail: format!("building the InfluxDB HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            write_url,
            query_url,
            delete_url,
            auth,
            base: config.url,
            org: config.org,
            bucket: config.bucket,
        })
    }

    async fn post_lines(&self, body: String) -> Result<()> {
        let response = self
            .http
            .post(self.write_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| transport("write", &e))?;
        check_status("write", response).await.map(drop)
    }

    /// Runs one Flux query and parses the annotated CSV answer.
    async fn query(&self, flux: String) -> Result<Vec<csv::Table>> {
        let body = serde_json::json!({
            "query": flux,
            "type": "flux",
            "dialect": {
                "header": true,
                "delimiter": ",",
                "annotations": ["datatype", "group", "default"],
            },
        });
        let response = self
            .http
            .post(self.query_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/csv")
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("query", &e))?;
        let text = check_status("query", response).await?;
        csv::parse(&text).map_err(|e| Error::Corrupt {
            what: "InfluxDB query response",
            detail: e.to_string(),
        })
    }
}

fn endpoint(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| invalid(format!("InfluxDB url {base}: cannot carry a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn transport(what: &str, e: &reqwest::Error) -> Error {
    // reqwest's message names the URL (org and bucket, no token) and the cause.
    Error::Task {
        detail: format!("InfluxDB {what} request failed: {e}"),
    }
}

/// The body of a 2xx answer, or an error carrying the status and the start of the body.
async fn check_status(what: &str, response: reqwest::Response) -> Result<String> {
    let status = response.status();
    let body = response.text().await.map_err(|e| transport(what, &e))?;
    if status.is_success() {
        return Ok(body);
    }
    let excerpt = match body.char_indices().nth(MAX_BODY_EXCERPT) {
        Some((at, _)) => format!("{}…", body.get(..at).unwrap_or_default()),
        None => body,
    };
    Err(Error::Task {
        detail: format!("InfluxDB {what} answered HTTP {status}: {}", excerpt.trim()),
    })
}

#[async_trait::async_trait]
impl SeriesWriter for InfluxStore {
    async fn write(&self, points: Vec<Point>) -> Result<()> {
        // Serialise everything first: a point we cannot write fails the batch before anything is sent.
        let mut bodies = Vec::with_capacity(points.len().div_ceil(MAX_LINES_PER_REQUEST));
        for chunk in points.chunks(MAX_LINES_PER_REQUEST) {
            let mut body = String::with_capacity(chunk.len() * 96);
            for point in chunk {
                line::push_line(&mut body, point).map_err(|e| invalid(e.to_string()))?;
            }
            bodies.push(body);
        }
        for body in bodies {
            self.post_lines(body).await?;
        }
        Ok(())
    }

    async fn delete_range(
        &self,
        filter: &SeriesFilter,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<()> {
        let Some(body) = delete::body(filter, start, end).map_err(|e| invalid(e.to_string()))?
        else {
            return Ok(());
        };
        let response = self
            .http
            .post(self.delete_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("delete", &e))?;
        check_status("delete", response).await.map(drop)
    }
}

#[async_trait::async_trait]
impl SeriesReader for InfluxStore {
    async fn series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>> {
        let tables = self.query(flux::series(&self.bucket, filter)).await?;
        let mut found: BTreeMap<SeriesKey, Option<Unit>> = BTreeMap::new();
        let mut units: BTreeMap<SeriesKey, Option<Unit>> = BTreeMap::new();
        for row in rows::rows(&tables) {
            let (Some(measurement), Some(field)) = (row.get("_measurement"), row.get("_field"))
            else {
                continue;
            };
            let (field, is_unit) = match field.strip_suffix(UNIT_FIELD_SUFFIX) {
                Some(base) => (base, true),
                None => (field, false),
            };
            // Series written by other tools may have names bydata does not accept: not ours to list.
            let (Ok(measurement), Ok(field)) = (
                MeasurementName::new(measurement),
                MeasurementName::new(field),
            ) else {
                tracing::debug!(
                    measurement,
                    field,
                    "skipping an InfluxDB series with a name bydata does not accept"
                );
                continue;
            };
            let key = SeriesKey {
                measurement,
                tags: row.tags(),
                field,
            };
            if !filter.matches(&key) {
                continue;
            }
            if is_unit {
                let unit = row.get("_value").and_then(|u| Unit::new(u).ok());
                units.insert(key, unit);
            } else {
                found.insert(key, None);
            }
        }
        Ok(found
            .into_keys()
            .map(|key| SeriesInfo {
                unit: units.get(&key).cloned().flatten(),
                key,
            })
            .collect())
    }

    async fn range(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<(UnixNanos, f64)>> {
        if from >= to || to <= flux::EARLIEST {
            return Ok(Vec::new());
        }
        let tables = self.query(flux::range(&self.bucket, key, from, to)).await?;
        let mut points = Vec::new();
        for row in rows::rows(&tables) {
            if row.tags() != key.tags {
                continue;
            }
            if let Some(point) = row.point()? {
                points.push(point);
            }
        }
        // One series comes back as one table in time order; sorting keeps the contract whatever the server did.
        points.sort_by_key(|&(t, _)| t);
        Ok(points)
    }

    async fn last_before(
        &self,
        key: &SeriesKey,
        before: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>> {
        if before <= flux::EARLIEST {
            return Ok(None);
        }
        let tables = self
            .query(flux::last_before(&self.bucket, key, before))
            .await?;
        let mut last = None;
        for row in rows::rows(&tables) {
            if row.tags() != key.tags {
                continue;
            }
            if let Some((t, v)) = row.point()?
                && last.is_none_or(|(lt, _)| t > lt)
            {
                last = Some((t, v));
            }
        }
        Ok(last)
    }
}
