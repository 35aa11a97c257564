//! Data targets: an organisation's decoded readings forwarded, at least once, to the systems that use them —
//! an HTTP endpoint (POST of JSON batches) or an outside MQTT broker (QoS 1, a topic per reading).
//!
//! Each enabled target has a worker with a durable cursor into the raw journal (kept in the registry):
//! journal (durable entries, from the cursor) → `select` (the target's organisation and filter; decoded with
//! ingest's decoders, as the pipeline decodes) → a batch → `send` (HTTP or MQTT) → the receiver accepts it
//! (2xx, every PUBACK) → the cursor moves past it, the delivery is logged (one registry transaction).
//!
//! Nothing is held in memory while a receiver is down: the journal is the buffer, the cursor waits, and
//! the worker retries with a backoff, so a target back after hours catches up in journal order (per device,
//! in the order its uplinks arrived). A batch the receiver refuses for good (HTTP 4xx), or answers with a
//! server error `max_attempts` times, becomes a dead letter (kept with its readings, replayable) and the
//! cursor moves on. Every reading carries an idempotency key (`record::key`), so a receiver can drop the
//! duplicates at-least-once delivery makes (a batch resent after a restart or a lost answer).
mod config;
mod error;
mod forwarder;
mod metrics;
pub mod record;
mod select;
mod send;
mod shared;
mod worker;

pub use config::Config;
pub use error::Error;
pub use forwarder::Forwarder;
pub use metrics::Metrics;
pub use shared::{Deps, LiveStatus};

/// Whether a target's settings and secrets can be used (a URL reqwest takes, headers bydata does not set
/// itself, a topic template that makes topics): `Err` says what to change. Connects to nothing.
pub fn check_settings(
    target: &bydata_store::Target,
    secrets: &bydata_store::TargetSecrets,
) -> Result<(), String> {
    send::Sender::new(target, secrets.clone(), &Config::default())
        .map(drop)
        .map_err(|e| e.to_string())
}
