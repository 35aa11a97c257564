//! `GET /api/v1/measurements`: what there is to query — each measurement's fields, units, tag keys with their
//! values (at most 100 per key, with the count), and series counts; filtered like a query. The listing lives
//! in `bydata_store::query::catalog`; here the handler, its document and the answer's shape.
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Query as QueryParams, State};
use bydata_store::query::{self, MeasurementInfo};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// The measurements that match, by name.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeasurementsAnswer {
    measurements: Vec<Measurement>,
    /// Series of all listed measurements.
    series: u64,
}

/// One measurement: query it with `GET /api/v1/query?measurement=NAME&field=FIELD&tag.KEY=VALUE`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Measurement {
    name: String,
    /// Its fields, sorted (`value` for decoded device data).
    fields: Vec<String>,
    /// The units of its series, sorted; empty when they have none.
    units: Vec<String>,
    /// How many series (tag sets × fields) it has.
    series: u64,
    /// Per tag key (`device` is the device id): values and how many there are.
    tags: BTreeMap<String, TagValues>,
}

/// Values of one tag key: at most 100, sorted; `count` says how many exist.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TagValues {
    values: Vec<String>,
    count: u64,
}

impl From<MeasurementInfo> for Measurement {
    fn from(m: MeasurementInfo) -> Self {
        Self {
            name: m.name.to_string(),
            fields: m.fields,
            units: m.units,
            series: m.series,
            tags: m
                .tags
                .into_iter()
                .map(|(k, t)| {
                    (
                        k,
                        TagValues {
                            values: t.values,
                            count: t.count,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/measurements",
    operation_id = "measurements",
    extensions(("x-bydata-policy" = json!("viewer"))),
    tag = "query",
    summary = "What there is to query: measurements, fields, units, tag keys and values, series counts",
    params(
        ("measurement" = Option<String>, Query, description = "Only this measurement"),
        ("device" = Option<String>, Query, description = "Only series of this device"),
        ("search" = Option<String>, Query, description = "Only measurements whose name contains this (case ignored). Tag filters: `tag.KEY=VALUE`"),
    ),
    responses(
        (status = 200, description = "The measurements, by name; tag values at most 100 per key, with their count", body = MeasurementsAnswer),
        (status = 400, description = "Unknown or invalid parameter", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn measurements(
    State(state): State<AppState>,
    by: Principal,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> Result<Json<MeasurementsAnswer>, Error> {
    let mut filter = query::catalog_filter(&params)?;
    filter.scope = by.scope(&state.registry, &state.auth_cache.owners).await?;
    let found = query::measurements(state.reader.as_ref(), &filter).await?;
    let series = found.iter().map(|m| m.series).sum();
    Ok(Json(MeasurementsAnswer {
        measurements: found.into_iter().map(Measurement::from).collect(),
        series,
    }))
}
