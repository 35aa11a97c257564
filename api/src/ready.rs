//! Readiness: every supervised component with its state, the ingest lag and the data directory's free space
//! (`GET /ready`), and the same facts for Prometheus (appended to `/metrics`). `/health` stays a liveness
//! check: it answers while the process serves HTTP at all.
use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bydata_store::health::Health;
use serde::Serialize;
use std::fmt::Write;
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
    tag = "meta",
    summary = "Readiness: each component's state, the ingest lag and free disk; 503 when not ready",
    description = "503 when a component is not up, or new data is refused (the data directory's free space \
is below `[store] min_free_bytes`, or bydata is shutting down after a component failed). Public, like `/health`.",
    responses(
        (status = 200, description = "Every component up, new data accepted", body = Readiness),
        (status = 503, description = "Not ready: the answer says which component or why", body = Readiness),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let answer = readiness(&state.health);
    let status = if answer.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(answer))
}

/// The readiness facts in Prometheus text format.
pub(crate) fn render(health: &Health, out: &mut String) {
    let components = health.components();
    if !components.is_empty() {
        out.push_str("# HELP bydata_component_up Whether a supervised component is running (1) or not (0).\n");
        out.push_str("# TYPE bydata_component_up gauge\n");
        for c in &components {
            let _ = writeln!(
                out,
                "bydata_component_up{{component=\"{}\"}} {}",
                c.name,
                u8::from(c.state.is_up())
            );
        }
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
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}
