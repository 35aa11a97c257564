//! The audit log: every change made through the API is recorded — who, what, which object, when, from where,
//! and what it looked like before and after (the API's public shapes, so never a secret). A handler wraps its
//! mutating registry call in [`record`]; the record is committed in the registry transaction that makes the
//! change (`bydata_store::audit`), so neither exists without the other. `GET /api/v1/audit` reads it back: an
//! organisation's admins see its entries, a platform admin every entry.
use crate::auth::{Actor, Principal};
use crate::{AppState, ClientAddr, Error};
use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use bydata_schemas::{OrgId, Role, format_rfc3339, parse_rfc3339};
use bydata_store::{AuditEntry, AuditFilter};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;

/// The client's address (absent when the router is called without the server, as in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ClientAddr>()
                .map(|ClientAddr(ip)| *ip),
        ))
    }
}

/// One change as a handler describes it.
#[derive(Debug)]
pub(crate) struct Change {
    /// `device.create`, `token.revoke`, …
    pub(crate) action: &'static str,
    /// `device:room-1`, …
    pub(crate) object: String,
    /// The organisation the object belongs to (`None` for platform objects).
    pub(crate) org: Option<OrgId>,
    pub(crate) before: Value,
    pub(crate) after: Value,
}

impl Change {
    pub(crate) fn new(action: &'static str, object: impl std::fmt::Display) -> Self {
        Self {
            action,
            object: object.to_string(),
            org: None,
            before: Value::Null,
            after: Value::Null,
        }
    }
    pub(crate) fn org(mut self, org: &OrgId) -> Self {
        self.org = Some(org.clone());
        self
    }
    pub(crate) fn before(mut self, before: Value) -> Self {
        self.before = before;
        self
    }
    pub(crate) fn after(mut self, after: Value) -> Self {
        self.after = after;
        self
    }

    fn entry(self, state: &AppState, by: &Principal, source: Source) -> AuditEntry {
        let actor_name = match &by.actor {
            Actor::Anonymous => String::new(),
            Actor::Key { name, .. } | Actor::Person { name, .. } => name.clone(),
            Actor::Device { id, .. } => id.to_string(),
        };
        AuditEntry {
            seq: 0,
            time: (state.clock)(),
            actor: by.actor.to_string(),
            actor_name,
            org: self.org,
            action: self.action.to_owned(),
            object: self.object,
            source: source.0.map(|ip| ip.to_string()),
            before: self.before,
            after: self.after,
        }
    }
}

/// Runs `change_it` (the registry call that makes `change`) so that the change's record is committed with it.
pub(crate) async fn record<F: std::future::Future>(
    state: &AppState,
    by: &Principal,
    source: Source,
    change: Change,
    change_it: F,
) -> F::Output {
    bydata_store::audit::scope(change.entry(state, by, source), change_it).await
}

/// Records a change made outside the registry (files published), after it is made.
pub(crate) async fn append(
    state: &AppState,
    by: &Principal,
    source: Source,
    change: Change,
) -> Result<(), Error> {
    state
        .registry
        .append_audit(change.entry(state, by, source))
        .await?;
    Ok(())
}

const PARAMS: [&str; 8] = [
    "before", "limit", "org", "actor", "action", "object", "from", "to",
];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "audit_log",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "audit",
    summary = "The audit log: every change, newest first (an organisation's admins see its entries)",
    params(
        ("before" = Option<u64>, Query, description = "Only entries older than this seq (the previous page's `next`)"),
        ("limit" = Option<usize>, Query, description = "At most this many entries (default 100, at most 1000)"),
        ("org" = Option<String>, Query, description = "Only this organisation's entries"),
        ("actor" = Option<String>, Query, description = "Only this actor's (`key:ID`, `person:SUBJECT`)"),
        ("action" = Option<String>, Query, description = "Only actions starting with this (`device.`, `token.revoke`)"),
        ("object" = Option<String>, Query, description = "Only this object (`device:room-1`)"),
        ("from" = Option<String>, Query, description = "Only entries at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, description = "Only entries before this RFC 3339 time"),
    ),
    responses(
        (status = 200, description = "Entries, newest first, and `next` (the cursor of the next page, or null)", body = Value),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
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
    let number = |k: &str| -> Result<Option<u64>, Error> {
        get(k)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    Error::bad("invalid_parameter", format!("{k} must be a whole number"))
                })
            })
            .transpose()
    };
    let time = |k: &str| -> Result<Option<i64>, Error> {
        get(k)
            .map(|v| {
                parse_rfc3339(v).map_err(|_| {
                    Error::bad(
                        "invalid_time",
                        format!("{k} must be an RFC 3339 time such as 2027-06-30T00:00:00Z"),
                    )
                })
            })
            .transpose()
    };
    let limit = number("limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::bad(
            "invalid_parameter",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let org = get("org")
        .map(|o| {
            OrgId::new(o).map_err(|_| Error::NotFound {
                what: "organisation",
                id: o.chars().take(64).collect(),
            })
        })
        .transpose()?;
    if let Some(org) = &org {
        by.require(org, Role::Admin, "organisation", org)?;
    }
    // A platform admin sees every entry (platform ones too); others the organisations they administer.
    let orgs = (!by.is_platform_admin()).then(|| {
        by.orgs
            .iter()
            .filter(|(_, r)| **r == Role::Admin)
            .map(|(o, _)| o.clone())
            .collect()
    });
    let filter = AuditFilter {
        before: number("before")?,
        orgs,
        org,
        actor: get("actor").map(str::to_owned),
        action: get("action").map(str::to_owned),
        object: get("object").map(str::to_owned),
        from: time("from")?,
        to: time("to")?,
        limit,
    };
    let entries = state.registry.audit(filter).await?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let entries: Vec<Value> = entries.iter().map(entry_json).collect();
    Ok(Json(json!({ "entries": entries, "next": next })))
}

fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "seq": e.seq,
        "time": format_rfc3339(e.time),
        "actor": e.actor,
        "actor_name": e.actor_name,
        "org": e.org,
        "action": e.action,
        "object": e.object,
        "source": e.source,
        "before": e.before,
        "after": e.after,
    })
}
