//! Ingest counters (Prometheus text), low-cardinality: per-device numbers live in the device status.
use std::fmt::Write;
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

impl Metrics {
    /// Appends the counters in Prometheus text format.
    /// The journal offset up to which entries are stored.
    pub fn position(&self) -> u64 {
        self.position.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE bydata_ingest_entries_total counter");
        let _ = writeln!(out, "bydata_ingest_entries_total {}", get(&self.entries));
        let _ = writeln!(out, "# TYPE bydata_ingest_messages_total counter");
        for (outcome, c) in [
            ("decoded", &self.decoded),
            ("rejected", &self.rejected),
            ("series_limit", &self.series_limit),
            ("edge_rejected", &self.edge_rejected),
            ("unknown_device", &self.orphaned),
        ] {
            let _ = writeln!(
                out,
                "bydata_ingest_messages_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# TYPE bydata_ingest_values_total counter");
        let _ = writeln!(out, "bydata_ingest_values_total {}", get(&self.values));
        let _ = writeln!(out, "# TYPE bydata_ingest_store_errors_total counter");
        let _ = writeln!(
            out,
            "bydata_ingest_store_errors_total {}",
            get(&self.store_errors)
        );
        let _ = writeln!(out, "# TYPE bydata_ingest_journal_position gauge");
        let _ = writeln!(
            out,
            "bydata_ingest_journal_position {}",
            get(&self.position)
        );
    }
}
