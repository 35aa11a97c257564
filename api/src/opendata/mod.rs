//! Open data (issue 6): published files, catalogs and the CKAN push.
pub mod ckan;
pub mod datajson;
pub mod dcat;
pub mod model;
mod pages;
pub mod publish;
pub(crate) mod routes;
