//! The forwarder's settings (`[forward]` in the config file). A target's own settings (batch size, delay,
//! attempts) are the target's, set through the API.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Forward data to the organisations' targets at all.
    pub enabled: bool,
    /// How often the list of targets is read again (changes through the API apply at once anyway).
    pub reload_ms: u64,
    /// Longest an HTTP request or a batch's PUBACKs may take before the attempt counts as failed.
    pub request_timeout_ms: u64,
    /// The first wait after a failed attempt; it doubles with each failure of the same batch…
    pub backoff_initial_ms: u64,
    /// …up to this.
    pub backoff_max_ms: u64,
    /// Most dead letters kept per target; when full, the cursor waits instead (nothing is dropped) until
    /// they are replayed or discarded.
    pub max_dead_letters: usize,
    /// Delivery attempts kept in each target's log.
    pub delivery_log: usize,
    /// Most journal entries read (and decoded) at once per target.
    pub read_entries: usize,
    /// How often a target with nothing to send moves its cursor past the readings that were not its own.
    pub idle_commit_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            reload_ms: 1_000,
            request_timeout_ms: 10_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_dead_letters: 1_000,
            delivery_log: 200,
            read_entries: 1_000,
            idle_commit_ms: 1_000,
        }
    }
}
