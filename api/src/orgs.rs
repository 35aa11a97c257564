//! Organisations (`/api/v1/orgs`) and their members: a platform admin creates and deletes organisations;
//! everyone sees the organisations they belong to; an organisation's admins manage its members (people, by
//! the e-mail or subject their identity provider gives; keys are `/api/v1/tokens`).
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_schemas::{OrgId, Role, format_rfc3339};
use bydata_store::{Member, Organisation};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrg {
    /// A slug (`buildings`, `traffic`, `au-campus`).
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    id: OrgId,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

fn org_json(o: &Organisation, role: Option<Role>) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "created_at": format_rfc3339(o.created_at),
        "your_role": role,
    })
}

/// The organisation `id` if `by` belongs to it (404 otherwise, whether or not it exists).
async fn find(
    state: &AppState,
    by: &Principal,
    id: &str,
    role: Role,
) -> Result<Organisation, Error> {
    let not_found = || Error::NotFound {
        what: "organisation",
        id: id.chars().take(64).collect(),
    };
    let id = OrgId::new(id).map_err(|_| not_found())?;
    by.require(&id, role, "organisation", &id)?;
    state.registry.org(&id).await?.ok_or_else(not_found)
}

#[utoipa::path(
    post,
    path = "/api/v1/orgs",
    operation_id = "create_org",
    extensions(("x-bydata-policy" = json!("platform"))),
    tag = "organisations",
    summary = "Create an organisation (platform admins)",
    request_body = NewOrg,
    responses(
        (status = 201, description = "Created", body = Value),
        (status = 400, description = "Invalid body", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not a platform admin", body = crate::openapi::ErrorBody),
        (status = 409, description = "The id is taken", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewOrg>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let name = crate::error::display_name(&new.name)?.to_owned();
    let org = Organisation {
        id: new.id,
        name,
        created_at: (state.clock)(),
    };
    // Organisations are the platform's objects: their entries have no organisation.
    let change = Change::new("org.create", format!("org:{}", org.id)).after(org_json(&org, None));
    let org = record(&state, &by, source, change, state.registry.create_org(org)).await?;
    tracing::info!(org = %org.id, by = %by.actor, "organisation created");
    Ok((
        StatusCode::CREATED,
        Json(org_json(&org, by.role_in(&org.id))),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs",
    operation_id = "list_orgs",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "organisations",
    summary = "The organisations you belong to, with your role (platform principals: all)",
    responses((status = 200, description = "Organisations", body = Value)),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let orgs: Vec<Value> = state
        .registry
        .orgs()
        .await?
        .iter()
        .filter_map(|o| by.role_in(&o.id).map(|role| org_json(o, Some(role))))
        .collect();
    Ok(Json(json!({ "orgs": orgs })))
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}",
    operation_id = "get_org",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "organisations",
    summary = "One organisation you belong to",
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "The organisation", body = Value),
        (status = 404, description = "Not an organisation of yours", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let org = find(&state, &by, &id, Role::Viewer).await?;
    Ok(Json(org_json(&org, by.role_in(&org.id))))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{id}",
    operation_id = "delete_org",
    extensions(("x-bydata-policy" = json!("platform"))),
    tag = "organisations",
    summary = "Delete an empty organisation (platform admins)",
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not a platform admin", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such organisation", body = crate::openapi::ErrorBody),
        (status = 400, description = "It still holds devices, gateways, codecs, buildings, datasets, integrations or keys (`org_not_empty`; the message counts them), or it is the default organisation", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let org = find(&state, &by, &id, Role::Admin).await?;
    if org.id.is_default() {
        return Err(Error::bad(
            "default_org",
            "the default organisation cannot be deleted",
        ));
    }
    let held = state.registry.org_contents(&org.id).await?;
    if !held.is_empty() {
        return Err(Error::BadRequest {
            code: "org_not_empty",
            message: format!(
                "organisation {} still holds {} devices, {} gateways, {} codecs, {} buildings, {} datasets, {} integrations and {} keys: move or delete them first",
                org.id,
                held.devices,
                held.gateways,
                held.codecs,
                held.buildings,
                held.datasets,
                held.integrations,
                held.keys
            ),
        });
    }
    let change = Change::new("org.delete", format!("org:{}", org.id)).before(org_json(&org, None));
    let existed = record(
        &state,
        &by,
        source,
        change,
        state.registry.delete_org(&org.id),
    )
    .await?;
    crate::error::deleted(existed, "organisation", org.id, &by.actor)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberRole {
    #[schema(value_type = crate::openapi::RoleDoc)]
    role: Role,
}

/// A member as the API shows them, or `null`: the audit log's "before".
async fn existing_member(state: &AppState, org: &OrgId, member: &str) -> Result<Value, Error> {
    Ok(state
        .registry
        .members()
        .await?
        .iter()
        .find(|m| m.org == *org && m.member == member)
        .map_or(Value::Null, member_json))
}

fn member_json(m: &Member) -> Value {
    json!({"member": m.member, "org": m.org, "role": m.role, "added_at": format_rfc3339(m.added_at)})
}

/// A member as stored: e-mail addresses in lower case (a login matches either its e-mail or its subject).
fn member_key(raw: &str) -> Result<String, Error> {
    let m = raw.trim();
    if m.is_empty() || m.len() > 256 || m.chars().any(char::is_control) {
        return Err(Error::bad(
            "invalid_member",
            "a member is an e-mail address or an identity provider subject of 1 to 256 characters",
        ));
    }
    Ok(if m.contains('@') {
        m.to_lowercase()
    } else {
        m.to_owned()
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/members",
    operation_id = "list_members",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "organisations",
    summary = "An organisation's members (its admins)",
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "Members", body = Value),
        (status = 404, description = "Not an organisation of yours", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn members(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let org = find(&state, &by, &id, Role::Admin).await?;
    let members: Vec<Value> = state
        .registry
        .members()
        .await?
        .iter()
        .filter(|m| m.org == org.id)
        .map(member_json)
        .collect();
    Ok(Json(json!({ "members": members })))
}

#[utoipa::path(
    put,
    path = "/api/v1/orgs/{id}/members/{member}",
    operation_id = "put_member",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "organisations",
    summary = "Add a member (an e-mail address or identity-provider subject) or change their role",
    params(
        ("id" = String, Path, description = "Organisation id"),
        ("member" = String, Path, description = "E-mail address or subject"),
    ),
    request_body = MemberRole,
    responses(
        (status = 200, description = "The membership", body = Value),
        (status = 404, description = "Not an organisation of yours", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn put_member(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path((id, member)): Path<(String, String)>,
    crate::body::Body(change): crate::body::Body<MemberRole>,
) -> Result<Json<Value>, Error> {
    let org = find(&state, &by, &id, Role::Admin).await?;
    let member = Member {
        org: org.id,
        member: member_key(&member)?,
        role: change.role,
        added_at: (state.clock)(),
    };
    let before = existing_member(&state, &member.org, &member.member).await?;
    let change = Change::new(
        "member.put",
        format!("member:{}/{}", member.org, member.member),
    )
    .org(&member.org)
    .before(before)
    .after(member_json(&member));
    let member = record(
        &state,
        &by,
        source,
        change,
        state.registry.put_member(member),
    )
    .await?;
    tracing::info!(org = %member.org, member = %member.member, role = %member.role, by = %by.actor, "member set");
    Ok(Json(member_json(&member)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{id}/members/{member}",
    operation_id = "delete_member",
    extensions(("x-bydata-policy" = json!("admin"))),
    tag = "organisations",
    summary = "Remove a member",
    params(
        ("id" = String, Path, description = "Organisation id"),
        ("member" = String, Path, description = "E-mail address or subject"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such member", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_member(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let org = find(&state, &by, &id, Role::Admin).await?;
    let member = member_key(&member)?;
    let before = existing_member(&state, &org.id, &member).await?;
    let change = Change::new("member.delete", format!("member:{}/{member}", org.id))
        .org(&org.id)
        .before(before);
    let existed = record(
        &state,
        &by,
        source,
        change,
        state.registry.remove_member(&org.id, &member),
    )
    .await?;
    crate::error::deleted(existed, "member", member, &by.actor)
}
