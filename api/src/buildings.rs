//! Buildings and the climate team's KPIs: `POST/GET /api/v1/buildings`, `GET/DELETE /api/v1/buildings/{id}`,
//! and `GET /api/v1/buildings/{id}/kpis` — consumption per calendar bucket from the building's cumulative
//! meters, per m² of floor area, the same bucket a year earlier, and CO2e, computed by `store::kpi`;
//! `GET /api/v1/buildings/ranking` — the caller's buildings ranked by consumption per m² over a period. Here
//! only parameters, the registry lookup and the JSON answer.
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::StatusCode;
use bydata_schemas::{BuildingId, Location, OrgId, Role, format_rfc3339};
use bydata_store::Building;
use bydata_store::kpi::{
    Gap, Ranked, building_kpis, check_kpi_params, kpi_request, rank_buildings, ranking_request,
};
use bydata_store::query::time_in;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBuilding {
    /// A slug; also the `building` tag of its series.
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    id: BuildingId,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(exclusive_minimum = 0, maximum = 10_000_000)]
    floor_area_m2: f64,
    /// office, school, …
    #[schema(min_length = 1, max_length = 64)]
    kind: String,
    #[schema(value_type = Option<crate::openapi::LocationDoc>)]
    location: Option<Location>,
    /// `DK1` (default) or `DK2`.
    #[serde(default = "default_area")]
    #[schema(value_type = crate::openapi::PriceAreaDoc)]
    price_area: String,
    /// The organisation it belongs to; needed only by someone who may create in several.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    org: Option<OrgId>,
}

fn default_area() -> String {
    "DK1".to_owned()
}

fn building_json(b: &Building) -> Value {
    json!({
        "id": b.id,
        "name": b.name,
        "floor_area_m2": b.floor_area_m2,
        "kind": b.kind,
        "location": b.location,
        "price_area": b.price_area,
        "org": b.org,
        "created_at": format_rfc3339(b.created_at),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/buildings",
    operation_id = "create_building",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "buildings",
    summary = "Register a building",
    request_body = NewBuilding,
    responses(
        (status = 201, description = "Registered", body = crate::openapi::BuildingDoc),
        (status = 400, description = "Invalid body or parameters", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 409, description = "A building with this id already exists", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    crate::body::Body(new): crate::body::Body<NewBuilding>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let org = by.target_org(new.org.clone(), Role::Editor)?;
    let name = crate::error::display_name(&new.name)?.to_owned();
    if !(new.floor_area_m2.is_finite() && new.floor_area_m2 > 0.0 && new.floor_area_m2 < 1e7) {
        return Err(Error::bad(
            "invalid_floor_area",
            "floor_area_m2 must be a positive number of square metres",
        ));
    }
    let kind = new.kind.trim().to_lowercase();
    if kind.is_empty() || kind.len() > 64 {
        return Err(Error::bad(
            "invalid_kind",
            "kind must be 1 to 64 characters (office, school, …)",
        ));
    }
    if !matches!(new.price_area.as_str(), "DK1" | "DK2") {
        return Err(Error::bad(
            "invalid_price_area",
            "price_area must be DK1 or DK2",
        ));
    }
    let building = Building {
        id: new.id,
        name,
        floor_area_m2: new.floor_area_m2,
        kind,
        location: new.location,
        price_area: new.price_area,
        created_at: (state.clock)(),
        org,
    };
    let change = Change::new("building.create", format!("building:{}", building.id))
        .org(&building.org)
        .after(building_json(&building));
    let building = record(
        &state,
        &by,
        source,
        change,
        state.registry.create_building(building),
    )
    .await?;
    tracing::info!(building = %building.id, by = %by.actor, "building registered");
    Ok((StatusCode::CREATED, Json(building_json(&building))))
}

#[utoipa::path(
    get,
    path = "/api/v1/buildings",
    operation_id = "list_buildings",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "buildings",
    summary = "List buildings",
    responses(
        (status = 200, description = "All buildings", body = crate::openapi::BuildingListDoc),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    by: Principal,
) -> Result<Json<Value>, Error> {
    let all = state.registry.buildings().await?;
    Ok(Json(json!({"buildings": all
        .iter()
        .filter(|b| by.sees(&b.org))
        .map(building_json)
        .collect::<Vec<_>>()})))
}

/// The building `id` if `by` may act on it with `role` (404 for another organisation's).
async fn find(state: &AppState, by: &Principal, id: &str, role: Role) -> Result<Building, Error> {
    let found = match BuildingId::new(id) {
        Ok(b) => state.registry.building(&b).await?,
        Err(_) => None,
    };
    by.owned(found, |b| &b.org, role, "building", id)
}

#[utoipa::path(
    get,
    path = "/api/v1/buildings/{id}",
    operation_id = "get_building",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "buildings",
    summary = "One building",
    params(
        ("id" = String, Path, description = "Building id"),
    ),
    responses(
        (status = 200, description = "The building", body = crate::openapi::BuildingDoc),
        (status = 404, description = "No such building", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    Ok(Json(building_json(
        &find(&state, &by, &id, Role::Viewer).await?,
    )))
}

#[utoipa::path(
    delete,
    path = "/api/v1/buildings/{id}",
    operation_id = "delete_building",
    extensions(("x-bydata-policy" = json!("editor"))),
    tag = "buildings",
    summary = "Delete a building",
    params(
        ("id" = String, Path, description = "Building id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token's role may not do this (needs an admin token)", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such building", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    by: Principal,
    source: Source,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let building = find(&state, &by, &id, Role::Editor).await?;
    let change = Change::new("building.delete", format!("building:{}", building.id))
        .org(&building.org)
        .before(building_json(&building));
    record(
        &state,
        &by,
        source,
        change,
        state.registry.delete_building(&building.id),
    )
    .await?;
    tracing::info!(building = %building.id, by = %by.actor, "building deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/buildings/{id}/kpis",
    operation_id = "building_kpis",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "buildings",
    summary = "A building's consumption KPIs per calendar bucket",
    params(
        ("id" = String, Path, description = "Building id"),
        ("measurement" = Option<String>, Query, description = "Meters' measurement, a cumulative counter (default `energy_kwh`, what the demo meters write)"),
        ("field" = Option<String>, Query, description = "Field (default `value`)"),
        ("every" = Option<String>, Query, description = "Calendar bucket: `1d`, `1w`, `1mo` (default), `1y`, …"),
        ("from" = Option<String>, Query, description = "RFC 3339 start"),
        ("to" = Option<String>, Query, description = "RFC 3339 end"),
        ("tz" = Option<String>, Query, description = "IANA time zone (default Europe/Copenhagen)"),
        ("emission_factor_g_per_kwh" = Option<f64>, Query, description = "Fallback g CO2e/kWh for hours without a stored factor"),
    ),
    responses(
        (status = 200, description = "KPIs, rounded to 12 significant digits. `meters` counts the series found; with none, `notice` says what was looked for and the nearest names that exist", body = crate::openapi::KpisDoc),
        (status = 400, description = "Unknown or invalid parameter", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such building", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn kpis(
    State(state): State<AppState>,
    by: Principal,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> Result<Json<Value>, Error> {
    check_kpi_params(&params)?;
    let building = find(&state, &by, &id, Role::Viewer).await?;
    let mut r = kpi_request(&params, &building, (state.clock)())?;
    r.scope = by.scope(&state.registry, &state.auth_cache.owners).await?;
    let kpis = building_kpis(state.reader.as_ref(), &r).await?;
    let (tz, fallback) = (r.tz, r.fallback_g_per_kwh);
    let buckets: Vec<Value> = kpis
        .buckets
        .iter()
        .map(|b| {
            json!({
                "time": time_in(tz, b.start),
                "consumption": b.consumption,
                "per_m2": b.per_m2,
                "last_year": b.last_year,
                "change_pct": b.change_pct,
                "co2e_kg": b.co2e_kg,
            })
        })
        .collect();
    let totals = kpis.totals();
    Ok(Json(json!({
        "building": building_json(&building),
        "measurement": r.measurement,
        "field": r.field,
        "unit": kpis.unit,
        "every": r.every.to_string(),
        "tz": tz.name(),
        "from": time_in(tz, r.from),
        "to": time_in(tz, r.to),
        "buckets": buckets,
        "fn": "consumption",
        "meters": kpis.meters,
        "gaps": kpis.gaps.iter().map(|g| gap_doc(g, tz)).collect::<Vec<_>>(),
        "notice": kpis.notice,
        "totals": {
            "consumption": totals.consumption,
            "per_m2": totals.per_m2,
            "last_year": totals.last_year,
            "co2e_kg": totals.co2e_kg,
        },
        "emission_factor": {
            "series": format!("emission_factor{{area={}}} (g CO2e/kWh, hourly; per hour source CO2Emis (measured) over CO2EmisProg (prognosis) over others)", building.price_area),
            "fallback_g_per_kwh": fallback,
            "hours_on_fallback": kpis.hours_on_fallback,
            "hours_by_source": kpis.hours_by_source,
        },
    })))
}

/// One building's line of the ranking (what `GET /api/v1/buildings/ranking` answers per building).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RankedDoc {
    id: String,
    name: String,
    kind: String,
    floor_area_m2: f64,
    /// Over the period, summed over the building's meters, over what their readings cover (see `gaps`);
    /// null without any reading.
    consumption: Option<f64>,
    per_m2: Option<f64>,
    /// The same period a year earlier.
    last_year: Option<f64>,
    last_year_per_m2: Option<f64>,
    /// Change from a year earlier, in percent.
    change_pct: Option<f64>,
    /// 1 for the highest consumption per m²; null for a building without data (listed last).
    rank: Option<u32>,
    /// Meters found: series of the measurement and field tagged with the building.
    meters: u64,
    /// Spans a meter's readings do not cover: the consumption leaves them out rather than guess.
    gaps: Vec<GapDoc>,
}

/// A span of one meter without readings to interpolate.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct GapDoc {
    /// The meter's tags.
    meter: std::collections::BTreeMap<String, String>,
    from: String,
    to: String,
    /// `"period"` or `"last_year"`.
    period: String,
}

/// The answer of `GET /api/v1/buildings/ranking`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RankingDoc {
    measurement: String,
    field: String,
    unit: Option<String>,
    from: String,
    to: String,
    tz: String,
    /// Always `consumption`: cumulative meters exact to the period's boundaries, interval meters summed.
    #[serde(rename = "fn")]
    func: String,
    /// Highest consumption per m² first; buildings without data last.
    buildings: Vec<RankedDoc>,
}

fn ranked_doc(r: &Ranked, tz: chrono_tz::Tz) -> RankedDoc {
    let b = &r.building;
    RankedDoc {
        id: b.id.to_string(),
        name: b.name.clone(),
        kind: b.kind.clone(),
        floor_area_m2: b.floor_area_m2,
        consumption: r.consumption,
        per_m2: r.per_m2,
        last_year: r.last_year,
        last_year_per_m2: r.last_year_per_m2,
        change_pct: r.change_pct,
        rank: r.rank,
        meters: r.meters,
        gaps: r.gaps.iter().map(|g| gap_doc(g, tz)).collect(),
    }
}

fn gap_doc(g: &Gap, tz: chrono_tz::Tz) -> GapDoc {
    GapDoc {
        meter: g.meter.clone(),
        from: time_in(tz, g.from),
        to: time_in(tz, g.to),
        period: if g.last_year { "last_year" } else { "period" }.to_owned(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/buildings/ranking",
    operation_id = "building_ranking",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "buildings",
    summary = "The caller's buildings ranked by consumption per m² over a period, against a year earlier",
    params(
        ("measurement" = Option<String>, Query, description = "Meters' measurement (default `energy_kwh`): cumulative counters, or interval readings tagged `reading=interval`"),
        ("field" = Option<String>, Query, description = "Field (default `value`)"),
        ("from" = Option<String>, Query, description = "RFC 3339 start (default: the start of this year)"),
        ("to" = Option<String>, Query, description = "RFC 3339 end (default: now)"),
        ("tz" = Option<String>, Query, description = "IANA time zone of the answer's times and the default range (default Europe/Copenhagen)"),
    ),
    responses(
        (status = 200, description = "Buildings ranked by `per_m2`, highest first, rounded to 12 significant digits", body = RankingDoc),
        (status = 400, description = "Unknown or invalid parameter", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn ranking(
    State(state): State<AppState>,
    by: Principal,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> Result<Json<RankingDoc>, Error> {
    let mine: Vec<Building> = state
        .registry
        .buildings()
        .await?
        .into_iter()
        .filter(|b| by.sees(&b.org))
        .collect();
    let (mut r, tz) = ranking_request(&params, mine, (state.clock)())?;
    r.scope = by.scope(&state.registry, &state.auth_cache.owners).await?;
    let ranking = rank_buildings(state.reader.as_ref(), &r).await?;
    Ok(Json(RankingDoc {
        measurement: r.measurement.to_string(),
        field: r.field.to_string(),
        unit: ranking.unit.map(|u| u.to_string()),
        from: time_in(tz, r.from),
        to: time_in(tz, r.to),
        tz: tz.name().to_owned(),
        func: "consumption".to_owned(),
        buildings: ranking
            .buildings
            .iter()
            .map(|b| ranked_doc(b, tz))
            .collect(),
    }))
}
