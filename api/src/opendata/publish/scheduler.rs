//! The scheduler: every `schedule_secs`, runs each dataset whose update frequency has passed since its last
//! scheduled run (sooner after a failure, at once when a run left periods for the next).
use super::secs;
use crate::AppState;
use bydata_store::StoredDataset;

/// A run that failed (a store error, a refusal after a config change) is tried again this much later.
const FAILED_RUN_RETRY_SECS: u64 = 300;

/// Runs every due dataset every `schedule_secs` until cancelled. A dataset is due when it has never run or
/// its update frequency has passed since its last run.
pub async fn run_scheduler(state: AppState, cancel: tokio_util::sync::CancellationToken) {
    let tick = std::time::Duration::from_secs(state.opendata.settings.schedule_secs.max(1));
    loop {
        match state.registry.datasets().await {
            Ok(all) => {
                for d in all {
                    if cancel.is_cancelled() {
                        return;
                    }
                    if !due(&state, &d).await {
                        continue;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        r = state.opendata.publish(&state, &d, None) => {
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

async fn due(state: &AppState, d: &StoredDataset) -> bool {
    let Ok(m) = state.opendata.read_manifest(&d.id).await else {
        return false;
    };
    let Some((last, ok, more)) = m
        .last_scheduled_run
        .and_then(|r| Some((bydata_schemas::parse_rfc3339(&r.at).ok()?, r.ok, r.more)))
    else {
        return true;
    };
    let every: u64 = match d.definition["update_frequency"].as_str() {
        _ if more => 0,
        _ if !ok => FAILED_RUN_RETRY_SECS,
        Some("CONT") => 300,
        Some("HOURLY") => 3_600,
        Some("DAILY") => 86_400,
        Some("WEEKLY") => 7 * 86_400,
        Some("MONTHLY") => 30 * 86_400,
        Some("QUARTERLY") => 91 * 86_400,
        _ => 365 * 86_400,
    };
    (state.clock)() >= last.saturating_add(secs(every))
}
