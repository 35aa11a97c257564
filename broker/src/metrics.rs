//! Broker counters, exported as Prometheus text. Labels are low-cardinality (no device ids or addresses:
//! per-device numbers are in the device status).
use bydata_admission::ConnectionCaps;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Counters of the broker edge.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) connects_accepted: AtomicU64,
    pub(crate) auth_unknown_device: AtomicU64,
    pub(crate) auth_wrong_password: AtomicU64,
    pub(crate) auth_bad_client_id: AtomicU64,
    pub(crate) auth_backoff: AtomicU64,
    pub(crate) auth_busy: AtomicU64,
    pub(crate) auth_remembered: AtomicU64,
    pub(crate) password_checks: AtomicU64,
    pub(crate) connect_bad_protocol: AtomicU64,
    pub(crate) connect_malformed: AtomicU64,
    pub(crate) connect_timeout: AtomicU64,
    pub(crate) connect_will: AtomicU64,
    pub(crate) connect_keep_alive: AtomicU64,
    pub(crate) refused_total_cap: AtomicU64,
    pub(crate) refused_source_cap: AtomicU64,
    pub(crate) publish_denied: AtomicU64,
    pub(crate) subscribe_denied: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) uplinks_journaled: AtomicU64,
    pub(crate) journal_errors: AtomicU64,
    pub(crate) caps: OnceLock<Arc<ConnectionCaps>>,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn family(out: &mut String, name: &str, kind: &str, rows: &[(&str, &AtomicU64)]) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, c) in rows {
        let value = c.load(Ordering::Relaxed);
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

impl Metrics {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "bydata_mqtt_connects_total",
            "counter",
            &[("", &self.connects_accepted)],
        );
        family(
            out,
            "bydata_mqtt_auth_failures_total",
            "counter",
            &[
                ("reason=\"unknown_device\"", &self.auth_unknown_device),
                ("reason=\"wrong_password\"", &self.auth_wrong_password),
                ("reason=\"bad_client_id\"", &self.auth_bad_client_id),
                ("reason=\"backoff\"", &self.auth_backoff),
                ("reason=\"busy\"", &self.auth_busy),
            ],
        );
        family(
            out,
            "bydata_mqtt_password_checks_total",
            "counter",
            &[
                ("kind=\"argon2\"", &self.password_checks),
                ("kind=\"remembered\"", &self.auth_remembered),
            ],
        );
        family(
            out,
            "bydata_mqtt_connects_refused_total",
            "counter",
            &[
                ("reason=\"bad_protocol\"", &self.connect_bad_protocol),
                ("reason=\"malformed\"", &self.connect_malformed),
                ("reason=\"timeout\"", &self.connect_timeout),
                ("reason=\"last_will\"", &self.connect_will),
                ("reason=\"keep_alive\"", &self.connect_keep_alive),
            ],
        );
        family(
            out,
            "bydata_mqtt_connections_refused_total",
            "counter",
            &[
                ("reason=\"total_cap\"", &self.refused_total_cap),
                ("reason=\"source_cap\"", &self.refused_source_cap),
            ],
        );
        if let Some(caps) = self.caps.get() {
            let (total, per_source) = caps.limits();
            let _ = writeln!(out, "# TYPE bydata_mqtt_connections gauge");
            let _ = writeln!(out, "bydata_mqtt_connections {}", caps.open());
            let _ = writeln!(out, "# TYPE bydata_mqtt_connections_limit gauge");
            let _ = writeln!(
                out,
                "bydata_mqtt_connections_limit{{scope=\"total\"}} {total}"
            );
            let _ = writeln!(
                out,
                "bydata_mqtt_connections_limit{{scope=\"per_source\"}} {per_source}"
            );
        }
        family(
            out,
            "bydata_mqtt_refused_total",
            "counter",
            &[
                ("reason=\"publish_denied\"", &self.publish_denied),
                ("reason=\"subscribe_denied\"", &self.subscribe_denied),
                ("reason=\"too_large\"", &self.too_large),
            ],
        );
        family(
            out,
            "bydata_mqtt_uplinks_journaled_total",
            "counter",
            &[("", &self.uplinks_journaled)],
        );
        family(
            out,
            "bydata_mqtt_journal_errors_total",
            "counter",
            &[("", &self.journal_errors)],
        );
    }
}
