//! Open datasets: `POST/GET /api/v1/datasets`, `GET/DELETE /api/v1/datasets/{id}`, and
//! `POST /api/v1/datasets/{id}/publish`. A dataset is a selection of series, an aggregation, DCAT-AP-DK
//! metadata and privacy rules; one marked as containing personal data is refused unless its rules meet the
//! configured minimums, and the refusal names every rule that falls short. Publishing is `opendata::publish`.
use crate::auth::{Admin, Reader};
use crate::devices::blocking;
use crate::error::display_name;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::opendata::privacy::{self, Minimums, Rules};
use bydata_schemas::{DeviceId, MeasurementName, format_rfc3339, parse_rfc3339};
use bydata_store::StoredDataset;
use bydata_store::query::{AggFn, Every};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The EU data themes (the Publications Office's data-theme vocabulary, which DCAT-AP-DK uses).
const THEMES: [&str; 13] = [
    "AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH",
    "TRAN",
];
/// Update frequencies (the EU frequency vocabulary's common ones).
const FREQUENCIES: [&str; 7] = [
    "CONT",
    "HOURLY",
    "DAILY",
    "WEEKLY",
    "MONTHLY",
    "QUARTERLY",
    "ANNUAL",
];
const LICENCES: [&str; 2] = ["CC0-1.0", "CC-BY-4.0"];

/// Text in Danish and English.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Text {
    pub(crate) da: String,
    pub(crate) en: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Selection {
    pub(crate) measurement: String,
    #[serde(default)]
    pub(crate) field: Option<String>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) devices: Vec<String>,
    /// Series tags published as columns besides `domain` (never a device's or radio's identifier).
    #[serde(default)]
    pub(crate) publish_tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Temporal {
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Aggregation {
    /// A bucket width such as `1h`, `1d`, `1mo`.
    pub(crate) every: String,
    /// `mean`, `min`, `max`, `sum`, `count`, `first`, `last` or `increase`.
    #[serde(rename = "fn")]
    pub(crate) func: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Agent {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivacyRules {
    #[serde(default)]
    pub(crate) location_grid_m: Option<u32>,
    #[serde(default)]
    pub(crate) suppress_counts_below: Option<u32>,
    #[serde(default)]
    pub(crate) count_measurements: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDataset {
    /// A slug: `a-z 0-9 - _ .`, 1–64 characters.
    pub(crate) id: String,
    pub(crate) title: Text,
    pub(crate) description: Text,
    #[serde(default)]
    pub(crate) keywords: Vec<String>,
    /// EU data themes, e.g. `ENER`, `ENVI`, `TRAN`.
    pub(crate) themes: Vec<String>,
    /// `CC0-1.0` or `CC-BY-4.0`.
    pub(crate) licence: String,
    /// `HOURLY`, `DAILY`, `WEEKLY`, `MONTHLY`, `QUARTERLY`, `ANNUAL` or `CONT`.
    pub(crate) update_frequency: String,
    pub(crate) publisher: Agent,
    pub(crate) contact_point: Agent,
    /// A URI of a place (e.g. the municipality in DAGI) or a place name.
    #[serde(default)]
    pub(crate) spatial: Option<String>,
    /// The covered time (RFC 3339); files are published from `from` (default: when the dataset was defined).
    #[serde(default)]
    pub(crate) temporal: Option<Temporal>,
    /// The time zone of buckets and periods (default `Europe/Copenhagen`).
    #[serde(default)]
    pub(crate) time_zone: Option<String>,
    /// Push to the CKAN site configured in `[opendata.ckan]` after each publication.
    #[serde(default)]
    pub(crate) ckan: bool,
    pub(crate) selection: Selection,
    pub(crate) aggregation: Aggregation,
    #[serde(default)]
    pub(crate) personal_data: bool,
    #[serde(default)]
    pub(crate) privacy: Option<PrivacyRules>,
}

fn bad(code: &'static str, message: impl Into<String>) -> Error {
    Error::bad(code, message)
}

fn check_text(field: &str, t: &Text, max: usize) -> Result<(), Error> {
    for (lang, v) in [("da", &t.da), ("en", &t.en)] {
        if v.trim().is_empty() || v.len() > max {
            return Err(bad(
                "invalid_dataset",
                format!("{field}.{lang} must be 1 to {max} characters"),
            ));
        }
    }
    Ok(())
}

/// Validates a definition; the bucket width in seconds (approximate for calendar buckets) for the privacy gate.
fn validate(d: &NewDataset) -> Result<u64, Error> {
    DeviceId::new(d.id.as_str()).map_err(|e| bad("invalid_dataset", format!("id: {e}")))?;
    check_text("title", &d.title, 200)?;
    check_text("description", &d.description, 5000)?;
    if d.keywords.len() > 50
        || d.keywords
            .iter()
            .any(|k| k.trim().is_empty() || k.len() > 100)
    {
        return Err(bad(
            "invalid_dataset",
            "keywords: at most 50, each 1 to 100 characters",
        ));
    }
    if d.themes.is_empty() || d.themes.iter().any(|t| !THEMES.contains(&t.as_str())) {
        return Err(bad(
            "invalid_dataset",
            format!("themes must be one or more of {}", THEMES.join(", ")),
        ));
    }
    if !LICENCES.contains(&d.licence.as_str()) {
        return Err(bad(
            "invalid_dataset",
            "licence must be CC0-1.0 or CC-BY-4.0",
        ));
    }
    if !FREQUENCIES.contains(&d.update_frequency.as_str()) {
        return Err(bad(
            "invalid_dataset",
            format!("update_frequency must be one of {}", FREQUENCIES.join(", ")),
        ));
    }
    display_name(&d.publisher.name)?;
    display_name(&d.contact_point.name)?;
    if !d
        .contact_point
        .email
        .as_deref()
        .is_some_and(|e| e.contains('@') && e.len() <= 200 && !e.contains(char::is_whitespace))
    {
        return Err(bad(
            "invalid_dataset",
            "contact_point.email must be an e-mail address",
        ));
    }
    MeasurementName::new(d.selection.measurement.as_str())
        .map_err(|e| bad("invalid_dataset", format!("selection.measurement: {e}")))?;
    if let Some(f) = &d.selection.field {
        MeasurementName::new(f.as_str())
            .map_err(|e| bad("invalid_dataset", format!("selection.field: {e}")))?;
    }
    for id in &d.selection.devices {
        DeviceId::new(id.as_str())
            .map_err(|e| bad("invalid_dataset", format!("selection.devices: {e}")))?;
    }
    let every: Every = d
        .aggregation
        .every
        .parse()
        .map_err(|e: bydata_store::Error| {
            bad("invalid_dataset", format!("aggregation.every: {e}"))
        })?;
    d.aggregation
        .func
        .parse::<AggFn>()
        .map_err(|e| bad("invalid_dataset", format!("aggregation.fn: {e}")))?;
    for tag in &d.selection.publish_tags {
        MeasurementName::new(tag.as_str())
            .map_err(|e| bad("invalid_dataset", format!("selection.publish_tags: {e}")))?;
        let folded: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if IDENTIFYING_TAGS.contains(&folded.as_str()) {
            return Err(bad(
                "privacy_refused",
                format!(
                    "selection.publish_tags: `{tag}` names a device or a radio (device id, DevEUI, gateway, radio metadata) and is never published; open files carry a public device id instead"
                ),
            ));
        }
        if COLUMNS.contains(&folded.as_str()) {
            return Err(bad(
                "invalid_dataset",
                format!(
                    "selection.publish_tags: `{tag}` is the name of a column of the published files"
                ),
            ));
        }
    }
    if !tiles_periods(every) {
        return Err(bad(
            "invalid_dataset",
            format!(
                "aggregation.every: {every} buckets would straddle the published months and years; use 5m, 10m, 15m, 20m, 30m, 1h, 1d, 1mo, 2mo, 3mo, 4mo, 6mo, 12mo or 1y"
            ),
        ));
    }
    if let Some(tz) = &d.time_zone {
        tz.parse::<chrono_tz::Tz>()
            .map_err(|_| bad("invalid_dataset", format!("time_zone: unknown zone {tz:?}")))?;
    }
    if let Some(t) = &d.temporal {
        let from = parse_rfc3339(&t.from)
            .map_err(|e| bad("invalid_dataset", format!("temporal.from: {e}")))?;
        if from < MIN_TEMPORAL_FROM {
            return Err(bad(
                "invalid_dataset",
                "temporal.from must be 2000-01-01 or later",
            ));
        }
        if let Some(to) = &t.to {
            let to = parse_rfc3339(to)
                .map_err(|e| bad("invalid_dataset", format!("temporal.to: {e}")))?;
            if to <= from {
                return Err(bad(
                    "invalid_dataset",
                    "temporal.to must be after temporal.from",
                ));
            }
        }
    }
    Ok(every.approximate_secs())
}

/// Tags that identify a device or a radio, or describe a reception: never a published column. Compared with
/// the tag name folded to lower-case letters and digits (`DevEUI`, `dev-eui` and `dev_eui` are one).
const IDENTIFYING_TAGS: [&str; 33] = [
    "device",
    "deviceid",
    "devicename",
    "deviceeui",
    "devid",
    "id",
    "gateway",
    "gatewayid",
    "gatewayeui",
    "gatewayname",
    "gw",
    "gweui",
    "eui",
    "deveui",
    "devaddr",
    "joineui",
    "appeui",
    "clientid",
    "username",
    "mac",
    "imei",
    "imsi",
    "iccid",
    "serial",
    "serialnumber",
    "rssi",
    "snr",
    "lsnr",
    "frequency",
    "freq",
    "datarate",
    "fcnt",
    "fport",
];
/// Column and property names of the published files.
const COLUMNS: [&str; 9] = [
    "time",
    "measurement",
    "value",
    "unit",
    "suppressed",
    "type",
    "geometry",
    "properties",
    "field",
];
/// Measurements that count people or vehicles whatever a dataset says.
const COUNT_MEASUREMENTS: [&str; 8] = [
    "people",
    "persons",
    "visitors",
    "occupancy",
    "vehicles",
    "cars",
    "bicycles",
    "count",
];

/// Bucket widths that tile the published periods (local months and years), so no bucket straddles two files:
/// divisors of an hour from 5 minutes (fixed buckets align to the local clock in whole-hour zones), a day, a
/// divisor of a year in months, a year.
fn tiles_periods(every: Every) -> bool {
    const HOUR: i64 = 3_600_000_000_000;
    match every {
        Every::Fixed(ns) => (300_000_000_000..=HOUR).contains(&ns) && HOUR % ns == 0,
        Every::Days(n) | Every::Years(n) => n == 1,
        Every::Months(n) => 12 % n == 0,
        Every::Weeks(_) => false,
    }
}
/// 2000-01-01T00:00:00Z: no dataset publishes from before (bounds the periods one run computes).
const MIN_TEMPORAL_FROM: i64 = 946_684_800 * 1_000_000_000;

impl NewDataset {
    /// A stored definition (written by `create`, so always readable unless the registry was edited).
    pub(crate) fn of(stored: &StoredDataset) -> Result<Self, Error> {
        serde_json::from_value(stored.definition.clone()).map_err(|e| Error::Internal {
            message: format!("dataset {}: stored definition unreadable: {e}", stored.id),
        })
    }

    pub(crate) fn rules(&self) -> Rules {
        let p = self.privacy.clone().unwrap_or(PrivacyRules {
            location_grid_m: None,
            suppress_counts_below: None,
            count_measurements: Vec::new(),
        });
        Rules {
            location_grid_m: p.location_grid_m,
            suppress_counts_below: p.suppress_counts_below,
            count_measurements: p.count_measurements,
        }
    }

    /// Validation and the privacy gate: the definition is fit to publish under these minimums.
    pub(crate) fn check(&self, minimums: &Minimums) -> Result<(), Error> {
        let bucket_secs = validate(self)?;
        let m = self.selection.measurement.as_str();
        // A count of people or vehicles by its name (or `fn count`, which counts events); a count named
        // otherwise is caught at publication by its unit, `count`.
        let counts = COUNT_MEASUREMENTS.contains(&m.to_ascii_lowercase().as_str())
            || self.aggregation.func == "count";
        if self.personal_data && counts && !self.rules().count_measurements.iter().any(|c| c == m) {
            return Err(bad(
                "privacy_refused",
                format!(
                    "this dataset is marked as containing personal data and publishes counts (`{m}`, fn {}): list `{m}` in privacy.count_measurements so small counts are suppressed",
                    self.aggregation.func
                ),
            ));
        }
        privacy::check(self.personal_data, &self.rules(), Some(bucket_secs), minimums).map_err(
            |short| {
                bad(
                    "privacy_refused",
                    format!(
                        "this dataset is marked as containing personal data and cannot be published as defined: {}",
                        short
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                )
            },
        )
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/datasets",
    operation_id = "create_dataset",
    tag = "datasets",
    summary = "Define an open dataset (refused when its privacy rules fall short)",
    request_body = NewDataset,
    responses(
        (status = 201, description = "Stored", body = Object),
        (status = 400, description = "Invalid definition, or a personal-data dataset whose rules fall short (each named)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A dataset with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Admin(by): Admin,
    body: Result<Json<NewDataset>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let Json(new) = body?;
    new.check(&state.opendata.settings().minimums)?;
    let definition = serde_json::to_value(&new).map_err(|e| Error::Internal {
        message: e.to_string(),
    })?;
    let stored = StoredDataset {
        id: new.id.clone(),
        definition,
        created_at: (state.clock)(),
    };
    let registry = state.registry.clone();
    let stored = blocking(move || registry.create_dataset(stored)).await?;
    tracing::info!(dataset = %stored.id, by = %by.id, "dataset defined");
    Ok((StatusCode::CREATED, Json(dataset_json(&stored))))
}

fn dataset_json(d: &StoredDataset) -> Value {
    let mut v = d.definition.clone();
    v["created_at"] = json!(format_rfc3339(d.created_at));
    v
}

/// The definition plus how publishing goes: the last run, the last CKAN push, the periods published.
async fn dataset_with_status(state: &AppState, d: &StoredDataset) -> Value {
    let mut v = dataset_json(d);
    if let Ok(m) = state.opendata.read_manifest(&d.id).await {
        v["publication"] = json!({
            "url": format!("{}/opendata/datasets/{}", state.opendata.base_url(), d.id),
            "last_run": m.last_run,
            "periods": m.periods.len(),
            "ckan": m.ckan,
        });
    }
    v
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRequest {
    /// One period to (re)compute, `2026-03` (or `2026` for monthly and coarser buckets); absent: every due
    /// period (those without a version yet, and the running one).
    #[serde(default)]
    period: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/datasets/{id}/publish",
    operation_id = "publish_dataset",
    tag = "datasets",
    summary = "Publish now: compute the due periods (or one period), write new versions where the bytes changed",
    params(("id" = String, Path, description = "Dataset id")),
    request_body(content = Option<PublishRequest>, description = "Optional: without a body every due period is published"),
    responses(
        (status = 200, description = "What the run did: per period `new_version`, `unchanged` or `running`, with file URLs and SHA-256", body = Object),
        (status = 400, description = "An invalid period, or refused by the privacy gate (the reason is named)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such dataset", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn publish(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
    body: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Json<Value>, Error> {
    let request = match body {
        Ok(Json(r)) => r,
        Err(JsonRejection::MissingJsonContentType(_)) => PublishRequest::default(),
        Err(e) => return Err(e.into()),
    };
    let registry = state.registry.clone();
    let wanted = id.clone();
    let d = blocking(move || registry.dataset(&wanted))
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "dataset",
            id: id.chars().take(64).collect(),
        })?;
    let report = state
        .opendata
        .publish(&state, &d, request.period.as_deref())
        .await?;
    tracing::info!(dataset = %d.id, by = %by.id, "published on demand");
    Ok(Json(serde_json::to_value(&report).map_err(|e| {
        Error::Internal {
            message: e.to_string(),
        }
    })?))
}

#[utoipa::path(
    get,
    path = "/api/v1/datasets",
    operation_id = "list_datasets",
    tag = "datasets",
    summary = "List dataset definitions",
    responses((status = 200, description = "All datasets", body = Object)),
    security(("bearer" = [])),
)]
pub(crate) async fn list(State(state): State<AppState>, _: Reader) -> Result<Json<Value>, Error> {
    let registry = state.registry.clone();
    let all = blocking(move || registry.datasets()).await?;
    let mut datasets = Vec::with_capacity(all.len());
    for d in &all {
        datasets.push(dataset_with_status(&state, d).await);
    }
    Ok(Json(json!({"datasets": datasets})))
}

#[utoipa::path(
    get,
    path = "/api/v1/datasets/{id}",
    operation_id = "get_dataset",
    tag = "datasets",
    summary = "One dataset definition",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 200, description = "The dataset", body = Object),
        (status = 404, description = "No such dataset", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let registry = state.registry.clone();
    let wanted = id.clone();
    let found = blocking(move || registry.dataset(&wanted)).await?;
    let d = found.ok_or_else(|| Error::NotFound {
        what: "dataset",
        id: id.chars().take(64).collect(),
    })?;
    Ok(Json(dataset_with_status(&state, &d).await))
}

#[utoipa::path(
    delete,
    path = "/api/v1/datasets/{id}",
    operation_id = "delete_dataset",
    tag = "datasets",
    summary = "Delete a dataset definition",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such dataset", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let registry = state.registry.clone();
    let wanted = id.clone();
    let old = blocking(move || {
        let old = registry.dataset(&wanted)?;
        registry.delete_dataset(&wanted)?;
        Ok(old)
    })
    .await?;
    let existed = old.is_some();
    if let Some(old) = old {
        state.opendata.remove(&old).await?;
    }
    crate::error::deleted(existed, "dataset", id, &by.id)
}
