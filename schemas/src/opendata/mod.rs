//! Open data: what a published dataset may contain. `privacy` is the gate every dataset passes before
//! anything is published (issue 6); catalogs and files build on it.
pub mod privacy;
