//! LoRaWAN gateway registry: `POST/GET /api/v1/gateways`, `GET/DELETE /api/v1/gateways/{eui}`. Only a
//! registered gateway's packets are heard (Semtech UDP has no authentication of its own).
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::{Eui64, Location, OrgId, Role, format_rfc3339};
use bydata_store::{Gateway, GatewayStatus};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewGateway {
    /// 16 hex digits.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{16}$")]
    eui: Eui64,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(value_type = Option<crate::openapi::LocationDoc>)]
    location: Option<Location>,
    /// The organisation it belongs to; needed only by someone who may create in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<OrgId>,
}

/// The gateway `eui` if `by` may act on it with `role` (404 for another organisation's).
async fn find(state: &AppState, by: &Principal, eui: &str, role: Role) -> Result<Gateway, Error> {
    let found = match Eui64::new(eui) {
        Ok(e) => state.registry.gateway(&e).await?,
        Err(_) => None,
    };
    by.owned(found, |g| &g.org, role, "gateway", eui)
}

fn gateway_json(g: &Gateway, s: &GatewayStatus) -> Value {
    json!({
        "eui": g.eui,
        "name": g.name,
        "location": g.location,
        "org": g.org,
        "created_at": format_rfc3339(g.created_at),
        "status": {
            "last_seen": s.last_seen.map(format_rfc3339),
            "push_data": s.push_data,
            "pull_data": s.pull_data,
            "rx_packets": s.rx_packets,
            "rx_rejected": s.rx_rejected,
            "tx_sent": s.tx_sent,
            "tx_acked": s.tx_acked,
            "last_error": s.last_error.as_ref().map(|e| json!({
                "time": format_rfc3339(e.time),
                "reason": e.reason,
            })),
        },
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/gateways",
    operation_id = "create_gateway",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "gateways",
    summary = "Register a LoRaWAN gateway",
    request_body = NewGateway,
    responses(
        (status = 201, description = "Registered", body = crate::openapi::GatewayDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A gateway with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewGateway>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(new.org.clone(), Role::Editor)?;
    let name = crate::error::display_name(&new.name)?;
    let gateway = Gateway {
        eui: new.eui,
        name: name.to_owned(),
        location: new.location,
        created_at: (state.clock)(),
        org,
    };
    let change = Change::new("gateway.create", format!("gateway:{}", gateway.eui))
        .org(&gateway.org)
        .after(gateway_json(&gateway, &GatewayStatus::default()));
    let gateway = record(
        &state,
        &by,
        source,
        change,
        state.registry.create_gateway(gateway),
    )
    .await?;
    tracing::info!(gateway = %gateway.eui, by = %by.actor, "gateway registered");
    Ok((
        StatusCode::CREATED,
        Json(gateway_json(&gateway, &GatewayStatus::default())),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/gateways",
    operation_id = "list_gateways",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "gateways",
    summary = "List gateways with their status",
    responses(
        (status = 200, description = "All gateways", body = crate::openapi::GatewayListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let mut out = Vec::new();
    for g in state.registry.gateways().await? {
        if !by.sees(&g.org) {
            continue;
        }
        let status = state.registry.gateway_status(&g.eui).await?;
        out.push(gateway_json(&g, &status));
    }
    Ok(Json(json!({ "gateways": out })))
}

#[utoipa::path(
    get,
    path = "/api/v1/gateways/{eui}",
    operation_id = "get_gateway",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "gateways",
    summary = "One gateway with its status",
    params(
        ("eui" = String, Path, description = "Gateway EUI (16 hex digits)"),
    ),
    responses(
        (status = 200, description = "The gateway", body = crate::openapi::GatewayDoc),
        (status = 404, description = "No such gateway", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(eui): Path<String>,
) -> Result<Json<Value>, Error> {
    let gateway = find(&state, &by, &eui, Role::Viewer).await?;
    let status = state.registry.gateway_status(&gateway.eui).await?;
    Ok(Json(gateway_json(&gateway, &status)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/gateways/{eui}",
    operation_id = "delete_gateway",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "gateways",
    summary = "Remove a gateway",
    params(
        ("eui" = String, Path, description = "Gateway EUI (16 hex digits)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such gateway", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(eui): Path<String>,
) -> Result<StatusCode, Error> {
    let gateway = find(&state, &by, &eui, Role::Editor).await?;
    let change = Change::new("gateway.delete", format!("gateway:{}", gateway.eui))
        .org(&gateway.org)
        .before(gateway_json(&gateway, &GatewayStatus::default()));
    let eui = gateway.eui;
    let existed = record(
        &state,
        &by,
        source,
        change,
        state.registry.delete_gateway(&eui),
    )
    .await?;
    crate::error::deleted(existed, "gateway", eui, &by.actor)
}
