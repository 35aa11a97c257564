//! The scheduler: every `schedule_secs`, runs each dataset whose update frequency has passed since its last
//! scheduled run (sooner after a failure, at once when a run left periods for the next).
use super::core::Publisher;
use crate::definition::Dataset;
use crate::error::blocking;
use crate::plan::secs;
use std::sync::Arc;

/// A run that failed (a store error, a refusal after a config change) is tried again this much later.
const FAILED_RUN_RETRY_SECS: u64 = 300;

/// Runs every due dataset every `schedule_secs` until cancelled. A dataset is due when it has never run or
/// its update frequency has passed since its last run.
pub async fn run_scheduler(publisher: Arc<Publisher>, cancel: tokio_util::sync::CancellationToken) {
    let tick = std::time::Duration::from_secs(publisher.settings.schedule_secs.max(1));
    loop {
        match publisher.registry().datasets().await {
            Ok(all) => {
                for stored in all {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let d = match Dataset::parse(&stored) {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!(dataset = %stored.id, error = %e, "publication refused or failed; retried in 5 minutes");
                            continue;
                        }
                    };
                    if !publisher.due(&d).await {
                        continue;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        r = publisher.publish(&d, None) => {
                            if let Err(e) = r {
                                tracing::warn!(dataset = %d.id, error = %e, "publication refused or failed; retried in 5 minutes");
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list datasets to publish"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

impl Publisher {
    /// Whether a dataset's update frequency has passed since its last scheduled run.
    async fn due(&self, d: &Dataset) -> bool {
        let (archive, id) = (self.archive.clone(), d.id.clone());
        let Ok(m) = blocking(move || archive.manifest(&id)).await else {
            return false;
        };
        let Some((last, ok, more)) = m
            .last_scheduled_run
            .and_then(|r| Some((bydata_schemas::parse_rfc3339(&r.at).ok()?, r.ok, r.more)))
        else {
            return true;
        };
        let every: u64 = match d.definition.update_frequency.as_str() {
            _ if more => 0,
            _ if !ok => FAILED_RUN_RETRY_SECS,
            "CONT" => 300,
            "HOURLY" => 3_600,
            "DAILY" => 86_400,
            "WEEKLY" => 7 * 86_400,
            "MONTHLY" => 30 * 86_400,
            "QUARTERLY" => 91 * 86_400,
            _ => 365 * 86_400,
        };
        self.now() >= last.saturating_add(secs(every))
    }
}
