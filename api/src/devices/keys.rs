//! Device keys: what a device pushes over HTTP with when it should not carry its MQTT password (a gateway
//! script, a partner's server pushing for one sensor). Made by an editor of the device's organisation, shown
//! once, kept as a SHA-256, listed (never the secret), revoked at once; every change audited.
use super::visible;
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::{Role, Transport, format_rfc3339};
use bydata_store::DeviceKey;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Most keys a device may hold that are not revoked: enough to rotate without a gap, few enough that a
/// forgotten script's key is noticed.
pub(crate) const MAX_ACTIVE_KEYS: usize = 10;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDeviceKey {
    /// What the key is for, e.g. `gateway script` (default `device key`).
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
}

/// A device key's public description (never its secret).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceKeyDoc {
    id: String,
    device: String,
    name: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; present once revoked.
    revoked_at: Option<String>,
    /// `active` or `revoked`.
    state: String,
}

/// A new device key: the secret is shown only here.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct CreatedDeviceKeyDoc {
    #[serde(flatten)]
    key: DeviceKeyDoc,
    /// The secret: the device sends it as `Authorization: Bearer <key>` or `X-Device-Key: <key>`. Shown once.
    #[schema(example = "bdk_…")]
    secret: String,
    note: String,
}

/// A device's keys.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct DeviceKeyListDoc {
    keys: Vec<DeviceKeyDoc>,
}

fn key_json(k: &DeviceKey) -> Value {
    json!({
        "id": k.id,
        "device": k.device,
        "name": k.name,
        "created_at": format_rfc3339(k.created_at),
        "revoked_at": k.revoked_at.map(format_rfc3339),
        "state": if k.revoked_at.is_some() { "revoked" } else { "active" },
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/keys",
    operation_id = "create_device_key",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Make a device key for the device's HTTP pushes (shown once)",
    params(("id" = String, Path, description = "Device id")),
    request_body(content = Option<NewDeviceKey>, description = "Optional: a name for the key"),
    responses(
        (status = 201, description = "Created; the secret is in `secret`, shown only this once", body = CreatedDeviceKeyDoc),
        (status = 400, description = "A LoRaWAN device, or one with too many keys", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not an editor of the device's organisation", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
    crate::body::OptionalBody(new): crate::body::OptionalBody<NewDeviceKey>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let name = match new.and_then(|n| n.name) {
        Some(name) => crate::error::display_name(&name)?.to_owned(),
        None => "device key".to_owned(),
    };
    // A LoRaWAN device's identity is its session keys, heard through gateways with replay protection; a
    // key that lets anything push for it would go around both.
    if device.transport == Transport::Lorawan {
        return Err(Error::bad(
            "not_a_pushing_device",
            format!(
                "{} is a LoRaWAN device: its uplinks come through gateways or its network server, so it has no device keys",
                device.id
            ),
        ));
    }
    let active = state
        .registry
        .device_keys(&device.id)
        .await?
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    if active >= MAX_ACTIVE_KEYS {
        return Err(Error::bad(
            "too_many_keys",
            format!(
                "{} already has {active} active keys (at most {MAX_ACTIVE_KEYS}); revoke one first (DELETE /api/v1/devices/{}/keys/{{key}})",
                device.id, device.id
            ),
        ));
    }
    let now = (state.clock)();
    // The record names the key (its id is added when it is made), never its secret.
    let change = Change::new("device.key.create", format!("device:{}", device.id))
        .org(&device.org)
        .after(json!({"name": name}));
    let (key, secret) = record(
        &state,
        &by,
        source,
        change,
        state.registry.create_device_key(&device.id, name, now),
    )
    .await?;
    tracing::info!(device = %device.id, key = %key.id, by = %by.actor, "device key created");
    let mut body = key_json(&key);
    body["secret"] = json!(secret);
    body["note"] = json!(
        "the key is shown only this once; bydata keeps only its SHA-256. The device pushes with \
         Authorization: Bearer <key> (or X-Device-Key: <key>) to POST /api/v1/devices/{id}/up"
    );
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/keys",
    operation_id = "list_device_keys",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "A device's keys, revoked ones included (never their secrets)",
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 200, description = "The keys, oldest first", body = DeviceKeyListDoc),
        (status = 403, description = "Not an editor of the device's organisation", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let keys = state.registry.device_keys(&device.id).await?;
    Ok(Json(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}/keys/{key}",
    operation_id = "revoke_device_key",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Revoke a device key: the next push with it is refused",
    params(
        ("id" = String, Path, description = "Device id"),
        ("key" = String, Path, description = "The key's id (not its secret)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an editor of the device's organisation", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device, or it has no such key", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let not_found = || Error::NotFound {
        what: "device key",
        id: key.chars().take(64).collect(),
    };
    let found = state
        .registry
        .device_keys(&device.id)
        .await?
        .into_iter()
        .find(|k| k.id == key)
        .ok_or_else(not_found)?;
    let now = (state.clock)();
    let mut after = found.clone();
    after.revoked_at = after.revoked_at.or(Some(now));
    let change = Change::new("device.key.revoke", format!("device:{}", device.id))
        .org(&device.org)
        .before(key_json(&found))
        .after(key_json(&after));
    let revoked = record(
        &state,
        &by,
        source,
        change,
        state.registry.revoke_device_key(&device.id, &key, now),
    )
    .await?;
    crate::error::deleted(revoked.is_some(), "device key", key, &by.actor)
}
