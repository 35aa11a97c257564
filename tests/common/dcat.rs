//! The Python side of the DCAT-AP-DK checks: a venv with rdflib and pyshacl (PyPI, pinned) under `target/`,
//! and `scripts/validate_dcat.py` run against the profile's official SHACL shapes.
use std::path::PathBuf;
use std::process::Command;

const PYTHON_PACKAGES: [&str; 2] = ["rdflib==7.6.0", "pyshacl==0.40.1"];

/// The venv with rdflib and pyshacl (under `target/opendata-venv`); returns its python.
pub fn opendata_python() -> PathBuf {
    super::python_venv("opendata-venv", &PYTHON_PACKAGES).join("bin/python")
}

/// Validates a DCAT-AP-DK catalog (JSON-LD text, e.g. a served `/opendata/catalog`) with
/// `scripts/validate_dcat.py` against the 2.0.2 shapes; panics with the validator's output on any violation or
/// missing mandatory property, else returns that output.
pub fn validate_dcat(catalog_jsonld: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = opendata_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("catalog.jsonld");
    std::fs::write(&file, catalog_jsonld).expect("write catalog");
    let out = Command::new(python)
        .arg(root.join("scripts/validate_dcat.py"))
        .arg(&file)
        .arg(root.join("tests/fixtures/dcat-ap-dk/dcat-ap-dk_2.0.2_shacl_shapes.ttl"))
        .output()
        .expect("run validate_dcat.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the catalog breaks DCAT-AP-DK 2.0.2:\n{text}"
    );
    text
}
