//! API tokens: created by an admin, shown once, stored hashed.
use crate::auth::Admin;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::format_rfc3339;
use bydata_store::{Role, TokenInfo};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(value_type = crate::openapi::RoleDoc)]
    role: Role,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "create_token",
    tag = "tokens",
    summary = "Create an API token (the secret is shown once)",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created", body = crate::openapi::CreatedTokenDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Admin(by): Admin,
    crate::body::Body(new): crate::body::Body<NewToken>,
) -> Result<(StatusCode, Json<Value>), Error> {
    crate::error::display_name(&new.name)?;
    let (info, secret) = state
        .registry
        .create_token(&new.name, new.role, (state.clock)())
        .await?;
    tracing::info!(token = %info.id, role = ?info.role, by = %by.id, "token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": info.id, "name": info.name, "role": info.role, "token": secret,
            "created_at": format_rfc3339(info.created_at),
            "note": "the token is shown only once; bydata keeps only its hash",
        })),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    summary = "List tokens (never their secrets)",
    responses(
        (status = 200, description = "All tokens", body = crate::openapi::TokenListDoc),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, Error> {
    let tokens = state.registry.tokens().await?;
    Ok(Json(json!({
        "tokens": tokens.iter().map(token_json).collect::<Vec<_>>(),
    })))
}

/// A token as answers show it: never its secret, times in RFC 3339.
fn token_json(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "created_at": format_rfc3339(t.created_at),
    })
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "delete_token",
    tag = "tokens",
    summary = "Revoke a token",
    params(
        ("id" = String, Path, description = "Token id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such token", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let wanted = id.clone();
    let existed = state.registry.delete_token(&wanted).await?;
    crate::error::deleted(existed, "token", id, &by.id)
}
