//! The ingest pipeline.
pub mod codec;
