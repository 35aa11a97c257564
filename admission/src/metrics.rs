//! Metrics exposition through one `prometheus_client` registry: each crate keeps its counters as atomics (cheap
//! on the hot path) and implements `Collector` with these helpers; the binary registers every collector in one
//! `Registry`, and `/metrics` encodes it. Counter names are given without `_total`: the encoder adds it, so
//! the samples keep the names dashboards use (`bydata_mqtt_connects_total`).
pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::registry::Registry;

use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads a counter kept as an atomic.
pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A counter without labels.
pub fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

/// A counter family with one label, one sample per `(label value, count)`.
pub fn counters(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    rows: &[(&str, u64)],
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (value, count) in rows {
        ConstCounter::new(*count).encode(family.encode_family(&[(label, *value)])?)?;
    }
    Ok(())
}

/// A gauge without labels.
pub fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: i64) -> fmt::Result {
    let g = ConstGauge::new(value);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A gauge family with one label.
pub fn gauges(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    rows: &[(&str, i64)],
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
    for (value, v) in rows {
        ConstGauge::new(*v).encode(family.encode_family(&[(label, *value)])?)?;
    }
    Ok(())
}

/// The registry in the text format Prometheus scrapes (OpenMetrics, ending in `# EOF`).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; a collector's own error would leave a partial page, still readable.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// Converts a count to a gauge value.
pub fn as_gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
