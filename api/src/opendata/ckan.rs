//! CKAN push: publish one [`PublishedDataset`] to a CKAN site (Open Data DK runs CKAN 2.11) through the
//! Action API, idempotently: a second push of the same dataset only reads.
//!
//! [`Ckan::push`] reads the package (`package_show`), creates it with all its resources inline when missing
//! (one request, so a half-created package never exists), otherwise patches only the package fields that
//! differ (`package_patch`), then reconciles resources one per [`Distribution`]: `resource_create` for missing
//! ones, `resource_patch` for changed ones, `resource_delete` for resources *we* created (they carry a
//! `bydata_key`) whose distribution is gone; resources added by hand (no `bydata_key`) are never touched.
//!
//! Requests are retried on connect errors, timeouts, HTTP 5xx and 429 (honouring `Retry-After`), never on
//! other 4xx. A create whose response is lost is not simply re-sent: `package_show` first checks whether it
//! happened, so a retry never duplicates a resource.
//!
//! Decisions, and the documents behind them:
//! - Names: [`package_name`] is the dataset id itself (`.` becomes `-`), no `bydata-` prefix, so the portal URL
//!   reads like ours. Two ids differing only in `.`/`-` would collide; the `bydata_id` extra detects that
//!   ([`CkanError::NameTaken`]) instead of overwriting the other dataset.
//! - Licences: CKAN's default licence list (`ckan/model/license.py`): `CC0-1.0` → `cc-zero`, `CC-BY-4.0` →
//!   `cc-by` (the default list has no versioned CC-BY). A site with its own list needs the same ids.
//! - Extras use ckanext-dcat's key names (`frequency`, `theme` as a JSON list of URIs, `temporal_start`,
//!   `spatial_uri`, `issued`, …; `ckanext/dcat/profiles/euro_dcat_ap_base.py`) so a DCAT export of the portal
//!   maps them; other extras on the package are kept when we patch ours.
//! - Resource `hash` is the bare hex digest with `hash_algorithm` = the SPDX sha256 URI: core CKAN treats
//!   `hash` as free text, and ckanext-dcat exports the pair as `spdx:checksum`.
//! - `last_modified` is sent as naive UTC `YYYY-MM-DDTHH:MM:SS`: CKAN stores it in a `timestamp without
//!   time zone` column and returns `datetime.isoformat()` of it, so that form compares equal on the next push.
//! - Authorization: the raw API token in the `Authorization` header (CKAN 2.10+ tokens).
//!
//! Sources: the CKAN 2.11 API guide <https://docs.ckan.org/en/2.11/api/> (request/response envelope,
//! `Authorization` header, `ckan.logic.action.create.package_create`/`resource_create`,
//! `ckan.logic.action.patch.package_patch`/`resource_patch`, `ckan.logic.action.delete.resource_delete`), and
//! the ckan-2.11.5 source: `ckan/views/api.py` (error `__type` ↔ HTTP 403/404/409), `ckan/logic/schema.py`
//! (`default_resource_schema` keeps extra keys, `isodate` fields), `ckan/logic/validators.py`
//! (`name_validator`, `tag_name_validator`), `ckan/model/license.py`.
use super::model::{Agent, Distribution, FileFormat, PublishedDataset};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The extras this client owns on a package; any other extra is left as the portal has it.
const OWN_EXTRAS: [&str; 14] = [
    "bydata_id",
    "title_en",
    "notes_en",
    "theme",
    "frequency",
    "spatial_uri",
    "spatial_text",
    "temporal_start",
    "temporal_end",
    "issued",
    "modified",
    "publisher_uri",
    "contact_uri",
    "language",
];
const EU_THEME: &str = "http://publications.europa.eu/resource/authority/data-theme/";
const EU_FREQUENCY: &str = "http://publications.europa.eu/resource/authority/frequency/";
const SPDX_SHA256: &str = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256";
/// CKAN's `PACKAGE_NAME_MAX_LENGTH`, and its tag length bounds.
const NAME_MAX: usize = 100;
const TAG_MIN: usize = 2;
const TAG_MAX: usize = 100;

/// Where to push: a CKAN site, an API token and the organisation that owns our datasets.
#[derive(Clone)]
pub struct CkanTarget {
    /// The site root, e.g. `https://admin.opendata.dk`.
    pub url: String,
    /// A CKAN API token; never logged, redacted in `Debug`.
    pub token: String,
    /// The organisation's name (or id) in CKAN.
    pub owner_org: String,
}

impl fmt::Debug for CkanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CkanTarget")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("owner_org", &self.owner_org)
            .finish()
    }
}

/// How often and how patiently a failed request is retried (exponential backoff, no jitter: one client per
/// site, so there is no herd to spread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait, also the cap on a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure (1-based).
    fn wait(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        retry_after.unwrap_or(backoff).min(self.max_backoff)
    }
}

/// What happened to the package itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageOutcome {
    Created,
    Updated,
    Unchanged,
}

/// The result of one push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub package: PackageOutcome,
    /// CKAN's id (a UUID) of the package.
    pub package_id: String,
    pub resources_created: usize,
    pub resources_updated: usize,
    pub resources_unchanged: usize,
    pub resources_deleted: usize,
    /// HTTP requests sent, retries included.
    pub attempts: u32,
}

/// Why a push failed. Messages name the action, the HTTP status and CKAN's own error; never the token.
#[derive(Debug, thiserror::Error)]
pub enum CkanError {
    #[error("CKAN target is not usable: {reason}")]
    Config { reason: String },
    #[error("dataset {dataset} cannot be pushed to CKAN: {reason}")]
    Dataset { dataset: String, reason: String },
    #[error(
        "{action} refused ({status} Authorization Error): {message}; check the API token and that its user \
         may edit datasets of organisation {owner_org}"
    )]
    Authorization {
        action: &'static str,
        status: u16,
        message: String,
        owner_org: String,
    },
    #[error("{action} refused ({status} {kind}): {detail}")]
    Refused {
        action: &'static str,
        status: u16,
        kind: String,
        detail: String,
    },
    #[error("{action}: not found ({detail})")]
    NotFound {
        action: &'static str,
        detail: String,
    },
    #[error("{action} failed after {attempts} attempts: {last}")]
    GaveUp {
        action: &'static str,
        attempts: u32,
        last: String,
    },
    #[error("{action}: unexpected response (HTTP {status}): {detail}")]
    Protocol {
        action: &'static str,
        status: u16,
        detail: String,
    },
    #[error("CKAN package {name} belongs to bydata dataset {other}, not {dataset}")]
    NameTaken {
        name: String,
        dataset: String,
        other: String,
    },
}

/// A CKAN Action API client for one site.
#[derive(Debug, Clone)]
pub struct Ckan {
    http: reqwest::Client,
    target: CkanTarget,
    auth: HeaderValue,
    retry: RetryPolicy,
    timeout: Duration,
}

impl Ckan {
    /// A client with the default retry policy and a 30 s per-request timeout.
    pub fn new(target: CkanTarget) -> Result<Self, CkanError> {
        let mut auth =
            HeaderValue::from_str(target.token.trim()).map_err(|_| CkanError::Config {
                reason: "the API token is not a valid header value".into(),
            })?;
        auth.set_sensitive(true);
        if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
            return Err(CkanError::Config {
                reason: format!("url {:?} is not http(s)", target.url),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("bydata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CkanError::Config {
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            target,
            auth,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The limit on each HTTP request (connect to last byte).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the site's package for `dataset` match it; see the module docs for the steps.
    #[tracing::instrument(skip_all, fields(dataset = %dataset.id))]
    pub async fn push(&self, dataset: &PublishedDataset) -> Result<PushReport, CkanError> {
        let name = package_name(&dataset.id);
        let wanted = WantedPackage::new(dataset, &name, &self.target.owner_org)?;
        let resources = dataset
            .distributions
            .iter()
            .map(|d| resource_fields(&dataset.id, d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut session = Session {
            ckan: self,
            requests: 0,
        };

        let (package, outcome) = match session.show(&name).await? {
            None => {
                let mut body = wanted.create_body();
                let list = resources.iter().cloned().map(Value::Object).collect();
                body.insert("resources".into(), Value::Array(list));
                let (package, recovered) = session
                    .create("package_create", &Value::Object(body), &name, |p| {
                        Some(p.clone())
                    })
                    .await?;
                info!(package = %name, recovered, "created CKAN package");
                (package, PackageOutcome::Created)
            }
            Some(existing) => {
                check_owner(&existing, dataset, &name)?;
                let mut patch = wanted.patch_for(&existing);
                if patch.is_empty() {
                    (existing, PackageOutcome::Unchanged)
                } else {
                    info!(package = %name, fields = ?patch.keys().collect::<Vec<_>>(), "patching CKAN package");
                    patch.insert(
                        "id".into(),
                        existing.get("id").cloned().unwrap_or(Value::Null),
                    );
                    let updated = session
                        .call("package_patch", Request::Post(&Value::Object(patch)))
                        .await?;
                    (updated, PackageOutcome::Updated)
                }
            }
        };
        let package_id = text(&package, "id").to_owned();
        if package_id.is_empty() {
            let action = match outcome {
                PackageOutcome::Created => "package_create",
                PackageOutcome::Updated => "package_patch",
                PackageOutcome::Unchanged => "package_show",
            };
            return Err(CkanError::Protocol {
                action,
                status: 200,
                detail: "the package has no id".into(),
            });
        }
        let mut report = PushReport {
            package: outcome,
            package_id,
            resources_created: 0,
            resources_updated: 0,
            resources_unchanged: 0,
            resources_deleted: 0,
            attempts: 0,
        };
        session
            .reconcile(&package, &name, &resources, &mut report)
            .await?;
        report.attempts = session.requests;
        info!(
            package = %name,
            outcome = ?report.package,
            created = report.resources_created,
            updated = report.resources_updated,
            unchanged = report.resources_unchanged,
            deleted = report.resources_deleted,
            requests = report.attempts,
            "pushed dataset to CKAN"
        );
        Ok(report)
    }
}

impl Ckan {
    /// Withdraws a deleted dataset: `package_delete` of its package (CKAN moves it to the trash; its page and
    /// resources are no longer public). Only a package bydata made for this dataset (its `bydata_id` extra) is
    /// touched. `Ok(false)` when there is none.
    #[tracing::instrument(skip_all, fields(dataset = %dataset_id))]
    pub async fn withdraw(&self, dataset_id: &str) -> Result<bool, CkanError> {
        let name = package_name(dataset_id);
        let mut session = Session {
            ckan: self,
            requests: 0,
        };
        let Some(existing) = session.show(&name).await? else {
            return Ok(false);
        };
        let owner = items(&existing, "extras")
            .iter()
            .find(|e| text(e, "key") == "bydata_id")
            .map(|e| text(e, "value").to_owned());
        if owner.as_deref() != Some(dataset_id) {
            return Err(CkanError::NameTaken {
                name,
                dataset: dataset_id.to_owned(),
                other: owner.unwrap_or_default(),
            });
        }
        let id = existing.get("id").cloned().unwrap_or(Value::Null);
        session
            .call(
                "package_delete",
                Request::Post(&serde_json::json!({ "id": id })),
            )
            .await?;
        info!(package = %name, "withdrew CKAN package");
        Ok(true)
    }
}

/// The CKAN package name for a dataset id: lower-case `a-z 0-9 - _`, 2–100 characters. Our slugs map one to
/// one except `.` → `-`; anything else invalid also becomes `-`. A name over 100 characters is cut and ends
/// in 8 hex digits of the id's SHA-256 so it stays unique; CKAN's reserved names (`new`, `edit`, `search`)
/// and 1-character ids get a `_` appended.
pub fn package_name(dataset_id: &str) -> String {
    use sha2::Digest;
    let mut name: String = dataset_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    if name.len() > NAME_MAX {
        let digest = hex::encode(sha2::Sha256::digest(dataset_id.as_bytes()));
        name.truncate(NAME_MAX - 9);
        name.push('-');
        name.push_str(&digest[..8]);
    }
    while name.len() < 2 || matches!(name.as_str(), "new" | "edit" | "search") {
        name.push('_');
    }
    name
}

/// CKAN's default licence id for an SPDX id we publish under.
pub fn license_id(spdx: &str) -> Option<&'static str> {
    match spdx {
        "CC0-1.0" => Some("cc-zero"),
        "CC-BY-4.0" => Some("cc-by"),
        _ => None,
    }
}

/// A keyword as a CKAN tag (letters, digits, spaces, `-_.`; 2–100 characters), or `None` when nothing is left.
fn tag_name(keyword: &str) -> Option<String> {
    let cleaned: String = keyword
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut tag = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if tag.chars().count() > TAG_MAX {
        tag = tag
            .chars()
            .take(TAG_MAX)
            .collect::<String>()
            .trim_end()
            .to_owned();
    }
    (tag.chars().count() >= TAG_MIN).then_some(tag)
}

/// RFC 3339 → CKAN's naive UTC `YYYY-MM-DDTHH:MM:SS`.
fn ckan_time(rfc3339: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// A time as CKAN returns it (naive, maybe with fractions or an offset), to the second in UTC.
fn parse_ckan_time(s: &str) -> Option<chrono::NaiveDateTime> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.naive_utc())
        })?;
    chrono::Timelike::with_nanosecond(&t, 0)
}

fn format_label(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "CSV",
        FileFormat::Json => "JSON",
        FileFormat::Geojson => "GeoJSON",
    }
}

/// The CKAN resource fields for one distribution; `bydata_key` identifies it on later pushes.
fn resource_fields(dataset: &str, d: &Distribution) -> Result<Map<String, Value>, CkanError> {
    let label = format_label(d.format);
    let last_modified = ckan_time(&d.issued).ok_or_else(|| CkanError::Dataset {
        dataset: dataset.to_owned(),
        reason: format!(
            "{} {}: issued {:?} is not RFC 3339",
            d.period,
            d.format.extension(),
            d.issued
        ),
    })?;
    let (da_state, en_state) = if d.complete {
        ("afsluttet", "complete")
    } else {
        ("løbende, opdateres", "running, updated as data arrives")
    };
    let description = format!(
        "Periode {p} ({da_state}), version {v}. Denne versions faste adresse: {u}\n\n\
         Period {p} ({en_state}), version {v}. This version's immutable URL: {u}",
        p = d.period,
        v = d.version,
        u = d.download_url,
    );
    let fields = json!({
        "bydata_key": format!("{}.{}", d.period, d.format.extension()),
        "name": format!("{} ({label})", d.period),
        "url": d.access_url,
        "format": label,
        "mimetype": d.format.media_type(),
        "hash": d.sha256,
        "hash_algorithm": SPDX_SHA256,
        "size": d.byte_size,
        "description": description,
        "last_modified": last_modified,
        "download_url": d.download_url,
    });
    match fields {
        Value::Object(map) => Ok(map),
        _ => unreachable!("json! of an object literal"),
    }
}

/// The package as we want it: core fields, tag names and our extras.
struct WantedPackage {
    core: Map<String, Value>,
    owner_org: String,
    tags: BTreeSet<String>,
    extras: BTreeMap<String, String>,
}

impl WantedPackage {
    fn new(ds: &PublishedDataset, name: &str, owner_org: &str) -> Result<Self, CkanError> {
        let licence = license_id(&ds.licence).ok_or_else(|| CkanError::Dataset {
            dataset: ds.id.clone(),
            reason: format!(
                "licence {:?} has no CKAN licence id (expected CC0-1.0 or CC-BY-4.0)",
                ds.licence
            ),
        })?;
        let notes = format!(
            "{}\n\n---\n\n*English:* **{}**\n\n{}",
            ds.description.da, ds.title.en, ds.description.en
        );
        let email = |a: &Agent| a.email.clone().unwrap_or_default();
        let core = json!({
            "name": name,
            "title": ds.title.da,
            "notes": notes,
            "license_id": licence,
            "url": ds.landing_page,
            "maintainer": ds.contact_point.name,
            "maintainer_email": email(&ds.contact_point),
            "author": ds.publisher.name,
            "author_email": email(&ds.publisher),
            "private": false,
        });
        let Value::Object(core) = core else {
            unreachable!("json! of an object literal")
        };

        let mut extras = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            extras.insert(k.to_owned(), v);
        };
        put("bydata_id", ds.id.clone());
        put("title_en", ds.title.en.clone());
        put("notes_en", ds.description.en.clone());
        put(
            "frequency",
            format!("{EU_FREQUENCY}{}", ds.update_frequency),
        );
        put("issued", ds.issued.clone());
        put("modified", ds.modified.clone());
        put("language", r#"["da","en"]"#.into());
        if !ds.themes.is_empty() {
            let uris: Vec<String> = ds.themes.iter().map(|t| format!("{EU_THEME}{t}")).collect();
            put("theme", Value::from(uris).to_string());
        }
        match &ds.spatial {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => {
                put("spatial_uri", s.clone())
            }
            Some(s) => put("spatial_text", s.clone()),
            None => {}
        }
        if let Some(t) = &ds.temporal_start {
            put("temporal_start", t.clone());
        }
        if let Some(t) = &ds.temporal_end {
            put("temporal_end", t.clone());
        }
        if let Some(u) = &ds.publisher.uri {
            put("publisher_uri", u.clone());
        }
        if let Some(u) = &ds.contact_point.uri {
            put("contact_uri", u.clone());
        }
        Ok(Self {
            core,
            owner_org: owner_org.to_owned(),
            tags: ds.keywords.iter().filter_map(|k| tag_name(k)).collect(),
            extras,
        })
    }

    fn tags_value(&self) -> Value {
        self.tags.iter().map(|t| json!({ "name": t })).collect()
    }

    fn create_body(&self) -> Map<String, Value> {
        let mut body = self.core.clone();
        body.insert("owner_org".into(), self.owner_org.clone().into());
        body.insert("tags".into(), self.tags_value());
        let extras = self
            .extras
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        body.insert("extras".into(), Value::Array(extras));
        body
    }

    /// The fields of `existing` that differ from what we want, with our values; empty when all agree.
    fn patch_for(&self, existing: &Value) -> Map<String, Value> {
        let mut patch = Map::new();
        for (key, want) in &self.core {
            if key != "name" && !same(existing.get(key), want) {
                patch.insert(key.clone(), want.clone());
            }
        }
        // CKAN answers with the organisation's id in `owner_org`; we may have been given its name.
        let org = existing.get("organization");
        let org_matches = [
            existing.get("owner_org"),
            org.and_then(|o| o.get("name")),
            org.and_then(|o| o.get("id")),
        ]
        .into_iter()
        .flatten()
        .any(|v| v.as_str() == Some(self.owner_org.as_str()));
        if !org_matches {
            patch.insert("owner_org".into(), self.owner_org.clone().into());
        }
        if existing
            .get("state")
            .and_then(Value::as_str)
            .is_some_and(|s| s != "active")
        {
            patch.insert("state".into(), "active".into());
        }
        let have_tags: BTreeSet<String> = items(existing, "tags")
            .iter()
            .map(|t| text(t, "name").to_owned())
            .collect();
        if have_tags != self.tags {
            patch.insert("tags".into(), self.tags_value());
        }
        let have_extras = items(existing, "extras");
        let have_own: BTreeMap<String, String> = have_extras
            .iter()
            .filter(|e| OWN_EXTRAS.contains(&text(e, "key")))
            .map(|e| (text(e, "key").to_owned(), text(e, "value").to_owned()))
            .collect();
        if have_own != self.extras {
            let mut merged: Vec<Value> = have_extras
                .iter()
                .filter(|e| !OWN_EXTRAS.contains(&text(e, "key")))
                .cloned()
                .collect();
            merged.extend(
                self.extras
                    .iter()
                    .map(|(k, v)| json!({ "key": k, "value": v })),
            );
            patch.insert("extras".into(), Value::Array(merged));
        }
        patch
    }
}

/// Refuses to take over a package made for another bydata dataset (ids that map to the same name).
fn check_owner(existing: &Value, dataset: &PublishedDataset, name: &str) -> Result<(), CkanError> {
    let other = items(existing, "extras")
        .iter()
        .find(|e| text(e, "key") == "bydata_id")
        .map(|e| text(e, "value").to_owned());
    match other {
        Some(other) if other != dataset.id => Err(CkanError::NameTaken {
            name: name.to_owned(),
            dataset: dataset.id.clone(),
            other,
        }),
        _ => Ok(()),
    }
}

/// Whether CKAN's value equals ours, allowing for CKAN's spellings: null for an empty string, numbers as text.
fn same(have: Option<&Value>, want: &Value) -> bool {
    match (have.unwrap_or(&Value::Null), want) {
        (Value::Null, Value::String(w)) => w.is_empty(),
        (Value::String(h), Value::Number(w)) => *h == w.to_string(),
        (Value::String(h), Value::Bool(w)) => {
            h.eq_ignore_ascii_case(if *w { "true" } else { "false" })
        }
        (h, w) => h == w,
    }
}

/// The resource fields of `existing` that differ from `want`.
fn resource_patch(existing: &Value, want: &Map<String, Value>) -> Map<String, Value> {
    want.iter()
        .filter(|(key, value)| {
            let have = existing.get(key.as_str());
            if key.as_str() == "last_modified" {
                let parse = |v: Option<&Value>| v.and_then(Value::as_str).and_then(parse_ckan_time);
                parse(have).is_none() || parse(have) != parse(Some(value))
            } else {
                !same(have, value)
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn items<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A resource of `package` with our key that is not already claimed.
fn find_resource(package: &Value, key: &str, claimed: &HashSet<String>) -> Option<Value> {
    items(package, "resources")
        .iter()
        .find(|r| text(r, "bydata_key") == key && !claimed.contains(text(r, "id")))
        .cloned()
}

enum Request<'a> {
    /// `GET ?id=…`: `package_show`.
    Show(&'a str),
    Post(&'a Value),
}

enum Failure {
    /// Worth another try (connect error, timeout, 5xx, 429).
    Transient {
        last: String,
        retry_after: Option<Duration>,
    },
    Fatal(CkanError),
}

/// One push: counts the requests it sends.
struct Session<'c> {
    ckan: &'c Ckan,
    requests: u32,
}

impl Session<'_> {
    async fn show(&mut self, name: &str) -> Result<Option<Value>, CkanError> {
        match self.call("package_show", Request::Show(name)).await {
            Ok(package) => Ok(Some(package)),
            Err(CkanError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `request`, retrying transient failures; only for idempotent actions.
    async fn call(
        &mut self,
        action: &'static str,
        request: Request<'_>,
    ) -> Result<Value, CkanError> {
        let mut failures = 0;
        loop {
            match self.once(action, &request).await {
                Ok(result) => return Ok(result),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { last, retry_after }) => {
                    failures += 1;
                    self.backoff(action, failures, last, retry_after).await?;
                }
            }
        }
    }

    /// Sends a create; after a transient failure, looks the object up (`find` in a fresh `package_show` of
    /// `name`) before sending it again, since the lost attempt may have succeeded. Returns the object and
    /// whether it was found that way.
    async fn create(
        &mut self,
        action: &'static str,
        body: &Value,
        name: &str,
        find: impl Fn(&Value) -> Option<Value>,
    ) -> Result<(Value, bool), CkanError> {
        let mut failures = 0;
        loop {
            match self.once(action, &Request::Post(body)).await {
                Ok(result) => return Ok((result, false)),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { last, retry_after }) => {
                    failures += 1;
                    self.backoff(action, failures, last, retry_after).await?;
                    if let Some(found) = self.show(name).await?.as_ref().and_then(&find) {
                        info!(
                            action,
                            "the failed request had succeeded; not sending it again"
                        );
                        return Ok((found, true));
                    }
                }
            }
        }
    }

    async fn backoff(
        &self,
        action: &'static str,
        failures: u32,
        last: String,
        retry_after: Option<Duration>,
    ) -> Result<(), CkanError> {
        let policy = self.ckan.retry;
        if failures >= policy.attempts.max(1) {
            return Err(CkanError::GaveUp {
                action,
                attempts: failures,
                last,
            });
        }
        let wait = policy.wait(failures, retry_after);
        warn!(action, attempt = failures, wait_ms = wait.as_millis() as u64, error = %last, "CKAN request failed; retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// One HTTP request, its answer classified.
    async fn once(
        &mut self,
        action: &'static str,
        request: &Request<'_>,
    ) -> Result<Value, Failure> {
        self.requests += 1;
        let ckan = self.ckan;
        let url = format!(
            "{}/api/3/action/{action}",
            ckan.target.url.trim_end_matches('/')
        );
        let builder = match request {
            Request::Show(id) => ckan.http.get(&url).query(&[("id", id)]),
            Request::Post(body) => ckan.http.post(&url).json(body),
        };
        debug!(action, "CKAN request");
        let response = match builder
            .header(AUTHORIZATION, ckan.auth.clone())
            .timeout(ckan.timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Err(Failure::Transient {
                    last: ckan.redact(&describe(&e)),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(Failure::Transient {
                    last: ckan.redact(&describe(&e)),
                    retry_after: None,
                });
            }
        };
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let error = body.as_ref().and_then(|b| b.get("error"));
        let kind = error.map(|e| text(e, "__type")).filter(|k| !k.is_empty());
        let detail = match error {
            Some(e) => error_detail(e),
            None => String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        };
        let detail = ckan.redact(&detail);

        if status.is_server_error() || status.as_u16() == 429 {
            let last = format!(
                "HTTP {}{}",
                status.as_u16(),
                kind.map(|k| format!(" {k}: {detail}")).unwrap_or_default()
            );
            return Err(Failure::Transient { last, retry_after });
        }
        let status = status.as_u16();
        if let Some(body) = &body
            && body.get("success").and_then(Value::as_bool) == Some(true)
            && (200..300).contains(&status)
        {
            return Ok(body.get("result").cloned().unwrap_or(Value::Null));
        }
        let fatal = match kind {
            Some("Authorization Error") => CkanError::Authorization {
                action,
                status,
                message: detail,
                owner_org: ckan.target.owner_org.clone(),
            },
            None if status == 401 || status == 403 => CkanError::Authorization {
                action,
                status,
                message: detail,
                owner_org: ckan.target.owner_org.clone(),
            },
            Some("Not Found Error") => CkanError::NotFound { action, detail },
            Some(kind) => CkanError::Refused {
                action,
                status,
                kind: kind.to_owned(),
                detail,
            },
            None if (200..300).contains(&status) => CkanError::Protocol {
                action,
                status,
                detail,
            },
            None => CkanError::Refused {
                action,
                status,
                kind: "HTTP error".into(),
                detail,
            },
        };
        Err(Failure::Fatal(fatal))
    }

    /// Creates, patches and deletes resources so `package` holds exactly `wanted` plus resources not ours.
    async fn reconcile(
        &mut self,
        package: &Value,
        name: &str,
        wanted: &[Map<String, Value>],
        report: &mut PushReport,
    ) -> Result<(), CkanError> {
        // Resources present right after we created the package are ones we just sent.
        let fresh = report.package == PackageOutcome::Created;
        let existing = items(package, "resources");
        let mut claimed: HashSet<String> = HashSet::new();
        for want in wanted {
            let key = want.get("bydata_key").and_then(Value::as_str).unwrap_or("");
            let url = want.get("url").and_then(Value::as_str).unwrap_or("");
            let unclaimed = |r: &&Value| !claimed.contains(text(r, "id"));
            let found = existing
                .iter()
                .filter(unclaimed)
                .find(|r| text(r, "bydata_key") == key)
                .or_else(|| {
                    existing
                        .iter()
                        .filter(unclaimed)
                        .find(|r| text(r, "bydata_key").is_empty() && text(r, "url") == url)
                });
            match found {
                Some(have) => {
                    let id = text(have, "id").to_owned();
                    claimed.insert(id.clone());
                    let mut patch = resource_patch(have, want);
                    if patch.is_empty() {
                        if fresh {
                            report.resources_created += 1;
                        } else {
                            report.resources_unchanged += 1;
                        }
                    } else {
                        debug!(resource = key, fields = ?patch.keys().collect::<Vec<_>>(), "patching CKAN resource");
                        patch.insert("id".into(), id.into());
                        self.call("resource_patch", Request::Post(&Value::Object(patch)))
                            .await?;
                        report.resources_updated += 1;
                    }
                }
                None => {
                    let mut body = want.clone();
                    body.insert("package_id".into(), report.package_id.clone().into());
                    let taken = claimed.clone();
                    let (created, _) = self
                        .create("resource_create", &Value::Object(body), name, |p| {
                            find_resource(p, key, &taken)
                        })
                        .await?;
                    debug!(resource = key, "created CKAN resource");
                    claimed.insert(text(&created, "id").to_owned());
                    report.resources_created += 1;
                }
            }
        }
        let stale = existing
            .iter()
            .filter(|r| !text(r, "bydata_key").is_empty() && !claimed.contains(text(r, "id")));
        for resource in stale {
            info!(
                resource = text(resource, "bydata_key"),
                "deleting CKAN resource no longer published"
            );
            let body = json!({ "id": text(resource, "id") });
            match self.call("resource_delete", Request::Post(&body)).await {
                Ok(_) | Err(CkanError::NotFound { .. }) => report.resources_deleted += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Ckan {
    /// The message with the token blanked, in case a server echoes it.
    fn redact(&self, message: &str) -> String {
        let token = self.target.token.trim();
        if token.len() >= 4 {
            message.replace(token, "<redacted>")
        } else {
            message.to_owned()
        }
    }
}

/// A reqwest error with its causes (`error sending request …: connection refused`).
fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// CKAN's error dict as text: `message` first, then `field: problem` pairs (`name: That URL is already in use.`).
fn error_detail(error: &Value) -> String {
    fn flatten(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(list) => list
                .iter()
                .map(flatten)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k, flatten(v)))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    let mut parts = Vec::new();
    if let Some(message) = error.get("message").map(flatten).filter(|m| !m.is_empty()) {
        parts.push(message);
    }
    if let Some(fields) = error.as_object() {
        for (key, value) in fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "__type" | "message"))
        {
            let value = flatten(value);
            if !value.is_empty() {
                parts.push(format!("{key}: {value}"));
            }
        }
    }
    if parts.is_empty() {
        "no details given".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        let long = "a".repeat(120);
        for (id, want) in [
            ("energy.hourly", "energy-hourly"),
            ("aarhus_temp-2026", "aarhus_temp-2026"),
            ("Big.ID", "big-id"),
            ("x", "x_"),
            ("new", "new_"),
        ] {
            assert_eq!(package_name(id), want, "{id}");
        }
        let name = package_name(&long);
        assert_eq!(name.len(), NAME_MAX);
        assert_ne!(package_name(&long), package_name(&"a".repeat(121)));
    }

    #[test]
    fn tags() {
        for (keyword, want) in [
            ("energi", Some("energi")),
            ("luft/kvalitet", Some("luft kvalitet")),
            ("  CO₂,  måling ", Some("CO₂ måling")),
            ("x", None),
            ("!!", None),
        ] {
            assert_eq!(tag_name(keyword).as_deref(), want, "{keyword}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            ckan_time("2026-03-01T00:00:00+01:00").as_deref(),
            Some("2026-02-28T23:00:00")
        );
        assert_eq!(
            ckan_time("2026-03-01T10:00:00Z").as_deref(),
            Some("2026-03-01T10:00:00")
        );
        assert_eq!(ckan_time("yesterday"), None);
        let want = parse_ckan_time("2026-03-01T10:00:00");
        assert!(want.is_some());
        assert_eq!(parse_ckan_time("2026-03-01T10:00:00.000000"), want);
        assert_eq!(parse_ckan_time("2026-03-01T11:00:00+01:00"), want);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
        };
        let waits: Vec<u64> = (1..=4).map(|n| p.wait(n, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 3, 3]);
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(60))),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn error_details_name_fields() {
        let e = json!({"__type": "Validation Error", "name": ["That URL is already in use."], "tags": [{}, {"name": ["bad"]}]});
        assert_eq!(
            error_detail(&e),
            "name: That URL is already in use.; tags: name: bad"
        );
    }
}
