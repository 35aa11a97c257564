//! The open-data catalogs: DCAT-AP-DK JSON-LD (and its Turtle) and `data.json`, rendered from a fixed catalog and
//! compared byte for byte with `tests/snapshots/opendata/`; the JSON-LD is validated against the DCAT-AP-DK 2.0.2
//! SHACL shapes with pyshacl (PyPI `rdflib`, `pyshacl`, installed into a venv under `target/` when missing).
//!
//! `BYDATA_UPDATE_SNAPSHOTS=1 cargo test --test opendata_catalog` rewrites the snapshots instead of comparing.
use bydata_opendata::model::{
    Agent, Bilingual, CatalogInfo, Distribution, FileFormat, PublishedDataset,
};
use bydata_opendata::{catalog_jsonld, catalog_turtle, data_json};
mod common;

use common::dcat::{opendata_python, validate_dcat};
use std::path::Path;
use std::process::Command;

const BASE: &str = "https://data.example-kommune.dk";

fn agent(name: &str, email: Option<&str>, uri: Option<&str>) -> Agent {
    Agent {
        name: name.into(),
        email: email.map(Into::into),
        uri: uri.map(Into::into),
    }
}

fn text(da: &str, en: &str) -> Bilingual {
    Bilingual {
        da: da.into(),
        en: en.into(),
    }
}

fn info() -> CatalogInfo {
    CatalogInfo {
        base_url: BASE.into(),
        title: text(
            "Eksempel Kommunes åbne data",
            "Example Municipality open data",
        ),
        description: text(
            "Målinger fra kommunens sensorer, som åbne data.",
            "Measurements from the municipality's sensors, as open data.",
        ),
        publisher: agent(
            "Eksempel Kommune",
            Some("data@example-kommune.dk"),
            Some("https://example-kommune.dk"),
        ),
        modified: "2026-03-14T09:30:00+01:00".into(),
    }
}

fn file(
    id: &str,
    period: &str,
    format: FileFormat,
    complete: bool,
    version: u32,
    span: (&str, &str),
) -> Distribution {
    let ext = format.extension();
    let dir = format!("{BASE}/opendata/datasets/{id}/{period}");
    Distribution {
        period: period.into(),
        format,
        complete,
        version,
        access_url: format!("{dir}/{id}_{period}.{ext}"),
        download_url: format!("{dir}/v{version}/{id}_{period}.{ext}"),
        sha1: format!("{:040x}", period.len() * 7 + version as usize),
        sha256: format!(
            "{:064x}",
            period.len() * 1000 + ext.len() * 10 + version as usize
        ),
        byte_size: 1024 * (ext.len() as u64) + u64::from(version),
        issued: if complete {
            "2026-03-01T01:00:00+01:00".into()
        } else {
            "2026-03-14T09:00:00+01:00".into()
        },
        temporal_start: span.0.into(),
        temporal_end: span.1.into(),
    }
}

fn datasets() -> Vec<PublishedDataset> {
    let energy = "energy-school-north";
    let march = ("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00");
    let february = ("2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00");
    let mut energy_files = Vec::new();
    for (period, complete, version, span) in
        [("2026-03", false, 1, march), ("2026-02", true, 2, february)]
    {
        for format in FileFormat::ALL {
            energy_files.push(file(energy, period, format, complete, version, span));
        }
    }
    let noise = "noise-harbour";
    vec![
        PublishedDataset {
            id: energy.into(),
            title: text("Elforbrug, Nordskolen", "Electricity use, North School"),
            description: text(
                "Timeforbrug af el i kWh (gennemsnit pr. time) fra skolens \"smarte\" målere.",
                "Hourly electricity use in kWh (mean per hour) from the school's \"smart\" meters.",
            ),
            keywords: vec!["energi".into(), "elforbrug".into(), "skole".into()],
            themes: vec!["ENER".into()],
            licence: "CC-BY-4.0".into(),
            update_frequency: "HOURLY".into(),
            publisher: info().publisher,
            contact_point: agent("Energiteamet", Some("energi@example-kommune.dk"), None),
            spatial: Some("https://api.dataforsyningen.dk/kommuner/0751".into()),
            temporal_start: Some("2026-02-01T00:00:00+01:00".into()),
            temporal_end: Some("2026-04-01T00:00:00+02:00".into()),
            issued: "2026-02-01T08:00:00+01:00".into(),
            modified: "2026-03-14T09:00:00+01:00".into(),
            landing_page: format!("{BASE}/opendata/datasets/{energy}"),
            every: "1h".into(),
            aggregation: "mean".into(),
            unit: Some("kWh".into()),
            distributions: energy_files,
        },
        PublishedDataset {
            id: noise.into(),
            title: text("Støj ved havnen", "Noise at the harbour"),
            description: text(
                "Lydniveau i dB(A), dagligt maksimum.\nMålt ved kajen.",
                "Sound level in dB(A), daily maximum.\nMeasured at the quay.",
            ),
            keywords: vec!["støj".into(), "havn".into()],
            themes: vec!["ENVI".into(), "REGI".into()],
            licence: "CC0-1.0".into(),
            update_frequency: "DAILY".into(),
            publisher: agent("Teknik og Miljø", None, None),
            contact_point: agent("Miljøvagten", None, None),
            spatial: Some("Havnen, Aarhus Ø".into()),
            temporal_start: Some("2025-11-01T00:00:00+01:00".into()),
            temporal_end: None,
            issued: "2025-11-01T12:00:00+01:00".into(),
            modified: "2026-03-01T01:00:00+01:00".into(),
            landing_page: format!("{BASE}/opendata/datasets/{noise}"),
            every: "1d".into(),
            aggregation: "max".into(),
            unit: Some("dB(A)".into()),
            distributions: vec![file(
                noise,
                "2026",
                FileFormat::Csv,
                false,
                1,
                ("2026-01-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00"),
            )],
        },
    ]
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/opendata")
        .join(name);
    if std::env::var("BYDATA_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir snapshots");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the rendering at line {}:\n  snapshot: {:?}\n  rendered: {:?}\n\
             (BYDATA_UPDATE_SNAPSHOTS=1 cargo test --test opendata_catalog rewrites it)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line),
        );
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("serialize") + "\n"
}

#[test]
fn the_dcat_catalog_keeps_its_shape_and_meets_dcat_ap_dk() {
    let jsonld = pretty(&catalog_jsonld(&info(), &datasets()));
    assert_eq!(
        jsonld,
        pretty(&catalog_jsonld(&info(), &datasets())),
        "deterministic"
    );
    snapshot("catalog.jsonld", &jsonld);

    let report = validate_dcat(&jsonld);
    println!("{report}");
    assert!(
        report.contains("1 catalog(s), 2 datasets, 7 distributions"),
        "{report}"
    );
}

#[test]
fn the_turtle_catalog_is_the_same_graph() {
    let turtle = catalog_turtle(&info(), &datasets());
    snapshot("catalog.ttl", &turtle);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ttl, jsonld) = (dir.path().join("c.ttl"), dir.path().join("c.jsonld"));
    std::fs::write(&ttl, &turtle).expect("write");
    std::fs::write(&jsonld, pretty(&catalog_jsonld(&info(), &datasets()))).expect("write");
    let out = Command::new(opendata_python())
        .arg("-c")
        .arg(
            "import sys, rdflib; from rdflib.compare import isomorphic, graph_diff, to_isomorphic\n\
             t = rdflib.Graph().parse(sys.argv[1], format='turtle')\n\
             j = rdflib.Graph().parse(sys.argv[2], format='json-ld')\n\
             print(len(t), 'triples')\n\
             if not isomorphic(t, j):\n\
             \x20   _, a, b = graph_diff(to_isomorphic(t), to_isomorphic(j))\n\
             \x20   print('only in Turtle:', a.serialize(format='nt')); print('only in JSON-LD:', b.serialize(format='nt'))\n\
             \x20   sys.exit(1)",
        )
        .arg(&ttl)
        .arg(&jsonld)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "Turtle and JSON-LD differ:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn data_json_keeps_the_shape_open_data_dk_harvests() {
    let rendered = pretty(&data_json(&info(), &datasets()));
    snapshot("data.json", &rendered);

    let doc: serde_json::Value = serde_json::from_str(&rendered).expect("data.json parses");
    assert_eq!(doc["@type"], "dcat:Catalog");
    assert_eq!(
        doc["conformsTo"],
        "https://project-open-data.cio.gov/v1.1/schema"
    );
    let datasets = doc["dataset"].as_array().expect("dataset array");
    assert_eq!(datasets.len(), 2);
    // What OS2iot sends and ckanext-dcat's `dcat_json` harvester reads (`identifier` is its guid).
    for d in datasets {
        for field in [
            "@type",
            "identifier",
            "title",
            "description",
            "keyword",
            "issued",
            "modified",
            "publisher",
            "contactPoint",
            "accessLevel",
            "landingPage",
            "distribution",
        ] {
            assert!(d.get(field).is_some(), "dataset lacks {field}: {d}");
        }
        let files = d["distribution"].as_array().expect("distribution array");
        assert!(!files.is_empty());
        for f in files {
            for field in [
                "@type",
                "title",
                "format",
                "mediaType",
                "license",
                "accessURL",
                "downloadURL",
            ] {
                assert!(f[field].is_string(), "distribution lacks {field}: {f}");
            }
        }
    }
}
