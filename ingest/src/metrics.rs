//! Ingest counters, a `Collector` for the one metrics registry; low-cardinality: per-device numbers live in
//! the device status.
use bydata_admission::metrics::{
    Collector, DescriptorEncoder, as_gauge, counter, counters, gauge, get,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the ingest pipeline.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) entries: AtomicU64,
    pub(crate) decoded: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) series_limit: AtomicU64,
    pub(crate) edge_rejected: AtomicU64,
    pub(crate) values: AtomicU64,
    pub(crate) orphaned: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) position: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        counter(
            e,
            "bydata_ingest_entries",
            "Journal entries the ingest pipeline consumed",
            get(&self.entries),
        )?;
        counters(
            e,
            "bydata_ingest_messages",
            "Uplinks the ingest pipeline handled, by outcome",
            "outcome",
            &[
                ("decoded", get(&self.decoded)),
                ("rejected", get(&self.rejected)),
                ("series_limit", get(&self.series_limit)),
                ("edge_rejected", get(&self.edge_rejected)),
                ("unknown_device", get(&self.orphaned)),
            ],
        )?;
        counter(
            e,
            "bydata_ingest_values",
            "Values written to the store",
            get(&self.values),
        )?;
        counter(
            e,
            "bydata_ingest_store_errors",
            "Store writes that failed and were retried",
            get(&self.store_errors),
        )?;
        gauge(
            e,
            "bydata_ingest_journal_position",
            "Journal offset up to which entries are stored",
            as_gauge(get(&self.position)),
        )
    }
}

impl Metrics {
    /// The journal offset up to which entries are stored.
    pub fn position(&self) -> u64 {
        get(&self.position)
    }
}
