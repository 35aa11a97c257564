//! How the catalogs and CKAN see the published data: the catalog's own description, and each dataset's
//! description and distributions, from its definition and manifest.
use super::manifest::Manifest;
use super::{OpenData, file_name};
use crate::datasets::NewDataset;
use crate::opendata::model::{
    Agent, Bilingual, CatalogInfo, Distribution, FileFormat, PublishedDataset,
};
use bydata_schemas::{UnixNanos, format_rfc3339};
use bydata_store::StoredDataset;

impl OpenData {
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

    pub(super) fn describe(
        &self,
        d: &StoredDataset,
        def: &NewDataset,
        m: &Manifest,
    ) -> PublishedDataset {
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
}

fn agent(a: &crate::datasets::Agent) -> Agent {
    Agent {
        name: a.name.clone(),
        email: a.email.clone(),
        uri: a.uri.clone(),
    }
}
