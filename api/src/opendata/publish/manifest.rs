//! A dataset's manifest (`manifest.json`): what it records, reading it, finding a file to serve in it, and
//! writing it last, after the files it points at.
use super::disk::write_atomic;
use super::{OpenData, internal, on_blocking_pool};
use crate::Error;
use crate::opendata::model::FileFormat;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MANIFEST: &str = "manifest.json";

impl OpenData {
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

    pub(super) async fn save_manifest(&self, dir: &Path, manifest: &Manifest) -> Result<(), Error> {
        let dir = dir.to_owned();
        let m = manifest.clone();
        on_blocking_pool(move || {
            write_manifest(&dir, &m)?;
            prune_running(&dir, &m);
            Ok(())
        })
        .await
    }
}

/// `{id}_{period}.{ext}`: the file name is the same in every version.
pub(crate) fn file_name(id: &str, period: &str, format: FileFormat) -> String {
    format!("{id}_{period}.{}", format.extension())
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
    pub(super) fn of(bytes: &[u8]) -> Self {
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
