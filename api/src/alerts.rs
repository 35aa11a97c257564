//! Alerts: rules (`/api/v1/alert-rules`), silences (`/api/v1/silences`), the current alerts and their history
//! (`/api/v1/alerts`). Viewers read, editors write rules and silences; every change is audited. The rules'
//! and silences' checks are `bydata-alerts`'s; the server's evaluator (not the API) moves the alerts.
use crate::audit::Source;
use crate::auth::Principal;
use crate::owned::{self, Names, Owned};
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bydata_alerts::{Alert, RuleBody, SilenceBody, alert_json, parse_alert};
use bydata_schemas::{OrgId, Role, format_rfc3339};
use bydata_store::{StoredAlertRule, StoredSilence};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A rule or silence the alerts crate refused: `400 invalid_body` naming the field.
fn refused(e: bydata_alerts::Error) -> Error {
    match e {
        bydata_alerts::Error::Invalid { field, message } => Error::InvalidBody {
            problems: vec![crate::body::Problem { field, message }],
        },
        bydata_alerts::Error::Store(e) => e.into(),
        other => Error::Internal {
            message: other.to_string(),
        },
    }
}

fn rule_json(r: &StoredAlertRule) -> Value {
    let mut v = r.rule.clone();
    v["id"] = json!(r.id);
    v["org"] = json!(r.org);
    v["created_at"] = json!(format_rfc3339(r.created_at));
    v["updated_at"] = json!(format_rfc3339(r.updated_at));
    v
}

fn silence_json(s: &StoredSilence, now: i64) -> Value {
    let mut v = s.silence.clone();
    v["id"] = json!(s.id);
    v["org"] = json!(s.org);
    v["created_at"] = json!(format_rfc3339(s.created_at));
    if let Ok(w) = bydata_alerts::silence::Window::from_stored(s) {
        v["starts_at"] = json!(format_rfc3339(w.starts_at));
        v["ends_at"] = json!(format_rfc3339(w.ends_at));
        v["active"] = json!(w.active(now));
        if let Some(o) = v.as_object_mut() {
            o.remove("duration");
        }
    }
    v
}

/// The body as stored: without `org` (the row has it).
fn stored_body<T: serde::Serialize>(body: &T) -> Value {
    let mut v = serde_json::to_value(body).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("org");
    }
    v
}

/// Refuses a rule naming a channel its organisation does not have (another organisation's looks like none):
/// `400 invalid_body`, a problem per channel, naming it.
async fn check_channels(state: &AppState, org: &OrgId, body: &RuleBody) -> Result<(), Error> {
    let mut problems = Vec::new();
    for (i, channel) in body.channels.iter().enumerate() {
        let found = state.registry.channel(channel).await?;
        if found.is_none_or(|c| c.org != *org) {
            problems.push(crate::body::Problem {
                field: format!("channels[{i}]"),
                message: format!(
                    "there is no notification channel {channel:?} in organisation {org}: create it first \
                     (POST /api/v1/notification-channels) or leave it out"
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidBody { problems })
    }
}

impl Owned for StoredAlertRule {
    const NAMES: Names = Names {
        what: "alert rule",
        object: "alert_rule",
        create: "alert_rule.create",
        update: "alert_rule.update",
        delete: "alert_rule.delete",
    };
    fn org(&self) -> &OrgId {
        &self.org
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn audit_view(&self, _: i64) -> Value {
        rule_json(self)
    }
    async fn read(state: &AppState, id: &str) -> Result<Option<Self>, Error> {
        Ok(state.registry.alert_rule(id).await?)
    }
}

impl Owned for StoredSilence {
    const NAMES: Names = Names {
        what: "silence",
        object: "silence",
        create: "silence.create",
        update: "silence.update",
        delete: "silence.delete",
    };
    fn org(&self) -> &OrgId {
        &self.org
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn audit_view(&self, now: i64) -> Value {
        silence_json(self, now)
    }
    async fn read(state: &AppState, id: &str) -> Result<Option<Self>, Error> {
        Ok(state.registry.silence(id).await?)
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/alert-rules",
    operation_id = "create_alert_rule",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "alerts",
    summary = "Create an alert rule",
    request_body = RuleBody,
    responses(
        (status = 201, description = "Created", body = Value),
        (status = 400, description = "Invalid body: each problem names its field", body = crate::openapi::ErrorBody),
        (status = 403, description = "Needs the editor role", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_rule(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(body): crate::body::Body<RuleBody>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(body.org.clone(), Role::Editor)?;
    let id = bydata_alerts::rule::new_id();
    bydata_alerts::rule::compile(&id, org.clone(), &body).map_err(refused)?;
    check_channels(&state, &org, &body).await?;
    let now = (state.clock)();
    let rule = StoredAlertRule {
        id: id.clone(),
        org: org.clone(),
        rule: stored_body(&body),
        created_at: now,
        updated_at: now,
    };
    let rule = owned::create(&state, &by, source, rule, |r| {
        state.registry.create_alert_rule(r)
    })
    .await?;
    tracing::info!(rule = %rule.id, by = %by.actor, "alert rule created");
    Ok((StatusCode::CREATED, Json(rule_json(&rule))))
}

#[utoipa::path(
    get,
    path = "/api/v1/alert-rules",
    operation_id = "list_alert_rules",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "alerts",
    summary = "List alert rules",
    responses((status = 200, description = "The rules of the organisations you see", body = Value)),
    security(("bearer" = [])),
)]
pub(crate) async fn list_rules(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let rules: Vec<Value> = state
        .registry
        .alert_rules()
        .await?
        .iter()
        .filter(|r| by.sees(&r.org))
        .map(rule_json)
        .collect();
    Ok(Json(json!({ "rules": rules })))
}

#[utoipa::path(
    get,
    path = "/api/v1/alert-rules/{id}",
    operation_id = "get_alert_rule",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "alerts",
    summary = "One alert rule",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 200, description = "The rule", body = Value),
        (status = 404, description = "No such rule", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_rule(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(rule_json(
        &owned::find::<StoredAlertRule>(&state, &by, &id, Role::Viewer).await?,
    )))
}

#[utoipa::path(
    put,
    path = "/api/v1/alert-rules/{id}",
    operation_id = "replace_alert_rule",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "alerts",
    summary = "Replace an alert rule (its alerts are judged by the new rule at the next pass)",
    params(("id" = String, Path, description = "Rule id")),
    request_body = RuleBody,
    responses(
        (status = 200, description = "Replaced", body = Value),
        (status = 400, description = "Invalid body: each problem names its field", body = crate::openapi::ErrorBody),
        (status = 403, description = "Needs the editor role", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such rule", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn replace_rule(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
    crate::body::Body(body): crate::body::Body<RuleBody>,
) -> Result<Json<Value>, Error> {
    let old: StoredAlertRule = owned::find(&state, &by, &id, Role::Editor).await?;
    if body.org.as_ref().is_some_and(|o| *o != old.org) {
        return Err(Error::bad(
            "invalid_org",
            "a rule stays in its organisation: leave org out, or make a new rule there",
        ));
    }
    bydata_alerts::rule::compile(&id, old.org.clone(), &body).map_err(refused)?;
    check_channels(&state, &old.org, &body).await?;
    let rule = StoredAlertRule {
        rule: stored_body(&body),
        updated_at: (state.clock)(),
        ..old.clone()
    };
    let rule = owned::update(&state, &by, source, &old, rule, |r| {
        state.registry.update_alert_rule(r)
    })
    .await?;
    Ok(Json(rule_json(&rule)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/alert-rules/{id}",
    operation_id = "delete_alert_rule",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "alerts",
    summary = "Delete an alert rule with its alerts",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the editor role", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such rule", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_rule(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let rule: StoredAlertRule = owned::find(&state, &by, &id, Role::Editor).await?;
    owned::delete(
        &state,
        &by,
        source,
        &rule,
        state.registry.delete_alert_rule(&id),
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/silences",
    operation_id = "create_silence",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "alerts",
    summary = "Silence alerts for a maintenance window (their notifications are held back; the alerts still show)",
    request_body = SilenceBody,
    responses(
        (status = 201, description = "Created", body = Value),
        (status = 400, description = "Invalid body: each problem names its field", body = crate::openapi::ErrorBody),
        (status = 403, description = "Needs the editor role", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_silence(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(body): crate::body::Body<SilenceBody>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(body.org.clone(), Role::Editor)?;
    let now = (state.clock)();
    let id = bydata_alerts::silence::new_id();
    let window = bydata_alerts::silence::compile(&id, org.clone(), &body, now).map_err(refused)?;
    if let Some(rule) = &body.rule {
        // Only a rule of the same organisation (another's looks like none).
        let found = state.registry.alert_rule(rule).await?;
        if found.is_none_or(|r| r.org != org) {
            return Err(Error::InvalidBody {
                problems: vec![crate::body::Problem {
                    field: "rule".into(),
                    message: format!("there is no alert rule {rule:?} in organisation {org}"),
                }],
            });
        }
    }
    // Stored with its times resolved, so a `duration` means from when it was made.
    let mut stored = stored_body(&body);
    stored["starts_at"] = json!(format_rfc3339(window.starts_at));
    stored["ends_at"] = json!(format_rfc3339(window.ends_at));
    if let Some(o) = stored.as_object_mut() {
        o.remove("duration");
    }
    let silence = StoredSilence {
        id: id.clone(),
        org: org.clone(),
        silence: stored,
        created_at: now,
    };
    let silence = owned::create(&state, &by, source, silence, |s| {
        state.registry.create_silence(s)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(silence_json(&silence, now))))
}

#[utoipa::path(
    get,
    path = "/api/v1/silences",
    operation_id = "list_silences",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "alerts",
    summary = "List silences (active and past)",
    responses((status = 200, description = "The silences of the organisations you see", body = Value)),
    security(("bearer" = [])),
)]
pub(crate) async fn list_silences(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let now = (state.clock)();
    let silences: Vec<Value> = state
        .registry
        .silences()
        .await?
        .iter()
        .filter(|s| by.sees(&s.org))
        .map(|s| silence_json(s, now))
        .collect();
    Ok(Json(json!({ "silences": silences })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/silences/{id}",
    operation_id = "delete_silence",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "alerts",
    summary = "End a silence (delete it)",
    params(("id" = String, Path, description = "Silence id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the editor role", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such silence", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_silence(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let silence: StoredSilence = owned::find(&state, &by, &id, Role::Editor).await?;
    owned::delete(
        &state,
        &by,
        source,
        &silence,
        state.registry.delete_silence(&id),
    )
    .await
}

/// Filters of the alert list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertFilter {
    /// `pending`, `firing` or `resolved` (several: comma-separated).
    state: Option<String>,
    /// A rule id.
    rule: Option<String>,
    /// A device id.
    device: Option<String>,
    /// Only this organisation's.
    #[param(value_type = Option<String>)]
    org: Option<OrgId>,
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "list_alerts",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "alerts",
    summary = "Current alerts (one per rule and object), newest change first, with counts by state",
    params(AlertFilter),
    responses(
        (status = 200, description = "The alerts and `counts` by state (of the filtered alerts, before `state`)", body = Value),
        (status = 400, description = "Invalid filter", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    by: Principal,
    Query(f): Query<AlertFilter>,
) -> Result<Json<Value>, Error> {
    let states: Option<Vec<bydata_alerts::State>> = match &f.state {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(|s| serde_json::from_value(json!(s.trim())))
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    Error::bad(
                        "invalid_parameter",
                        format!("state={text:?}: use pending, firing or resolved (comma-separated for several)"),
                    )
                })?,
        ),
    };
    let device = f.device.as_ref().map(|d| format!("device:{d}"));
    let mut alerts: Vec<Alert> = state
        .registry
        .alerts()
        .await?
        .iter()
        .filter(|s| by.sees(&s.org) && f.org.as_ref().is_none_or(|o| *o == s.org))
        .filter(|s| f.rule.as_ref().is_none_or(|r| *r == s.rule))
        .filter_map(parse_alert)
        .filter(|a| device.as_ref().is_none_or(|d| *d == a.object))
        .filter(|a| match a.object.strip_prefix("device:") {
            // A key restricted to some devices sees only their alerts.
            Some(d) => bydata_schemas::DeviceId::new(d).is_ok_and(|d| by.sees_device(&d, &a.org)),
            None => true,
        })
        .collect();
    let mut counts: BTreeMap<&str, usize> = bydata_alerts::State::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    for a in &alerts {
        *counts.entry(a.phase.state.as_str()).or_insert(0) += 1;
    }
    if let Some(states) = &states {
        alerts.retain(|a| states.contains(&a.phase.state));
    }
    alerts.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
    let list: Vec<Value> = alerts.iter().map(alert_json).collect();
    Ok(Json(json!({ "alerts": list, "counts": counts })))
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}/history",
    operation_id = "alert_history",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "alerts",
    summary = "An alert's transitions, newest first (at most 200 are kept)",
    params(("id" = String, Path, description = "Alert id: `{rule}:{object}`, e.g. `r0a1b2c3d4e:device:room-1`")),
    responses(
        (status = 200, description = "The alert (if it exists) and its history", body = Value),
        (status = 404, description = "No such rule", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    // The alert belongs to its rule's organisation; an alert that never fired has an empty history.
    let rule_id = id.split(':').next().unwrap_or_default();
    let rule: StoredAlertRule = owned::find(&state, &by, rule_id, Role::Viewer).await?;
    if let Some(d) = id
        .strip_prefix(&format!("{}:device:", rule.id))
        .and_then(|d| bydata_schemas::DeviceId::new(d).ok())
        && !by.sees_device(&d, &rule.org)
    {
        return Err(Error::NotFound {
            what: "alert",
            id: id.chars().take(64).collect(),
        });
    }
    let alert = state
        .registry
        .alert(&id)
        .await?
        .as_ref()
        .and_then(parse_alert)
        .map(|a| alert_json(&a));
    let history = state.registry.alert_history(&id, 200).await?;
    Ok(Json(
        json!({ "id": id, "alert": alert, "history": history }),
    ))
}
