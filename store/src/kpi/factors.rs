//! Hourly emission factors for CO2e, the best source per hour.
//!
//! The series `emission_factor` (g CO2e/kWh) carries tags `area` (`DK1`/`DK2`) and `source`: `CO2Emis` is
//! Energinet's measured factor, `CO2EmisProg` its prognosis, anything else (or no `source`) imported by hand.
//! Each hour takes the mean of its values (Energi Data Service gives one per 5 minutes, at each interval's
//! start, so the hour `[h, h+1)` is the mean of the twelve starting in it) from the best source that has
//! one: measured over prognosis over the rest. Emission factors are everyone's: read without a scope.
use crate::Result;
use crate::query::{self, AggFn, Every, Query};
use crate::series::SeriesFilter;
use crate::series::SeriesReader;
use bydata_schemas::{MeasurementName, SeriesKey, UnixNanos};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap};

pub const MEASURED: &str = "CO2Emis";
pub const PROGNOSIS: &str = "CO2EmisProg";
/// What an hour whose factor has no `source` tag counts under.
pub const UNNAMED_SOURCE: &str = "other";

const HOUR: Every = Every::Fixed(3_600_000_000_000);

/// Lower is preferred.
fn preference(source: &str) -> u8 {
    match source {
        MEASURED => 0,
        PROGNOSIS => 1,
        _ => 2,
    }
}

/// The factor of each hour (by its start) of `[from, to)` in `area`, with the source it came from.
pub(super) async fn hourly(
    reader: &dyn SeriesReader,
    area: &str,
    from: UnixNanos,
    to: UnixNanos,
    tz: Tz,
) -> Result<HashMap<UnixNanos, (f64, String)>> {
    let name = |text: &str| {
        MeasurementName::new(text).map_err(|e| crate::Error::InvalidQuery {
            reason: e.to_string(),
        })
    };
    let by_source = query::run(
        reader,
        &Query {
            filter: SeriesFilter {
                scope: None,
                measurement: Some(name("emission_factor")?),
                field: Some(name(SeriesKey::DEFAULT_FIELD)?),
                tags: BTreeMap::from([("area".to_owned(), area.to_owned())]),
            },
            from,
            to,
            every: Some(HOUR),
            func: AggFn::Mean,
            group_by: Some("source".to_owned()),
            tz,
        },
    )
    .await?;
    let mut out: HashMap<UnixNanos, (f64, String)> = HashMap::new();
    for s in by_source {
        let source = s
            .tags
            .get("source")
            .cloned()
            .unwrap_or_else(|| UNNAMED_SOURCE.to_owned());
        for (t, v) in s.points {
            let Some(v) = v else { continue };
            let better = out.get(&t).is_none_or(|(_, have)| {
                (preference(&source), source.as_str()) < (preference(have), have.as_str())
            });
            if better {
                out.insert(t, (v, source.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_over_prognosis_over_the_rest() {
        assert!(preference(MEASURED) < preference(PROGNOSIS));
        assert!(preference(PROGNOSIS) < preference("manual"));
        assert!(preference(PROGNOSIS) < preference(UNNAMED_SOURCE));
    }
}
