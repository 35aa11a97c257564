//! The imports' counters for the one metrics registry, by source (`CO2Emis`, `CO2EmisProg`, `eloverblik`):
//! low cardinality; per metering point the cursor in the registry says more.
use bydata_admission::metrics::{Collector, DescriptorEncoder, counters, get};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const SOURCES: [&str; 3] = ["CO2Emis", "CO2EmisProg", "eloverblik"];

/// Counters of every import.
#[derive(Debug, Default)]
pub struct Metrics {
    runs: [AtomicU64; 3],
    failed: [AtomicU64; 3],
    points: [AtomicU64; 3],
    refused: [AtomicU64; 3],
    missing: [AtomicU64; 3],
}

fn index(source: &str) -> usize {
    SOURCES.iter().position(|s| *s == source).unwrap_or(2)
}

impl Metrics {
    pub(crate) fn ran(&self, source: &str, ok: bool, points: u64, refused: u64, missing: u64) {
        let i = index(source);
        self.runs[i].fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed[i].fetch_add(1, Ordering::Relaxed);
        }
        self.points[i].fetch_add(points, Ordering::Relaxed);
        self.refused[i].fetch_add(refused, Ordering::Relaxed);
        self.missing[i].fetch_add(missing, Ordering::Relaxed);
    }

    /// Points written so far for `source` (for tests and the log).
    pub fn points(&self, source: &str) -> u64 {
        get(&self.points[index(source)])
    }
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        let rows = |c: &[AtomicU64; 3]| {
            [
                (SOURCES[0], get(&c[0])),
                (SOURCES[1], get(&c[1])),
                (SOURCES[2], get(&c[2])),
            ]
        };
        counters(
            e,
            "bydata_energy_import_runs",
            "Import runs, by source",
            "source",
            &rows(&self.runs),
        )?;
        counters(
            e,
            "bydata_energy_import_failed_runs",
            "Import runs that failed (service unreachable, refused, or an answer not of the documented shape)",
            "source",
            &rows(&self.failed),
        )?;
        counters(
            e,
            "bydata_energy_points",
            "Points written by the imports, by source",
            "source",
            &rows(&self.points),
        )?;
        counters(
            e,
            "bydata_energy_records_refused",
            "Records the imports could not use (the reason is in the log and the import's cursor), by source",
            "source",
            &rows(&self.refused),
        )?;
        counters(
            e,
            "bydata_energy_values_missing",
            "Intervals the service has no value for (Eloverblik quality A02, CO2Emission null), by source",
            "source",
            &rows(&self.missing),
        )
    }
}
