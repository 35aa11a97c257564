//! The DCAT-AP-DK 2.0.2 catalog (`/opendata/catalog`): one `dcat:Catalog` with its datasets and each dataset's
//! files as `dcat:Distribution`s, as JSON-LD (`turtle` writes the same graph as Turtle).
//!
//! What is written follows the profile's SHACL shapes (`tests/fixtures/dcat-ap-dk/`): every node referenced
//! through a class-constrained property carries that class (`foaf:Agent`, `vcard:Kind`, `dct:LicenseDocument`,
//! `skos:Concept` with a `skos:prefLabel`, `dct:Location`, `dct:PeriodOfTime`, `foaf:Document`,
//! `dct:RightsStatement`), dates are `xsd:dateTime` (or `xsd:date`), `dcat:byteSize` is `xsd:decimal`, media types
//! are IANA IRIs under `https://www.iana.org/assignments/media-types/`, and formats, themes, frequencies,
//! languages, licences and access rights are EU authority IRIs.
//!
//! Checksums: the 2.0.2 shapes admit only SHA-1 for `spdx:algorithm` ("other algorithms will be supported at a
//! later time"), so `spdx:checksum` carries each file's SHA-1; the SHA-256 that identifies files everywhere else
//! (dataset pages, ETags, data.json, CKAN) is given in the distribution's description.
//!
//! Output is a pure function of the input, in input order, so the same catalog renders to the same bytes.
use super::terms::{
    EU, agent, bilingual, contact, date, iri, lang, licence, node, period, spatial, theme, typed,
};
use crate::model::{CatalogInfo, Distribution, PublishedDataset};
use serde_json::{Map, Value, json};

const IANA_MEDIA_TYPES: &str = "https://www.iana.org/assignments/media-types";

/// The catalog as a JSON-LD document: the catalog node with its datasets nested in it.
pub fn catalog_jsonld(info: &CatalogInfo, datasets: &[PublishedDataset]) -> Value {
    let mut catalog = catalog_node(info, datasets);
    catalog.insert("@context".into(), context());
    Value::Object(catalog)
}

pub(crate) const PREFIXES: [(&str, &str); 7] = [
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("spdx", "http://spdx.org/rdf/terms#"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
];

fn context() -> Value {
    Value::Object(
        PREFIXES
            .iter()
            .map(|(p, iri)| ((*p).to_owned(), Value::from(*iri)))
            .collect(),
    )
}

pub(crate) fn catalog_node(
    info: &CatalogInfo,
    datasets: &[PublishedDataset],
) -> Map<String, Value> {
    let base = &info.base_url;
    let mut themes: Vec<&str> = datasets
        .iter()
        .flat_map(|d| d.themes.iter().map(String::as_str))
        .collect();
    themes.sort_unstable();
    themes.dedup();
    let mut c = node(&format!("{base}/opendata/catalog"), "dcat:Catalog");
    c.insert("dct:title".into(), bilingual(&info.title));
    c.insert("dct:description".into(), bilingual(&info.description));
    c.insert("dct:publisher".into(), agent(base, &info.publisher));
    c.insert("dct:modified".into(), date(&info.modified));
    c.insert(
        "foaf:homepage".into(),
        Value::Object(node(&format!("{base}/opendata"), "foaf:Document")),
    );
    c.insert(
        "dct:language".into(),
        json!([
            iri(&format!("{EU}/language/DAN")),
            iri(&format!("{EU}/language/ENG"))
        ]),
    );
    // The catalog's own metadata is free for any use.
    c.insert("dct:license".into(), licence("CC0-1.0"));
    if !themes.is_empty() {
        let mut scheme = node(&format!("{EU}/data-theme"), "skos:ConceptScheme");
        scheme.insert("dct:title".into(), json!([lang("Data theme", "en")]));
        c.insert("dcat:themeTaxonomy".into(), Value::Object(scheme));
    }
    c.insert(
        "dcat:dataset".into(),
        datasets.iter().map(|d| dataset(base, d)).collect(),
    );
    c
}

fn dataset(base: &str, d: &PublishedDataset) -> Value {
    let id = dataset_iri(d);
    let mut n = node(&id, "dcat:Dataset");
    n.insert("dct:identifier".into(), Value::from(id));
    n.insert("dct:title".into(), bilingual(&d.title));
    n.insert("dct:description".into(), bilingual(&d.description));
    n.insert(
        "dcat:keyword".into(),
        d.keywords.iter().map(|k| Value::from(k.as_str())).collect(),
    );
    n.insert(
        "dcat:theme".into(),
        d.themes.iter().map(|t| theme(t)).collect(),
    );
    n.insert("dct:publisher".into(), agent(base, &d.publisher));
    n.insert("dcat:contactPoint".into(), contact(&d.contact_point));
    n.insert(
        "dct:accrualPeriodicity".into(),
        iri(&format!("{EU}/frequency/{}", d.update_frequency)),
    );
    let mut rights = node(&format!("{EU}/access-right/PUBLIC"), "dct:RightsStatement");
    rights.insert(
        "skos:prefLabel".into(),
        json!([lang("offentlig", "da"), lang("public", "en")]),
    );
    n.insert("dct:accessRights".into(), Value::Object(rights));
    if let Some(place) = &d.spatial {
        n.insert("dct:spatial".into(), spatial(place));
    }
    if d.temporal_start.is_some() || d.temporal_end.is_some() {
        n.insert(
            "dct:temporal".into(),
            period(d.temporal_start.as_deref(), d.temporal_end.as_deref()),
        );
    }
    n.insert("dct:issued".into(), date(&d.issued));
    n.insert("dct:modified".into(), date(&d.modified));
    n.insert(
        "dcat:landingPage".into(),
        Value::Object(node(&d.landing_page, "foaf:Document")),
    );
    n.insert(
        "dcat:distribution".into(),
        d.distributions.iter().map(|f| distribution(d, f)).collect(),
    );
    Value::Object(n)
}

fn distribution(d: &PublishedDataset, f: &Distribution) -> Value {
    let format = f.format.eu_file_type();
    let mut n = node(
        &format!("{}#distribution", f.access_url),
        "dcat:Distribution",
    );
    n.insert(
        "dct:title".into(),
        json!([
            lang(&format!("{} {} ({format})", d.title.da, f.period), "da"),
            lang(&format!("{} {} ({format})", d.title.en, f.period), "en"),
        ]),
    );
    let (running_da, running_en) = if f.complete {
        ("", "")
    } else {
        (
            " Perioden er ikke slut: filen erstattes, efterhånden som data kommer ind.",
            " The period is still running: the file is replaced as data arrives.",
        )
    };
    n.insert(
        "dct:description".into(),
        json!([
            lang(&format!("SHA-256: {}.{running_da}", f.sha256), "da"),
            lang(&format!("SHA-256: {}.{running_en}", f.sha256), "en"),
        ]),
    );
    n.insert("dcat:accessURL".into(), iri(&f.access_url));
    n.insert("dcat:downloadURL".into(), iri(&f.download_url));
    n.insert(
        "dcat:mediaType".into(),
        iri(&format!("{IANA_MEDIA_TYPES}/{}", f.format.media_type())),
    );
    n.insert(
        "dct:format".into(),
        iri(&format!("{EU}/file-type/{format}")),
    );
    n.insert("dct:license".into(), licence(&d.licence));
    n.insert(
        "spdx:checksum".into(),
        json!({
            "@type": "spdx:Checksum",
            "spdx:algorithm": iri("http://spdx.org/rdf/terms#checksumAlgorithm_sha1"),
            "spdx:checksumValue": typed(&f.sha1, "xsd:hexBinary"),
        }),
    );
    n.insert(
        "dcat:byteSize".into(),
        typed(&f.byte_size.to_string(), "xsd:decimal"),
    );
    n.insert("dct:issued".into(), date(&f.issued));
    n.insert(
        "dct:temporal".into(),
        period(Some(&f.temporal_start), Some(&f.temporal_end)),
    );
    Value::Object(n)
}

/// The dataset's IRI, also its `dct:identifier` and the `identifier` in `data.json`.
pub(crate) fn dataset_iri(d: &PublishedDataset) -> String {
    format!("{}#dataset", d.landing_page)
}
