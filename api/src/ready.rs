//! Readiness: every supervised component with its state, the ingest lag and the data directory's free space
//! (`GET /ready`), and the same facts for Prometheus (appended to `/metrics`). `/health` stays a liveness
//! check: it answers while the process serves HTTP at all.
use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bydata_admission::metrics::{Collector, DescriptorEncoder, as_gauge, gauge, gauges};
use bydata_store::health::Health;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready` (200) or `not_ready` (503).
    status: &'static str,
    /// Whether new data is acknowledged now.
    accepting: bool,
    /// Why new data is refused (disk full, or shutting down after a failure); null while accepting.
    refusal: Option<String>,
    components: Vec<ComponentState>,
    ingest_lag: IngestLag,
    disk: DiskState,
}

/// One supervised component.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ComponentState {
    name: &'static str,
    /// `up`, `restarting`, `down` or `stopped`.
    state: &'static str,
    /// Its failure stops bydata; otherwise it is restarted.
    essential: bool,
    /// Why it is not up (null when it is).
    cause: Option<String>,
}

/// What the journal holds that the store does not yet.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestLag {
    /// Durable journal entries not yet stored.
    entries: u64,
    /// Journal bytes not yet stored.
    bytes: u64,
}

/// Free space of the data directory's filesystem.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DiskState {
    path: String,
    free_bytes: u64,
    /// Below this, new data is refused (`[store] min_free_bytes`).
    reserve_bytes: u64,
    full: bool,
}

fn readiness(health: &Health) -> Readiness {
    let refusal = health.refusal();
    let lag = health.lag();
    let disk = health.disk();
    Readiness {
        status: if health.ready() { "ready" } else { "not_ready" },
        accepting: refusal.is_none(),
        refusal: refusal.map(|r| r.to_string()),
        components: health
            .components()
            .into_iter()
            .map(|c| ComponentState {
                name: c.name,
                state: c.state.name(),
                essential: c.essential,
                cause: c.state.cause().map(str::to_owned),
            })
            .collect(),
        ingest_lag: IngestLag {
            entries: lag.entries,
            bytes: lag.bytes,
        },
        disk: DiskState {
            path: disk.path.display().to_string(),
            free_bytes: disk.free,
            reserve_bytes: disk.reserve,
            full: disk.full,
        },
    }
}

#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "meta",
    summary = "Readiness: each component's state, the ingest lag and free disk; 503 when not ready",
    description = "503 when a component is not up, or new data is refused (the data directory's free space \
is below `[store] min_free_bytes`, or bydata is shutting down after a component failed). Public, like `/health`.",
    responses(
        (status = 200, description = "Every component up, new data accepted", body = Readiness),
        (status = 503, description = "Not ready: `error.message` says which component or why; every field of \
the 200 answer (`components`, `ingest_lag`, `disk`, …) is there too", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let answer = readiness(&state.health);
    let ready = answer.status == "ready";
    let why = (!ready).then(|| why_not(&answer));
    let mut body = serde_json::to_value(answer).unwrap_or_default();
    match why {
        None => (StatusCode::OK, Json(body)),
        Some(message) => {
            // The error shape every 5xx has, beside the readiness facts.
            if let Some(map) = body.as_object_mut() {
                map.insert(
                    "error".into(),
                    serde_json::json!({"code": "not_ready", "message": message}),
                );
            }
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}

/// One sentence: the refusal, else the first component that is not up, else that bydata is starting.
fn why_not(answer: &Readiness) -> String {
    if let Some(refusal) = &answer.refusal {
        return refusal.clone();
    }
    match answer.components.iter().find(|c| c.state != "up") {
        Some(c) => format!(
            "the {} is {}{}",
            c.name,
            c.state,
            c.cause
                .as_deref()
                .map(|cause| format!(": {cause}"))
                .unwrap_or_default()
        ),
        None => "bydata is starting".to_owned(),
    }
}

/// The readiness facts as gauges, for the one metrics registry.
#[derive(Debug)]
pub(crate) struct ReadinessMetrics(pub(crate) Arc<Health>);

impl Collector for ReadinessMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        let health = &self.0;
        let components = health.components();
        if !components.is_empty() {
            let rows: Vec<(&str, i64)> = components
                .iter()
                .map(|c| (c.name, i64::from(c.state.is_up())))
                .collect();
            gauges(
                e,
                "bydata_component_up",
                "Whether a supervised component is running (1) or not (0).",
                "component",
                &rows,
            )?;
        }
        let lag = health.lag();
        let disk = health.disk();
        let accepting = health.refusal().is_none();
        for (name, help, value) in [
            (
                "bydata_ingest_lag_entries",
                "Durable journal entries not yet stored.",
                lag.entries,
            ),
            (
                "bydata_ingest_lag_bytes",
                "Journal bytes not yet stored.",
                lag.bytes,
            ),
            (
                "bydata_disk_free_bytes",
                "Free bytes on the data directory's filesystem.",
                disk.free,
            ),
            (
                "bydata_disk_reserve_bytes",
                "Free space below which new data is refused ([store] min_free_bytes).",
                disk.reserve,
            ),
            (
                "bydata_disk_full",
                "1 while free space is below the reserve and new data is refused.",
                u64::from(disk.full),
            ),
            (
                "bydata_accepting",
                "1 while new data is acknowledged.",
                u64::from(accepting),
            ),
        ] {
            gauge(e, name, help, as_gauge(value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_store::health::State;

    #[test]
    fn not_ready_until_started_then_names_the_component_that_is_down() {
        let health = Health::default();
        health.set("store writer", true, State::Up);
        let answer = readiness(&health);
        assert_eq!(answer.status, "not_ready");
        assert_eq!(why_not(&answer), "bydata is starting");
        health.set_started();
        assert_eq!(readiness(&health).status, "ready");
        health.set(
            "store writer",
            true,
            State::Down {
                cause: "the WAL is gone".into(),
            },
        );
        let answer = readiness(&health);
        assert_eq!(answer.status, "not_ready");
        assert_eq!(
            why_not(&answer),
            "the store writer is down: the WAL is gone"
        );
        let mut registry = bydata_admission::metrics::Registry::default();
        registry.register_collector(Box::new(ReadinessMetrics(Arc::new(health))));
        let out = bydata_admission::metrics::encode(&registry);
        assert!(out.contains("\nbydata_component_up{component=\"store writer\"} 0\n"));
        assert!(out.contains("\nbydata_disk_full 0\n"));
        assert!(out.contains("\nbydata_accepting 1\n"));
    }
}
