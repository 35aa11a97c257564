//! Counters of the UDP edge (Prometheus text), low-cardinality: per-gateway numbers are in its status.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the UDP edge (Prometheus text).
#[derive(Debug, Default)]
pub struct Metrics {
    pub(super) accepted: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) unknown_gateway: AtomicU64,
    pub(super) invalid: AtomicU64,
    pub(super) rxpk_received: AtomicU64,
    pub(super) rxpk_invalid: AtomicU64,
    pub(super) frames_accepted: AtomicU64,
    pub(super) frames_duplicate: AtomicU64,
    pub(super) frames_rejected: AtomicU64,
    pub(super) frames_unknown_device: AtomicU64,
    pub(super) frames_other: AtomicU64,
    pub(super) joins_accepted: AtomicU64,
}

impl Metrics {
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE bydata_lorawan_datagrams_total counter");
        for (outcome, c) in [
            ("accepted", &self.accepted),
            ("rate_limited", &self.rate_limited),
            ("unknown_gateway", &self.unknown_gateway),
            ("invalid", &self.invalid),
        ] {
            let _ = writeln!(
                out,
                "bydata_lorawan_datagrams_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# TYPE bydata_lorawan_frames_total counter");
        for (outcome, c) in [
            ("accepted", &self.frames_accepted),
            ("duplicate", &self.frames_duplicate),
            ("rejected", &self.frames_rejected),
            ("unknown_device", &self.frames_unknown_device),
            ("not_data_up", &self.frames_other),
            ("join_accepted", &self.joins_accepted),
        ] {
            let _ = writeln!(
                out,
                "bydata_lorawan_frames_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# TYPE bydata_lorawan_rxpk_total counter");
        for (outcome, c) in [
            ("received", &self.rxpk_received),
            ("invalid", &self.rxpk_invalid),
        ] {
            let _ = writeln!(
                out,
                "bydata_lorawan_rxpk_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
    }
}
