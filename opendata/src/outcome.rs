//! A run's outcome per period: where its files go, how it changes the manifest, and what the caller is told.
use crate::manifest::{CkanStatus, FileRecord, Manifest, PeriodRecord, VersionRecord, file_name};
use crate::model::FileFormat;
use bydata_schemas::{UnixNanos, format_rfc3339};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Unchanged,
    Running,
    NewVersion(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct PeriodOutcome {
    pub(crate) period: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) outcome: Outcome,
    pub(crate) hashes: BTreeMap<String, FileRecord>,
}

impl PeriodOutcome {
    /// Where this outcome's files go, if anywhere.
    pub(crate) fn dir(&self) -> Option<String> {
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

    pub(crate) fn apply(&self, m: &mut Manifest, now: UnixNanos) {
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

    pub(crate) fn report(&self, landing: &str, id: &str) -> PeriodReport {
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
pub struct RunReport {
    pub dataset: String,
    pub at: String,
    pub periods: Vec<PeriodReport>,
    pub ckan: Option<CkanStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodReport {
    pub period: String,
    /// `new_version`, `unchanged` or `running` (a period still open, its files replaced).
    pub outcome: &'static str,
    pub version: Option<u32>,
    pub files: Vec<FileReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub format: FileFormat,
    pub url: String,
    pub sha256: String,
    pub bytes: u64,
}
