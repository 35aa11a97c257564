//! Publishing a dataset: for each period (a month, or a year for buckets of a month or more) run the dataset's
//! query, pass the answer through the privacy gate, write CSV, JSON and GeoJSON files with their SHA-256, and
//! keep them as numbered versions on disk.
//!
//! - A period is *running* until `settle_secs` after its end: its files are replaced as data arrives and have
//!   no version. After that the first run writes version 1; a later run writes version 2 only if the bytes
//!   differ (late data, a re-decode), so re-running a period gives the same files and checksums. Versions are
//!   kept while the dataset exists: `/opendata/datasets/{id}/{period}/v{n}/{file}` stays what it was.
//! - The files contain only data (no generation time, values to ten significant digits), so they are a
//!   function of the stored points, the definition, the devices' registered locations and the public-id
//!   secret (`opendata/public-id.key`, made at first start).
//! - The gate: device ids become public ids (HMAC; per dataset for personal data), only `domain` and the
//!   definition's `publish_tags` are columns, locations are snapped to the dataset's grid, count measurements
//!   below the threshold are written as suppressed, times are bucket starts and only buckets wholly inside the
//!   temporal coverage are published. Before anything is written, every published tag value is searched for
//!   every registered identifier (device ids, DevEUIs, DevAddrs, JoinEUIs, gateway EUIs) in any spelling and
//!   for EUI-64-shaped words: a match refuses the run.
use super::model::{Agent, Bilingual, CatalogInfo, Distribution, FileFormat, PublishedDataset};
use crate::datasets::NewDataset;
use crate::query::{csv_field, time_in};
use crate::{AppState, Error};
use bydata_schemas::opendata::privacy::{self, Minimums};
use bydata_schemas::{DeviceId, Location, MeasurementName, SeriesKey, UnixNanos, format_rfc3339};
use bydata_store::query::{self, AggFn, Every, Query};
use bydata_store::{SeriesFilter, StoredDataset};
use chrono::{Datelike, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `[opendata]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The public base URL used in catalogs and pushed to CKAN, e.g. `https://iot.aarhus.dk`; empty: the
    /// API's own address.
    pub public_url: String,
    pub catalog_title_da: String,
    pub catalog_title_en: String,
    pub publisher_name: String,
    /// A URI for the publishing organisation (e.g. its website), if any.
    pub publisher_uri: String,
    pub publisher_email: String,
    /// How often the scheduler looks for datasets that are due, in seconds.
    pub schedule_secs: u64,
    /// How long after a period ends late data is waited for before the period's version 1 is written.
    pub settle_secs: u64,
    /// The least a personal-data dataset must do.
    pub minimums: Minimums,
    pub ckan: CkanSettings,
}

/// `[opendata.ckan]`: where datasets with `ckan: true` are pushed. The API token is read from the
/// environment (`BYDATA_CKAN_TOKEN`), never from the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CkanSettings {
    /// The CKAN site, e.g. `https://admin.opendata.dk`; empty: no push.
    pub url: String,
    /// The CKAN organisation that owns the datasets.
    pub organization: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            catalog_title_da: "Åbne IoT-data".into(),
            catalog_title_en: "Open IoT data".into(),
            publisher_name: "bydata".into(),
            publisher_uri: String::new(),
            publisher_email: String::new(),
            schedule_secs: 60,
            settle_secs: 3600,
            minimums: Minimums::default(),
            ckan: CkanSettings::default(),
        }
    }
}

/// The open-data side of a running instance: its files, its secret, its settings.
pub struct OpenData {
    dir: PathBuf,
    secret: [u8; 32],
    settings: Settings,
    base_url: String,
    ckan: Option<super::ckan::Ckan>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for OpenData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenData")
            .field("dir", &self.dir)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

const SECRET_FILE: &str = "public-id.key";
const MANIFEST: &str = "manifest.json";
/// Most periods one run computes (ten years of months).
const MAX_PERIODS_PER_RUN: usize = 120;
/// A run that failed (a store error, a refusal after a config change) is tried again this much later.
const FAILED_RUN_RETRY_SECS: u64 = 300;

impl OpenData {
    /// Opens `{data_dir}/opendata`, making the public-id secret on first start.
    pub fn open(
        data_dir: &Path,
        settings: Settings,
        default_base_url: String,
        ckan_token: Option<String>,
    ) -> std::io::Result<Self> {
        let dir = data_dir.join("opendata");
        std::fs::create_dir_all(&dir)?;
        let secret = load_or_make_secret(&dir.join(SECRET_FILE))?;
        let base_url = if settings.public_url.is_empty() {
            default_base_url
        } else {
            settings.public_url.clone()
        }
        .trim_end_matches('/')
        .to_owned();
        if base_url.contains("://0.0.0.0") || base_url.contains("://[::]") {
            tracing::warn!(%base_url, "catalogs and CKAN will show a wildcard address: set [opendata] public_url");
        }
        let ckan = match (settings.ckan.url.is_empty(), ckan_token) {
            (false, Some(token)) => Some(
                super::ckan::Ckan::new(super::ckan::CkanTarget {
                    url: settings.ckan.url.clone(),
                    token,
                    owner_org: settings.ckan.organization.clone(),
                })
                .map_err(|e| std::io::Error::other(format!("[opendata.ckan]: {e}")))?,
            ),
            _ => None,
        };
        Ok(Self {
            dir,
            secret,
            settings,
            base_url,
            ckan,
            locks: Mutex::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// `opendata/datasets/{id}`: apart from the secret, whatever a dataset's id.
    fn dataset_dir(&self, id: &str) -> PathBuf {
        self.dir.join("datasets").join(id)
    }

    /// The manifest of a dataset (empty when it has never been published).
    pub(crate) fn manifest(&self, id: &str) -> Result<Manifest, Error> {
        let path = self.dataset_dir(id).join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| internal(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(internal(&path, e)),
        }
    }

    /// `manifest`, off the async workers.
    pub(crate) async fn read_manifest(self: &Arc<Self>, id: &str) -> Result<Manifest, Error> {
        let (od, id) = (self.clone(), id.to_owned());
        on_blocking_pool(move || od.manifest(&id)).await
    }

    /// The file to serve for `/opendata/datasets/{id}/{period}/[v{n}/]{name}`, if it exists: looked up in the
    /// manifest, never built from the request.
    pub(crate) fn file(
        &self,
        id: &str,
        period: &str,
        version: Option<u32>,
        name: &str,
    ) -> Option<(PathBuf, FileFormat, FileRecord, bool)> {
        let manifest = self.manifest(id).ok()?;
        let record = manifest.periods.get(period)?;
        let format = FileFormat::ALL
            .into_iter()
            .find(|f| file_name(id, period, *f) == name)?;
        let (dir, files, immutable) = match version {
            Some(v) => {
                let found = record.versions.iter().find(|x| x.version == v)?;
                (format!("v{v}"), &found.files, true)
            }
            None => match record.versions.last() {
                Some(latest) => (format!("v{}", latest.version), &latest.files, false),
                None => {
                    let running = record.running.as_ref()?;
                    (running.dir.clone()?, &running.files, false)
                }
            },
        };
        let file = files.get(format.extension())?.clone();
        let path = self.dataset_dir(id).join(period).join(dir).join(name);
        Some((path, format, file, immutable))
    }

    /// The catalog's own description.
    pub fn catalog_info(&self, modified: UnixNanos) -> CatalogInfo {
        let s = &self.settings;
        CatalogInfo {
            base_url: self.base_url.clone(),
            title: Bilingual {
                da: s.catalog_title_da.clone(),
                en: s.catalog_title_en.clone(),
            },
            description: Bilingual {
                da: format!("Datasæt fra IoT-sensorer, udgivet af {}", s.publisher_name),
                en: format!(
                    "Datasets from IoT sensors, published by {}",
                    s.publisher_name
                ),
            },
            publisher: Agent {
                name: s.publisher_name.clone(),
                email: (!s.publisher_email.is_empty()).then(|| s.publisher_email.clone()),
                uri: (!s.publisher_uri.is_empty()).then(|| s.publisher_uri.clone()),
            },
            modified: format_rfc3339(modified),
        }
    }

    /// Every dataset with at least one published file, as the catalogs and CKAN see it.
    pub(crate) fn published(&self, stored: &[StoredDataset]) -> Vec<PublishedDataset> {
        stored
            .iter()
            .filter_map(|d| self.published_one(d).map(|(p, _)| p))
            .collect()
    }

    /// One dataset as published, with its manifest; `None` until it has a file.
    pub(crate) fn published_one(&self, d: &StoredDataset) -> Option<(PublishedDataset, Manifest)> {
        let def = NewDataset::of(d).ok()?;
        let manifest = self.manifest(&d.id).ok()?;
        let p = self.describe(d, &def, &manifest);
        (!p.distributions.is_empty()).then_some((p, manifest))
    }

    fn describe(&self, d: &StoredDataset, def: &NewDataset, m: &Manifest) -> PublishedDataset {
        let landing = format!("{}/opendata/datasets/{}", self.base_url, d.id);
        let mut distributions = Vec::new();
        let mut modified = format_rfc3339(d.created_at);
        for (period, record) in m.periods.iter().rev() {
            let (version, files, complete) = match (record.versions.last(), &record.running) {
                (Some(v), _) => (v, &v.files, true),
                (None, Some(r)) => (r, &r.files, false),
                (None, None) => continue,
            };
            if version.issued > modified {
                modified = version.issued.clone();
            }
            for format in FileFormat::ALL {
                let Some(file) = files.get(format.extension()) else {
                    continue;
                };
                let name = file_name(&d.id, period, format);
                let access_url = format!("{landing}/{period}/{name}");
                let download_url = if complete {
                    format!("{landing}/{period}/v{}/{name}", version.version)
                } else {
                    access_url.clone()
                };
                distributions.push(Distribution {
                    period: period.clone(),
                    format,
                    complete,
                    version: version.version,
                    access_url,
                    download_url,
                    sha256: file.sha256.clone(),
                    sha1: file.sha1.clone(),
                    byte_size: file.bytes,
                    issued: version.issued.clone(),
                    temporal_start: record.start.clone(),
                    temporal_end: record.end.clone(),
                });
            }
        }
        PublishedDataset {
            id: d.id.clone(),
            title: Bilingual {
                da: def.title.da.clone(),
                en: def.title.en.clone(),
            },
            description: Bilingual {
                da: def.description.da.clone(),
                en: def.description.en.clone(),
            },
            keywords: def.keywords.clone(),
            themes: def.themes.clone(),
            licence: def.licence.clone(),
            update_frequency: def.update_frequency.clone(),
            publisher: agent(&def.publisher),
            contact_point: agent(&def.contact_point),
            spatial: def.spatial.clone(),
            temporal_start: def
                .temporal
                .as_ref()
                .map(|t| t.from.clone())
                .or_else(|| m.periods.values().next().map(|r| r.start.clone())),
            temporal_end: def.temporal.as_ref().and_then(|t| t.to.clone()),
            issued: format_rfc3339(d.created_at),
            modified,
            landing_page: landing,
            every: def.aggregation.every.clone(),
            aggregation: def.aggregation.func.clone(),
            unit: m.unit.clone(),
            distributions,
        }
    }

    /// Publishes a dataset: the periods that are due (`which: None`: every period without a version yet, the
    /// most recently ended one again for late data, and the running one) or one period on demand. One run per
    /// dataset at a time; the CKAN push follows outside the lock.
    pub(crate) async fn publish(
        &self,
        state: &AppState,
        stored: &StoredDataset,
        which: Option<&str>,
    ) -> Result<RunReport, Error> {
        let def = NewDataset::of(stored)?;
        let now = (state.clock)();
        // A request for a period is checked before anything is locked or written.
        let spec = Spec::new(&def, stored.created_at)?;
        let requested = which.map(|label| spec.requested(label, now)).transpose()?;
        let lock = self.lock(&stored.id);
        let guard = lock.lock().await;
        // Deleted (or deleted and defined again) while this run waited: nothing may be written for it.
        if !self.still_defined(state, stored).await? {
            return Err(Error::NotFound {
                what: "dataset",
                id: stored.id.clone(),
            });
        }
        let dir = self.dataset_dir(&stored.id);
        let mut manifest = self.manifest(&stored.id)?;
        let result = self
            .run(state, stored, &def, &spec, &manifest, requested, now)
            .await;
        let record = RunRecord {
            at: format_rfc3339(now),
            ok: result.is_ok(),
            error: result.as_ref().err().map(ToString::to_string),
            more: result.as_ref().is_ok_and(|r| r.more),
        };
        if requested.is_none() {
            manifest.last_scheduled_run = Some(record.clone());
        }
        manifest.last_run = Some(record);
        if let Ok(run) = &result {
            for o in &run.outcomes {
                o.apply(&mut manifest, now);
            }
            if run.unit.is_some() {
                manifest.unit.clone_from(&run.unit);
            }
        }
        self.save_manifest(&dir, &manifest).await?;
        drop(guard);
        let run = result?;
        let changed = run.outcomes.iter().any(|o| o.outcome != Outcome::Unchanged);
        let landing = format!("{}/opendata/datasets/{}", self.base_url, stored.id);
        let ckan = self.push_if_wanted(state, stored, &def, changed).await?;
        Ok(RunReport {
            dataset: stored.id.clone(),
            at: format_rfc3339(now),
            periods: run
                .outcomes
                .iter()
                .map(|o| o.report(&landing, &stored.id))
                .collect(),
            ckan,
        })
    }

    /// Whether the registry still holds this very definition (same id and creation time).
    async fn still_defined(&self, state: &AppState, stored: &StoredDataset) -> Result<bool, Error> {
        let (registry, id) = (state.registry.clone(), stored.id.clone());
        let now = crate::devices::blocking(move || registry.dataset(&id)).await?;
        Ok(now.is_some_and(|d| d.created_at == stored.created_at))
    }

    /// Pushes to CKAN when the dataset asks for it and something changed or the last push failed. One push
    /// per dataset at a time, each describing the manifest as it is then (so an older run's push can never
    /// land last); the status is written under the dataset's lock, and not at all if it was deleted meanwhile.
    async fn push_if_wanted(
        &self,
        state: &AppState,
        stored: &StoredDataset,
        def: &NewDataset,
        changed: bool,
    ) -> Result<Option<CkanStatus>, Error> {
        if !def.ckan {
            return Ok(None);
        }
        let push_lock = self.lock(&push_key(&stored.id));
        let _pushing = push_lock.lock().await;
        let previous = self.manifest(&stored.id)?;
        let at = previous
            .last_run
            .as_ref()
            .map(|r| r.at.clone())
            .unwrap_or_default();
        let status = match &self.ckan {
            None => CkanStatus {
                at,
                ok: false,
                error: Some(
                    "no CKAN site configured: set [opendata.ckan] url and organization, and BYDATA_CKAN_TOKEN".into(),
                ),
                report: None,
            },
            Some(_) if !changed && previous.ckan.as_ref().is_some_and(|c| c.ok) => {
                return Ok(previous.ckan);
            }
            Some(ckan) => {
                let published = self.describe(stored, def, &previous);
                match ckan.push(&published).await {
                    Ok(report) => {
                        tracing::info!(dataset = %stored.id, "pushed to CKAN");
                        CkanStatus {
                            at,
                            ok: true,
                            error: None,
                            report: serde_json::to_value(&report).ok(),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(dataset = %stored.id, error = %e, "CKAN push failed; retried at the next run");
                        CkanStatus {
                            at,
                            ok: false,
                            error: Some(e.to_string()),
                            report: None,
                        }
                    }
                }
            }
        };
        let lock = self.lock(&stored.id);
        let _guard = lock.lock().await;
        if !self.still_defined(state, stored).await? {
            return Ok(Some(status));
        }
        let mut manifest = self.manifest(&stored.id)?;
        manifest.ckan = Some(status.clone());
        self.save_manifest(&self.dataset_dir(&stored.id), &manifest)
            .await?;
        Ok(Some(status))
    }

    async fn save_manifest(&self, dir: &Path, manifest: &Manifest) -> Result<(), Error> {
        let dir = dir.to_owned();
        let m = manifest.clone();
        on_blocking_pool(move || {
            write_manifest(&dir, &m)?;
            prune_running(&dir, &m);
            Ok(())
        })
        .await
    }

    /// Withdraws a deleted dataset (already gone from the registry): removes its files — deleting is how a
    /// publication is withdrawn, and a dataset defined later under the same id starts afresh — and, when it
    /// was pushed to CKAN, deletes its package there (logged if the site cannot be reached).
    pub(crate) async fn remove(&self, stored: &StoredDataset) -> Result<(), Error> {
        let id = &stored.id;
        {
            let lock = self.lock(id);
            let _guard = lock.lock().await;
            let dir = self.dataset_dir(id);
            let trash = self
                .dir
                .join("datasets")
                .join(format!(".deleted-{id}-{}", rand::random::<u64>()));
            on_blocking_pool(move || match std::fs::rename(&dir, &trash) {
                Ok(()) => {
                    std::fs::remove_dir_all(&trash).map_err(|e| internal(&trash, e))?;
                    sync_dir(trash.parent().unwrap_or(Path::new(".")))
                        .map_err(|e| internal(&trash, e))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(internal(&dir, e)),
            })
            .await?;
        }
        let wanted_ckan = stored.definition["ckan"].as_bool() == Some(true);
        if let (true, Some(ckan)) = (wanted_ckan, &self.ckan) {
            let push_lock = self.lock(&push_key(id));
            let _pushing = push_lock.lock().await;
            match ckan.withdraw(id).await {
                Ok(found) => tracing::info!(dataset = %id, found, "withdrawn from CKAN"),
                Err(e) => {
                    tracing::warn!(dataset = %id, error = %e, "could not withdraw the dataset from CKAN; delete its package there by hand")
                }
            }
        }
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.remove(id.as_str());
        locks.remove(&push_key(id));
        Ok(())
    }

    /// Computes the due periods and writes the files of those that changed (the manifest is the caller's).
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        state: &AppState,
        stored: &StoredDataset,
        def: &NewDataset,
        spec: &Spec,
        manifest: &Manifest,
        requested: Option<Period>,
        now: UnixNanos,
    ) -> Result<Run, Error> {
        def.check(&self.settings.minimums)?;
        let settle = secs(self.settings.settle_secs);
        let complete = |p: &Period| -> Result<bool, Error> {
            Ok(now >= p.end(spec.tz)?.saturating_add(settle))
        };
        let mut more = false;
        let periods = match requested {
            Some(p) => vec![p],
            None => {
                let all = spec.periods(now)?;
                // The most recently ended period is looked at again: late data after its version 1.
                let mut recheck = None;
                for p in all.iter().rev() {
                    if complete(p)? {
                        recheck = Some(*p);
                        break;
                    }
                }
                let mut due: Vec<Period> = all
                    .into_iter()
                    .filter(|p| {
                        Some(*p) == recheck
                            || manifest
                                .periods
                                .get(&p.to_string())
                                .is_none_or(|r| r.versions.is_empty())
                    })
                    .collect();
                // Oldest first; the rest at the next tick.
                more = due.len() > MAX_PERIODS_PER_RUN;
                due.truncate(MAX_PERIODS_PER_RUN);
                due
            }
        };
        let registry = state.registry.clone();
        let (identifiers, devices) = crate::devices::blocking(move || {
            Ok((registry.device_identifiers()?, registry.devices()?))
        })
        .await?;
        let identifiers = Arc::new(Identifiers::new(identifiers));
        let locations: HashMap<String, Location> = devices
            .into_iter()
            .filter_map(|d| Some((d.id.to_string(), d.location?)))
            .collect();
        let secret = if def.personal_data {
            // Per dataset id (not per definition: published files must be reproducible from the stored points,
            // the definition and the secret alone).
            privacy::scoped_secret(&self.secret, &format!("dataset {}", stored.id))
        } else {
            self.secret
        };
        let mut outcomes = Vec::new();
        let mut unit = None;
        for period in periods {
            let start = period.start(spec.tz)?;
            let end = period.end(spec.tz)?;
            let table = self
                .table(state, def, spec, start, end, now, &locations, &secret)
                .await?;
            if unit.is_none() {
                unit = table.series.iter().find_map(|s| s.unit.clone());
            }
            let label = period.to_string();
            let record = manifest.periods.get(&label).cloned();
            let is_complete = complete(&period)?;
            let (id, dir, ids) = (
                stored.id.clone(),
                self.dataset_dir(&stored.id),
                identifiers.clone(),
            );
            let (start_s, end_s) = (time_in(spec.tz, start), time_in(spec.tz, end));
            // Rendering, hashing and writing are CPU and disk work: off the async workers, a period at a time.
            let outcome = on_blocking_pool(move || {
                if let Some(key) = table.exposes(&ids) {
                    return Err(Error::bad(
                        "privacy_refused",
                        format!(
                            "period {label}: values of tag `{key}` contain a device or radio identifier (a device id, DevEUI, DevAddr, JoinEUI, gateway EUI, or anything shaped like an EUI-64); remove `{key}` from selection.publish_tags"
                        ),
                    ));
                }
                let files: Vec<(FileFormat, Vec<u8>)> = FileFormat::ALL
                    .into_iter()
                    .map(|f| (f, table.render(f, &id, &label)))
                    .collect();
                let hashes: BTreeMap<String, FileRecord> = files
                    .iter()
                    .map(|(f, bytes)| (f.extension().to_owned(), FileRecord::of(bytes)))
                    .collect();
                let outcome = if is_complete {
                    match record.as_ref().and_then(|r| r.versions.last()) {
                        Some(v) if v.files == hashes => Outcome::Unchanged,
                        Some(v) => Outcome::NewVersion(v.version + 1),
                        None => Outcome::NewVersion(1),
                    }
                } else {
                    match record.as_ref().and_then(|r| r.running.as_ref()) {
                        Some(r) if r.files == hashes => Outcome::Unchanged,
                        _ => Outcome::Running,
                    }
                };
                let o = PeriodOutcome {
                    period: label,
                    start: start_s,
                    end: end_s,
                    outcome,
                    hashes,
                };
                if let Some(sub) = o.dir() {
                    for (format, bytes) in &files {
                        let path = dir
                            .join(&o.period)
                            .join(&sub)
                            .join(file_name(&id, &o.period, *format));
                        write_atomic(&path, bytes).map_err(|e| internal(&path, e))?;
                    }
                }
                Ok(o)
            })
            .await?;
            outcomes.push(outcome);
        }
        Ok(Run {
            outcomes,
            unit,
            more,
        })
    }

    /// The period's answer after the privacy gate.
    #[allow(clippy::too_many_arguments)]
    async fn table(
        &self,
        state: &AppState,
        def: &NewDataset,
        spec: &Spec,
        start: UnixNanos,
        end: UnixNanos,
        now: UnixNanos,
        locations: &HashMap<String, Location>,
        secret: &[u8; 32],
    ) -> Result<Table, Error> {
        // The grid starts at the period's start, so buckets tile it; only buckets wholly inside the dataset's
        // temporal coverage (and ended) are published.
        let (from, to) = (start, end);
        let covered = |bucket_start: UnixNanos, bucket_end: UnixNanos| {
            bucket_start >= spec.from
                && spec.to.is_none_or(|t| bucket_end <= t)
                && bucket_end <= now
        };
        let mut series = Vec::new();
        if spec.from < end && spec.to.is_none_or(|t| t > start) {
            let q = Query {
                filter: SeriesFilter {
                    measurement: Some(spec.measurement.clone()),
                    field: Some(spec.field.clone()),
                    tags: def.selection.tags.clone(),
                },
                from,
                to,
                every: Some(spec.every),
                func: spec.func,
                group_by: None,
                tz: spec.tz,
            };
            let answer = query::run(&*state.reader, &q).await?;
            let bounds = query::bucket_bounds(from, to, spec.every, spec.tz)?;
            let rules = def.rules();
            let suppress_below = rules.suppress_counts_below.filter(|_| {
                rules
                    .count_measurements
                    .contains(&def.selection.measurement)
            });
            let wanted: BTreeSet<&str> = def.selection.devices.iter().map(String::as_str).collect();
            for s in answer {
                let counts_people = s.unit.as_ref().is_some_and(|u| u.as_str() == "count");
                if def.personal_data
                    && counts_people
                    && !rules
                        .count_measurements
                        .contains(&def.selection.measurement)
                {
                    return Err(Error::bad(
                        "privacy_refused",
                        format!(
                            "this dataset is marked as containing personal data and its values are counts (unit `count`): list `{}` in privacy.count_measurements so small counts are suppressed",
                            def.selection.measurement
                        ),
                    ));
                }
                let device = s.tags.get("device").cloned();
                if !wanted.is_empty() && !device.as_deref().is_some_and(|d| wanted.contains(d)) {
                    continue;
                }
                let mut tags = BTreeMap::new();
                for key in std::iter::once("domain")
                    .chain(def.selection.publish_tags.iter().map(String::as_str))
                {
                    if let Some(v) = s.tags.get(key) {
                        tags.insert(key.to_owned(), v.clone());
                    }
                }
                let location = device
                    .as_ref()
                    .and_then(|d| locations.get(d))
                    .map(|l| match rules.location_grid_m {
                        Some(grid) => privacy::coarsen(*l, grid),
                        None => *l,
                    });
                let public = device
                    .as_deref()
                    .and_then(|d| DeviceId::new(d).ok())
                    .map(|d| privacy::public_id(secret, &d));
                // Only buckets that have ended and begin inside the period: a bucket still filling is
                // published at a later run.
                let points = s
                    .points
                    .iter()
                    .zip(bounds.iter().skip(1))
                    .filter(|((t, _), bucket_end)| *t >= start && covered(*t, **bucket_end))
                    .map(|((t, v), _)| {
                        let v = v.and_then(canonical);
                        let shown = match (v, suppress_below) {
                            (Some(x), Some(below)) => privacy::suppress(x, below),
                            (v, _) => v,
                        };
                        let suppressed = v.is_some() && shown.is_none();
                        (*t, shown, suppressed)
                    })
                    .collect();
                series.push(PublicSeries {
                    device: public,
                    tags,
                    unit: s.unit.map(|u| u.to_string()),
                    location,
                    points,
                });
            }
        }
        series.sort_by(|a, b| (&a.device, &a.tags).cmp(&(&b.device, &b.tags)));
        let mut columns: BTreeSet<String> = BTreeSet::new();
        for s in &series {
            columns.extend(s.tags.keys().cloned());
        }
        Ok(Table {
            measurement: def.selection.measurement.clone(),
            field: spec.field.to_string(),
            every: def.aggregation.every.clone(),
            func: def.aggregation.func.clone(),
            tz: spec.tz,
            columns: columns.into_iter().collect(),
            series,
        })
    }
}

/// Values with ten significant digits: the same data read from raw points or from rollups (sums in another
/// order) differ in the last bits, and a published file must not change for that.
/// Not-a-number and infinities (an overflowing sum) are published as empty, `-0` as `0`.
fn canonical(v: f64) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some(0.0);
    }
    let rounded: f64 = format!("{v:.9e}").parse().unwrap_or(v);
    Some(if rounded.is_finite() { rounded } else { v })
}

/// A CSV number: plain decimals, exponent form for the very large and very small (as JSON would).
fn csv_number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-5) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// Every registered identifier, ready to be looked for in published values.
#[derive(Debug)]
struct Identifiers {
    /// Device ids, lower-case: matched whole.
    slugs: BTreeSet<String>,
    /// DevEUIs, DevAddrs, JoinEUIs, gateway EUIs as lower-case hex digits: matched anywhere in a value
    /// folded to its letters and digits (`A8-40-41-…`, `eui-a840…`, `0xA840…` all fold to contain them).
    hex: Vec<String>,
}

impl Identifiers {
    fn new(all: Vec<String>) -> Self {
        let is_hex = |s: &str| s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let mut slugs = BTreeSet::new();
        let mut hex = Vec::new();
        for id in all {
            let id = id.to_ascii_lowercase();
            if is_hex(&id) {
                hex.push(id.clone());
            }
            slugs.insert(id);
        }
        Self { slugs, hex }
    }

    fn exposed_by(&self, value: &str) -> bool {
        let lower = value.to_ascii_lowercase();
        // Device ids as words (`devices/cnt-dokk1/up`, `cnt-dokk1 entrance`): split on what a slug cannot hold.
        let slug_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if lower
            .split(|c: char| !slug_char(c))
            .any(|w| self.slugs.contains(w))
        {
            return true;
        }
        // Registered radio ids in any spelling: looked for in the value folded to letters and digits.
        let folded: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
        if self.hex.iter().any(|h| folded.contains(h.as_str())) {
            return true;
        }
        // An EUI-64 nobody registered here (a ChirpStack or TTS device's): a word that is 16 hex digits once
        // its separators and a `0x` or `eui` prefix are removed. UUIDs (32), dates and decimals are not.
        lower
            .split(|c: char| {
                c.is_whitespace() || matches!(c, '/' | ',' | ';' | '|' | '=' | '(' | ')')
            })
            .any(|w| {
                let f: String = w.chars().filter(char::is_ascii_alphanumeric).collect();
                let f = f
                    .strip_prefix("0x")
                    .or_else(|| f.strip_prefix("eui"))
                    .unwrap_or(&f);
                f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit())
            })
    }
}

/// The key of a dataset's CKAN-push lock in the lock map (no dataset id contains a NUL).
fn push_key(id: &str) -> String {
    format!("{id}\u{0}ckan")
}

/// Runs file work on the blocking pool; a panicked task is an internal error.
pub(crate) async fn on_blocking_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal {
            message: e.to_string(),
        })?
}

fn agent(a: &crate::datasets::Agent) -> Agent {
    Agent {
        name: a.name.clone(),
        email: a.email.clone(),
        uri: a.uri.clone(),
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

fn internal(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal {
        message: format!("{}: {e}", path.display()),
    }
}

/// `{id}_{period}.{ext}`: the file name is the same in every version.
pub(crate) fn file_name(id: &str, period: &str, format: FileFormat) -> String {
    format!("{id}_{period}.{}", format.extension())
}

fn load_or_make_secret(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => bytes.as_slice().try_into().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} must hold 32 bytes (the secret behind public device ids)",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            let tmp = path.with_extension("tmp");
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp)?;
            f.write_all(&secret)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            Ok(secret)
        }
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), Error> {
    let path = dir.join(MANIFEST);
    let mut bytes = serde_json::to_vec_pretty(m).map_err(|e| internal(&path, e))?;
    bytes.push(b'\n');
    write_atomic(&path, &bytes).map_err(|e| internal(&path, e))
}

/// Removes running files no manifest points at any more (a period's earlier running files, or those of a
/// period that now has a version). Best effort: a leftover is only disk space.
fn prune_running(dir: &Path, m: &Manifest) {
    for (period, record) in &m.periods {
        let keep = record.running.as_ref().and_then(|r| r.dir.clone());
        let Ok(entries) = std::fs::read_dir(dir.join(period).join("running")) else {
            continue;
        };
        for e in entries.flatten() {
            let name = format!("running/{}", e.file_name().to_string_lossy());
            if keep.as_deref() != Some(name.as_str()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// What a dataset's definition means for a run.
#[derive(Debug)]
struct Spec {
    measurement: MeasurementName,
    field: MeasurementName,
    every: Every,
    func: AggFn,
    tz: Tz,
    /// Periods are years when buckets are a month or more, months otherwise.
    yearly: bool,
    from: UnixNanos,
    to: Option<UnixNanos>,
}

impl Spec {
    fn new(def: &NewDataset, created_at: UnixNanos) -> Result<Self, Error> {
        let bad = |m: String| Error::bad("invalid_dataset", m);
        let every: Every = def
            .aggregation
            .every
            .parse()
            .map_err(|e: bydata_store::Error| bad(e.to_string()))?;
        let tz: Tz = def
            .time_zone
            .as_deref()
            .unwrap_or(crate::query::DEFAULT_TZ)
            .parse()
            .map_err(|_| bad("time_zone".into()))?;
        let (from, to) = match &def.temporal {
            Some(t) => (
                bydata_schemas::parse_rfc3339(&t.from).map_err(|e| bad(e.to_string()))?,
                t.to.as_deref()
                    .map(bydata_schemas::parse_rfc3339)
                    .transpose()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            None => (created_at, None),
        };
        Ok(Self {
            measurement: MeasurementName::new(def.selection.measurement.as_str())
                .map_err(|e| bad(e.to_string()))?,
            field: MeasurementName::new(
                def.selection
                    .field
                    .as_deref()
                    .unwrap_or(SeriesKey::DEFAULT_FIELD),
            )
            .map_err(|e| bad(e.to_string()))?,
            every,
            func: def
                .aggregation
                .func
                .parse()
                .map_err(|e: bydata_store::Error| bad(e.to_string()))?,
            tz,
            yearly: every.approximate_secs() >= 28 * 86_400,
            from,
            to,
        })
    }

    /// A period asked for on demand: well-formed, begun, and inside the temporal coverage.
    fn requested(&self, label: &str, now: UnixNanos) -> Result<Period, Error> {
        let p = Period::parse(label, self.yearly).ok_or_else(|| {
            Error::bad(
                "invalid_period",
                format!(
                    "period must look like {}",
                    if self.yearly { "2026" } else { "2026-03" }
                ),
            )
        })?;
        let (start, end) = (p.start(self.tz)?, p.end(self.tz)?);
        if start > now {
            return Err(Error::bad("invalid_period", "that period has not begun"));
        }
        if end <= self.from || self.to.is_some_and(|to| start >= to) {
            return Err(Error::bad(
                "invalid_period",
                format!("{label} is outside the dataset's temporal coverage"),
            ));
        }
        Ok(p)
    }

    /// The periods from the dataset's start up to now (or its end), oldest first.
    fn periods(&self, now: UnixNanos) -> Result<Vec<Period>, Error> {
        let last = self.to.map_or(now, |to| to.saturating_sub(1).min(now));
        if last < self.from {
            return Ok(Vec::new());
        }
        let mut p = Period::containing(self.from, self.tz, self.yearly);
        let stop = Period::containing(last, self.tz, self.yearly);
        let mut out = Vec::new();
        while p <= stop {
            out.push(p);
            p = p.next();
        }
        Ok(out)
    }
}

/// A month (`2026-03`) or a year (`2026`) in the dataset's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Period {
    year: i32,
    month: Option<u32>,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.month {
            Some(m) => write!(f, "{:04}-{m:02}", self.year),
            None => write!(f, "{:04}", self.year),
        }
    }
}

impl Period {
    fn containing(t: UnixNanos, tz: Tz, yearly: bool) -> Period {
        let local = tz.timestamp_nanos(t);
        Period {
            year: local.year(),
            month: (!yearly).then(|| local.month()),
        }
    }

    fn parse(s: &str, yearly: bool) -> Option<Period> {
        let year = |y: &str| {
            (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                .then(|| y.parse::<i32>().ok())
                .flatten()
                .filter(|y| (2000..=9998).contains(y))
        };
        if yearly {
            return Some(Period {
                year: year(s)?,
                month: None,
            });
        }
        let (y, m) = s.split_once('-')?;
        let month = (m.len() == 2)
            .then(|| m.parse::<u32>().ok())
            .flatten()
            .filter(|m| (1..=12).contains(m))?;
        Some(Period {
            year: year(y)?,
            month: Some(month),
        })
    }

    fn next(self) -> Period {
        match self.month {
            Some(12) => Period {
                year: self.year + 1,
                month: Some(1),
            },
            Some(m) => Period {
                year: self.year,
                month: Some(m + 1),
            },
            None => Period {
                year: self.year + 1,
                month: None,
            },
        }
    }

    fn start(self, tz: Tz) -> Result<UnixNanos, Error> {
        tz.with_ymd_and_hms(self.year, self.month.unwrap_or(1), 1, 0, 0, 0)
            .earliest()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| Error::bad("invalid_period", format!("{self}: no such local time")))
    }

    fn end(self, tz: Tz) -> Result<UnixNanos, Error> {
        self.next().start(tz)
    }
}

/// One published series: no device id, only its public id.
#[derive(Debug)]
struct PublicSeries {
    device: Option<String>,
    tags: BTreeMap<String, String>,
    unit: Option<String>,
    location: Option<Location>,
    /// Bucket start, value (`None`: empty or suppressed), suppressed.
    points: Vec<(UnixNanos, Option<f64>, bool)>,
}

/// A period's answer after the gate, ready to render.
#[derive(Debug)]
struct Table {
    measurement: String,
    field: String,
    every: String,
    func: String,
    tz: Tz,
    columns: Vec<String>,
    series: Vec<PublicSeries>,
}

impl Table {
    /// The first published tag whose value contains an identifier, if any.
    fn exposes(&self, ids: &Identifiers) -> Option<String> {
        self.series.iter().find_map(|s| {
            s.tags
                .iter()
                .find(|(_, v)| ids.exposed_by(v))
                .map(|(k, _)| k.clone())
        })
    }

    fn render(&self, format: FileFormat, id: &str, period: &str) -> Vec<u8> {
        match format {
            FileFormat::Csv => self.csv().into_bytes(),
            FileFormat::Json => self.json(id, period),
            FileFormat::Geojson => self.geojson(id, period),
        }
    }

    /// RFC 4180: `time,device,{columns},measurement,value,unit,suppressed`, one row per series and bucket.
    fn csv(&self) -> String {
        let mut out = String::from("time,device");
        for c in &self.columns {
            out.push(',');
            out.push_str(&csv_field(c, ','));
        }
        out.push_str(",measurement,value,unit,suppressed\r\n");
        for s in &self.series {
            for (t, v, suppressed) in &s.points {
                out.push_str(&time_in(self.tz, *t));
                out.push(',');
                out.push_str(s.device.as_deref().unwrap_or(""));
                for c in &self.columns {
                    out.push(',');
                    out.push_str(&csv_field(s.tags.get(c).map_or("", String::as_str), ','));
                }
                out.push(',');
                out.push_str(&self.measurement);
                out.push(',');
                if let Some(v) = v {
                    out.push_str(&csv_number(*v));
                }
                out.push(',');
                out.push_str(&csv_field(s.unit.as_deref().unwrap_or(""), ','));
                out.push(',');
                out.push_str(if *suppressed { "true" } else { "false" });
                out.push_str("\r\n");
            }
        }
        out
    }

    fn header(&self, id: &str, period: &str) -> Value {
        json!({
            "dataset": id,
            "period": period,
            "measurement": self.measurement,
            "field": self.field,
            "every": self.every,
            "fn": self.func,
            "time_zone": self.tz.name(),
        })
    }

    fn json(&self, id: &str, period: &str) -> Vec<u8> {
        let mut doc = self.header(id, period);
        doc["series"] = self
            .series
            .iter()
            .map(|s| {
                json!({
                    "device": s.device,
                    "tags": s.tags,
                    "unit": s.unit,
                    "values": s.points.iter().map(|(t, v, suppressed)| {
                        let mut p = json!({"time": time_in(self.tz, *t), "value": v});
                        if *suppressed {
                            p["suppressed"] = json!(true);
                        }
                        p
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        finish(&doc)
    }

    /// RFC 7946: one feature per series, the device's (gated) location with the period's latest value.
    fn geojson(&self, id: &str, period: &str) -> Vec<u8> {
        let features: Vec<Value> = self
            .series
            .iter()
            .filter(|s| s.device.is_some())
            .map(|s| {
                let latest = s
                    .points
                    .iter()
                    .rev()
                    .find(|(_, v, sup)| v.is_some() || *sup);
                let mut props = json!({
                    "device": s.device,
                    "measurement": self.measurement,
                    "unit": s.unit,
                    "time": latest.map(|(t, _, _)| time_in(self.tz, *t)),
                    "value": latest.and_then(|(_, v, _)| *v),
                });
                if latest.is_some_and(|(_, _, sup)| *sup) {
                    props["suppressed"] = json!(true);
                }
                for (k, v) in &s.tags {
                    props[k] = json!(v);
                }
                json!({
                    "type": "Feature",
                    "geometry": s.location.map(|l| json!({
                        "type": "Point",
                        "coordinates": [round7(l.lon()), round7(l.lat())],
                    })),
                    "properties": props,
                })
            })
            .collect();
        let mut doc = json!({"type": "FeatureCollection", "features": features});
        doc["bydata"] = self.header(id, period);
        finish(&doc)
    }
}

/// RFC 7946 §11.2: seven decimals (about 1 cm) is more than any sensor's position is worth.
fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

fn finish(doc: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// What a dataset's manifest (`opendata/{id}/manifest.json`) records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    #[serde(default)]
    pub(crate) periods: BTreeMap<String, PeriodRecord>,
    #[serde(default)]
    pub(crate) unit: Option<String>,
    /// The last run of any kind, and the last scheduled one (what the scheduler's timing follows).
    #[serde(default)]
    pub(crate) last_run: Option<RunRecord>,
    #[serde(default)]
    pub(crate) last_scheduled_run: Option<RunRecord>,
    #[serde(default)]
    pub(crate) ckan: Option<CkanStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PeriodRecord {
    pub(crate) start: String,
    pub(crate) end: String,
    /// The running period's files (replaced at each run), until it is complete.
    #[serde(default)]
    pub(crate) running: Option<VersionRecord>,
    /// Versions of the complete period, oldest first.
    #[serde(default)]
    pub(crate) versions: Vec<VersionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    /// 0 for a running period.
    pub(crate) version: u32,
    /// A running period's directory (`running/{hash}`): new files never overwrite the ones being served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dir: Option<String>,
    pub(crate) issued: String,
    pub(crate) files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub(crate) sha256: String,
    /// For DCAT-AP-DK's `spdx:checksum` (SHA-1 only).
    #[serde(default)]
    pub(crate) sha1: String,
    pub(crate) bytes: u64,
}

impl FileRecord {
    fn of(bytes: &[u8]) -> Self {
        Self {
            sha256: hex::encode(Sha256::digest(bytes)),
            sha1: hex::encode(sha1::Sha1::digest(bytes)),
            bytes: bytes.len() as u64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) at: String,
    pub(crate) ok: bool,
    #[serde(default)]
    pub(crate) error: Option<String>,
    /// More periods were due than one run computes: the next tick goes on.
    #[serde(default)]
    pub(crate) more: bool,
}

/// What a run computed (files already written).
#[derive(Debug)]
struct Run {
    outcomes: Vec<PeriodOutcome>,
    unit: Option<String>,
    more: bool,
}

/// The last push to CKAN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CkanStatus {
    pub(crate) at: String,
    pub(crate) ok: bool,
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) report: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Running,
    NewVersion(u32),
}

#[derive(Debug, Clone)]
struct PeriodOutcome {
    period: String,
    start: String,
    end: String,
    outcome: Outcome,
    hashes: BTreeMap<String, FileRecord>,
}

impl PeriodOutcome {
    /// Where this outcome's files go, if anywhere.
    fn dir(&self) -> Option<String> {
        match self.outcome {
            Outcome::Unchanged => None,
            Outcome::Running => {
                // Named by all three files' hashes: any change is a new directory.
                let mut all = Sha256::new();
                for h in self.hashes.values() {
                    all.update(h.sha256.as_bytes());
                }
                Some(format!("running/{}", &hex::encode(all.finalize())[..16]))
            }
            Outcome::NewVersion(v) => Some(format!("v{v}")),
        }
    }

    fn apply(&self, m: &mut Manifest, now: UnixNanos) {
        let record = m
            .periods
            .entry(self.period.clone())
            .or_insert_with(|| PeriodRecord {
                start: self.start.clone(),
                end: self.end.clone(),
                running: None,
                versions: Vec::new(),
            });
        let version = |v| VersionRecord {
            version: v,
            dir: None,
            issued: format_rfc3339(now),
            files: self.hashes.clone(),
        };
        match self.outcome {
            Outcome::Unchanged => {}
            Outcome::Running => {
                record.running = Some(VersionRecord {
                    dir: self.dir(),
                    ..version(0)
                });
            }
            Outcome::NewVersion(v) => {
                record.running = None;
                record.versions.push(version(v));
            }
        }
    }

    fn report(&self, landing: &str, id: &str) -> PeriodReport {
        PeriodReport {
            period: self.period.clone(),
            outcome: match self.outcome {
                Outcome::Unchanged => "unchanged",
                Outcome::Running => "running",
                Outcome::NewVersion(_) => "new_version",
            },
            version: match self.outcome {
                Outcome::NewVersion(v) => Some(v),
                _ => None,
            },
            files: FileFormat::ALL
                .into_iter()
                .filter_map(|f| {
                    let name = file_name(id, &self.period, f);
                    let h = self.hashes.get(f.extension())?;
                    let url = match self.outcome {
                        Outcome::NewVersion(v) => format!("{landing}/{}/v{v}/{name}", self.period),
                        _ => format!("{landing}/{}/{name}", self.period),
                    };
                    Some(FileReport {
                        format: f,
                        url,
                        sha256: h.sha256.clone(),
                        bytes: h.bytes,
                    })
                })
                .collect(),
        }
    }
}

/// What one run did (the answer of `POST /api/v1/datasets/{id}/publish`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunReport {
    pub(crate) dataset: String,
    pub(crate) at: String,
    pub(crate) periods: Vec<PeriodReport>,
    pub(crate) ckan: Option<CkanStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeriodReport {
    pub(crate) period: String,
    /// `new_version`, `unchanged` or `running` (a period still open, its files replaced).
    pub(crate) outcome: &'static str,
    pub(crate) version: Option<u32>,
    pub(crate) files: Vec<FileReport>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileReport {
    pub(crate) format: FileFormat,
    pub(crate) url: String,
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
}

/// Runs every due dataset every `schedule_secs` until cancelled. A dataset is due when it has never run or
/// its update frequency has passed since its last run.
pub async fn run_scheduler(state: AppState, cancel: tokio_util::sync::CancellationToken) {
    let tick = std::time::Duration::from_secs(state.opendata.settings.schedule_secs.max(1));
    loop {
        let registry = state.registry.clone();
        match crate::devices::blocking(move || registry.datasets()).await {
            Ok(all) => {
                for d in all {
                    if cancel.is_cancelled() {
                        return;
                    }
                    if !due(&state, &d).await {
                        continue;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        r = state.opendata.publish(&state, &d, None) => {
                            if let Err(e) = r {
                                tracing::warn!(dataset = %d.id, error = %e, "publication refused or failed; retried in 5 minutes");
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list datasets to publish"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

async fn due(state: &AppState, d: &StoredDataset) -> bool {
    let Ok(m) = state.opendata.read_manifest(&d.id).await else {
        return false;
    };
    let Some((last, ok, more)) = m
        .last_scheduled_run
        .and_then(|r| Some((bydata_schemas::parse_rfc3339(&r.at).ok()?, r.ok, r.more)))
    else {
        return true;
    };
    let every: u64 = match d.definition["update_frequency"].as_str() {
        _ if more => 0,
        _ if !ok => FAILED_RUN_RETRY_SECS,
        Some("CONT") => 300,
        Some("HOURLY") => 3_600,
        Some("DAILY") => 86_400,
        Some("WEEKLY") => 7 * 86_400,
        Some("MONTHLY") => 30 * 86_400,
        Some("QUARTERLY") => 91 * 86_400,
        _ => 365 * 86_400,
    };
    (state.clock)() >= last.saturating_add(secs(every))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cph() -> Tz {
        crate::query::DEFAULT_TZ.parse().expect("zone")
    }

    #[test]
    fn periods_are_local_months_or_years() {
        let march = Period::parse("2026-03", false).expect("month");
        assert_eq!(march.to_string(), "2026-03");
        let start = march.start(cph()).expect("start");
        let end = march.end(cph()).expect("end");
        assert_eq!(time_in(cph(), start), "2026-03-01T00:00:00+01:00");
        assert_eq!(time_in(cph(), end), "2026-04-01T00:00:00+02:00");
        // 31 days less the hour lost on 29 March.
        assert_eq!((end - start) / 3_600_000_000_000, 743);
        let december = Period::parse("2026-12", false).expect("month");
        assert_eq!(december.next().to_string(), "2027-01");
        assert_eq!(
            Period::parse("2026", true)
                .expect("year")
                .next()
                .to_string(),
            "2027"
        );
        for bad in [
            "2026-3",
            "2026-13",
            "2026-00",
            "26-03",
            "2026-03-01",
            "1999-01",
            "+026-03",
            "",
        ] {
            assert_eq!(Period::parse(bad, false), None, "{bad}");
        }
        assert_eq!(Period::parse("2026-03", true), None);
    }

    #[test]
    fn the_periods_of_a_run_run_from_the_start_to_now_or_the_end() {
        let spec = |from: &str, to: Option<&str>, yearly| Spec {
            measurement: MeasurementName::new("x").expect("name"),
            field: MeasurementName::new("value").expect("name"),
            every: "1h".parse().expect("every"),
            func: AggFn::Mean,
            tz: cph(),
            yearly,
            from: bydata_schemas::parse_rfc3339(from).expect("from"),
            to: to.map(|t| bydata_schemas::parse_rfc3339(t).expect("to")),
        };
        let now = bydata_schemas::parse_rfc3339("2026-11-22T12:00:00Z").expect("now");
        let labels = |s: &Spec| -> Vec<String> {
            s.periods(now)
                .expect("periods")
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            labels(&spec("2026-09-15T00:00:00Z", None, false)),
            ["2026-09", "2026-10", "2026-11"]
        );
        // `to` is exclusive: a dataset ending at April's first instant covers March only.
        assert_eq!(
            labels(&spec(
                "2026-03-01T00:00:00+01:00",
                Some("2026-04-01T00:00:00+02:00"),
                false
            )),
            ["2026-03"]
        );
        assert_eq!(
            labels(&spec("2024-06-01T00:00:00Z", None, true)),
            ["2024", "2025", "2026"]
        );
        assert!(labels(&spec("2027-01-01T00:00:00Z", None, false)).is_empty());
        let long = spec("2000-01-01T00:00:00Z", None, false);
        let all = labels(&long);
        assert_eq!(all.len(), 26 * 12 + 11);
        assert_eq!(all.last().map(String::as_str), Some("2026-11"));
    }

    proptest! {
        /// A period in a request is outside input: any text parses or is refused, and what parses prints back.
        #[test]
        fn any_period_text_parses_or_is_refused(s in "\\PC{0,12}", yearly: bool) {
            if let Some(p) = Period::parse(&s, yearly) {
                prop_assert_eq!(p.to_string(), s.clone());
                prop_assert!(p.start(cph()).is_ok());
                prop_assert!(p.end(cph()).expect("end") > p.start(cph()).expect("start"));
            }
        }

        #[test]
        fn well_formed_months_round_trip(y in 2000i32..9998, m in 1u32..=12) {
            let s = format!("{y:04}-{m:02}");
            prop_assert_eq!(Period::parse(&s, false).map(|p| p.to_string()), Some(s));
        }
    }
}

#[cfg(test)]
mod identifier_tests {
    use super::Identifiers;

    #[test]
    fn identifiers_are_found_in_any_spelling() {
        let ids = Identifiers::new(vec![
            "cnt-dokk1".into(),
            "a84041000181c0de".into(),
            "26011bcd".into(),
        ]);
        for exposed in [
            "cnt-dokk1",
            "CNT-DOKK1",
            "devices/cnt-dokk1/up",
            "cnt-dokk1 entrance",
            "a84041000181c0de",
            "A8-40-41-00-01-81-C0-DE",
            "A8:40:41:00:01:81:C0:DE",
            "eui-a84041000181c0de",
            "0xA84041000181C0DE",
            "counter/a84041000181c0de/up",
            "26011BCD",
            "addr 26 01 1b cd",
            // Shaped like an EUI-64 though nobody registered it.
            "70B3D57ED005FFFF",
        ] {
            assert!(ids.exposed_by(exposed), "{exposed}");
        }
        for fine in [
            "dokk1",
            "cnt",
            "building-7",
            "2026-03-01",
            "2026-03-01 12:00:00.123",
            "Aarhus Ø",
            "1234567",
            "cafe facade deaf bead",
            // A Danish address or building id (DAR/BBR) is a UUID.
            "0a3f50a0-75eb-32b8-e044-0003ba298018",
        ] {
            assert!(!ids.exposed_by(fine), "{fine}");
        }
    }
}

#[cfg(test)]
mod value_tests {
    use super::{canonical, csv_number};

    #[test]
    fn published_values_are_canonical() {
        assert_eq!(canonical(f64::NAN), None);
        assert_eq!(canonical(f64::INFINITY), None);
        assert_eq!(canonical(-0.0).map(f64::to_bits), Some(0.0f64.to_bits()));
        assert_eq!(canonical(f64::MAX), Some(f64::MAX));
        assert_eq!(canonical(0.1 + 0.2), Some(0.3));
        assert_eq!(canonical(1e-310), Some(1e-310));
        assert_eq!(csv_number(94.0), "94");
        assert_eq!(csv_number(0.25), "0.25");
        assert_eq!(csv_number(1e21), "1e21");
        assert_eq!(csv_number(1e-310), "1e-310");
    }
}
