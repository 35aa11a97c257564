//! The one metrics registry `/metrics` encodes: every crate's collector, registered here.
use bydata_admission::metrics::{Collector, DescriptorEncoder, Registry, as_gauge, gauge};
use bydata_store::EmbeddedEngine;
use std::sync::Arc;

/// The embedded store's own gauges (none when the store is InfluxDB).
#[derive(Debug)]
struct Store(Arc<EmbeddedEngine>);

impl Collector for Store {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        match self.0.head_points() {
            Ok(n) => gauge(
                &mut enc,
                "bydata_store_head_points",
                "Points acknowledged but not yet flushed into a part (they are in the write-ahead log)",
                as_gauge(n),
            ),
            Err(_) => Ok(()),
        }
    }
}

/// A registry holding `collectors` and the embedded store's gauges.
pub(crate) fn registry(
    collectors: Vec<Box<dyn Collector>>,
    embedded: Option<Arc<EmbeddedEngine>>,
) -> Registry {
    let mut registry = Registry::default();
    for c in collectors {
        registry.register_collector(c);
    }
    if let Some(engine) = embedded {
        registry.register_collector(Box::new(Store(engine)));
    }
    registry
}
