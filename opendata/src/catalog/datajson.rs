//! `GET /opendata/data.json`: the catalog in the shape Open Data DK already harvests from OS2iot, so a city can
//! point its existing harvest source here instead.
//!
//! The shape is OS2iot's (repository `OS2iot/OS2IoT-backend`, `src/services/data-management/
//! open-data-dk-sharing.service.ts` with the DTOs in `src/entities/dto/open-data-dk-dcat.dto.ts`): US Project Open
//! Data v1.1 (`@context`, `@type: dcat:Catalog`, `conformsTo`, `describedBy`, `dataset`), each dataset with
//! `@type`, `accessLevel: "public"`, `identifier`, `title`, `description`, `keyword`, `issued` and `modified` as
//! JavaScript `Date#toISOString` (UTC, milliseconds, `Z`), `publisher: {name}`, `contactPoint: {@type:
//! vcard:Contact, fn, hasEmail: "mailto:…"}` and `distribution`, each distribution with `@type`, `title`,
//! `format`, `mediaType`, `accessURL` and — OS2iot moved it there from the dataset in 2023 (IOT-1477) — the
//! licence URL as `license`. Text is Danish, as OS2iot's is.
//!
//! Where we know more we fill fields OS2iot declares but leaves empty (`landingPage`, `theme`, `spatial`) and add
//! what ckanext-dcat's `dcat_json` harvester reads into CKAN (`downloadURL`, `byteSize`, `description`,
//! `language`), plus Project Open Data's `temporal` and `accrualPeriodicity`; one distribution per published file.
use super::dcat::dataset_iri;
use super::terms::theme_label;
use crate::model::{CatalogInfo, Distribution, FileFormat, PublishedDataset};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// The catalog as Project Open Data v1.1 `data.json`.
pub fn data_json(_info: &CatalogInfo, datasets: &[PublishedDataset]) -> Value {
    json!({
        "@context": "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld",
        "@type": "dcat:Catalog",
        "conformsTo": "https://project-open-data.cio.gov/v1.1/schema",
        "describedBy": "https://project-open-data.cio.gov/v1.1/schema/catalog.json",
        "dataset": datasets.iter().map(dataset).collect::<Vec<_>>(),
    })
}

fn dataset(d: &PublishedDataset) -> Value {
    let mut n = Map::new();
    n.insert("@type".into(), Value::from("dcat:Dataset"));
    n.insert("accessLevel".into(), Value::from("public"));
    n.insert("identifier".into(), Value::from(dataset_iri(d)));
    n.insert("landingPage".into(), Value::from(d.landing_page.as_str()));
    n.insert("title".into(), Value::from(d.title.da.as_str()));
    n.insert("description".into(), Value::from(d.description.da.as_str()));
    n.insert("keyword".into(), json!(d.keywords));
    n.insert(
        "theme".into(),
        d.themes
            .iter()
            .map(|code| Value::from(theme_label(code).map_or_else(|| code.clone(), |l| l.da)))
            .collect(),
    );
    n.insert("language".into(), json!(["da"]));
    n.insert("issued".into(), Value::from(js_date(&d.issued)));
    n.insert("modified".into(), Value::from(js_date(&d.modified)));
    n.insert("publisher".into(), json!({ "name": d.publisher.name }));
    let mut contact = Map::new();
    contact.insert("@type".into(), Value::from("vcard:Contact"));
    contact.insert("fn".into(), Value::from(d.contact_point.name.as_str()));
    if let Some(email) = &d.contact_point.email {
        contact.insert("hasEmail".into(), Value::from(format!("mailto:{email}")));
    }
    n.insert("contactPoint".into(), Value::Object(contact));
    if let Some(place) = &d.spatial {
        n.insert("spatial".into(), Value::from(place.as_str()));
    }
    // Project Open Data has no open-ended interval: without an end the coverage is left out.
    if let (Some(start), Some(end)) = (&d.temporal_start, &d.temporal_end) {
        n.insert("temporal".into(), Value::from(format!("{start}/{end}")));
    }
    if let Some(p) = accrual_periodicity(&d.update_frequency) {
        n.insert("accrualPeriodicity".into(), Value::from(p));
    }
    n.insert(
        "distribution".into(),
        d.distributions.iter().map(|f| distribution(d, f)).collect(),
    );
    Value::Object(n)
}

fn distribution(d: &PublishedDataset, f: &Distribution) -> Value {
    let mut n = Map::new();
    n.insert("@type".into(), Value::from("dcat:Distribution"));
    n.insert(
        "title".into(),
        Value::from(format!(
            "{} {} ({})",
            d.title.da,
            f.period,
            format_name(f.format)
        )),
    );
    if !f.complete {
        n.insert(
            "description".into(),
            Value::from("Perioden er ikke slut: filen erstattes, efterhånden som data kommer ind."),
        );
    }
    n.insert("format".into(), Value::from(format_name(f.format)));
    n.insert("mediaType".into(), Value::from(f.format.media_type()));
    n.insert("license".into(), Value::from(licence_url(&d.licence)));
    n.insert("accessURL".into(), Value::from(f.access_url.as_str()));
    n.insert("downloadURL".into(), Value::from(f.download_url.as_str()));
    n.insert("byteSize".into(), Value::from(f.byte_size));
    Value::Object(n)
}

/// CKAN's usual format names (OS2iot writes `JSON`).
fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "CSV",
        FileFormat::Json => "JSON",
        FileFormat::Geojson => "GeoJSON",
    }
}

/// The licence as the URL OS2iot's users pick it by (Open Data DK maps these to its licence list).
fn licence_url(spdx: &str) -> String {
    match spdx {
        "CC0-1.0" => "https://creativecommons.org/publicdomain/zero/1.0/".into(),
        "CC-BY-4.0" => "https://creativecommons.org/licenses/by/4.0/".into(),
        other => format!("https://spdx.org/licenses/{other}"),
    }
}

/// Project Open Data's ISO 8601 repeating durations for the EU frequency codes we use.
fn accrual_periodicity(eu_code: &str) -> Option<&'static str> {
    Some(match eu_code {
        "CONT" => "R/PT1S",
        "HOURLY" => "R/PT1H",
        "DAILY" => "R/P1D",
        "WEEKLY" => "R/P1W",
        "MONTHLY" => "R/P1M",
        "QUARTERLY" => "R/P3M",
        "ANNUAL" => "R/P1Y",
        _ => return None,
    })
}

/// As OS2iot's `Date` fields serialize: UTC with milliseconds and `Z`. Left as given if it is not RFC 3339.
fn js_date(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |t| {
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        },
    )
}
