//! How many series a token may add by writing line protocol (`[api] max_series_per_token`).
//!
//! A series is a measurement, a tag set and a field, and each one costs memory in the store's index for as
//! long as it exists. A client whose tag values change with every line (a time, a request id) would add a
//! series per line without end; the quota stops it at a number a city's real sources stay far below, with a
//! message that says why. Series already known cost nothing; a request that would cross the quota is
//! refused whole (nothing written), like any other bad request. The count is kept per token in the registry;
//! room for a request in flight is reserved, so parallel requests cannot overshoot together.
use bydata_admission::metrics::{Collector, DescriptorEncoder, counter, get};
use bydata_schemas::SeriesKey;
use bydata_store::{RegistryPort, SeriesReader};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The quota and the room reserved by requests in flight.
#[derive(Debug)]
pub struct SeriesQuota {
    max_per_token: u64,
    reserved: Mutex<HashMap<String, u64>>,
    refused: AtomicU64,
}

/// The API key a write is counted against: its id and (for messages) its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaOwner {
    pub id: String,
    pub name: String,
}

/// The default quota (`[api] max_series_per_token`).
pub const DEFAULT_MAX_SERIES_PER_TOKEN: u64 = 100_000;

impl Default for SeriesQuota {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SERIES_PER_TOKEN)
    }
}

/// Why a write was refused by the quota, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The write would add more series than the token may; the message says why and what to do.
    #[error("{0}")]
    Limit(String),
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
}

/// Room reserved for one request's new series; released when dropped, recorded by [`Reservation::commit`].
#[derive(Debug)]
pub struct Reservation {
    quota: Arc<SeriesQuota>,
    token: String,
    new: u64,
}

impl SeriesQuota {
    pub fn new(max_per_token: u64) -> Self {
        Self {
            max_per_token,
            reserved: Mutex::default(),
            refused: AtomicU64::new(0),
        }
    }

    /// How many new series the token may still add, given the `added` it has stored, counting requests in
    /// flight.
    pub fn room(&self, token: &QuotaOwner, added: u64) -> u64 {
        let in_flight = self
            .reserved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&token.id)
            .copied()
            .unwrap_or(0);
        self.max_per_token.saturating_sub(added + in_flight)
    }

    /// The refusal of a write that would add `new` series to the `added` the token has (`at_least`: it was
    /// stopped while being read, so it holds more), counted.
    pub fn refusal(&self, token: &QuotaOwner, added: u64, new: u64, at_least: bool) -> QuotaError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let more = if at_least { "at least " } else { "" };
        QuotaError::Limit(format!(
            "this write would add {more}{new} new series, and token {:?} may add at most {} in all (it has added {added}). \
                 A series is a measurement, its tag set and a field: a tag whose value changes with every line (a time, \
                 a counter, a request id) makes a new series each time — write such values as fields. To allow more, \
                 raise [api] max_series_per_token.",
            token.name, self.max_per_token
        ))
    }

    /// Reserves room for the series among `keys` the store does not hold yet, or refuses the request.
    pub async fn reserve(
        self: &Arc<Self>,
        (registry, reader): (&dyn RegistryPort, &dyn SeriesReader),
        token: &QuotaOwner,
        keys: &[&SeriesKey],
    ) -> Result<Option<Reservation>, QuotaError> {
        let distinct: Vec<&SeriesKey> = keys
            .iter()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let new = match reader.count_unknown(&distinct).await? {
            // A store that cannot tell (InfluxDB) keeps its own limits.
            None | Some(0) => return Ok(None),
            Some(n) => n as u64,
        };
        let added = registry.token_series(&token.id).await?;
        let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        let in_flight = reserved.get(&token.id).copied().unwrap_or(0);
        if added + in_flight + new > self.max_per_token {
            drop(reserved);
            return Err(self.refusal(token, added, new, false));
        }
        *reserved.entry(token.id.clone()).or_default() += new;
        Ok(Some(Reservation {
            quota: self.clone(),
            token: token.id.clone(),
            new,
        }))
    }
}

impl Reservation {
    /// The write succeeded: the series count against the token from now on.
    pub async fn commit(self, registry: &dyn RegistryPort) -> bydata_store::Result<()> {
        registry.add_token_series(&self.token, self.new).await
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self
            .quota
            .reserved
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = reserved.get_mut(&self.token) {
            *n = n.saturating_sub(self.new);
            if *n == 0 {
                reserved.remove(&self.token);
            }
        }
    }
}

impl Collector for SeriesQuota {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        counter(
            &mut enc,
            "bydata_write_series_limit_refused",
            "Writes refused because they would add more series than the token may",
            get(&self.refused),
        )
    }
}
