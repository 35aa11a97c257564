//! The publisher of a running instance: what it reads (the registry, the series), its settings, its files
//! and public-id secret, its CKAN client, and one lock per dataset so runs of a dataset never overlap.
use crate::archive::Archive;
use crate::ckan::{Ckan, CkanTarget};
use crate::definition::Dataset;
use crate::disk::load_or_make_secret;
use crate::error::Result;
use crate::settings::Settings;
use bydata_schemas::UnixNanos;
use bydata_store::{RegistryPort, SeriesReader, SharedRegistry};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What the publisher reads: datasets and devices from the registry, points from the series store, the time.
#[derive(Clone)]
pub struct Deps {
    pub registry: SharedRegistry,
    pub reader: Arc<dyn SeriesReader>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// Publishes datasets, answers for what is published, and withdraws deleted datasets.
pub struct Publisher {
    pub(super) deps: Deps,
    pub(super) archive: Archive,
    pub(super) secret: [u8; 32],
    pub(super) settings: Settings,
    pub(super) base_url: String,
    pub(super) ckan: Option<Ckan>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("archive", &self.archive)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

const SECRET_FILE: &str = "public-id.key";

impl Publisher {
    /// Opens `{data_dir}/opendata`, making the public-id secret on first start. `default_base_url` is used
    /// in catalogs when `settings.public_url` is empty; without `ckan_token` nothing is pushed.
    pub fn open(
        deps: Deps,
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
                Ckan::new(CkanTarget {
                    url: settings.ckan.url.clone(),
                    token,
                    owner_org: settings.ckan.organization.clone(),
                })
                .map_err(|e| std::io::Error::other(format!("[opendata.ckan]: {e}")))?,
            ),
            _ => None,
        };
        Ok(Self {
            deps,
            archive: Archive::new(dir),
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

    /// The public base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(super) fn now(&self) -> UnixNanos {
        (self.deps.clock)()
    }

    pub(super) fn registry(&self) -> &dyn RegistryPort {
        self.deps.registry.as_ref()
    }

    /// Whether the registry still holds this very definition (same id and creation time).
    pub(super) async fn still_defined(&self, dataset: &Dataset) -> Result<bool> {
        let now = self.registry().dataset(&dataset.id).await?;
        Ok(now.is_some_and(|d| d.created_at == dataset.created_at))
    }

    /// The lock of one dataset's files and manifest.
    pub(super) fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// The lock of one dataset's CKAN pushes.
    pub(super) fn push_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.lock(&push_key(id))
    }

    /// Forgets a withdrawn dataset's locks.
    pub(super) fn forget(&self, id: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.remove(id);
        locks.remove(&push_key(id));
    }
}

/// The key of a dataset's CKAN-push lock in the lock map (no dataset id contains a NUL).
fn push_key(id: &str) -> String {
    format!("{id}\u{0}ckan")
}
