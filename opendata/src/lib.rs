//! bydata's open data: dataset definitions and their rules, the privacy gate, the published files
//! (CSV, JSON, GeoJSON) with their manifests and versions, the catalogs (DCAT-AP-DK, data.json, HTML pages),
//! the CKAN push, and the scheduler that keeps it all current.
//!
//! Data flows one way: a stored definition is parsed once into a [`Dataset`] and checked (`rules`); a run
//! (`publisher`) plans its due periods (`plan`, `period`), queries the series store for each, passes the
//! answer through the privacy gate (`gate`: public ids, published tags only, snapped locations, suppressed
//! small counts; `identifiers` refuses any value holding a registered identifier), renders the table
//! (`render`), and writes the files and then the manifest (`disk`, `manifest`, `archive`); the catalogs
//! (`catalog`) and the CKAN push (`ckan`) describe what the manifests hold.
//!
//! Modules are layered: each uses only modules listed before it here — `error`, `settings`, `model`,
//! `values`, `vocabulary`, `disk`, `identifiers`, `period`, `definition`, `manifest`, `rules`, `plan`,
//! `table`, `outcome`, `gate`, `render`, `archive`, `catalog`, `ckan`, `publisher` — so there is no import
//! cycle (`scripts/import_cycles.py opendata/src` checks). Internal code names items by their defining module
//! (`crate::error::Error`), never through this file's re-exports. Nothing here speaks HTTP: failures are
//! [`Error`]s, which `api` maps to responses.
mod archive;
mod catalog;
pub mod ckan;
mod definition;
mod disk;
mod error;
mod gate;
mod identifiers;
mod manifest;
pub mod model;
mod outcome;
mod period;
mod plan;
mod publisher;
mod render;
mod rules;
mod settings;
mod table;
mod values;
mod vocabulary;

pub use archive::PublishedFile;
pub use catalog::{catalog_jsonld, catalog_turtle, data_json, dataset_page, index_page};
pub use definition::{
    Agent, Aggregation, Dataset, NewDataset, PrivacyRules, Selection, Temporal, Text,
};
pub use error::{Error, Result};
pub use manifest::{CkanStatus, FileRecord, Manifest, PeriodRecord, RunRecord, VersionRecord};
pub use outcome::{FileReport, PeriodReport, RunReport};
pub use publisher::{Deps, Publication, Publisher, run_scheduler};
pub use settings::{CkanSettings, Settings};
