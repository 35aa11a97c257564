//! `GET /api/v1/energy/imports`: where each Danish energy import stands (`bydata-energy`): how far it is
//! complete, when it last ran, what went wrong, in the operator's words. Emission factors are everyone's; a
//! metering point's import is shown to its organisation only.
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::State;
use bydata_schemas::format_rfc3339;
use serde::Serialize;

/// One import.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EnergyImport {
    /// `eds/CO2Emis`, `eds/CO2EmisProg` or `eloverblik/<metering point>`.
    key: String,
    /// `CO2Emis`, `CO2EmisProg` or `eloverblik`.
    source: String,
    /// The metering point (Eloverblik only).
    metering_point: Option<String>,
    /// The organisation its series belong to (none: everyone's).
    org: Option<String>,
    /// Everything before this time has been fetched (RFC 3339).
    done_until: Option<String>,
    last_run_at: Option<String>,
    /// What the last run could not do; null when it went well.
    last_error: Option<String>,
    points: u64,
    refused: u64,
}

/// The imports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EnergyImports {
    imports: Vec<EnergyImport>,
}

#[utoipa::path(
    get,
    path = "/api/v1/energy/imports",
    operation_id = "list_energy_imports",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "energy",
    summary = "Where the Danish energy data imports stand (emission factors, Eloverblik metering points)",
    responses(
        (status = 200, description = "Every import the caller may see; empty when none is configured", body = EnergyImports),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn imports(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<EnergyImports>, Error> {
    let mut imports = Vec::new();
    for (key, c) in state.registry.energy_cursors().await? {
        if let Some(org) = &c.org
            && !by.sees(org)
        {
            continue;
        }
        let (source, metering_point) = match key.split_once('/') {
            Some(("eloverblik", mp)) => ("eloverblik".to_owned(), Some(mp.to_owned())),
            Some((_, dataset)) => (dataset.to_owned(), None),
            None => (key.clone(), None),
        };
        imports.push(EnergyImport {
            source,
            metering_point,
            org: c.org.map(|o| o.to_string()),
            done_until: c.done_until.map(format_rfc3339),
            last_run_at: c.last_run_at.map(format_rfc3339),
            last_error: c.last_error,
            points: c.points,
            refused: c.refused,
            key,
        });
    }
    Ok(Json(EnergyImports { imports }))
}
