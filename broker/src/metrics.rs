//! Broker counters, a `Collector` for the one metrics registry. Labels are low-cardinality (no device ids or
//! addresses: per-device numbers are in the device status).
use bydata_admission::ConnectionCaps;
use bydata_admission::metrics::{
    Collector, DescriptorEncoder, as_gauge, counter, counters, gauge, gauges, get,
};
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
    pub(crate) tls_handshake_failed: AtomicU64,
    pub(crate) connect_will: AtomicU64,
    pub(crate) connect_keep_alive: AtomicU64,
    pub(crate) refused_total_cap: AtomicU64,
    pub(crate) refused_source_cap: AtomicU64,
    pub(crate) publish_denied: AtomicU64,
    pub(crate) subscribe_denied: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) uplinks_journaled: AtomicU64,
    pub(crate) journal_errors: AtomicU64,
    // --- mqtt5 (MQTT 5 and WebSockets) ---
    pub(crate) v5_connections: AtomicU64,
    pub(crate) ws_connections: AtomicU64,
    pub(crate) ws_handshake_failed: AtomicU64,
    pub(crate) connect_unsupported: AtomicU64,
    pub(crate) user_properties: AtomicU64,
    pub(crate) caps: OnceLock<Arc<ConnectionCaps>>,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        counter(
            e,
            "bydata_mqtt_connects",
            "MQTT logins accepted",
            get(&self.connects_accepted),
        )?;
        counters(
            e,
            "bydata_mqtt_auth_failures",
            "MQTT logins refused, by reason",
            "reason",
            &[
                ("unknown_device", get(&self.auth_unknown_device)),
                ("wrong_password", get(&self.auth_wrong_password)),
                ("bad_client_id", get(&self.auth_bad_client_id)),
                ("backoff", get(&self.auth_backoff)),
                ("busy", get(&self.auth_busy)),
            ],
        )?;
        counters(
            e,
            "bydata_mqtt_password_checks",
            "MQTT password checks: Argon2 hashes computed, or logins answered from memory",
            "kind",
            &[
                ("argon2", get(&self.password_checks)),
                ("remembered", get(&self.auth_remembered)),
            ],
        )?;
        counters(
            e,
            "bydata_mqtt_connects_refused",
            "MQTT CONNECTs refused before the login was checked, by reason",
            "reason",
            &[
                ("bad_protocol", get(&self.connect_bad_protocol)),
                ("malformed", get(&self.connect_malformed)),
                ("timeout", get(&self.connect_timeout)),
                ("tls_handshake", get(&self.tls_handshake_failed)),
                ("websocket_handshake", get(&self.ws_handshake_failed)),
                ("unsupported", get(&self.connect_unsupported)),
                ("last_will", get(&self.connect_will)),
                ("keep_alive", get(&self.connect_keep_alive)),
            ],
        )?;
        counters(
            e,
            "bydata_mqtt_connections_refused",
            "MQTT connections refused at a connection cap",
            "reason",
            &[
                ("total_cap", get(&self.refused_total_cap)),
                ("source_cap", get(&self.refused_source_cap)),
            ],
        )?;
        if let Some(caps) = self.caps.get() {
            let (total, per_source) = caps.limits();
            gauge(
                e,
                "bydata_mqtt_connections",
                "Open MQTT connections",
                as_gauge(caps.open() as u64),
            )?;
            gauges(
                e,
                "bydata_mqtt_connections_limit",
                "MQTT connection caps",
                "scope",
                &[
                    ("total", as_gauge(total as u64)),
                    ("per_source", as_gauge(per_source as u64)),
                ],
            )?;
        }
        counters(
            e,
            "bydata_mqtt_refused",
            "MQTT packets of logged-in clients refused, by reason",
            "reason",
            &[
                ("publish_denied", get(&self.publish_denied)),
                ("subscribe_denied", get(&self.subscribe_denied)),
                ("too_large", get(&self.too_large)),
                ("user_properties", get(&self.user_properties)),
            ],
        )?;
        counters(
            e,
            "bydata_mqtt_sessions",
            "MQTT connections relayed to the broker by MQTT version and transport (a WebSocket one counts \
             under its transport and its version)",
            "kind",
            &[
                ("v5", get(&self.v5_connections)),
                ("websocket", get(&self.ws_connections)),
            ],
        )?;
        counter(
            e,
            "bydata_mqtt_uplinks_journaled",
            "MQTT uplinks written to the journal",
            get(&self.uplinks_journaled),
        )?;
        counter(
            e,
            "bydata_mqtt_journal_errors",
            "MQTT uplinks the journal could not take (not acknowledged)",
            get(&self.journal_errors),
        )
    }
}
