//! Onboarding: devices registered, changed, listed, deleted, their MQTT credentials rotated. What a device
//! sent and how it decoded is in `decoding`; LoRaWAN activation details in `lorawan`; a device pushing its
//! uplinks over HTTP in `push`, with the device keys of `keys`.
pub(crate) mod bulk;
pub(crate) mod decoding;
pub(crate) mod downlinks;
pub(crate) mod keys;
mod lorawan;
pub(crate) mod push;
mod push_params;

use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::{
    Codec, DeviceId, Domain, Location, OrgId, Role, TagKey, Transport, format_rfc3339,
};
use bydata_store::Device;
use lorawan::{NewLorawan, abp_session, otaa_device};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Tags bydata sets itself on every series of a device (and `org`, which names a line-protocol series'
/// organisation).
const RESERVED_TAGS: [&str; 3] = ["device", "domain", "org"];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDevice {
    /// A slug; made from the name when missing.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    id: Option<DeviceId>,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// `mqtt` or `lorawan` (an `mqtt` device also pushes over HTTP with the same credentials).
    #[schema(value_type = crate::openapi::TransportDoc)]
    transport: Transport,
    /// What the device measures for: one of the known domains.
    #[schema(schema_with = crate::openapi::domain_schema)]
    domain: Domain,
    #[schema(value_type = Option<crate::openapi::LocationDoc>)]
    location: Option<Location>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>, example = json!({"room": "1.12"}))]
    tags: BTreeMap<TagKey, String>,
    /// `auto` (default), `senml`, `json`, `cayenne`, `js:{name}` or `js:{name}@{version}`.
    #[serde(default)]
    #[schema(value_type = String, pattern = "^(auto|senml|json|cayenne|js:[a-z0-9][a-z0-9._-]{0,63}(@[0-9]{1,9})?)$")]
    codec: Codec,
    /// LoRaWAN activation, for `transport: "lorawan"`.
    lorawan: Option<NewLorawan>,
    /// The organisation it belongs to; needed only by someone who may onboard in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<OrgId>,
}

pub(crate) fn device_json(d: &Device) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "transport": d.transport,
        "domain": d.domain,
        "location": d.location,
        "tags": d.tags,
        "codec": d.codec,
        "org": d.org,
        "created_at": format_rfc3339(d.created_at),
        "publish_topic": (d.transport == Transport::Mqtt).then(|| format!("devices/{}/up", d.id)),
    })
}

/// The device `id` if `principal` may act on it with `role`: 404 if there is none or it is another
/// organisation's (or outside the key's restriction), 403 if the principal's role there is too low.
pub(crate) async fn visible(
    state: &AppState,
    principal: &Principal,
    id: &str,
    role: Role,
) -> Result<Device, Error> {
    let found = match DeviceId::new(id) {
        // A key restricted to other devices finds none of them.
        Ok(d) if principal.restriction.allows_device(d.as_str()) => {
            state.registry.device(&d).await?
        }
        _ => None,
    };
    principal.owned(found, |d| &d.org, role, "device", id)
}

/// A readable id from the name, with a random suffix so two "Room sensor"s do not collide.
fn id_from_name(name: &str) -> Result<DeviceId, Error> {
    let slug = bydata_schemas::slugify(name, 48);
    let slug = if slug.is_empty() { "device" } else { &slug };
    let suffix: u32 = rand::thread_rng().r#gen::<u32>() & 0xff_ffff;
    DeviceId::new(format!("{slug}-{suffix:06x}"))
        .map_err(|e| Error::bad("invalid_id", e.to_string()))
}

#[utoipa::path(
    post,
    path = "/api/v1/devices",
    operation_id = "create_device",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Onboard a device (MQTT credentials or LoRaWAN keys are shown once)",
    request_body = NewDevice,
    responses(
        (status = 201, description = "Onboarded", body = crate::openapi::CreatedDeviceDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A device with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewDevice>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(new.org.clone(), Role::Editor)?;
    match (new.transport, &new.lorawan) {
        (Transport::Mqtt, None) | (Transport::Lorawan, Some(_)) => {}
        (Transport::Mqtt, Some(_)) => {
            return Err(Error::bad(
                "unsupported_field",
                "lorawan settings need transport \"lorawan\"",
            ));
        }
        (Transport::Lorawan, None) => {
            return Err(Error::bad(
                "invalid_lorawan",
                "transport \"lorawan\" needs lorawan settings: activation, dev_eui, dev_addr, nwk_s_key, app_s_key",
            ));
        }
        (Transport::Http, _) => {
            return Err(Error::bad(
                "unsupported_transport",
                "onboard a device that pushes over HTTP as \"mqtt\": its id and password (or a device key) \
                 push to POST /api/v1/devices/{id}/up, and it may use MQTT too",
            ));
        }
    }
    let name = crate::error::display_name(&new.name)?;
    // The document's enum refuses it first; this keeps the rule where the type is.
    Domain::known(new.domain.as_str()).map_err(|e| Error::bad("invalid_domain", e.to_string()))?;
    if let Some(k) = new
        .tags
        .keys()
        .find(|k| RESERVED_TAGS.contains(&k.as_str()))
    {
        return Err(Error::bad(
            "reserved_tag",
            format!(
                "tag {:?} is set by bydata itself (device, domain and org are reserved)",
                k.as_str()
            ),
        ));
    }
    if let Some((k, _)) = new.tags.iter().find(|(_, v)| v.is_empty() || v.len() > 200) {
        return Err(Error::bad(
            "invalid_tag",
            format!(
                "tag {:?} must have a value of 1 to 200 characters",
                k.as_str()
            ),
        ));
    }
    let id = match new.id {
        Some(id) => id,
        None => id_from_name(name)?,
    };
    check_codec_exists(&state, &by, &org, &new.codec).await?;
    let device = Device {
        id,
        name: name.to_owned(),
        transport: new.transport,
        domain: new.domain,
        location: new.location,
        tags: new.tags,
        codec: new.codec,
        created_at: (state.clock)(),
        org,
    };
    let created = device_json(&device);
    let change = |lorawan: Option<&Value>| {
        let mut after = created.clone();
        if let Some(l) = lorawan {
            after["lorawan"] = l.clone();
        }
        Change::new("device.create", format!("device:{}", device.id))
            .org(&device.org)
            .after(after)
    };
    if let Some(lorawan) = &new.lorawan {
        if lorawan.integration.is_some() && lorawan.activation != "network_server" {
            return Err(Error::bad(
                "invalid_lorawan",
                "lorawan.integration belongs to activation \"network_server\": bydata's own ABP and OTAA devices are heard through its gateways",
            ));
        }
        let (device, summary) = match lorawan.activation.as_str() {
            "abp" => {
                let session = abp_session(&device.id, lorawan)?;
                let summary = json!({
                    "activation": "abp",
                    "dev_eui": session.dev_eui,
                    "dev_addr": format!("{:08x}", session.dev_addr),
                });
                let change = change(Some(&summary));
                let device = record(
                    &state,
                    &by,
                    source,
                    change,
                    state.registry.create_lorawan_device(device, session),
                )
                .await?;
                (device, summary)
            }
            "otaa" => {
                let otaa = otaa_device(&device.id, lorawan)?;
                let summary = json!({
                    "activation": "otaa",
                    "dev_eui": otaa.dev_eui,
                    "join_eui": otaa.join_eui,
                });
                let change = change(Some(&summary));
                let device = record(
                    &state,
                    &by,
                    source,
                    change,
                    state.registry.create_otaa_device(device, otaa),
                )
                .await?;
                (device, summary)
            }
            "network_server" => {
                if lorawan.dev_addr.is_some()
                    || lorawan.nwk_s_key.is_some()
                    || lorawan.app_s_key.is_some()
                    || lorawan.join_eui.is_some()
                    || lorawan.app_key.is_some()
                {
                    return Err(Error::bad(
                        "invalid_lorawan",
                        "a device served by an external network server (ChirpStack, The Things Stack) has only a dev_eui here: its keys stay with that network server",
                    ));
                }
                let (dev_eui, integration) = (lorawan.dev_eui, lorawan.integration.clone());
                if let Some(id) = &integration {
                    // Only an integration of the device's own organisation may deliver its uplinks.
                    let found = state.registry.integration(id).await?;
                    if found.is_none_or(|i| i.org != device.org) {
                        return Err(Error::bad(
                            "unknown_integration",
                            format!(
                                "lorawan.integration {id:?} is not an integration of organisation {}: create it there first (POST /api/v1/integrations)",
                                device.org
                            ),
                        ));
                    }
                }
                let summary = json!({"activation": "network_server", "dev_eui": dev_eui,
                                     "integration": integration});
                let change = change(Some(&summary));
                let device = record(
                    &state,
                    &by,
                    source,
                    change,
                    state
                        .registry
                        .create_external_lorawan_device(device, dev_eui, integration),
                )
                .await?;
                (device, summary)
            }
            other => {
                return Err(Error::bad(
                    "invalid_lorawan",
                    format!(
                        "lorawan.activation {other:?}: expected \"abp\", \"otaa\" or \"network_server\""
                    ),
                ));
            }
        };
        tracing::info!(device = %device.id, by = %by.actor, activation = %lorawan.activation, "LoRaWAN device onboarded");
        let mut body = device_json(&device);
        body["lorawan"] = summary;
        if lorawan.activation != "network_server" {
            body["note"] = json!("the keys are stored for the network layer and never shown again");
        }
        return Ok((StatusCode::CREATED, Json(body)));
    }
    let change = change(None);
    let (device, creds) = record(
        &state,
        &by,
        source,
        change,
        state.registry.create_device(device),
    )
    .await?;
    tracing::info!(device = %device.id, by = %by.actor, "device onboarded");
    let mut body = device_json(&device);
    body["mqtt"] = json!(creds);
    body["note"] = json!("the MQTT password is shown only once; bydata keeps only its hash");
    Ok((StatusCode::CREATED, Json(body)))
}

/// A device may only name a codec uploaded in its organisation (and an existing version of it).
async fn check_codec_exists(
    state: &AppState,
    by: &Principal,
    org: &OrgId,
    codec: &Codec,
) -> Result<(), Error> {
    let Codec::Script(r) = codec else {
        return Ok(());
    };
    let (name, version) = (r.name.clone(), r.version);
    let stored = state.registry.codec(&name, version).await?;
    if stored.is_none_or(|c| c.org != *org || !by.sees(&c.org)) {
        return Err(Error::bad(
            "unknown_codec",
            format!("codec {codec} does not exist: upload it first (POST /api/v1/codecs)"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceChange {
    /// `auto`, `senml`, `json`, `cayenne`, `js:{name}` or `js:{name}@{version}`.
    #[schema(value_type = Option<String>, pattern = "^(auto|senml|json|cayenne|js:[a-z0-9][a-z0-9._-]{0,63}(@[0-9]{1,9})?)$")]
    codec: Option<Codec>,
    /// Move the device to this organisation (its history goes with it). Needs the admin role in both.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<OrgId>,
}

/// `PATCH /api/v1/devices/{id}` with `{"codec": "js:elsys@2"}`: new uplinks are decoded with it; stored
/// values stay as they are until re-decoded.
#[utoipa::path(
    patch,
    path = "/api/v1/devices/{id}",
    operation_id = "update_device",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Change a device's codec (new uplinks only; re-decode for stored ones)",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    request_body = DeviceChange,
    responses(
        (status = 200, description = "The changed device", body = crate::openapi::DeviceDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
    crate::body::Body(change): crate::body::Body<DeviceChange>,
) -> Result<Json<Value>, Error> {
    if change.codec.is_none() && change.org.is_none() {
        return Err(Error::bad(
            "empty_change",
            "send codec, org or both: there is nothing to change",
        ));
    }
    let needed = if change.org.is_some() {
        Role::Admin
    } else {
        Role::Editor
    };
    let mut device = visible(&state, &by, &id, needed).await?;
    // Deleted by someone else between the read and the change.
    let gone = || Error::NotFound {
        what: "device",
        id: id.clone(),
    };
    if let Some(org) = change.org.filter(|org| *org != device.org) {
        by.require(&org, Role::Admin, "organisation", &org)?;
        if state.registry.org(&org).await?.is_none() {
            return Err(Error::NotFound {
                what: "organisation",
                id: org.to_string(),
            });
        }
        // Recorded in the organisation the device leaves (the mover is an admin of both).
        let mut after = device.clone();
        after.org = org.clone();
        let change = Change::new("device.move", format!("device:{}", device.id))
            .org(&device.org)
            .before(device_json(&device))
            .after(device_json(&after));
        let moved = record(
            &state,
            &by,
            source,
            change,
            state.registry.move_device(&device.id, org.clone()),
        );
        device = moved.await?.ok_or_else(gone)?;
        tracing::info!(device = %device.id, org = %device.org, by = %by.actor, "device moved");
    }
    if let Some(codec) = change.codec {
        check_codec_exists(&state, &by, &device.org, &codec).await?;
        let mut after = device.clone();
        after.codec = codec.clone();
        let change = Change::new("device.update", format!("device:{}", device.id))
            .org(&device.org)
            .before(device_json(&device))
            .after(device_json(&after));
        let changed = record(
            &state,
            &by,
            source,
            change,
            state.registry.set_codec(&device.id, codec),
        );
        device = changed.await?.ok_or_else(gone)?;
        tracing::info!(device = %device.id, codec = %device.codec, by = %by.actor, "device codec changed");
    }
    Ok(Json(device_json(&device)))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices",
    operation_id = "list_devices",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "devices",
    summary = "List devices",
    responses(
        (status = 200, description = "All devices", body = crate::openapi::DeviceListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let devices: Vec<Value> = state
        .registry
        .devices()
        .await?
        .iter()
        .filter(|d| by.sees_device(&d.id, &d.org))
        .map(device_json)
        .collect();
    Ok(Json(json!({ "devices": devices })))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}",
    operation_id = "get_device",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "devices",
    summary = "One device",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 200, description = "The device", body = crate::openapi::DeviceDoc),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let device = visible(&state, &by, &id, Role::Viewer).await?;
    Ok(Json(device_json(&device)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}",
    operation_id = "delete_device",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Delete a device",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let change = Change::new("device.delete", format!("device:{}", device.id))
        .org(&device.org)
        .before(device_json(&device));
    let id = device.id;
    let existed = record(
        &state,
        &by,
        source,
        change,
        state.registry.delete_device(&id),
    )
    .await?;
    state.refusals.forget(&id);
    crate::error::deleted(existed, "device", id, &by.actor)
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/credentials",
    operation_id = "rotate_device_credentials",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Rotate an MQTT device's password (shown once)",
    params(
        ("id" = String, Path, description = "Device id"),
    ),
    responses(
        (status = 200, description = "New credentials", body = Value),
        (status = 400, description = "Not an MQTT device", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such device", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let device = visible(&state, &by, &id, Role::Editor).await?;
    let id = device.id;
    // MQTT credentials would let a LoRaWAN device in through the broker too: its keys are its identity.
    if device.transport != Transport::Mqtt {
        return Err(Error::bad(
            "not_an_mqtt_device",
            format!("{id} is not an MQTT device; it has no MQTT credentials to rotate"),
        ));
    }
    // The summary says that the password changed, never what it is.
    let change = Change::new("device.rotate_credentials", format!("device:{id}"))
        .org(&device.org)
        .after(json!({"mqtt_password": "replaced"}));
    let creds = record(
        &state,
        &by,
        source,
        change,
        state.registry.rotate_credentials(&id),
    )
    .await?;
    tracing::info!(device = %id, by = %by.actor, "device credentials rotated");
    Ok(Json(json!({
        "id": id,
        "mqtt": creds,
        "note": "the MQTT password is shown only once; the old password no longer works for new connections",
    })))
}
