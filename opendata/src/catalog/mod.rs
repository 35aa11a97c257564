//! The catalogs: DCAT-AP-DK (JSON-LD and Turtle), `data.json` (the shape Open Data DK harvests from OS2iot),
//! the HTML pages, and how a dataset's definition and manifest become the description they all render.
//!
//! `terms` (the nodes a dataset refers to) sits under `dcat`. `describe` (definition + manifest → [`PublishedDataset`](crate::model::PublishedDataset)) and `document`
//! (a dataset's own page as JSON) sit under the renderers `dcat`, `turtle`, `datajson` and `pages`, which
//! are pure functions of the description: the same catalog renders to the same bytes.
mod datajson;
mod dcat;
pub(crate) mod describe;
pub(crate) mod document;
mod pages;
mod terms;
mod turtle;

pub use datajson::data_json;
pub use dcat::catalog_jsonld;
pub use pages::{dataset as dataset_page, index as index_page};
pub use turtle::catalog_turtle;
