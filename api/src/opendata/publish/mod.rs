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
//!
//! One file per step: `settings` (the config section), `spec` and `period` (what a definition means for a run),
//! `run` (the due periods and each one's files), `gate` (the privacy gate), `identifiers` (the identifier
//! search), `values` and `table` (rendering), `report` (outcomes), `manifest` and `disk` (what is on disk),
//! `catalog` (how catalogs and CKAN see a dataset), `ckan_push` and `scheduler`.
mod catalog;
mod ckan_push;
mod disk;
mod gate;
mod identifiers;
mod manifest;
mod period;
mod report;
mod run;
mod scheduler;
mod settings;
mod spec;
mod table;
mod values;

pub(crate) use manifest::{FileRecord, file_name};
pub use scheduler::run_scheduler;
pub use settings::{CkanSettings, Settings};

use crate::Error;
use bydata_store::StoredDataset;
use disk::{load_or_make_secret, sync_dir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
