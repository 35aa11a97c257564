pub mod ckan;
pub mod datajson;
pub mod dcat;
pub mod model;
