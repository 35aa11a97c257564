//! A building's consumption KPIs per calendar bucket, computed with [`query`] like any other answer:
//! consumption from its cumulative meters (`increase` grouped by `building`, all its meters summed), per m² of
//! floor area, the same bucket a year earlier (the range shifted twelve months in local time), and CO2e.
//!
//! CO2e is computed hour by hour: each hour's consumption times that hour's emission factor, read from the
//! series `emission_factor` (g CO2e/kWh, tag `area` = the building's price area), summed into the bucket. An
//! hour without a factor uses the caller's fallback, and [`Kpis::hours_on_fallback`] counts them.
mod meters;
mod params;
mod ranking;

pub use meters::{
    INTERVAL, MeterBuckets, MeterPeriod, READING_TAG, consumption_of_meters, is_interval,
    meter_buckets,
};
pub use params::{DEFAULT_MEASUREMENT, check_kpi_params, kpi_request, ranking_request};
pub use ranking::{Gap, Ranked, Ranking, RankingRequest, rank_buildings};

use crate::Result;
use crate::query::{self, AggFn, Every, Query, ResultSeries, round_opt};
use crate::series::{SeriesFilter, SeriesReader};
use bydata_schemas::{MeasurementName, SeriesKey, Unit, UnixNanos};
use chrono::{Months, TimeZone};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap};

/// The fallback emission factor (g CO2e per kWh) for hours without a stored factor. A placeholder of the right
/// order for Danish electricity in the 2020s: store the real hourly factors (Energinet publishes them) or pass
/// another fallback for the year you report.
pub const FALLBACK_G_PER_KWH: f64 = 150.0;

const HOUR: Every = Every::Fixed(3_600_000_000_000);

/// What to compute, for one building.
#[derive(Debug, Clone)]
pub struct KpiRequest {
    /// The value of the `building` tag of its meters.
    pub building: String,
    pub floor_area_m2: f64,
    /// The `area` tag of the emission factors (`DK1`, `DK2`).
    pub price_area: String,
    pub measurement: MeasurementName,
    pub field: MeasurementName,
    pub every: Every,
    pub tz: Tz,
    pub from: UnixNanos,
    pub to: UnixNanos,
    /// The range a year earlier ([`year_before`] of `from` and `to`).
    pub last_year: (UnixNanos, UnixNanos),
    /// g CO2e/kWh for hours without a stored factor.
    pub fallback_g_per_kwh: f64,
    /// Whose meters may be read (`None`: everyone's). Emission factors are everyone's.
    pub scope: Option<std::sync::Arc<crate::series::Scope>>,
}

/// One bucket's KPIs; `None` where there is no data.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiBucket {
    pub start: UnixNanos,
    pub consumption: Option<f64>,
    pub per_m2: Option<f64>,
    pub last_year: Option<f64>,
    /// Change from the same bucket a year earlier, in percent (none when that was 0).
    pub change_pct: Option<f64>,
    pub co2e_kg: Option<f64>,
}

/// The KPIs of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpis {
    /// The meters' unit, if they have one.
    pub unit: Option<Unit>,
    pub buckets: Vec<KpiBucket>,
    /// Hours whose CO2e used the fallback factor.
    pub hours_on_fallback: u64,
    /// The meters found (series of the measurement and field tagged with the building).
    pub meters: u64,
    /// When no meter was found: what was looked for and the nearest names that exist.
    pub notice: Option<String>,
}

/// Sums over the buckets, of the finite values present (`None` if there are none).
#[derive(Debug, Clone, PartialEq)]
pub struct KpiTotals {
    pub consumption: Option<f64>,
    pub per_m2: Option<f64>,
    pub last_year: Option<f64>,
    pub co2e_kg: Option<f64>,
}

impl Kpis {
    pub fn totals(&self) -> KpiTotals {
        let sum = |get: fn(&KpiBucket) -> Option<f64>| {
            let vals: Vec<f64> = self
                .buckets
                .iter()
                .filter_map(get)
                .filter(|v| v.is_finite())
                .collect();
            (!vals.is_empty()).then(|| query::round(vals.iter().sum()))
        };
        KpiTotals {
            consumption: sum(|b| b.consumption),
            per_m2: sum(|b| b.per_m2),
            last_year: sum(|b| b.last_year),
            co2e_kg: sum(|b| b.co2e_kg),
        }
    }
}

/// The same local wall-clock time twelve months earlier.
pub fn year_before(tz: Tz, t: UnixNanos) -> Option<UnixNanos> {
    let local = tz.timestamp_nanos(t).naive_local();
    let earlier = local.checked_sub_months(Months::new(12))?;
    tz.from_local_datetime(&earlier)
        .earliest()?
        .timestamp_nanos_opt()
}

fn name(text: &str) -> Result<MeasurementName> {
    MeasurementName::new(text).map_err(|e| crate::Error::InvalidQuery {
        reason: e.to_string(),
    })
}

/// Computes the KPIs of `r` from `reader`: four queries (consumption now, a year earlier, hourly, and the
/// hourly emission factors) and the CO2e joined hour by hour.
pub async fn building_kpis(reader: &dyn SeriesReader, r: &KpiRequest) -> Result<Kpis> {
    let meters = SeriesFilter {
        scope: r.scope.clone(),
        measurement: Some(r.measurement.clone()),
        field: Some(r.field.clone()),
        tags: BTreeMap::from([("building".to_owned(), r.building.clone())]),
    };
    let found = reader.count_series(&meters).await? as u64;
    let notice = match found {
        0 => Some(query::nothing_matched(reader, &meters).await?),
        _ => None,
    };
    let consumption = |from, to, every| Query {
        filter: meters.clone(),
        from,
        to,
        every: Some(every),
        func: AggFn::Increase,
        group_by: Some("building".to_owned()),
        tz: r.tz,
    };
    let one = |mut all: Vec<ResultSeries>| all.pop();
    let this = one(query::run(reader, &consumption(r.from, r.to, r.every)).await?);
    let (ly_from, ly_to) = r.last_year;
    let last = one(query::run(reader, &consumption(ly_from, ly_to, r.every)).await?);
    let hourly = one(query::run(reader, &consumption(r.from, r.to, HOUR)).await?);
    let factors = one(query::run(
        reader,
        &Query {
            filter: SeriesFilter {
                scope: None,
                measurement: Some(name("emission_factor")?),
                field: Some(name(SeriesKey::DEFAULT_FIELD)?),
                tags: BTreeMap::from([("area".to_owned(), r.price_area.clone())]),
            },
            from: r.from,
            to: r.to,
            every: Some(HOUR),
            func: AggFn::Mean,
            group_by: Some("area".to_owned()),
            tz: r.tz,
        },
    )
    .await?);

    let bounds = query::bucket_bounds(r.from, r.to, r.every, r.tz)?;
    let starts = &bounds[..bounds.len().saturating_sub(1)];
    // CO2e per bucket, hour by hour.
    let factor_at: HashMap<UnixNanos, f64> = factors
        .iter()
        .flat_map(|s| s.points.iter())
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    let mut co2_kg = vec![None::<f64>; starts.len()];
    let mut hours_on_fallback = 0u64;
    for (t, kwh) in hourly.iter().flat_map(|s| s.points.iter()) {
        let Some(kwh) = kwh else { continue };
        let Some(i) = starts.iter().rposition(|s| s <= t) else {
            continue;
        };
        let g = factor_at.get(t).copied().unwrap_or_else(|| {
            hours_on_fallback += 1;
            r.fallback_g_per_kwh
        });
        *co2_kg[i].get_or_insert(0.0) += kwh * g / 1000.0;
    }
    let value_at = |s: &Option<ResultSeries>, i: usize| {
        s.as_ref()
            .and_then(|s| s.points.get(i))
            .and_then(|(_, v)| *v)
    };
    let buckets = starts
        .iter()
        .enumerate()
        .map(|(i, start)| {
            let now_v = value_at(&this, i);
            let then_v = value_at(&last, i);
            // Rounded to what the data carries, like every answer (`query::round`).
            KpiBucket {
                start: *start,
                consumption: round_opt(now_v),
                per_m2: round_opt(now_v.map(|v| v / r.floor_area_m2)),
                last_year: round_opt(then_v),
                change_pct: round_opt(
                    now_v
                        .zip(then_v)
                        .filter(|(_, b)| *b != 0.0)
                        .map(|(a, b)| (a - b) / b * 100.0),
                ),
                co2e_kg: round_opt(co2_kg.get(i).copied().flatten()),
            }
        })
        .collect();
    Ok(Kpis {
        unit: this.and_then(|s| s.unit),
        buckets,
        hours_on_fallback,
        meters: found,
        notice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_before_keeps_the_local_wall_clock() {
        let tz: Tz = "Europe/Copenhagen".parse().expect("tz");
        let at = |y, mo, d, h| {
            tz.with_ymd_and_hms(y, mo, d, h, 0, 0)
                .single()
                .and_then(|t| t.timestamp_nanos_opt())
                .expect("time")
        };
        // Summer time then, winter time now: the same local midnight, not the same instant minus 365 days.
        assert_eq!(year_before(tz, at(2026, 1, 1, 0)), Some(at(2025, 1, 1, 0)));
        assert_eq!(year_before(tz, at(2026, 7, 1, 0)), Some(at(2025, 7, 1, 0)));
        // 29 February has no twin: the last day of February.
        assert_eq!(
            year_before(tz, at(2028, 2, 29, 12)),
            Some(at(2027, 2, 28, 12))
        );
    }

    #[test]
    fn totals_sum_the_buckets_with_values() {
        let bucket = |consumption: Option<f64>| KpiBucket {
            start: 0,
            consumption,
            per_m2: consumption.map(|v| v / 10.0),
            last_year: None,
            change_pct: None,
            co2e_kg: consumption,
        };
        let kpis = Kpis {
            unit: None,
            buckets: vec![bucket(Some(0.1)), bucket(None), bucket(Some(0.2))],
            hours_on_fallback: 0,
            meters: 1,
            notice: None,
        };
        let totals = kpis.totals();
        // 0.1 + 0.2 is 0.30000000000000004 in floats: totals are rounded like every answer.
        assert_eq!(
            totals.consumption.map(|v| v.to_string()),
            Some("0.3".into())
        );
        assert_eq!(totals.per_m2.map(|v| v.to_string()), Some("0.03".into()));
        assert_eq!(totals.last_year, None);
        assert_eq!(totals.co2e_kg.map(|v| v.to_string()), Some("0.3".into()));
    }
}
