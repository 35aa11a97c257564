//! Gateway status: each datagram's changes (and late refusals of its frames) are merged in memory and
//! written with `Registry::record_gateways` at most once a second, so a busy gateway costs one registry
//! transaction a second, not one per packet; the write runs on the blocking pool.
use super::Listener;
use bydata_schemas::Eui64;
use bydata_store::GatewayStatus;

impl Listener {
    pub(super) async fn write_status(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let deltas: Vec<(Eui64, GatewayStatus)> = self.pending.drain().collect();
        let registry = self.deps.registry.clone();
        match tokio::task::spawn_blocking(move || registry.record_gateways(&deltas)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot record gateway status"),
            Err(e) => tracing::error!(error = %e, "gateway status task failed"),
        }
    }
}
