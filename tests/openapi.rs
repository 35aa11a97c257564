//! Schemathesis (PyPI `schemathesis`) generates requests from `/api/openapi.json` — valid and invalid bodies,
//! parameters and paths — against the real binary, and checks that nothing answers 5xx and that every
//! response matches the document. It also validates the document itself while loading it. Installed into a
//! venv under `target/` when missing.
#![allow(clippy::unwrap_used)]
mod common;

use common::{ADMIN, Bydata};
use std::path::PathBuf;
use std::process::Command;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn schemathesis() -> PathBuf {
    common::python_venv("schemathesis-venv", &[SCHEMATHESIS]).join("bin/schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_document() {
    let schemathesis = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start(&dir.path().join("data")).await;
    let out = tokio::task::spawn_blocking({
        let url = b.url("/api/openapi.json");
        let workdir = dir.path().to_owned();
        move || {
            Command::new(schemathesis)
                // It keeps a crash cache in `.schemathesis/` under its working directory: not in the repo.
                .current_dir(workdir)
                .arg("run")
                .arg(url)
                .args([
                    "--checks",
                    "not_a_server_error,response_schema_conformance",
                    "--header",
                    &format!("Authorization: Bearer {ADMIN}"),
                    "--max-examples",
                    "20",
                    "--workers",
                    "2",
                    "--seed",
                    "1",
                    "--no-color",
                    "--generation-database",
                    "none",
                    // Revoking tokens would revoke the admin token this run authenticates with (its id is in
                    // `GET /api/v1/tokens`), after which every operation answers 401 and nothing is tested.
                    "--exclude-operation-id",
                    "delete_token",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}\n--- bydata log ---\n{}",
        b.log()
    );
}
