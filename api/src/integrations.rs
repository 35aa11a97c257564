//! Network-server integrations: `POST/GET /api/v1/integrations`, `GET/DELETE /api/v1/integrations/{id}`.
//!
//! `mode: "inbound"`: ChirpStack or The Things Stack publishes into bydata's broker with the MQTT
//! credentials returned once here, under `integrations/{id}/`. `mode: "subscribe"`: bydata connects to the
//! network server's broker (`host`, `port`, `username`, `password`, `topic`) and subscribes to its uplink
//! events. Either way, events reach devices onboarded with their DevEUI.
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::Role;
use bydata_schemas::{IntegrationId, NetworkServer, format_rfc3339};
use bydata_store::{Integration, IntegrationMode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIntegration {
    /// A slug.
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    id: IntegrationId,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// `chirpstack` or `tts`.
    #[schema(value_type = crate::openapi::NetworkServerDoc)]
    network_server: NetworkServer,
    /// `inbound` (the network server publishes into bydata) or `subscribe` (bydata subscribes to `host`).
    #[schema(value_type = crate::openapi::ModeDoc)]
    mode: String,
    host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    port: Option<u16>,
    username: Option<String>,
    password: Option<String>,
    topic: Option<String>,
    client_id: Option<String>,
    /// The organisation it belongs to; needed only by someone who may create in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<bydata_schemas::OrgId>,
}

impl std::fmt::Debug for NewIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIntegration")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn integration_json(state: &AppState, i: &Integration) -> Value {
    let mut v = json!({
        "id": i.id,
        "name": i.name,
        "network_server": i.network_server,
        "org": i.org,
        "created_at": format_rfc3339(i.created_at),
    });
    match &i.mode {
        IntegrationMode::Inbound => {
            v["mode"] = json!("inbound");
            v["mqtt"] = json!({
                "client_id": i.id.mqtt_identity(),
                "username": i.id.mqtt_identity(),
                "topic_prefix": i.id.topic_prefix(),
                "example_topic": example_topic(&i.id, i.network_server),
            });
        }
        IntegrationMode::Subscribe {
            host,
            port,
            username,
            topic,
            client_id,
        } => {
            v["mode"] = json!("subscribe");
            v["client_id"] = json!(client_id);
            v["host"] = json!(host);
            v["port"] = json!(port);
            v["username"] = json!(username);
            v["topic"] = json!(topic);
        }
    }
    v["status"] = state
        .ingest
        .integration_status(&i.id)
        .map(rfc3339_times)
        .unwrap_or(Value::Null);
    v
}

/// The status comes from ingest with Unix-nanosecond times (`last_event`, `last_connected`, an error's
/// `time`); answers show every time in RFC 3339.
fn rfc3339_times(mut status: Value) -> Value {
    fn walk(v: &mut Value) {
        if let Value::Object(map) = v {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::Number(n)
                        if matches!(key.as_str(), "last_event" | "last_connected" | "time") =>
                    {
                        if let Some(t) = n.as_i64() {
                            *value = json!(format_rfc3339(t));
                        }
                    }
                    _ => walk(value),
                }
            }
        }
    }
    walk(&mut status);
    status
}

/// Where the network server should publish, in its own topic template syntax.
fn example_topic(id: &IntegrationId, ns: NetworkServer) -> String {
    let prefix = id.topic_prefix();
    match ns {
        NetworkServer::Chirpstack => {
            format!(
                "{prefix}application/{{{{application_id}}}}/device/{{{{dev_eui}}}}/event/{{{{event}}}}"
            )
        }
        NetworkServer::Tts => {
            format!("{prefix}v3/{{application_id}}@{{tenant_id}}/devices/{{device_id}}/up")
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/integrations",
    operation_id = "create_integration",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "integrations",
    summary = "Create a network-server integration",
    request_body = NewIntegration,
    responses(
        (status = 201, description = "Created", body = crate::openapi::IntegrationDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A integration with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewIntegration>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(new.org.clone(), Role::Editor)?;
    let name = crate::error::display_name(&new.name)?.to_owned();
    let (mode, remote_password) = match new.mode.as_str() {
        "inbound" => {
            if new.host.is_some()
                || new.port.is_some()
                || new.username.is_some()
                || new.password.is_some()
                || new.topic.is_some()
                || new.client_id.is_some()
            {
                return Err(Error::bad(
                    "invalid_integration",
                    "host, port, username, password and topic belong to mode \"subscribe\"; an inbound integration gets its MQTT credentials from bydata",
                ));
            }
            (IntegrationMode::Inbound, None)
        }
        "subscribe" => {
            let host = new
                .host
                .filter(|h| !h.trim().is_empty() && h.len() <= 253)
                .ok_or_else(|| {
                    Error::bad(
                        "invalid_integration",
                        "mode \"subscribe\" needs the network server's MQTT host",
                    )
                })?;
            // The same checks the ingest client makes before connecting: what it would refuse (and log as an
            // error at every start) is refused here, where the admin sees why.
            if let Some(t) = &new.topic
                && (t.is_empty() || t.len() > 512 || !valid_topic_filter(t))
            {
                return Err(Error::bad(
                    "invalid_integration",
                    "topic must be an MQTT topic filter of 1 to 512 characters (`+` and `#` only as a whole level, `#` last)",
                ));
            }
            if new.port == Some(0) {
                return Err(Error::bad("invalid_integration", "port must be 1 to 65535"));
            }
            if new.password.is_some() && new.username.is_none() {
                return Err(Error::bad(
                    "invalid_integration",
                    "a password needs a username: MQTT sends neither without one",
                ));
            }
            if let Some(c) = &new.client_id
                && (c.is_empty() || c.len() > 128)
            {
                return Err(Error::bad(
                    "invalid_integration",
                    "client_id must be 1 to 128 characters",
                ));
            }
            (
                IntegrationMode::Subscribe {
                    host,
                    port: new.port.unwrap_or(1883),
                    username: new.username,
                    topic: new.topic,
                    client_id: new.client_id,
                },
                new.password,
            )
        }
        other => {
            return Err(Error::bad(
                "invalid_integration",
                format!("mode {other:?}: expected \"inbound\" or \"subscribe\""),
            ));
        }
    };
    let integration = Integration {
        id: new.id,
        name,
        network_server: new.network_server,
        mode,
        created_at: (state.clock)(),
        org,
    };
    let change = Change::new(
        "integration.create",
        format!("integration:{}", integration.id),
    )
    .org(&integration.org)
    .after(integration_json(&state, &integration));
    let (integration, password) = record(
        &state,
        &by,
        source,
        change,
        state
            .registry
            .create_integration(integration, remote_password),
    )
    .await?;
    tracing::info!(integration = %integration.id, by = %by.actor, "integration registered");
    let mut body = integration_json(&state, &integration);
    if let Some(password) = password {
        body["mqtt"]["password"] = json!(password);
        body["note"] = json!("the MQTT password is shown only once; bydata keeps only its hash");
    } else {
        body["note"] =
            json!("the remote broker's password is kept to log in and never shown again");
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// An MQTT topic filter: `+` only as a whole level, `#` only as the whole last level.
fn valid_topic_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| {
        (!level.contains('#') || (*level == "#" && i == levels.len() - 1))
            && (!level.contains('+') || *level == "+")
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/integrations",
    operation_id = "list_integrations",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "integrations",
    summary = "List integrations",
    responses(
        (status = 200, description = "All integrations", body = crate::openapi::IntegrationListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let all = state.registry.integrations().await?;
    Ok(Json(json!({
        "integrations": all
            .iter()
            .filter(|i| by.sees(&i.org))
            .map(|i| integration_json(&state, i))
            .collect::<Vec<_>>(),
    })))
}

/// The integration `id` if `by` may act on it with `role` (404 for another organisation's).
async fn find(
    state: &AppState,
    by: &Principal,
    id: &str,
    role: Role,
) -> Result<Integration, Error> {
    let found = match IntegrationId::new(id) {
        Ok(i) => state.registry.integration(&i).await?,
        Err(_) => None,
    };
    by.owned(found, |i| &i.org, role, "integration", id)
}

#[utoipa::path(
    get,
    path = "/api/v1/integrations/{id}",
    operation_id = "get_integration",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "integrations",
    summary = "One integration",
    params(
        ("id" = String, Path, description = "Integration id"),
    ),
    responses(
        (status = 200, description = "The integration", body = crate::openapi::IntegrationDoc),
        (status = 404, description = "No such integration", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let integration = find(&state, &by, &id, Role::Viewer).await?;
    Ok(Json(integration_json(&state, &integration)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/integrations/{id}",
    operation_id = "delete_integration",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "integrations",
    summary = "Delete an integration",
    params(
        ("id" = String, Path, description = "Integration id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such integration", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let integration = find(&state, &by, &id, Role::Editor).await?;
    let change = Change::new(
        "integration.delete",
        format!("integration:{}", integration.id),
    )
    .org(&integration.org)
    .before(integration_json(&state, &integration));
    let id = integration.id;
    let existed = record(
        &state,
        &by,
        source,
        change,
        state.registry.delete_integration(&id),
    )
    .await?;
    crate::error::deleted(existed, "integration", id, &by.actor)
}

#[cfg(test)]
mod tests {
    use super::valid_topic_filter;

    #[test]
    fn topic_filters_follow_mqtt() {
        for ok in ["a/b", "+/b", "a/#", "#", "application/+/device/+/event/up"] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in ["a/#/b", "a+/b", "a/b#", "##"] {
            assert!(!valid_topic_filter(bad), "{bad}");
        }
    }
}
