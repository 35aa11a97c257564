//! Bulk onboarding: `POST /api/v1/devices/bulk` with a CSV file (`csv`: one MQTT device per row). Every row is
//! checked — the file itself, then against the registry (ids taken, codecs unknown) — and every bad row is
//! named in one 400; `?dry_run=true` stops there and shows what would be made. Otherwise all devices are
//! created in one registry transaction, or none, and each one's MQTT password is answered once.
mod csv;

use super::{check_codec_exists, device_json, id_from_name};
use crate::auth::Principal;
use crate::body::Problem;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use bydata_schemas::{OrgId, Role};
use bydata_store::Device;
use csv::{Row, RowProblem};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};

pub(crate) use csv::MAX_BYTES;

/// `?org=` and `?dry_run=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkParams {
    /// The organisation the devices go to, needed only by someone who may onboard in several.
    #[param(value_type = Option<String>)]
    org: Option<OrgId>,
    /// Check every row and show what would be made, creating nothing.
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/bulk",
    operation_id = "create_devices_bulk",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "devices",
    summary = "Onboard many MQTT devices from a CSV file: all or none (passwords shown once)",
    description = "The body is CSV (`text/csv`, UTF-8, at most 500 devices and 1 MiB): a header naming the \
columns — `name` and `domain` required; `id` (made from the name when empty), `transport` (`mqtt`), `lat`, \
`lon`, `codec` and any `tag:KEY` optional — then one device per line. `;` is read as the separator when the \
header has no commas (then `56,15` is a number). Any bad row answers 400 `invalid_body` with every problem, \
each at `line N, column`; nothing is created. With `?dry_run=true` the checked devices are shown and nothing \
is created.",
    params(BulkParams),
    request_body(content = String, content_type = "text/csv",
        example = "id,name,domain,lat,lon,tag:room\nroom-1,Room 1.12,building,56.15,10.2,1.12\n"),
    responses(
        (status = 200, description = "Dry run: what would be created", body = Value),
        (status = 201, description = "All created; each device with its MQTT credentials (shown only once)", body = Value),
        (status = 400, description = "Every bad row, by line and column (`invalid_body`)", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an editor token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A device with one of the ids was created meanwhile; nothing was created", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: crate::audit::Source,
    Query(params): Query<BulkParams>,
    text: String,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(params.org, Role::Editor)?;
    let (rows, mut problems) = csv::read(&text);
    problems.extend(against_registry(&state, &by, &org, &rows).await?);
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(Error::InvalidBody {
            problems: problems.into_iter().map(problem).collect(),
        });
    }
    if params.dry_run {
        let devices: Vec<Value> = rows.iter().map(preview).collect();
        return Ok((
            StatusCode::OK,
            Json(json!({"dry_run": true, "org": org, "count": devices.len(), "devices": devices})),
        ));
    }
    let now = (state.clock)();
    let mut devices = Vec::with_capacity(rows.len());
    for row in rows {
        let id = match row.id {
            Some(id) => id,
            None => id_from_name(&row.name)?,
        };
        devices.push(Device {
            id,
            name: row.name,
            transport: row.transport,
            domain: row.domain,
            location: row.location,
            tags: row.tags,
            codec: row.codec,
            created_at: now,
            org: org.clone(),
        });
    }
    // One audit entry for the import (one transaction), listing every device as created.
    let change =
        crate::audit::Change::new("device.bulk_create", format!("devices:{}", devices.len()))
            .org(&org)
            .after(json!(devices.iter().map(device_json).collect::<Vec<_>>()));
    let created = crate::audit::record(
        &state,
        &by,
        source,
        change,
        state.registry.create_devices(devices),
    )
    .await?;
    tracing::info!(org = %org, count = created.len(), by = %by.actor, "devices onboarded in bulk");
    let devices: Vec<Value> = created
        .iter()
        .map(|(device, creds)| {
            let mut v = device_json(device);
            v["mqtt"] = json!(creds);
            v
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "org": org,
            "count": devices.len(),
            "devices": devices,
            "note": "the MQTT passwords are shown only once; bydata keeps only their hashes",
        })),
    ))
}

/// Rows whose id is taken (in any organisation: ids are the devices' MQTT identities) or whose codec the
/// organisation does not have.
async fn against_registry(
    state: &AppState,
    by: &Principal,
    org: &OrgId,
    rows: &[Row],
) -> Result<Vec<RowProblem>, Error> {
    let mut problems = Vec::new();
    let taken: HashSet<String> = state
        .registry
        .devices()
        .await?
        .into_iter()
        .map(|d| d.id.to_string())
        .collect();
    let mut missing_codecs = BTreeSet::new();
    for codec in rows.iter().map(|r| &r.codec).collect::<HashSet<_>>() {
        if let Err(Error::BadRequest { .. }) = check_codec_exists(state, by, org, codec).await {
            missing_codecs.insert(codec.to_string());
        }
    }
    for row in rows {
        if let Some(id) = &row.id
            && taken.contains(id.as_str())
        {
            problems.push(RowProblem {
                line: row.line,
                column: "id".into(),
                message: format!("a device {id} exists already"),
            });
        }
        if missing_codecs.contains(&row.codec.to_string()) {
            problems.push(RowProblem {
                line: row.line,
                column: "codec".into(),
                message: format!(
                    "codec {} does not exist in {org}: upload it first (POST /api/v1/codecs)",
                    row.codec
                ),
            });
        }
    }
    Ok(problems)
}

fn problem(p: RowProblem) -> Problem {
    let field = match (p.line, p.column.as_str()) {
        (0, _) => String::new(),
        (line, "") => format!("line {line}"),
        (line, column) => format!("line {line}, {column}"),
    };
    Problem {
        field,
        message: p.message,
    }
}

fn preview(row: &Row) -> Value {
    json!({
        "line": row.line,
        "id": row.id,
        "name": row.name,
        "transport": row.transport,
        "domain": row.domain,
        "location": row.location,
        "tags": row.tags,
        "codec": row.codec,
    })
}
