//! Notification channels (`/api/v1/notification-channels`) and the deliveries sent to them
//! (`GET /api/v1/notifications`). The sending is `bydata-notify`'s; these handlers parse, authorise and call.
//!
//! A webhook's signing secret is generated here, answered once at creation, and kept sealed (bydata signs
//! with it); the values of its extra headers are sealed too and never shown. An organisation's admins create,
//! delete and test channels; its viewers list them and see the deliveries.
use crate::audit::Source;
use crate::auth::Principal;
use crate::owned::{self, Names, Owned};
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bydata_notify::{Channel, ChannelId, ChannelTarget, Delivery, NotifyError};
use bydata_schemas::{OrgId, Role, format_rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

const MAX_HEADERS: usize = 10;
const MAX_RECIPIENTS: usize = 20;
/// Headers bydata sets itself: a channel cannot replace them.
const OWN_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewChannel {
    /// A slug; alert rules name the channel by it.
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    id: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// `webhook` or `email`.
    #[schema(value_type = crate::openapi::ChannelKindDoc)]
    kind: String,
    /// Webhook: where to POST (https:// or http://; no credentials in it: use `headers`).
    url: Option<String>,
    /// Webhook: extra headers sent with each request (e.g. `Authorization`); their values are kept sealed.
    headers: Option<BTreeMap<String, String>>,
    /// E-mail: the recipients.
    to: Option<Vec<String>>,
    /// The organisation it belongs to; needed only by someone who may create in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<OrgId>,
}

impl std::fmt::Debug for NewChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewChannel")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn channel_json(c: &Channel) -> Value {
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "org": c.org,
        "kind": c.target.kind().as_str(),
        "created_at": format_rfc3339(c.created_at),
    });
    match &c.target {
        ChannelTarget::Webhook { url, headers } => {
            v["url"] = json!(url);
            v["headers"] = json!(headers);
        }
        ChannelTarget::Email { to } => v["to"] = json!(to),
    }
    v
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "delivery": d.key,
        "org": d.org,
        "channel": d.channel,
        "channel_kind": d.channel_kind.map(|k| k.as_str()),
        "kind": d.kind.as_str(),
        "subject": d.subject,
        "group": d.group,
        "digest": d.digest,
        "count": d.members.len(),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "answer": d.answer,
        "created_at": format_rfc3339(d.created_at),
        "updated_at": format_rfc3339(d.updated_at),
        "next_attempt_at": (!d.status.is_final()).then(|| format_rfc3339(d.next_attempt_at)),
        "delivered_at": d.delivered_at.map(format_rfc3339),
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::bad("invalid_channel", message)
}

/// The target of a new channel, and the values of its headers (in the order of their names).
fn target(new: &mut NewChannel) -> Result<(ChannelTarget, Vec<String>), Error> {
    match new.kind.as_str() {
        "webhook" => {
            if new.to.is_some() {
                return Err(invalid("to belongs to kind \"email\""));
            }
            let url = new
                .url
                .take()
                .ok_or_else(|| invalid("kind \"webhook\" needs url"))?;
            bydata_notify::check_url(&url).map_err(invalid)?;
            let headers = new.headers.take().unwrap_or_default();
            if headers.len() > MAX_HEADERS {
                return Err(invalid(format!("at most {MAX_HEADERS} headers")));
            }
            let mut names = Vec::new();
            let mut values = Vec::new();
            for (name, value) in headers {
                let lower = name.to_ascii_lowercase();
                if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(invalid(format!("headers: {name:?} is not a header name")));
                }
                if OWN_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-bydata-") {
                    return Err(invalid(format!("headers: {name} is set by bydata itself")));
                }
                if value.len() > 4096 || axum::http::HeaderValue::from_str(&value).is_err() {
                    return Err(invalid(format!(
                        "headers: the value of {name} must be at most 4096 visible ASCII characters"
                    )));
                }
                names.push(name);
                values.push(value);
            }
            Ok((
                ChannelTarget::Webhook {
                    url,
                    headers: names,
                },
                values,
            ))
        }
        "email" => {
            if new.url.is_some() || new.headers.is_some() {
                return Err(invalid("url and headers belong to kind \"webhook\""));
            }
            let to = new.to.take().unwrap_or_default();
            if to.is_empty() || to.len() > MAX_RECIPIENTS {
                return Err(invalid(format!(
                    "kind \"email\" needs to: 1 to {MAX_RECIPIENTS} recipients"
                )));
            }
            for address in &to {
                bydata_notify::check_address(address).map_err(invalid)?;
            }
            Ok((ChannelTarget::Email { to }, Vec::new()))
        }
        other => Err(invalid(format!(
            "kind {other:?}: expected \"webhook\" or \"email\""
        ))),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/notification-channels",
    operation_id = "create_notification_channel",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "notifications",
    summary = "Create a notification channel (a webhook's signing secret is answered once)",
    request_body = NewChannel,
    responses(
        (status = 201, description = "Created; a webhook's `signing_secret` is shown only here", body = crate::openapi::ChannelDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A channel with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(mut new): crate::body::Body<NewChannel>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(new.org.clone(), Role::Admin)?;
    let id = ChannelId::new(new.id.clone()).map_err(invalid)?;
    let name = crate::error::display_name(&new.name)?.to_owned();
    let (target, header_values) = target(&mut new)?;
    let channel = Channel {
        id,
        name,
        org,
        target,
        created_at: (state.clock)(),
    };
    let (channel, secret) = owned::create(&state, &by, source, channel, |c| {
        state.registry.create_channel(c, header_values)
    })
    .await?;
    tracing::info!(channel = %channel.id, by = %by.actor, "notification channel created");
    let mut body = channel_json(&channel);
    if let Some(secret) = secret {
        body["signing_secret"] = json!(secret);
        body["note"] = json!(
            "the signing secret is shown only once: the receiver checks X-Bydata-Signature with it"
        );
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/api/v1/notification-channels",
    operation_id = "list_notification_channels",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "notifications",
    summary = "List notification channels (never their secrets)",
    responses(
        (status = 200, description = "The channels the caller may see", body = crate::openapi::ChannelListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let all = state.registry.channels().await?;
    Ok(Json(json!({
        "channels": all.iter().filter(|c| by.sees(&c.org)).map(channel_json).collect::<Vec<_>>(),
    })))
}

impl Owned for Channel {
    const NAMES: Names = Names {
        what: "notification channel",
        object: "channel",
        create: "channel.create",
        update: "channel.update",
        delete: "channel.delete",
    };
    fn org(&self) -> &OrgId {
        &self.org
    }
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn audit_view(&self, _: i64) -> Value {
        channel_json(self)
    }
    async fn read(state: &AppState, id: &str) -> Result<Option<Self>, Error> {
        Ok(match ChannelId::new(id) {
            Ok(_) => state.registry.channel(id).await?,
            Err(_) => None,
        })
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/notification-channels/{id}",
    operation_id = "get_notification_channel",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "notifications",
    summary = "One notification channel",
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel", body = crate::openapi::ChannelDoc),
        (status = 404, description = "No such channel", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(channel_json(
        &owned::find::<Channel>(&state, &by, &id, Role::Viewer).await?,
    )))
}

#[utoipa::path(
    delete,
    path = "/api/v1/notification-channels/{id}",
    operation_id = "delete_notification_channel",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "notifications",
    summary = "Delete a notification channel (messages still due to it fail)",
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such channel", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let channel: Channel = owned::find(&state, &by, &id, Role::Admin).await?;
    let remove = state.registry.delete_channel(channel.id.as_str());
    owned::delete(&state, &by, source, &channel, remove).await
}

#[utoipa::path(
    post,
    path = "/api/v1/notification-channels/{id}/test",
    operation_id = "test_notification_channel",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "notifications",
    summary = "Send a test notification now and report the receiver's answer",
    description = "The test is queued like any notification and attempted at once; the answer is that \
first attempt (`delivered`, or `retrying`/`failed` with `last_error` and the receiver's `answer`). Later \
attempts show in `GET /api/v1/notifications`.",
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The test delivery after its first attempt", body = crate::openapi::DeliveryDoc),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such channel", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn test(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let channel: Channel = owned::find(&state, &by, &id, Role::Admin).await?;
    let delivery = state
        .notify
        .test_channel(&channel, &by.actor.to_string())
        .await
        .map_err(|e| match e {
            NotifyError::Store(e) => Error::from(e),
            other => Error::bad("invalid_notification", other.to_string()),
        })?;
    Ok(Json(delivery_json(&delivery)))
}

const PARAMS: [&str; 4] = ["channel", "status", "org", "limit"];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    operation_id = "list_notifications",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "notifications",
    summary = "Recent notification deliveries, newest first, with their state and last error",
    params(
        ("channel" = Option<String>, Query, description = "Only this channel's"),
        ("status" = Option<String>, Query, description = "Only `queued`, `retrying`, `delivered` or `failed` ones"),
        ("org" = Option<String>, Query, description = "Only this organisation's"),
        ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Deliveries (a digest is one, with its `count`)", body = crate::openapi::DeliveryListDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn notifications(
    State(state): State<AppState>,
    by: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Error> {
    if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(Error::bad(
            "unknown_parameter",
            format!(
                "unknown parameter {unknown:?}; known: {}",
                PARAMS.join(", ")
            ),
        ));
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                Error::bad(
                    "invalid_parameter",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let status = get("status");
    if let Some(s) = status
        && !["queued", "retrying", "delivered", "failed"].contains(&s)
    {
        return Err(Error::bad(
            "invalid_parameter",
            "status must be queued, retrying, delivered or failed",
        ));
    }
    if let Some(org) = get("org") {
        let id = OrgId::new(org).map_err(|_| Error::NotFound {
            what: "organisation",
            id: org.chars().take(64).collect(),
        })?;
        by.require(&id, Role::Viewer, "organisation", &id)?;
    }
    let all = state.registry.deliveries().await?;
    let shown: Vec<Value> = all
        .iter()
        .filter(|d| by.sees(&d.org))
        .filter(|d| get("org").is_none_or(|o| d.org.as_str() == o))
        .filter(|d| get("channel").is_none_or(|c| d.channel == c))
        .filter(|d| status.is_none_or(|s| d.status.as_str() == s))
        .take(limit)
        .map(delivery_json)
        .collect();
    Ok(Json(json!({ "notifications": shown })))
}
