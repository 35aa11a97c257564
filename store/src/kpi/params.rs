//! The query string of `GET /api/v1/buildings/{id}/kpis` into a [`KpiRequest`]: pure, so the API keeps only
//! extraction and its error mapping (`ParamError` → 400 with the same codes as `/api/v1/query`).
use super::{FALLBACK_G_PER_KWH, KpiRequest, RankingRequest, year_before};
use crate::Building;
use crate::query::params::{DEFAULT_TZ, name, time};
use crate::query::{Every, ParamError};
use bydata_schemas::{SeriesKey, UnixNanos};
use chrono::{Datelike, TimeZone};
use chrono_tz::Tz;
use std::collections::HashMap;

/// The meters' measurement unless a request names one: what bydata's own meter models and the demo write (a
/// cumulative counter in kWh).
pub const DEFAULT_MEASUREMENT: &str = "energy_kwh";

const KPI_PARAMS: [&str; 7] = [
    "measurement",
    "field",
    "every",
    "from",
    "to",
    "tz",
    "emission_factor_g_per_kwh",
];

/// Refuses a parameter the KPIs do not know (checked before the building is looked up, as it always was).
pub fn check_kpi_params(params: &HashMap<String, String>) -> Result<(), ParamError> {
    if let Some(unknown) = params.keys().find(|k| !KPI_PARAMS.contains(&k.as_str())) {
        return Err(ParamError::Unknown(format!(
            "unknown parameter {unknown:?}; known: {}",
            KPI_PARAMS.join(", ")
        )));
    }
    Ok(())
}

/// What to compute for `building`; the range defaults to this calendar year so far (at `now`), in the
/// query's time zone.
pub fn kpi_request(
    params: &HashMap<String, String>,
    building: &Building,
    now: UnixNanos,
) -> Result<KpiRequest, ParamError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let measurement = name(
        "measurement",
        get("measurement").unwrap_or(DEFAULT_MEASUREMENT),
    )?;
    let field = name("field", get("field").unwrap_or(SeriesKey::DEFAULT_FIELD))?;
    let every: Every = get("every").unwrap_or("1mo").parse()?;
    let tz = time_zone(get("tz"))?;
    let fallback = match get("emission_factor_g_per_kwh") {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| {
                ParamError::Invalid("emission_factor_g_per_kwh must be a number >= 0".into())
            })?,
        None => FALLBACK_G_PER_KWH,
    };
    let (from, to, last_year) = period(&get, tz, now)?;
    Ok(KpiRequest {
        scope: None,
        building: building.id.to_string(),
        floor_area_m2: building.floor_area_m2,
        price_area: building.price_area.clone(),
        measurement,
        field,
        every,
        tz,
        from,
        to,
        last_year,
        fallback_g_per_kwh: fallback,
    })
}

type Period = (UnixNanos, UnixNanos, (UnixNanos, UnixNanos));

/// `from` and `to` (default: this calendar year so far at `now`, in `tz`) and the same range a year earlier.
fn period<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    tz: Tz,
    now: UnixNanos,
) -> Result<Period, ParamError> {
    let year_start = {
        let local = tz.timestamp_nanos(now).date_naive();
        chrono::NaiveDate::from_ymd_opt(local.year(), 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| tz.from_local_datetime(&d).earliest())
            .and_then(|d| d.timestamp_nanos_opt())
            .unwrap_or(now)
    };
    let from = get("from")
        .map(|v| time("from", v))
        .transpose()?
        .unwrap_or(year_start);
    let to = get("to").map(|v| time("to", v)).transpose()?.unwrap_or(now);
    if from >= to {
        return Err(ParamError::Range("from must be before to".into()));
    }
    let last_year = year_before(tz, from)
        .zip(year_before(tz, to))
        .ok_or_else(|| {
            ParamError::Range("the range is too early to compare with a year before".into())
        })?;
    Ok((from, to, last_year))
}

const RANKING_PARAMS: [&str; 5] = ["measurement", "field", "from", "to", "tz"];

/// What to rank: the query string of `GET /api/v1/buildings/ranking` (the same `measurement`, `field`,
/// `from`, `to` and `tz` as the KPIs, with the same defaults), for `buildings`.
pub fn ranking_request(
    params: &HashMap<String, String>,
    buildings: Vec<Building>,
    now: UnixNanos,
) -> Result<(RankingRequest, Tz), ParamError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !RANKING_PARAMS.contains(&k.as_str()))
    {
        return Err(ParamError::Unknown(format!(
            "unknown parameter {unknown:?}; known: {}",
            RANKING_PARAMS.join(", ")
        )));
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let measurement = name(
        "measurement",
        get("measurement").unwrap_or(DEFAULT_MEASUREMENT),
    )?;
    let field = name("field", get("field").unwrap_or(SeriesKey::DEFAULT_FIELD))?;
    let tz = time_zone(get("tz"))?;
    let (from, to, last_year) = period(&get, tz, now)?;
    Ok((
        RankingRequest {
            buildings,
            measurement,
            field,
            from,
            to,
            last_year,
            scope: None,
        },
        tz,
    ))
}

fn time_zone(tz: Option<&str>) -> Result<Tz, ParamError> {
    tz.unwrap_or(DEFAULT_TZ).parse().map_err(|_| {
        ParamError::Invalid("tz must be an IANA time zone such as Europe/Copenhagen".into())
    })
}
