//! Open datasets: `POST/GET /api/v1/datasets`, `GET/DELETE /api/v1/datasets/{id}`, and
//! `POST /api/v1/datasets/{id}/publish`. A dataset is a selection of series, an aggregation, DCAT-AP-DK
//! metadata and privacy rules; one marked as containing personal data is refused unless its rules meet the
//! configured minimums, and the refusal names every rule that falls short.
//!
//! Thin handlers: the definition, its rules and publishing are `bydata_opendata`'s.
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bydata_opendata::{Dataset, NewDataset};
use bydata_schemas::{Role, format_rfc3339};
use bydata_store::StoredDataset;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

#[utoipa::path(
    post,
    path = "/api/v1/datasets",
    operation_id = "create_dataset",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "datasets",
    summary = "Define an open dataset (refused when its privacy rules fall short)",
    params(TargetOrg),
    request_body = NewDataset,
    responses(
        (status = 201, description = "Stored", body = Object),
        (status = 400, description = "Invalid definition, or a personal-data dataset whose rules fall short (each named)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A dataset with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    axum::extract::Query(target): axum::extract::Query<TargetOrg>,
    crate::body::Body(new): crate::body::Body<NewDataset>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(target.org, Role::Editor)?;
    new.check(&state.opendata.settings().minimums)?;
    let definition = serde_json::to_value(&new).map_err(|e| Error::Internal {
        message: e.to_string(),
    })?;
    let stored = StoredDataset {
        id: new.id.clone(),
        definition,
        created_at: (state.clock)(),
        org,
    };
    let change = Change::new("dataset.create", format!("dataset:{}", stored.id))
        .org(&stored.org)
        .after(dataset_json(&stored));
    let stored = record(
        &state,
        &by,
        source,
        change,
        state.registry.create_dataset(stored),
    )
    .await?;
    tracing::info!(dataset = %stored.id, by = %by.actor, "dataset defined");
    Ok((StatusCode::CREATED, Json(dataset_json(&stored))))
}

/// `?org=`: the organisation a new dataset belongs to, needed only by someone who may create in several.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetOrg {
    /// The organisation, needed only by someone who may create in several.
    #[param(value_type = Option<String>)]
    org: Option<bydata_schemas::OrgId>,
}

fn dataset_json(d: &StoredDataset) -> Value {
    let mut v = d.definition.clone();
    v["org"] = json!(d.org);
    v["created_at"] = json!(format_rfc3339(d.created_at));
    v
}

/// The dataset `id` if `by` may act on it with `role` (404 for another organisation's).
async fn find(
    state: &AppState,
    by: &Principal,
    id: &str,
    role: Role,
) -> Result<StoredDataset, Error> {
    let found = state.registry.dataset(id).await?;
    by.owned(found, |d| &d.org, role, "dataset", id)
}

/// The definition plus how publishing goes: the last run, the last CKAN push, the periods published.
async fn dataset_with_status(state: &AppState, d: &StoredDataset) -> Value {
    let mut v = dataset_json(d);
    if let Ok(p) = state.opendata.publication(&d.id).await {
        v["publication"] = json!(p);
    }
    v
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRequest {
    /// One period to (re)compute, `2026-03` (or `2026` for monthly and coarser buckets); absent: every due
    /// period (those without a version yet, and the running one).
    #[serde(default)]
    period: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/datasets/{id}/publish",
    operation_id = "publish_dataset",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "datasets",
    summary = "Publish now: compute the due periods (or one period), write new versions where the bytes changed",
    params(("id" = String, Path, description = "Dataset id")),
    request_body(content = Option<PublishRequest>, description = "Optional: without a body every due period is published"),
    responses(
        (status = 200, description = "What the run did: per period `new_version`, `unchanged` or `running`, with file URLs and SHA-256", body = Object),
        (status = 400, description = "An invalid period, or refused by the privacy gate (the reason is named)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such dataset", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn publish(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
    crate::body::OptionalBody(request): crate::body::OptionalBody<PublishRequest>,
) -> Result<Json<Value>, Error> {
    let request = request.unwrap_or_default();
    let d = find(&state, &by, &id, Role::Editor).await?;
    let report = state
        .opendata
        .publish(&Dataset::parse(&d)?, request.period.as_deref())
        .await?;
    tracing::info!(dataset = %d.id, by = %by.actor, "published on demand");
    let report = serde_json::to_value(&report).map_err(|e| Error::Internal {
        message: e.to_string(),
    })?;
    // Files change, not the registry: recorded once they are published.
    let change = Change::new("dataset.publish", format!("dataset:{}", d.id))
        .org(&d.org)
        .after(report.clone());
    crate::audit::append(&state, &by, source, change).await?;
    Ok(Json(report))
}

#[utoipa::path(
    get,
    path = "/api/v1/datasets",
    operation_id = "list_datasets",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "datasets",
    summary = "List dataset definitions",
    responses((status = 200, description = "All datasets", body = Object)),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let all = state.registry.datasets().await?;
    let mut datasets = Vec::with_capacity(all.len());
    for d in all.iter().filter(|d| by.sees(&d.org)) {
        datasets.push(dataset_with_status(&state, d).await);
    }
    Ok(Json(json!({"datasets": datasets})))
}

#[utoipa::path(
    get,
    path = "/api/v1/datasets/{id}",
    operation_id = "get_dataset",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "datasets",
    summary = "One dataset definition",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 200, description = "The dataset", body = Object),
        (status = 404, description = "No such dataset", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let d = find(&state, &by, &id, Role::Viewer).await?;
    Ok(Json(dataset_with_status(&state, &d).await))
}

#[utoipa::path(
    delete,
    path = "/api/v1/datasets/{id}",
    operation_id = "delete_dataset",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "datasets",
    summary = "Delete a dataset definition",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such dataset", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let old = find(&state, &by, &id, Role::Editor).await?;
    let change = Change::new("dataset.delete", format!("dataset:{}", old.id))
        .org(&old.org)
        .before(dataset_json(&old));
    // The record goes with the registry's change; withdrawing the files follows it.
    let existed = record(
        &state,
        &by,
        source,
        change,
        state.registry.delete_dataset(&id),
    )
    .await?;
    state.opendata.remove(&old).await?;
    crate::error::deleted(existed, "dataset", id, &by.actor)
}
