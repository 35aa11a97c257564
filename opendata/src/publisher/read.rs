//! What is published, for the public side: the catalog, a dataset's document, a file to serve, and a
//! dataset's publication status for its definition's page.
use super::core::Publisher;
use crate::archive::PublishedFile;
use crate::catalog::describe::{catalog_info, describe};
use crate::catalog::document::dataset_document;
use crate::definition::Dataset;
use crate::error::{Result, blocking};
use crate::manifest::{CkanStatus, Manifest, RunRecord};
use crate::model::{CatalogInfo, PublishedDataset};
use bydata_store::StoredDataset;
use serde::Serialize;
use serde_json::Value;

/// How a dataset's publication goes, shown with its definition.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    /// The dataset's page of files.
    pub url: String,
    pub last_run: Option<RunRecord>,
    /// How many periods have files.
    pub periods: usize,
    pub ckan: Option<CkanStatus>,
}

impl Publisher {
    /// The catalog's description and every dataset with at least one published file, as the catalogs see
    /// them; the catalog's modification time is the latest of its datasets'.
    pub async fn catalog(&self) -> Result<(CatalogInfo, Vec<PublishedDataset>)> {
        let all = self.registry().datasets().await?;
        let (archive, base_url) = (self.archive.clone(), self.base_url.clone());
        let published = blocking(move || {
            Ok(all
                .iter()
                .filter_map(|d| published_one(&archive, &base_url, d).map(|(p, _)| p))
                .collect::<Vec<_>>())
        })
        .await?;
        let modified = published
            .iter()
            .map(|d| d.modified.clone())
            .max()
            .and_then(|m| bydata_schemas::parse_rfc3339(&m).ok())
            .unwrap_or(0);
        Ok((
            catalog_info(&self.settings, &self.base_url, modified),
            published,
        ))
    }

    /// A published dataset's document (metadata, periods, versions, file URLs and checksums); `None` when no
    /// such dataset is defined or it has no file yet.
    pub async fn dataset_document(&self, id: &str) -> Result<Option<Value>> {
        let wanted = id.to_owned();
        let Some(stored) = self.registry().dataset(&wanted).await? else {
            return Ok(None);
        };
        let (archive, base_url) = (self.archive.clone(), self.base_url.clone());
        blocking(move || {
            Ok(published_one(&archive, &base_url, &stored)
                .map(|(d, manifest)| dataset_document(&d, &manifest, &base_url)))
        })
        .await
    }

    /// The file to serve for `/opendata/datasets/{id}/{period}/[v{n}/]{name}`: only of a dataset that is
    /// still defined, and only as its manifest names it.
    pub async fn file(
        &self,
        id: &str,
        period: &str,
        version: Option<u32>,
        name: &str,
    ) -> Result<Option<PublishedFile>> {
        let wanted = id.to_owned();
        if self.registry().dataset(&wanted).await?.is_none() {
            return Ok(None);
        }
        let archive = self.archive.clone();
        let (id, period, name) = (id.to_owned(), period.to_owned(), name.to_owned());
        blocking(move || Ok(archive.file(&id, &period, version, &name))).await
    }

    /// How a dataset's publication goes (the last run, the last CKAN push, the periods published).
    pub async fn publication(&self, id: &str) -> Result<Publication> {
        let (archive, wanted) = (self.archive.clone(), id.to_owned());
        let m: Manifest = blocking(move || archive.manifest(&wanted)).await?;
        Ok(Publication {
            url: format!("{}/opendata/datasets/{id}", self.base_url),
            last_run: m.last_run,
            periods: m.periods.len(),
            ckan: m.ckan,
        })
    }
}

/// One dataset as published, with its manifest; `None` until it has a file (or when its definition or
/// manifest cannot be read).
fn published_one(
    archive: &crate::archive::Archive,
    base_url: &str,
    stored: &StoredDataset,
) -> Option<(PublishedDataset, Manifest)> {
    let d = Dataset::parse(stored).ok()?;
    let manifest = archive.manifest(&d.id).ok()?;
    let p = describe(base_url, &d, &manifest);
    (!p.distributions.is_empty()).then_some((p, manifest))
}
