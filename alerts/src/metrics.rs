//! The evaluator's metrics: alerts by state and rule kind, the last pass's duration, passes, failures and
//! notifications handed on.
use crate::alert::State;
use crate::rule::Kind;
use bydata_admission::metrics::{
    Collector, DescriptorEncoder, as_gauge, counter, counters, gauge, get,
};
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    passes: AtomicU64,
    failed: AtomicU64,
    handed: AtomicU64,
    sink_failures: AtomicU64,
    last_pass_micros: AtomicU64,
    pass_micros_total: AtomicU64,
    devices: AtomicU64,
    counts: Mutex<BTreeMap<(State, Kind), i64>>,
}

impl Metrics {
    pub(crate) fn pass_done(
        &self,
        took: Duration,
        counts: BTreeMap<(State, Kind), i64>,
        devices: usize,
    ) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.last_pass_micros.store(micros, Ordering::Relaxed);
        self.pass_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.devices.store(devices as u64, Ordering::Relaxed);
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
    }
    pub(crate) fn pass_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn handed(&self, n: usize) {
        self.handed.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn sink_failed(&self) {
        self.sink_failures.fetch_add(1, Ordering::Relaxed);
    }
    /// Notifications handed to the notifier so far.
    pub fn handed_total(&self) -> u64 {
        get(&self.handed)
    }
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut family = enc.encode_descriptor(
            "bydata_alerts",
            "Alerts by state and rule kind, as of the last evaluation pass",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for state in State::ALL {
            for kind in Kind::ALL {
                let n = counts.get(&(state, kind)).copied().unwrap_or(0);
                ConstGauge::new(n).encode(
                    family.encode_family(&[("state", state.as_str()), ("kind", kind.as_str())])?,
                )?;
            }
        }
        let last = get(&self.last_pass_micros) as f64 / 1e6;
        ConstGauge::new(last).encode(enc.encode_descriptor(
            "bydata_alerts_evaluation_seconds",
            "How long the last evaluation pass took",
            None,
            ConstGauge::new(0f64).metric_type(),
        )?)?;
        counter(
            &mut enc,
            "bydata_alerts_evaluation_microseconds",
            "Time spent in evaluation passes",
            get(&self.pass_micros_total),
        )?;
        counters(
            &mut enc,
            "bydata_alerts_passes",
            "Evaluation passes, by outcome",
            "outcome",
            &[("ok", get(&self.passes)), ("failed", get(&self.failed))],
        )?;
        counters(
            &mut enc,
            "bydata_alerts_notifications",
            "Notifications handed to the notifier, and refusals by it (they stay in the outbox)",
            "outcome",
            &[
                ("handed", get(&self.handed)),
                ("refused", get(&self.sink_failures)),
            ],
        )?;
        gauge(
            &mut enc,
            "bydata_alerts_devices_watched",
            "Devices in the evaluator's index",
            as_gauge(get(&self.devices)),
        )
    }
}
