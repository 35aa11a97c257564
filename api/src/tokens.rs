//! API keys (`/api/v1/tokens`): made by an organisation's admin for that organisation, with a role, an optional
//! expiry and an optional restriction to devices or measurements; shown once, stored hashed, revocable.
//! Platform keys (no organisation) are made by a platform admin.
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::{DeviceId, MeasurementName, OrgId, Role, format_rfc3339, parse_rfc3339};
use bydata_store::{NewToken as StoredNewToken, Restriction, TokenInfo};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(value_type = crate::openapi::RoleDoc)]
    role: Role,
    /// The organisation; needed only by someone who is admin of several. Leave out with `platform`.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<OrgId>,
    /// A platform key, for every organisation (only a platform admin makes them).
    #[serde(default)]
    platform: bool,
    /// RFC 3339; after it the key no longer works.
    expires_at: Option<String>,
    /// Only these devices (of the organisation).
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 1000)]
    devices: Vec<DeviceId>,
    /// Only these measurements.
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 1000)]
    measurements: Vec<MeasurementName>,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "create_token",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "tokens",
    summary = "Create an API key for an organisation (the secret is shown once)",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created", body = crate::openapi::CreatedTokenDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an admin of the organisation (a platform key needs a platform admin)", body = crate::openapi::ErrorBody),
        (status = 404, description = "A restricted-to device is not the organisation's", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewToken>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let name = crate::error::display_name(&new.name)?.to_owned();
    let org = match (new.platform, new.org) {
        (true, Some(_)) => {
            return Err(Error::bad(
                "invalid_scope",
                "a key is either for one organisation (org) or for the platform (platform: true), not both",
            ));
        }
        (true, None) if by.is_platform_admin() => None,
        (true, None) => {
            return Err(Error::Forbidden {
                needs: "a platform admin to make a platform key".into(),
            });
        }
        (false, asked) => Some(by.target_org(asked, Role::Admin)?),
    };
    let now = (state.clock)();
    let expires_at = new
        .expires_at
        .as_deref()
        .map(|t| {
            parse_rfc3339(t).map_err(|_| {
                Error::bad(
                    "invalid_time",
                    "expires_at must be an RFC 3339 time such as 2027-06-30T00:00:00Z",
                )
            })
        })
        .transpose()?;
    if expires_at.is_some_and(|t| t <= now) {
        return Err(Error::bad(
            "invalid_time",
            "expires_at is in the past: give a time to come",
        ));
    }
    for device in &new.devices {
        let found = state.registry.device(device).await?;
        // A key of an organisation is restricted only to its own devices.
        if found.is_none_or(|d| org.as_ref().is_some_and(|o| *o != d.org)) {
            return Err(Error::NotFound {
                what: "device",
                id: device.to_string(),
            });
        }
    }
    let planned = TokenInfo {
        id: String::new(),
        name: name.clone(),
        org: org.clone(),
        role: new.role,
        created_at: now,
        expires_at,
        restriction: Restriction {
            devices: new.devices.clone(),
            measurements: new.measurements.clone(),
        },
        revoked_at: None,
        last_used_at: None,
    };
    // The store names the object with the id it generates; the secret is never in the summary.
    let mut change = Change::new("token.create", "token:").after(token_json(&planned, now));
    change.org = org.clone();
    let (info, secret) = record(
        &state,
        &by,
        source,
        change,
        state.registry.create_token(
            StoredNewToken {
                name,
                org,
                role: new.role,
                expires_at,
                restriction: Restriction {
                    devices: new.devices,
                    measurements: new.measurements,
                },
            },
            now,
        ),
    )
    .await?;
    tracing::info!(token = %info.id, role = %info.role, org = ?info.org, by = %by.actor, "key created");
    let mut body = token_json(&info, now);
    body["token"] = json!(secret);
    body["note"] = json!("the key is shown only once; bydata keeps only its hash");
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "list_tokens",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "tokens",
    summary = "The keys of the organisations you administer (never their secrets)",
    responses(
        (status = 200, description = "Keys, with when each was last used", body = crate::openapi::TokenListDoc),
        (status = 403, description = "Not an admin of any organisation", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let now = (state.clock)();
    let tokens: Vec<Value> = state
        .registry
        .tokens()
        .await?
        .into_iter()
        .filter(|t| administers(&by, t))
        .map(|mut t| {
            t.last_used_at = state.auth_cache.last_used(&t.id, t.last_used_at);
            token_json(&t, now)
        })
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

/// Whether `by` may see and revoke key `t`: an admin of its organisation, or a platform admin.
fn administers(by: &Principal, t: &TokenInfo) -> bool {
    match &t.org {
        Some(org) => by.role_in(org) == Some(Role::Admin),
        None => by.is_platform_admin(),
    }
}

/// A key as answers show it: never its secret, times in RFC 3339.
fn token_json(t: &TokenInfo, now: bydata_schemas::UnixNanos) -> Value {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "org": t.org,
        "role": t.role,
        "created_at": format_rfc3339(t.created_at),
        "expires_at": t.expires_at.map(format_rfc3339),
        "last_used_at": t.last_used_at.map(format_rfc3339),
        "revoked_at": t.revoked_at.map(format_rfc3339),
        "state": state,
    });
    if !t.restriction.devices.is_empty() {
        v["devices"] = json!(t.restriction.devices);
    }
    if !t.restriction.measurements.is_empty() {
        v["measurements"] = json!(t.restriction.measurements);
    }
    v
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "delete_token",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "tokens",
    summary = "Revoke a key (it stops working at once and stays listed as revoked)",
    params(
        ("id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an admin of the organisation", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such key in your organisations", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let not_found = || Error::NotFound {
        what: "token",
        id: id.chars().take(64).collect(),
    };
    let key = state
        .registry
        .tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(not_found)?;
    if !administers(&by, &key) {
        return Err(not_found());
    }
    let now = (state.clock)();
    let mut after = key.clone();
    after.revoked_at = after.revoked_at.or(Some(now));
    let mut change = Change::new("token.revoke", format!("token:{id}"))
        .before(token_json(&key, now))
        .after(token_json(&after, now));
    change.org = key.org.clone();
    let revoked = record(
        &state,
        &by,
        source,
        change,
        state.registry.revoke_token(&id, now),
    )
    .await?;
    crate::error::deleted(revoked.is_some(), "token", id, &by.actor)
}
