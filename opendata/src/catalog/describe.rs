//! How the catalogs and CKAN see the published data: the catalog's own description, and each dataset's
//! description and distributions, from its definition and manifest.
use crate::definition::Dataset;
use crate::manifest::{Manifest, file_name};
use crate::model::{Agent, Bilingual, CatalogInfo, Distribution, FileFormat, PublishedDataset};
use crate::settings::Settings;
use bydata_schemas::{UnixNanos, format_rfc3339};

/// The catalog's own description.
pub(crate) fn catalog_info(s: &Settings, base_url: &str, modified: UnixNanos) -> CatalogInfo {
    CatalogInfo {
        base_url: base_url.to_owned(),
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

/// One dataset as published: its metadata and a distribution per published file, newest first.
pub(crate) fn describe(base_url: &str, d: &Dataset, m: &Manifest) -> PublishedDataset {
    let def = &d.definition;
    let landing = format!("{base_url}/opendata/datasets/{}", d.id);
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

fn agent(a: &crate::definition::Agent) -> Agent {
    Agent {
        name: a.name.clone(),
        email: a.email.clone(),
        uri: a.uri.clone(),
    }
}
