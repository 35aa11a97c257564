//! A dataset's manifest (`manifest.json`): what it records, reading it, and writing it last, after the files
//! it points at.
use crate::disk::write_atomic;
use crate::error::{Error, Result};
use crate::model::FileFormat;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const MANIFEST: &str = "manifest.json";

/// The manifest in a dataset's directory (empty when it has never been published).
pub(crate) fn read(dataset_dir: &Path) -> Result<Manifest> {
    let path = dataset_dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| Error::Manifest { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes the manifest (after the files it points at) and prunes running files it no longer names.
pub(crate) fn save(dataset_dir: &Path, manifest: &Manifest) -> Result<()> {
    write_manifest(dataset_dir, manifest)?;
    prune_running(dataset_dir, manifest);
    Ok(())
}

/// `{id}_{period}.{ext}`: the file name is the same in every version.
pub(crate) fn file_name(id: &str, period: &str, format: FileFormat) -> String {
    format!("{id}_{period}.{}", format.extension())
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = dir.join(MANIFEST);
    let mut bytes = match serde_json::to_vec_pretty(m) {
        Ok(bytes) => bytes,
        Err(source) => return Err(Error::Manifest { path, source }),
    };
    bytes.push(b'\n');
    write_atomic(&path, &bytes).map_err(|e| Error::io(path, e))
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
pub struct Manifest {
    #[serde(default)]
    pub periods: BTreeMap<String, PeriodRecord>,
    #[serde(default)]
    pub unit: Option<String>,
    /// The last run of any kind, and the last scheduled one (what the scheduler's timing follows).
    #[serde(default)]
    pub last_run: Option<RunRecord>,
    #[serde(default)]
    pub last_scheduled_run: Option<RunRecord>,
    #[serde(default)]
    pub ckan: Option<CkanStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeriodRecord {
    pub start: String,
    pub end: String,
    /// The running period's files (replaced at each run), until it is complete.
    #[serde(default)]
    pub running: Option<VersionRecord>,
    /// Versions of the complete period, oldest first.
    #[serde(default)]
    pub versions: Vec<VersionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    /// 0 for a running period.
    pub version: u32,
    /// A running period's directory (`running/{hash}`): new files never overwrite the ones being served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    pub issued: String,
    pub files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub sha256: String,
    /// For DCAT-AP-DK's `spdx:checksum` (SHA-1 only).
    #[serde(default)]
    pub sha1: String,
    pub bytes: u64,
}

impl FileRecord {
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self {
            sha256: hex::encode(Sha256::digest(bytes)),
            sha1: hex::encode(sha1::Sha1::digest(bytes)),
            bytes: bytes.len() as u64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub at: String,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    /// More periods were due than one run computes: the next tick goes on.
    #[serde(default)]
    pub more: bool,
}

/// The last push to CKAN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CkanStatus {
    pub at: String,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub report: Option<Value>,
}
