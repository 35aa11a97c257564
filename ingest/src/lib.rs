//! The ingest pipeline: reads the raw journal in order, decodes each uplink with its device's codec, writes the
//! values to the store and keeps every device's status.
//!
//! journal (durable entries only) → `pipeline` (decode → points + status deltas) → `SeriesWriter::write`
//! (durable) → `Registry::commit_ingest` (position + status, one transaction).
//!
//! Points are keyed by series and time, so if bydata stops between the two commits the replayed batch writes
//! the same points again (idempotent) and the status counters, committed with the position, count it once.
mod cardinality;
pub mod codec;
mod decoders;
pub mod integrations;
pub mod line_protocol;
pub use decoders::check_codec;
pub mod lorawan;
mod metrics;
pub mod network_server;
mod pipeline;
pub mod readings;
pub mod redecode;
pub mod series_quota;

pub use metrics::Metrics;
pub use pipeline::{Config, Deps, run};
