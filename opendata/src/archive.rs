//! The published files on disk (`{data_dir}/opendata/datasets/{id}/`): where a dataset's files are, its
//! manifest, finding a file to serve, and removing a withdrawn dataset's files.
use crate::disk::sync_dir;
use crate::error::{Error, Result};
use crate::manifest::{self, FileRecord, Manifest, file_name};
use crate::model::FileFormat;
use std::path::{Path, PathBuf};

/// `{data_dir}/opendata`: every dataset's directory, and the public-id secret beside them.
#[derive(Debug, Clone)]
pub(crate) struct Archive {
    dir: PathBuf,
}

/// A published file found in a manifest, ready to be served.
#[derive(Debug, Clone)]
pub struct PublishedFile {
    pub path: PathBuf,
    pub format: FileFormat,
    pub record: FileRecord,
    /// A numbered version: never changes, so it may be cached for good.
    pub immutable: bool,
}

impl Archive {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `opendata/datasets/{id}`: apart from the secret, whatever a dataset's id.
    pub(crate) fn dataset_dir(&self, id: &str) -> PathBuf {
        self.dir.join("datasets").join(id)
    }

    /// The manifest of a dataset (empty when it has never been published).
    pub(crate) fn manifest(&self, id: &str) -> Result<Manifest> {
        manifest::read(&self.dataset_dir(id))
    }

    /// The file to serve for `/opendata/datasets/{id}/{period}/[v{n}/]{name}`, if it exists: looked up in the
    /// manifest, never built from the request.
    pub(crate) fn file(
        &self,
        id: &str,
        period: &str,
        version: Option<u32>,
        name: &str,
    ) -> Option<PublishedFile> {
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
        let record = files.get(format.extension())?.clone();
        let path = self.dataset_dir(id).join(period).join(dir).join(name);
        Some(PublishedFile {
            path,
            format,
            record,
            immutable,
        })
    }

    /// Removes a dataset's directory: renamed aside first, so a half-deleted directory is never served.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dataset_dir(id);
        let trash = self
            .dir
            .join("datasets")
            .join(format!(".deleted-{id}-{}", rand::random::<u64>()));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {
                std::fs::remove_dir_all(&trash).map_err(|e| Error::io(&trash, e))?;
                sync_dir(trash.parent().unwrap_or(Path::new("."))).map_err(|e| Error::io(&trash, e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(dir, e)),
        }
    }
}
