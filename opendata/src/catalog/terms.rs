//! The DCAT-AP-DK nodes that datasets and the catalog refer to (agents, contact points, places, periods,
//! licences, themes with their EU labels) and the JSON-LD value helpers `dcat` builds with.
use crate::model::{Agent, Bilingual};
use serde_json::{Map, Value, json};

pub(super) const EU: &str = "http://publications.europa.eu/resource/authority";

/// A `foaf:Agent`: its own URI when known, else a stable IRI in the catalog named after it.
pub(super) fn agent(base: &str, a: &Agent) -> Value {
    let id = match &a.uri {
        Some(uri) => uri.clone(),
        None => format!("{base}/opendata/catalog#agent-{}", slug(&a.name)),
    };
    let mut n = node(&id, "foaf:Agent");
    n.insert("foaf:name".into(), Value::from(a.name.as_str()));
    Value::Object(n)
}

pub(super) fn contact(a: &Agent) -> Value {
    let mut n = Map::new();
    n.insert("@type".into(), Value::from("vcard:Kind"));
    n.insert("vcard:fn".into(), Value::from(a.name.as_str()));
    if let Some(email) = &a.email {
        n.insert("vcard:hasEmail".into(), iri(&format!("mailto:{email}")));
    }
    Value::Object(n)
}

/// An IRI when the place is one (a DAGI municipality, GeoNames, …), else a location named by the text.
pub(super) fn spatial(place: &str) -> Value {
    if place.starts_with("http://") || place.starts_with("https://") {
        Value::Object(node(place, "dct:Location"))
    } else {
        json!({ "@type": "dct:Location", "skos:prefLabel": place })
    }
}

pub(super) fn period(start: Option<&str>, end: Option<&str>) -> Value {
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
pub(super) fn licence(spdx: &str) -> Value {
    let id = match spdx {
        "CC0-1.0" => format!("{EU}/licence/CC0"),
        "CC-BY-4.0" => format!("{EU}/licence/CC_BY_4_0"),
        other => format!("https://spdx.org/licenses/{other}"),
    };
    Value::Object(node(&id, "dct:LicenseDocument"))
}

/// An EU data theme as the `skos:Concept` the profile asks for, labelled as the EU vocabulary labels it.
pub(super) fn theme(code: &str) -> Value {
    let mut n = node(&format!("{EU}/data-theme/{code}"), "skos:Concept");
    let label = match theme_label(code) {
        Some(l) => bilingual(&l),
        None => json!([code]),
    };
    n.insert("skos:prefLabel".into(), label);
    Value::Object(n)
}

/// The labels of the EU data-theme vocabulary, for the theme's `skos:prefLabel` (and `data.json`'s `theme`).
pub(super) fn theme_label(code: &str) -> Option<Bilingual> {
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

/// An agent's anchor from its name, Danish letters written out (`Teknik og Miljø` → `teknik-og-miljoe`).
fn slug(name: &str) -> String {
    bydata_schemas::slugify(name, usize::MAX)
}

pub(super) fn node(id: &str, ty: &str) -> Map<String, Value> {
    let mut n = Map::new();
    n.insert("@id".into(), Value::from(id));
    n.insert("@type".into(), Value::from(ty));
    n
}

pub(super) fn iri(id: &str) -> Value {
    json!({ "@id": id })
}

pub(super) fn lang(text: &str, language: &str) -> Value {
    json!({ "@value": text, "@language": language })
}

pub(super) fn typed(value: &str, datatype: &str) -> Value {
    json!({ "@value": value, "@type": datatype })
}

pub(super) fn bilingual(b: &Bilingual) -> Value {
    json!([lang(&b.da, "da"), lang(&b.en, "en")])
}

/// `xsd:dateTime` for an RFC 3339 timestamp, `xsd:date` for a bare date.
pub(super) fn date(value: &str) -> Value {
    typed(
        value,
        if value.contains('T') {
            "xsd:dateTime"
        } else {
            "xsd:date"
        },
    )
}
