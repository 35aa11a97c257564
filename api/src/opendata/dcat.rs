//! The DCAT-AP-DK 2.0.2 catalog (`/opendata/catalog`): one `dcat:Catalog` with its datasets and each dataset's
//! files as `dcat:Distribution`s, as JSON-LD, and the same graph as Turtle.
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
use super::model::{Agent, Bilingual, CatalogInfo, Distribution, PublishedDataset};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::fmt::Write as _;

const EU: &str = "http://publications.europa.eu/resource/authority";
const IANA_MEDIA_TYPES: &str = "https://www.iana.org/assignments/media-types";

/// The catalog as a JSON-LD document: the catalog node with its datasets nested in it.
pub fn catalog_jsonld(info: &CatalogInfo, datasets: &[PublishedDataset]) -> Value {
    let mut catalog = catalog_node(info, datasets);
    catalog.insert("@context".into(), context());
    Value::Object(catalog)
}

/// The catalog as Turtle: the same graph as [`catalog_jsonld`].
pub fn catalog_turtle(info: &CatalogInfo, datasets: &[PublishedDataset]) -> String {
    let mut out = String::new();
    for (prefix, iri) in PREFIXES {
        let _ = writeln!(out, "@prefix {prefix}: <{iri}> .");
    }
    write_subjects(&mut out, &catalog_node(info, datasets), &mut HashSet::new());
    out
}

const PREFIXES: [(&str, &str); 7] = [
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

fn catalog_node(info: &CatalogInfo, datasets: &[PublishedDataset]) -> Map<String, Value> {
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
        Value::Object(node(&format!("{base}/opendata/datasets"), "foaf:Document")),
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

/// A `foaf:Agent`: its own URI when known, else a stable IRI in the catalog named after it.
fn agent(base: &str, a: &Agent) -> Value {
    let id = match &a.uri {
        Some(uri) => uri.clone(),
        None => format!("{base}/opendata/catalog#agent-{}", slug(&a.name)),
    };
    let mut n = node(&id, "foaf:Agent");
    n.insert("foaf:name".into(), Value::from(a.name.as_str()));
    Value::Object(n)
}

fn contact(a: &Agent) -> Value {
    let mut n = Map::new();
    n.insert("@type".into(), Value::from("vcard:Kind"));
    n.insert("vcard:fn".into(), Value::from(a.name.as_str()));
    if let Some(email) = &a.email {
        n.insert("vcard:hasEmail".into(), iri(&format!("mailto:{email}")));
    }
    Value::Object(n)
}

/// An IRI when the place is one (a DAGI municipality, GeoNames, …), else a location named by the text.
fn spatial(place: &str) -> Value {
    if place.starts_with("http://") || place.starts_with("https://") {
        Value::Object(node(place, "dct:Location"))
    } else {
        json!({ "@type": "dct:Location", "skos:prefLabel": place })
    }
}

fn period(start: Option<&str>, end: Option<&str>) -> Value {
    let mut n = Map::new();
    n.insert("@type".into(), Value::from("dct:PeriodOfTime"));
    if let Some(start) = start {
        n.insert("dcat:startDate".into(), date(start));
    }
    if let Some(end) = end {
        n.insert("dcat:endDate".into(), date(end));
    }
    Value::Object(n)
}

/// The EU licence authority's IRI for the SPDX ids we publish under; anything else by its SPDX page.
fn licence(spdx: &str) -> Value {
    let id = match spdx {
        "CC0-1.0" => format!("{EU}/licence/CC0"),
        "CC-BY-4.0" => format!("{EU}/licence/CC_BY_4_0"),
        other => format!("https://spdx.org/licenses/{other}"),
    };
    Value::Object(node(&id, "dct:LicenseDocument"))
}

/// An EU data theme as the `skos:Concept` the profile asks for, labelled as the EU vocabulary labels it.
fn theme(code: &str) -> Value {
    let mut n = node(&format!("{EU}/data-theme/{code}"), "skos:Concept");
    let label = match theme_label(code) {
        Some(l) => bilingual(&l),
        None => json!([code]),
    };
    n.insert("skos:prefLabel".into(), label);
    Value::Object(n)
}

/// The labels of the EU data-theme vocabulary, for the theme's `skos:prefLabel` (and `data.json`'s `theme`).
pub(crate) fn theme_label(code: &str) -> Option<Bilingual> {
    let (da, en) = match code {
        "AGRI" => (
            "Landbrug, fiskeri, skovbrug og fødevarer",
            "Agriculture, fisheries, forestry and food",
        ),
        "ECON" => ("Økonomi og finanser", "Economy and finance"),
        "EDUC" => (
            "Uddannelse, kultur og sport",
            "Education, culture and sport",
        ),
        "ENER" => ("Energi", "Energy"),
        "ENVI" => ("Miljø", "Environment"),
        "GOVE" => (
            "Regeringen og den offentlige sektor",
            "Government and public sector",
        ),
        "HEAL" => ("Sundhed", "Health"),
        "INTR" => ("Internationale spørgsmål", "International issues"),
        "JUST" => (
            "Retfærdighed, retssystem og offentlig sikkerhed",
            "Justice, legal system and public safety",
        ),
        "REGI" => ("Regioner og byer", "Regions and cities"),
        "SOCI" => ("Befolkning og samfund", "Population and society"),
        "TECH" => ("Videnskab og teknologi", "Science and technology"),
        "TRAN" => ("Transport", "Transport"),
        "OP_DATPRO" => ("Foreløbige data", "Provisional data"),
        _ => return None,
    };
    Some(Bilingual {
        da: da.into(),
        en: en.into(),
    })
}

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn node(id: &str, ty: &str) -> Map<String, Value> {
    let mut n = Map::new();
    n.insert("@id".into(), Value::from(id));
    n.insert("@type".into(), Value::from(ty));
    n
}

fn iri(id: &str) -> Value {
    json!({ "@id": id })
}

fn lang(text: &str, language: &str) -> Value {
    json!({ "@value": text, "@language": language })
}

fn typed(value: &str, datatype: &str) -> Value {
    json!({ "@value": value, "@type": datatype })
}

fn bilingual(b: &Bilingual) -> Value {
    json!([lang(&b.da, "da"), lang(&b.en, "en")])
}

/// `xsd:dateTime` for an RFC 3339 timestamp, `xsd:date` for a bare date.
fn date(value: &str) -> Value {
    typed(
        value,
        if value.contains('T') {
            "xsd:dateTime"
        } else {
            "xsd:date"
        },
    )
}

/// Flattens the nested JSON-LD built above into Turtle subjects: every node with an `@id` gets its own block
/// (once, however often it is referenced), nodes without one are written in place as `[ … ]`.
fn write_subjects(out: &mut String, n: &Map<String, Value>, seen: &mut HashSet<String>) {
    let mut nested = Vec::new();
    if seen.insert(Value::Object(n.clone()).to_string()) {
        out.push('\n');
        let id = n.get("@id").and_then(Value::as_str).unwrap_or_default();
        out.push_str(&turtle_iri(id));
        write_properties(out, n, 1, &mut nested);
        out.push_str(" .\n");
    }
    for child in nested {
        write_subjects(out, child, seen);
    }
}

fn write_properties<'a>(
    out: &mut String,
    n: &'a Map<String, Value>,
    depth: usize,
    nested: &mut Vec<&'a Map<String, Value>>,
) {
    let indent = "  ".repeat(depth);
    let mut first = true;
    for (key, value) in n {
        if key == "@id" {
            continue;
        }
        out.push_str(if first { "\n" } else { " ;\n" });
        first = false;
        let values = match value {
            Value::Array(vs) => vs.as_slice(),
            v => std::slice::from_ref(v),
        };
        if key == "@type" {
            let types: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            let _ = write!(out, "{indent}a {}", types.join(", "));
            continue;
        }
        let _ = write!(out, "{indent}{key} ");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_object(out, v, depth, nested);
        }
    }
}

fn write_object<'a>(
    out: &mut String,
    v: &'a Value,
    depth: usize,
    nested: &mut Vec<&'a Map<String, Value>>,
) {
    let Value::Object(o) = v else {
        // Plain JSON strings, numbers and booleans: only strings occur.
        out.push_str(&turtle_string(
            &v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        ));
        return;
    };
    if let Some(text) = o.get("@value").and_then(Value::as_str) {
        out.push_str(&turtle_string(text));
        if let Some(l) = o.get("@language").and_then(Value::as_str) {
            let _ = write!(out, "@{l}");
        } else if let Some(t) = o.get("@type").and_then(Value::as_str) {
            let _ = write!(out, "^^{t}");
        }
    } else if let Some(id) = o.get("@id").and_then(Value::as_str) {
        out.push_str(&turtle_iri(id));
        if o.len() > 1 {
            nested.push(o);
        }
    } else {
        out.push('[');
        write_properties(out, o, depth + 1, nested);
        let _ = write!(out, "\n{}]", "  ".repeat(depth));
    }
}

fn turtle_iri(iri: &str) -> String {
    let mut out = String::from("<");
    for c in iri.chars() {
        match c {
            // Characters Turtle does not allow in an IRIREF, as UCHAR escapes.
            '\u{0}'..='\u{20}' | '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

/// A Turtle `STRING_LITERAL_QUOTE` with the escapes the grammar requires.
fn turtle_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
