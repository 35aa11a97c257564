//! Open data (issue 6): published files, catalogs and the CKAN push.
pub mod model;
