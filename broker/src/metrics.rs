//! Broker counters, exported as Prometheus text. Labels are low-cardinality (no device ids: per-device
//! numbers are in the device status).
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the broker edge.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) connects_accepted: AtomicU64,
    pub(crate) auth_unknown_device: AtomicU64,
    pub(crate) auth_wrong_password: AtomicU64,
    pub(crate) auth_bad_client_id: AtomicU64,
    pub(crate) publish_denied: AtomicU64,
    pub(crate) subscribe_denied: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) uplinks_journaled: AtomicU64,
    pub(crate) journal_errors: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE bydata_mqtt_connects_total counter");
        let _ = writeln!(
            out,
            "bydata_mqtt_connects_total {}",
            get(&self.connects_accepted)
        );
        let _ = writeln!(out, "# TYPE bydata_mqtt_auth_failures_total counter");
        for (reason, c) in [
            ("unknown_device", &self.auth_unknown_device),
            ("wrong_password", &self.auth_wrong_password),
            ("bad_client_id", &self.auth_bad_client_id),
        ] {
            let _ = writeln!(
                out,
                "bydata_mqtt_auth_failures_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# TYPE bydata_mqtt_refused_total counter");
        for (reason, c) in [
            ("publish_denied", &self.publish_denied),
            ("subscribe_denied", &self.subscribe_denied),
            ("too_large", &self.too_large),
        ] {
            let _ = writeln!(
                out,
                "bydata_mqtt_refused_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# TYPE bydata_mqtt_uplinks_journaled_total counter");
        let _ = writeln!(
            out,
            "bydata_mqtt_uplinks_journaled_total {}",
            get(&self.uplinks_journaled)
        );
        let _ = writeln!(out, "# TYPE bydata_mqtt_journal_errors_total counter");
        let _ = writeln!(
            out,
            "bydata_mqtt_journal_errors_total {}",
            get(&self.journal_errors)
        );
    }
}
