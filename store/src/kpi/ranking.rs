//! Buildings ranked by consumption per m² over one period, against the same period a year earlier.
//!
//! A building's consumption is the sum over its meters (series of the measurement and field tagged
//! `building=<id>`): a cumulative meter's by `fn=consumption` (exact to the period's boundaries), an interval
//! meter's (tagged `reading=interval`: each reading is what was consumed in the interval starting at its
//! time, as Eloverblik's hourly quantities) by summing its readings. Where a meter has no reading to
//! interpolate a boundary with, its consumption covers what its readings cover and the gap is stated.
use super::consumption_of_meters;
use crate::Building;
use crate::Result;
use crate::query::round_opt;
use crate::series::{Scope, SeriesFilter, SeriesReader};
use bydata_schemas::{MeasurementName, SeriesKey, Unit, UnixNanos};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What to rank.
#[derive(Debug, Clone)]
pub struct RankingRequest {
    /// The buildings to rank (the caller's organisations' only).
    pub buildings: Vec<Building>,
    pub measurement: MeasurementName,
    pub field: MeasurementName,
    pub from: UnixNanos,
    pub to: UnixNanos,
    /// The same period a year earlier (`super::year_before` of `from` and `to`).
    pub last_year: (UnixNanos, UnixNanos),
    /// Whose meters may be read (`None`: everyone's).
    pub scope: Option<Arc<Scope>>,
}

/// A time span of one meter that its readings do not cover.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The meter's tags (its series), so a reader can find it.
    pub meter: BTreeMap<String, String>,
    pub from: UnixNanos,
    pub to: UnixNanos,
    /// `true` for a gap in the period a year earlier.
    pub last_year: bool,
}

/// One building's line of the ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub building: Building,
    /// Summed over the meters, over what their readings cover (`None`: no reading at all).
    pub consumption: Option<f64>,
    pub per_m2: Option<f64>,
    pub last_year: Option<f64>,
    pub last_year_per_m2: Option<f64>,
    /// Change from a year earlier, in percent (none when that was 0 or unknown).
    pub change_pct: Option<f64>,
    /// 1 for the highest consumption per m²; `None` for a building without data.
    pub rank: Option<u32>,
    /// The meters found.
    pub meters: u64,
    pub gaps: Vec<Gap>,
}

/// The ranking, highest consumption per m² first, buildings without data last.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// The meters' unit, if they have one.
    pub unit: Option<Unit>,
    pub buildings: Vec<Ranked>,
}

/// Ranks `r.buildings` by consumption per m² over `[r.from, r.to)`.
pub async fn rank_buildings(reader: &dyn SeriesReader, r: &RankingRequest) -> Result<Ranking> {
    let filter = SeriesFilter {
        scope: r.scope.clone(),
        measurement: Some(r.measurement.clone()),
        field: Some(r.field.clone()),
        tags: BTreeMap::new(),
    };
    let wanted: BTreeMap<&str, usize> = r
        .buildings
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id.as_str(), i))
        .collect();
    let mut unit = None;
    let mut keys: Vec<SeriesKey> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for s in reader.series(&filter).await? {
        let Some(i) = s.key.tag("building").and_then(|b| wanted.get(b)) else {
            continue;
        };
        owner.push(*i);
        unit = unit.or(s.unit);
        keys.push(s.key);
    }
    let now = consumption_of_meters(reader, &keys, r.from, r.to).await?;
    let then = consumption_of_meters(reader, &keys, r.last_year.0, r.last_year.1).await?;

    let n = r.buildings.len();
    let mut sums = vec![(None::<f64>, None::<f64>); n];
    let mut meters = vec![0u64; n];
    let mut gaps: Vec<Vec<Gap>> = vec![Vec::new(); n];
    for (k, key) in keys.iter().enumerate() {
        let i = owner[k];
        meters[i] += 1;
        for (period, last_year) in [(&now, false), (&then, true)] {
            let Some(m) = period.get(k) else { continue };
            if let Some(v) = m.value {
                let slot = if last_year {
                    &mut sums[i].1
                } else {
                    &mut sums[i].0
                };
                *slot.get_or_insert(0.0) += v;
            }
            gaps[i].extend(m.gaps.iter().map(|(from, to)| Gap {
                meter: key.tags.clone(),
                from: *from,
                to: *to,
                last_year,
            }));
        }
    }
    let mut out: Vec<Ranked> = r
        .buildings
        .iter()
        .zip(sums)
        .zip(meters.into_iter().zip(gaps))
        .map(|((b, (now, then)), (meters, gaps))| {
            let area = b.floor_area_m2;
            Ranked {
                building: b.clone(),
                consumption: round_opt(now),
                per_m2: round_opt(now.map(|v| v / area)),
                last_year: round_opt(then),
                last_year_per_m2: round_opt(then.map(|v| v / area)),
                change_pct: round_opt(
                    now.zip(then)
                        .filter(|(_, b)| *b != 0.0)
                        .map(|(a, b)| (a - b) / b * 100.0),
                ),
                rank: None,
                meters,
                gaps,
            }
        })
        .collect();
    // Highest per m² first; without data last, by id (a stable order for the same data).
    out.sort_by(|a, b| match (a.per_m2, b.per_m2) {
        (Some(x), Some(y)) => y
            .total_cmp(&x)
            .then_with(|| a.building.id.cmp(&b.building.id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.building.id.cmp(&b.building.id),
    });
    let mut rank = 0;
    for line in &mut out {
        if line.per_m2.is_some() {
            rank += 1;
            line.rank = Some(rank);
        }
    }
    Ok(Ranking {
        unit,
        buildings: out,
    })
}
