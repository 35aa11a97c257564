//! Forwarding counters for the one metrics registry, by target kind (`http`, `mqtt`): low cardinality,
//! per-target numbers are in each target's status and delivery log.
use bydata_admission::metrics::{Collector, DescriptorEncoder, as_gauge, counters, gauges, get};
use bydata_schemas::TargetId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const KINDS: [&str; 2] = ["http", "mqtt"];

fn index(kind: &str) -> usize {
    usize::from(kind == "mqtt")
}

/// Counters of every target's worker.
#[derive(Debug, Default)]
pub struct Metrics {
    readings: [AtomicU64; 2],
    batches: [AtomicU64; 2],
    failures: [AtomicU64; 2],
    dead_letters: [AtomicU64; 2],
    /// Per running target: its kind, how far behind the journal it is in bytes, and the age of the oldest
    /// reading it has not delivered (seconds).
    lag: Mutex<HashMap<TargetId, (&'static str, u64, u64)>>,
}

impl Metrics {
    pub(crate) fn delivered(&self, kind: &str, readings: u64) {
        self.readings[index(kind)].fetch_add(readings, Ordering::Relaxed);
        self.batches[index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self, kind: &str) {
        self.failures[index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dead_lettered(&self, kind: &str) {
        self.dead_letters[index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_lag(&self, id: &TargetId, kind: &'static str, bytes: u64, secs: u64) {
        self.lags().insert(id.clone(), (kind, bytes, secs));
    }
    pub(crate) fn forget(&self, id: &TargetId) {
        self.lags().remove(id);
    }
    fn lags(&self) -> std::sync::MutexGuard<'_, HashMap<TargetId, (&'static str, u64, u64)>> {
        self.lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        let per_kind = |c: &[AtomicU64; 2]| [(KINDS[0], get(&c[0])), (KINDS[1], get(&c[1]))];
        counters(
            e,
            "bydata_forward_readings",
            "Readings delivered to data targets (accepted by the receiver), by target kind",
            "kind",
            &per_kind(&self.readings),
        )?;
        counters(
            e,
            "bydata_forward_batches",
            "Batches delivered to data targets, by target kind",
            "kind",
            &per_kind(&self.batches),
        )?;
        counters(
            e,
            "bydata_forward_failures",
            "TargetDelivery attempts that failed (to be retried or dead-lettered), by target kind",
            "kind",
            &per_kind(&self.failures),
        )?;
        counters(
            e,
            "bydata_forward_dead_letters",
            "Batches that became dead letters, by target kind",
            "kind",
            &per_kind(&self.dead_letters),
        )?;
        let (mut bytes, mut secs, mut running) = ([0u64; 2], [0u64; 2], [0u64; 2]);
        for (kind, b, s) in self.lags().values() {
            let i = index(kind);
            bytes[i] += b;
            secs[i] = secs[i].max(*s);
            running[i] += 1;
        }
        let rows = |v: [u64; 2]| [(KINDS[0], as_gauge(v[0])), (KINDS[1], as_gauge(v[1]))];
        gauges(
            e,
            "bydata_forward_lag_bytes",
            "Journal bytes not yet delivered, summed over the running targets of a kind",
            "kind",
            &rows(bytes),
        )?;
        gauges(
            e,
            "bydata_forward_lag_seconds",
            "Age of the oldest reading not yet delivered, the most of the running targets of a kind",
            "kind",
            &rows(secs),
        )?;
        gauges(
            e,
            "bydata_forward_targets",
            "Data targets being forwarded to, by kind",
            "kind",
            &rows(running),
        )
    }
}
