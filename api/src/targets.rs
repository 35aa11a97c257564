//! Data targets: `POST/GET /api/v1/targets`, `GET/PATCH/DELETE /api/v1/targets/{id}`, its delivery log
//! (`…/deliveries`), its dead letters (`…/dead-letters`, `…/dead-letters/replay`) and a test message
//! (`…/test`). An organisation's editors and admins change them, its viewers read them; every change is
//! audited. Secrets (a bearer token, a password, extra headers' values) are kept sealed and never answered.
//!
//! The forwarding itself is the crate `bydata-forward`'s, reached through [`TargetHooks`] (the binary wires
//! it), so the API holds no forwarding state.
mod draft;

use crate::audit::{Source, record};
use crate::auth::Principal;
use crate::owned::{self, Names, Owned};
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bydata_schemas::{OrgId, Role, TargetId, UnixNanos, format_rfc3339};
use bydata_store::{Target, TargetDelivery, TargetSecrets, TargetStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

pub(crate) use draft::TargetBody;

/// A future the hooks answer with.
pub type HookFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// What only the forwarder can do. Implemented in the binary over `bydata-forward`.
pub trait TargetHooks: Send + Sync {
    /// Whether the settings can be used (URL, headers, topic template): `Err` says what to change.
    fn check(&self, target: &Target, secrets: &TargetSecrets) -> Result<(), String>;
    /// The journal position a target created now starts from.
    fn journal_end(&self) -> u64;
    /// A target was created, changed or deleted (`replay`: its dead letters are to be sent again).
    fn changed(&self, id: &TargetId, replay: bool);
    /// The target's status (its worker's state, its cursor's lag, last success and error).
    fn status(&self, target: Target) -> HookFuture<TargetStatus>;
    /// Sends a test message now and answers how it went (logged with the target's deliveries).
    fn test(&self, target: Target) -> HookFuture<TargetDelivery>;
}

/// A data target as answered: its settings (never a secret), and `status`.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct TargetDoc {
    id: String,
    name: String,
    org: String,
    /// `http` or `mqtt`.
    kind: String,
    url: Option<String>,
    /// `{"type": "none" | "bearer" | "basic", "username"}`.
    auth: Option<Value>,
    /// The extra headers' names.
    headers: Option<Vec<String>>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
    username: Option<String>,
    client_id: Option<String>,
    topic: Option<String>,
    filter: Value,
    batch_size: u32,
    max_delay_ms: u64,
    max_attempts: u32,
    enabled: bool,
    created_at: String,
    updated_at: String,
    /// `state` (starting, idle, sending, retrying, disabled, stopped), `cursor`, `lag_entries`,
    /// `lag_bytes`, `lag_seconds`, `attempts`, `next_attempt_at`, `dead_letters`, `last_success`,
    /// `last_error`, `reason`.
    status: Value,
}

#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct TargetListDoc {
    targets: Vec<TargetDoc>,
}

/// Delivery attempts, newest first: `time`, `kind` (batch, replay, test), `outcome` (delivered, failed,
/// dead_lettered), `batch`, `readings`, `attempt`, `status`, `answer` (the receiver's, cut), `reason`,
/// `duration_ms`.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct DeliveriesDoc {
    deliveries: Vec<Value>,
}

/// Dead letters, oldest first: `id`, `created_at`, `batch`, `readings` (as sent), `first_position`,
/// `end_position`, `attempts`, `status`, `reason`, `replay`.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct DeadLettersDoc {
    total: usize,
    dead_letters: Vec<Value>,
}

/// Which dead letters to send again (absent: all of them).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    ids: Option<Vec<u64>>,
}

#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct CountDoc {
    /// How many dead letters.
    count: usize,
}

#[derive(utoipa::ToSchema, serde::Serialize)]
pub(crate) struct TestDoc {
    /// The attempt, as in the delivery log.
    delivery: Value,
}

fn time(t: UnixNanos) -> Value {
    json!(format_rfc3339(t))
}

fn delivery_json(d: &TargetDelivery) -> Value {
    let mut v = json!(d);
    v["time"] = time(d.time);
    v
}

fn status_json(s: &TargetStatus) -> Value {
    let mut v = json!(s);
    if let Some(t) = s.next_attempt_at {
        v["next_attempt_at"] = time(t);
    }
    if let Some(d) = &s.last_success {
        v["last_success"] = delivery_json(d);
    }
    if let Some(d) = &s.last_error {
        v["last_error"] = delivery_json(d);
    }
    v
}

/// The target's public shape (no secret is in `Target`), without its status.
fn target_json(t: &Target) -> Value {
    let mut v = json!(t);
    v["created_at"] = time(t.created_at);
    v["updated_at"] = time(t.updated_at);
    v
}

async fn with_status(state: &AppState, t: &Target) -> Value {
    let mut v = target_json(t);
    v["status"] = match state.targets.status(t.clone()).await {
        Ok(s) => status_json(&s),
        Err(e) => {
            tracing::warn!(target = %t.id, error = %e, "target status unavailable");
            Value::Null
        }
    };
    v
}

fn check(state: &AppState, t: &Target, secrets: &TargetSecrets) -> Result<(), Error> {
    state
        .targets
        .check(t, secrets)
        .map_err(|reason| Error::bad("invalid_target", reason))
}

#[utoipa::path(
    post,
    path = "/api/v1/targets",
    operation_id = "create_target",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "targets",
    summary = "Create a data target (HTTP or MQTT) that readings are forwarded to",
    request_body = TargetBody,
    responses(
        (status = 201, description = "Created", body = TargetDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The role may not do this (needs editor)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A target with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(body): crate::body::Body<TargetBody>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(body.org.clone(), Role::Editor)?;
    let cursor = match body.start.as_deref() {
        None | Some("now") => state.targets.journal_end(),
        Some("beginning") => 0,
        Some(other) => {
            return Err(Error::bad(
                "invalid_target",
                format!("start {other:?}: expected \"now\" or \"beginning\""),
            ));
        }
    };
    let (target, secrets) = draft::create(body, org, (state.clock)())?;
    check(&state, &target, &secrets)?;
    let target = owned::create(&state, &by, source, target, |t| {
        state.registry.create_target(t, secrets, cursor)
    })
    .await?;
    state.targets.changed(&target.id, false);
    tracing::info!(target = %target.id, kind = target.kind.name(), by = %by.actor, "data target created");
    let mut body = with_status(&state, &target).await;
    body["note"] =
        json!("secrets (token, password, header values) are kept sealed and never shown again");
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/api/v1/targets",
    operation_id = "list_targets",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "targets",
    summary = "List data targets, with their status",
    responses(
        (status = 200, description = "The targets of the organisations the caller sees", body = TargetListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let mut out = Vec::new();
    for t in state.registry.targets().await? {
        if by.sees(&t.org) {
            out.push(with_status(&state, &t).await);
        }
    }
    Ok(Json(json!({"targets": out})))
}

impl Owned for Target {
    const NAMES: Names = Names {
        what: "target",
        object: "target",
        create: "target.create",
        update: "target.update",
        delete: "target.delete",
    };
    fn org(&self) -> &OrgId {
        &self.org
    }
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn audit_view(&self, _: i64) -> Value {
        target_json(self)
    }
    async fn read(state: &AppState, id: &str) -> Result<Option<Self>, Error> {
        Ok(match TargetId::new(id) {
            Ok(i) => state.registry.target(&i).await?,
            Err(_) => None,
        })
    }
}

/// The target `id` if `by` may act on it with `role` (404 for another organisation's).
async fn find(state: &AppState, by: &Principal, id: &str, role: Role) -> Result<Target, Error> {
    owned::find(state, by, id, role).await
}

#[utoipa::path(
    get,
    path = "/api/v1/targets/{id}",
    operation_id = "get_target",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "targets",
    summary = "One data target, with its status (lag, last success, last error)",
    params(("id" = String, Path, description = "Target id")),
    responses(
        (status = 200, description = "The target", body = TargetDoc),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let target = find(&state, &by, &id, Role::Viewer).await?;
    Ok(Json(with_status(&state, &target).await))
}

#[utoipa::path(
    patch,
    path = "/api/v1/targets/{id}",
    operation_id = "update_target",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "targets",
    summary = "Change a data target (its cursor, log and dead letters stay; secrets left out are kept)",
    params(("id" = String, Path, description = "Target id")),
    request_body = TargetBody,
    responses(
        (status = 200, description = "The changed target", body = TargetDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The role may not do this (needs editor)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
    crate::body::Body(body): crate::body::Body<TargetBody>,
) -> Result<Json<Value>, Error> {
    let before = find(&state, &by, &id, Role::Editor).await?;
    let secrets = state
        .registry
        .target_secrets(&before.id)
        .await?
        .unwrap_or_default();
    let (target, new_secrets) =
        draft::change(before.clone(), secrets.clone(), body, (state.clock)())?;
    check(&state, &target, new_secrets.as_ref().unwrap_or(&secrets))?;
    let changed = owned::update(&state, &by, source, &before, target, |t| {
        state.registry.update_target(t, new_secrets)
    })
    .await?;
    state.targets.changed(&changed.id, false);
    Ok(Json(with_status(&state, &changed).await))
}

#[utoipa::path(
    delete,
    path = "/api/v1/targets/{id}",
    operation_id = "delete_target",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "targets",
    summary = "Delete a data target with its cursor, delivery log and dead letters",
    params(("id" = String, Path, description = "Target id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not do this (needs editor)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let target = find(&state, &by, &id, Role::Editor).await?;
    let answer = owned::delete(
        &state,
        &by,
        source,
        &target,
        state.registry.delete_target(&target.id),
    )
    .await;
    // Told even when the delete failed: the forwarder re-reads the target and finds whatever is true.
    state.targets.changed(&target.id, false);
    answer
}

/// `?limit=` (1 to `max`, default `default`).
fn limit(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, Error> {
    match params.get("limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::bad(
                    "invalid_parameter",
                    format!("limit must be a number from 1 to {max}"),
                )
            }),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/targets/{id}/deliveries",
    operation_id = "list_target_deliveries",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "targets",
    summary = "The target's delivery log: the last attempts with the receiver's answer, newest first",
    params(
        ("id" = String, Path, description = "Target id"),
        ("limit" = Option<usize>, Query, description = "Most attempts answered (1 to 1000, default 100)"),
    ),
    responses(
        (status = 200, description = "The attempts", body = DeliveriesDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Error> {
    let target = find(&state, &by, &id, Role::Viewer).await?;
    let n = limit(&params, 100, 1000)?;
    let log = state.registry.target_deliveries(&target.id, n).await?;
    Ok(Json(json!({
        "deliveries": log.iter().map(delivery_json).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/targets/{id}/dead-letters",
    operation_id = "list_target_dead_letters",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "targets",
    summary = "The batches the receiver refused for good, with their readings, oldest first",
    params(
        ("id" = String, Path, description = "Target id"),
        ("limit" = Option<usize>, Query, description = "Most dead letters answered (1 to 1000, default 100)"),
    ),
    responses(
        (status = 200, description = "The dead letters", body = DeadLettersDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Error> {
    let target = find(&state, &by, &id, Role::Viewer).await?;
    let n = limit(&params, 100, 1000)?;
    let (total, letters) = state.registry.dead_letters(&target.id, n).await?;
    let letters: Vec<Value> = letters
        .iter()
        .map(|l| {
            let mut v = json!(l);
            v["created_at"] = time(l.created_at);
            v
        })
        .collect();
    Ok(Json(json!({"total": total, "dead_letters": letters})))
}

#[utoipa::path(
    post,
    path = "/api/v1/targets/{id}/dead-letters/replay",
    operation_id = "replay_target_dead_letters",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "targets",
    summary = "Send dead letters again (all, or `ids`): each is sent once, and stays a dead letter if refused again",
    params(("id" = String, Path, description = "Target id")),
    request_body(content = ReplayBody, description = "`{\"ids\": [1, 2]}`, or no body for all"),
    responses(
        (status = 202, description = "Queued for sending; the delivery log tells how it went", body = CountDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The role may not do this (needs editor)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
    crate::body::OptionalBody(body): crate::body::OptionalBody<ReplayBody>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let target = find(&state, &by, &id, Role::Editor).await?;
    let ids = body.and_then(|b| b.ids);
    let change = owned::change("target.replay", &target).after(json!({"ids": ids}));
    let count = record(
        &state,
        &by,
        source,
        change,
        state.registry.replay_dead_letters(&target.id, ids),
    )
    .await?;
    state.targets.changed(&target.id, true);
    Ok((StatusCode::ACCEPTED, Json(json!({"count": count}))))
}

#[utoipa::path(
    delete,
    path = "/api/v1/targets/{id}/dead-letters",
    operation_id = "discard_target_dead_letters",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "targets",
    summary = "Discard the target's dead letters (their uplinks stay in the journal)",
    params(("id" = String, Path, description = "Target id")),
    responses(
        (status = 200, description = "How many were discarded", body = CountDoc),
        (status = 403, description = "The role may not do this (needs editor)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn discard(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let target = find(&state, &by, &id, Role::Editor).await?;
    let change = owned::change("target.discard", &target);
    let count = record(
        &state,
        &by,
        source,
        change,
        state.registry.discard_dead_letters(&target.id),
    )
    .await?;
    Ok(Json(json!({"count": count})))
}

#[utoipa::path(
    post,
    path = "/api/v1/targets/{id}/test",
    operation_id = "test_target",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "targets",
    summary = "Send a test message (a reading from device `bydata-test`, marked `\"test\": true`) and answer how it went",
    params(("id" = String, Path, description = "Target id")),
    responses(
        (status = 200, description = "The attempt (delivered or failed, with the receiver's answer)", body = TestDoc),
        (status = 403, description = "The role may not do this (needs editor)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such target", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn test(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let target = find(&state, &by, &id, Role::Editor).await?;
    let delivery = state
        .targets
        .test(target)
        .await
        .map_err(|message| Error::Internal { message })?;
    Ok(Json(json!({"delivery": delivery_json(&delivery)})))
}

/// Hooks for a bydata that does not forward (the router's own tests): settings are accepted, a test message
/// fails saying so.
#[derive(Debug)]
pub struct NoForwarding;

impl TargetHooks for NoForwarding {
    fn check(&self, _: &Target, _: &TargetSecrets) -> Result<(), String> {
        Ok(())
    }
    fn journal_end(&self) -> u64 {
        0
    }
    fn changed(&self, _: &TargetId, _: bool) {}
    fn status(&self, _: Target) -> HookFuture<TargetStatus> {
        Box::pin(async { Err("forwarding is not running".to_owned()) })
    }
    fn test(&self, target: Target) -> HookFuture<TargetDelivery> {
        Box::pin(async move {
            Ok(TargetDelivery {
                seq: 0,
                time: 0,
                kind: bydata_store::DeliveryKind::Test,
                outcome: bydata_store::DeliveryOutcome::Failed,
                batch: format!("{}:test-0", target.id),
                readings: 1,
                attempt: 1,
                status: None,
                answer: None,
                reason: Some("forwarding is not running".into()),
                duration_ms: 0,
            })
        })
    }
}
