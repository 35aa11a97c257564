//! A building's consumption KPIs per calendar bucket: consumption from its meters (all series of the
//! measurement tagged with the building, summed: cumulative meters by `fn=consumption`, exact to the bucket
//! boundary, interval meters tagged `reading=interval` by their sum; see `meters`), per m² of floor area, the
//! same bucket a year earlier (the range shifted twelve months in local time), and CO2e. `ranking` ranks
//! buildings by the same consumption over one period.
//!
//! CO2e is computed hour by hour: each hour's consumption (exact to the hour, so it lines up with the hour's
//! factor) times that hour's emission factor, read from the series `emission_factor` (g CO2e/kWh, tag `area`
//! = the building's price area, the best `source` per hour: see `factors`), summed into the bucket. An hour
//! without a factor uses the caller's fallback; [`Kpis::hours_by_source`] and [`Kpis::hours_on_fallback`]
//! count the hours of each.
mod factors;
mod meters;
mod params;
mod ranking;

pub use factors::{MEASURED, PROGNOSIS, UNNAMED_SOURCE};
pub use meters::{
    INTERVAL, MeterBuckets, MeterPeriod, READING_TAG, consumption_of_meters, is_interval,
    meter_buckets,
};
pub use params::{DEFAULT_MEASUREMENT, check_kpi_params, kpi_request, ranking_request};
pub use ranking::{Gap, Ranked, Ranking, RankingRequest, rank_buildings};

use crate::Result;
use crate::query::{self, Every, round_opt};
use crate::series::{SeriesFilter, SeriesReader};
use bydata_schemas::{MeasurementName, SeriesKey, Unit, UnixNanos};
use chrono::{Months, TimeZone};
use chrono_tz::Tz;
use std::collections::BTreeMap;

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
    /// Hours whose CO2e used a stored factor, per source (`CO2Emis`, `CO2EmisProg`, …; see `factors`).
    pub hours_by_source: BTreeMap<String, u64>,
    /// Spans a meter's readings do not cover: its consumption there is left out, not guessed.
    pub gaps: Vec<Gap>,
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

/// The sum over meters per bucket, of the meters with a value there (`None` where none has one), and
/// their gaps.
fn summed(meters: &[MeterBuckets], buckets: usize) -> Vec<Option<f64>> {
    (0..buckets)
        .map(|i| {
            meters
                .iter()
                .filter_map(|m| m.values.get(i).copied().flatten())
                .fold(None, |acc: Option<f64>, v| Some(acc.unwrap_or(0.0) + v))
        })
        .collect()
}

/// `bounds` with the first and last replaced by `from` and `to`: a cut bucket holds only what is inside.
fn clipped(mut bounds: Vec<UnixNanos>, from: UnixNanos, to: UnixNanos) -> Vec<UnixNanos> {
    if let Some(first) = bounds.first_mut() {
        *first = from;
    }
    if let Some(last) = bounds.last_mut() {
        *last = to;
    }
    bounds
}

/// Computes the KPIs of `r` from `reader`: the meters' consumption per bucket now and a year earlier, per
/// hour, and the hourly emission factors, CO2e joined hour by hour.
pub async fn building_kpis(reader: &dyn SeriesReader, r: &KpiRequest) -> Result<Kpis> {
    let filter = SeriesFilter {
        scope: r.scope.clone(),
        measurement: Some(r.measurement.clone()),
        field: Some(r.field.clone()),
        tags: BTreeMap::from([("building".to_owned(), r.building.clone())]),
    };
    let series = reader.series(&filter).await?;
    let found = series.len() as u64;
    let notice = match found {
        0 => Some(query::nothing_matched(reader, &filter).await?),
        _ => None,
    };
    let unit = series.iter().find_map(|s| s.unit.clone());
    let keys: Vec<SeriesKey> = series.into_iter().map(|s| s.key).collect();

    let bounds = query::bucket_bounds(r.from, r.to, r.every, r.tz)?;
    let starts = bounds[..bounds.len().saturating_sub(1)].to_vec();
    let n = starts.len();
    let now = meter_buckets(reader, &keys, &clipped(bounds, r.from, r.to)).await?;
    let (ly_from, ly_to) = r.last_year;
    let ly_bounds = query::bucket_bounds(ly_from, ly_to, r.every, r.tz)?;
    let then = meter_buckets(reader, &keys, &clipped(ly_bounds, ly_from, ly_to)).await?;
    let hours = query::bucket_bounds(r.from, r.to, HOUR, r.tz)?;
    let hourly = meter_buckets(reader, &keys, &clipped(hours.clone(), r.from, r.to)).await?;
    let factors = factors::hourly(reader, &r.price_area, r.from, r.to, r.tz).await?;

    // CO2e per bucket, hour by hour: the hour's consumption times the hour's factor.
    let mut co2_kg = vec![None::<f64>; n];
    let mut hours_on_fallback = 0u64;
    let mut hours_by_source: BTreeMap<String, u64> = BTreeMap::new();
    for (h, kwh) in hours
        .iter()
        .zip(summed(&hourly, hours.len().saturating_sub(1)))
    {
        let Some(kwh) = kwh else { continue };
        let Some(i) = starts.iter().rposition(|s| s <= h) else {
            continue;
        };
        let g = match factors.get(h) {
            Some((g, source)) => {
                *hours_by_source.entry(source.clone()).or_default() += 1;
                *g
            }
            None => {
                hours_on_fallback += 1;
                r.fallback_g_per_kwh
            }
        };
        *co2_kg[i].get_or_insert(0.0) += kwh * g / 1000.0;
    }
    let this = summed(&now, n);
    let last = summed(&then, n);
    let buckets = starts
        .iter()
        .enumerate()
        .map(|(i, start)| {
            let now_v = this.get(i).copied().flatten();
            let then_v = last.get(i).copied().flatten();
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
    let mut gaps = Vec::new();
    for (meters, last_year) in [(&now, false), (&then, true)] {
        for (key, m) in keys.iter().zip(meters) {
            gaps.extend(m.gaps.iter().map(|(from, to)| Gap {
                meter: key.tags.clone(),
                from: *from,
                to: *to,
                last_year,
            }));
        }
    }
    Ok(Kpis {
        unit,
        buckets,
        hours_on_fallback,
        hours_by_source,
        meters: found,
        gaps,
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
            hours_by_source: BTreeMap::new(),
            gaps: Vec::new(),
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
