//! What keeps queries from taking the server down: the limits one query must fit (`[api.query]`), a deadline
//! per query, and a semaphore for heavy queries — so a few large queries wait their turn (or are told the
//! server is busy) while a dashboard's small queries never wait behind them. Refusals are counted here.
use super::{Cost, Limits, thousands};
use crate::Error;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Query limits (`[api.query]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Most values (series or groups × buckets) in one bucketed answer.
    pub max_values: u64,
    /// Most points in one raw answer (without `every`): estimated before reading, enforced while reading.
    pub max_raw_points: u64,
    /// Most series one query may match.
    pub max_series: u64,
    /// A query whose work (series × buckets, or raw points) exceeds this is heavy.
    pub heavy_work: u64,
    /// Heavy queries running at once; 0: the number of cores, at least 2.
    pub heavy_permits: usize,
    /// How long a heavy query waits for its turn before it is refused as busy.
    pub queue_timeout_secs: u64,
    /// How long one query may take, its answer included (at least 1).
    pub deadline_secs: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        let store = Limits::default();
        Self {
            max_values: store.max_values,
            max_raw_points: store.max_raw_points,
            max_series: store.max_series,
            heavy_work: 100_000,
            heavy_permits: 0,
            queue_timeout_secs: 5,
            deadline_secs: 30,
        }
    }
}

/// How to narrow a query when no numbers are at hand.
const NARROW: &str =
    "a wider bucket (every=…), a shorter range (from/to) or fewer series (device=…, tag.KEY=…)";

/// The limits in force, the heavy-query semaphore and the refusal counters.
#[derive(Debug)]
pub struct QueryGate {
    limits: QueryLimits,
    heavy: Arc<Semaphore>,
    permits: usize,
    /// How long a query may take (`deadline_secs`).
    pub deadline: Duration,
    queue_timeout: Duration,
    too_large: AtomicU64,
    busy: AtomicU64,
    timeout: AtomicU64,
}

impl Default for QueryGate {
    fn default() -> Self {
        Self::new(QueryLimits::default())
    }
}

impl QueryGate {
    pub fn new(limits: QueryLimits) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = match limits.heavy_permits {
            0 => cores.max(2),
            n => n,
        };
        Self {
            heavy: Arc::new(Semaphore::new(permits)),
            permits,
            deadline: Duration::from_secs(limits.deadline_secs.max(1)),
            queue_timeout: Duration::from_secs(limits.queue_timeout_secs),
            limits,
            too_large: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
        }
    }

    /// The limits the store checks a query against before reading.
    pub fn store_limits(&self) -> Limits {
        Limits {
            max_values: self.limits.max_values,
            max_raw_points: self.limits.max_raw_points,
            max_series: self.limits.max_series,
        }
    }

    /// Whether a query costs enough to wait for a heavy-query permit (unknown work counts as heavy).
    pub fn is_heavy(&self, cost: &Cost) -> bool {
        cost.work().is_none_or(|w| w > self.limits.heavy_work)
    }

    /// A heavy-query permit, waited for at most `queue_timeout_secs` (and never past `deadline`); then 503.
    pub async fn admit(
        &self,
        cost: &Cost,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, Error> {
        let until = deadline.min(tokio::time::Instant::now() + self.queue_timeout);
        match tokio::time::timeout_at(until, self.heavy.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // A timeout, or a closed semaphore (never closed; handled alike).
            _ => Err(Error::QueryBusy {
                message: format!(
                    "the server is already answering as many large queries as it runs at once ({permits}), and \
                     this one ({cost}) waited {wait} s for its turn. Retry in a few seconds, or narrow it below \
                     {work} series × buckets (or raw points), which never waits: {NARROW}",
                    permits = self.permits,
                    wait = self.queue_timeout.as_secs(),
                    work = thousands(self.limits.heavy_work),
                ),
                retry_after_secs: self.queue_timeout.as_secs().max(1),
            }),
        }
    }

    /// The refusal of a query whose deadline passed; `cost` when it was known.
    pub(super) fn timed_out(&self, cost: Option<&Cost>) -> Error {
        let this = cost.map(|c| format!(" ({c})")).unwrap_or_default();
        Error::QueryTimeout {
            message: format!(
                "this query{this} did not finish within its deadline of {} s. Narrow it: {NARROW}",
                self.deadline.as_secs()
            ),
        }
    }

    /// Counts a refused (or cut) query by its reason; other errors are not the gate's.
    pub fn count(&self, e: &Error) {
        let counter = match e {
            Error::QueryTooLarge { .. } => &self.too_large,
            Error::QueryBusy { .. } => &self.busy,
            Error::QueryTimeout { .. } => &self.timeout,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// `bydata_query_refused_total{reason}` and `bydata_query_heavy_running`, encoded as
/// `bydata_admission::metrics`' helpers encode every other crate's.
impl Collector for QueryGate {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut family = enc.encode_descriptor(
            "bydata_query_refused",
            "Queries refused before or while answering, by reason",
            None,
            ConstCounter::<u64>::TYPE,
        )?;
        for (reason, count) in [
            ("too_large", &self.too_large),
            ("busy", &self.busy),
            ("timeout", &self.timeout),
        ] {
            ConstCounter::new(count.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("reason", reason)])?)?;
        }
        let running = self.permits.saturating_sub(self.heavy.available_permits());
        let g = ConstGauge::new(i64::try_from(running).unwrap_or(i64::MAX));
        g.encode(enc.encode_descriptor(
            "bydata_query_heavy_running",
            "Heavy queries running now",
            None,
            g.metric_type(),
        )?)
    }
}
