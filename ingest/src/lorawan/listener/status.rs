//! Gateway status: each datagram's changes (and late refusals of its frames) are merged in memory and
//! written with `Registry::record_gateways` at most once a second, so a busy gateway costs one registry
//! transaction a second, not one per packet. The write runs on the blocking pool and the listener does not
//! wait for it (a slow disk must not hold up the PUSH_ACKs); changes made meanwhile go in the next write.
use super::{Job, Listener};
use bydata_schemas::Eui64;
use bydata_store::GatewayStatus;
use tokio::task::JoinError;

type Written = bydata_store::Result<()>;

impl Listener {
    /// Starts writing the changes gathered so far, unless the previous write is still running.
    pub(super) fn write_status(&mut self) {
        if self.pending.is_empty() || self.status_write.busy() {
            return;
        }
        let deltas: Vec<(Eui64, GatewayStatus)> = self.pending.drain().collect();
        let registry = self.deps.registry.clone();
        self.status_write
            .start_async(async move { registry.record_gateways(deltas).await });
    }

    /// Waits for the running write, then writes what is left (at shutdown).
    pub(super) async fn flush_status(&mut self) {
        for _ in 0..2 {
            if self.status_write.busy() {
                status_written(self.status_write.finished().await);
            }
            self.write_status();
        }
    }
}

/// Logs a failed status write (its changes are lost; the counters in `/metrics` still have them).
pub(super) fn status_written(written: Result<Written, JoinError>) {
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot record gateway status"),
        Err(e) => tracing::error!(error = %e, "gateway status task failed"),
    }
}

/// No write running yet.
pub(super) fn idle() -> Job<Written> {
    Job::idle()
}
