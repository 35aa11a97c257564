//! The time-series port: a narrow write trait and a narrow read trait, so the embedded engine and an InfluxDB
//! adapter are interchangeable. Aggregation (`crate::query`) is written once against `SeriesReader`.
pub(crate) mod block;
mod embedded;
pub mod influx;

pub use embedded::{Clock, EmbeddedEngine, EngineConfig, VerifyReport};

use crate::Result;
use crate::aggregate::{Folder, Partial};
use bydata_schemas::{MeasurementName, Point, SeriesKey, Unit, UnixNanos};
use std::collections::BTreeMap;

/// Points of one series, with the unit of the write. Within it, a later point replaces an earlier one at the
/// same time.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    pub series: SeriesKey,
    pub unit: Option<Unit>,
    pub points: Vec<(UnixNanos, f64)>,
}

/// Writes batches of points. A batch is durable when `write` returns; writing a point whose series and time
/// already exist replaces its value (so replays are idempotent).
#[async_trait::async_trait]
pub trait SeriesWriter: Send + Sync {
    async fn write(&self, points: Vec<Point>) -> Result<()>;

    /// `write` for points already grouped by series, so a batch carries each series key once (what line
    /// protocol naturally gives). This default flattens them; an engine can take them as they are.
    async fn write_grouped(&self, batch: Vec<SeriesPoints>) -> Result<()> {
        let mut points = Vec::with_capacity(batch.iter().map(|s| s.points.len()).sum());
        for s in batch {
            points.extend(s.points.into_iter().map(|(time, value)| Point {
                series: s.series.clone(),
                unit: s.unit.clone(),
                time,
                value,
            }));
        }
        self.write(points).await
    }

    /// Deletes every point of every series matching `filter` with start <= time < end; returns when the
    /// deletion is durable (survives kill -9) and no later read sees the deleted points. Points written after
    /// this call returns are not affected, even in the same range.
    ///
    /// InfluxDB 2 cannot delete by field: its adapter refuses a filter with `field` (`Error::InvalidQuery`).
    async fn delete_range(
        &self,
        filter: &SeriesFilter,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<()>;
}

/// A series the store knows, with the unit of its latest write.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    pub key: SeriesKey,
    pub unit: Option<Unit>,
}

/// Which series a read is about: one measurement and field, tags that must match exactly, and whose series
/// the reader may see (`None`: everyone's, for the platform and for bydata's own work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesFilter {
    pub scope: Option<std::sync::Arc<Scope>>,
    pub measurement: Option<MeasurementName>,
    pub field: Option<MeasurementName>,
    pub tags: BTreeMap<String, String>,
}

/// The series one reader may see. A series belongs to the organisation in its `org` tag (line protocol
/// written with an organisation's key carries it); otherwise to its device's organisation (so a moved device
/// takes its history along; the caller lists the devices of the reader's organisations); a series with
/// neither belongs to the default organisation. A key restricted to devices or measurements sees only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub orgs: std::collections::BTreeSet<String>,
    pub devices: std::collections::BTreeSet<String>,
    pub only_devices: Option<std::collections::BTreeSet<String>>,
    pub only_measurements: Option<std::collections::BTreeSet<String>>,
}

impl Scope {
    /// The tag that names a line-protocol series' organisation.
    pub const ORG_TAG: &'static str = "org";

    pub fn sees(&self, key: &SeriesKey) -> bool {
        let device = key.tag("device");
        let owned = match (key.tag(Self::ORG_TAG), device) {
            (Some(org), _) => self.orgs.contains(org),
            (None, Some(device)) => self.devices.contains(device),
            (None, None) => self.orgs.contains(bydata_schemas::OrgId::DEFAULT),
        };
        owned
            && self
                .only_devices
                .as_ref()
                .is_none_or(|only| device.is_some_and(|d| only.contains(d)))
            && self
                .only_measurements
                .as_ref()
                .is_none_or(|only| only.contains(key.measurement.as_str()))
    }
}

impl SeriesFilter {
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.scope.as_ref().is_none_or(|scope| scope.sees(key))
            && self
                .measurement
                .as_ref()
                .is_none_or(|m| *m == key.measurement)
            && self.field.as_ref().is_none_or(|f| *f == key.field)
            && self
                .tags
                .iter()
                .all(|(k, v)| key.tag(k) == Some(v.as_str()))
    }
}

/// Reads series. Ranges are half-open `[from, to)` and come back in time order.
#[async_trait::async_trait]
pub trait SeriesReader: Send + Sync {
    async fn series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>>;

    /// How many series `series(filter)` would return. This default lists them; an engine counts its index
    /// without copying keys, so a query matching a million series is refused before it costs memory.
    async fn count_series(&self, filter: &SeriesFilter) -> Result<usize> {
        Ok(self.series(filter).await?.len())
    }

    /// How many of `keys` the store holds no series for yet: what a write would add to its cardinality,
    /// checked before the write. `None` where the store cannot tell cheaply (InfluxDB keeps its own limits).
    async fn count_unknown(&self, keys: &[&SeriesKey]) -> Result<Option<usize>> {
        let _ = keys;
        Ok(None)
    }

    /// About how many points of `key` lie in `[from, to)`, from the index alone (never by reading points):
    /// what a raw query is priced by before it runs. Straddling blocks may be counted in proportion to the
    /// time they overlap, so this can be off either way; `None` where the store cannot tell cheaply.
    async fn estimate_points(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Option<u64>> {
        let _ = (key, from, to);
        Ok(None)
    }

    async fn range(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<(UnixNanos, f64)>>;
    /// The last point strictly before `before` (`i64::MAX` for the latest point of all).
    async fn last_before(
        &self,
        key: &SeriesKey,
        before: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>>;

    /// The first point at or after `from`: the reading after a range, which `fn=consumption` interpolates a
    /// range's end with. This default looks ahead in widening windows (a day, a month, a year, ten years)
    /// and gives up after that: a meter silent for ten years has no reading to interpolate with.
    async fn first_from(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>> {
        const DAY: i64 = 86_400_000_000_000;
        let mut start = from;
        for days in [1, 31, 366, 3653] {
            let end = from.saturating_add(days * DAY);
            if let Some(first) = self.range(key, start, end).await?.first() {
                return Ok(Some(*first));
            }
            start = end;
        }
        Ok(None)
    }

    /// Per-bucket partial aggregates of one series for the buckets `bounds` (see `query::bucket_bounds`).
    /// This default reads every point; an engine answers from its block summaries where it can.
    async fn partials(&self, key: &SeriesKey, bounds: &[UnixNanos]) -> Result<Vec<Partial>> {
        let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
            return Ok(Vec::new());
        };
        let prev = self.last_before(key, start).await?;
        let mut folder = Folder::new(bounds, prev);
        for (t, v) in self.range(key, start, end).await? {
            folder.point(t, v);
        }
        Ok(folder.finish())
    }

    /// `partials` of many series for the same buckets, in the order of `keys`. This default asks one series
    /// at a time; an engine can share work across them.
    async fn partials_many(
        &self,
        keys: &[SeriesKey],
        bounds: &[UnixNanos],
    ) -> Result<Vec<Vec<Partial>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.partials(key, bounds).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    fn key(measurement: &str, tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            measurement: MeasurementName::new(measurement).expect("name"),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            field: MeasurementName::new("value").expect("field"),
        }
    }

    #[test]
    fn a_series_belongs_to_its_org_tag_else_to_its_device_else_to_the_default_org() {
        let a = Scope {
            orgs: ["a".to_owned()].into(),
            devices: ["dev-a".to_owned()].into(),
            ..Scope::default()
        };
        assert!(a.sees(&key("co2", &[("device", "dev-a")])));
        assert!(!a.sees(&key("co2", &[("device", "dev-b")])));
        assert!(a.sees(&key("heat", &[("org", "a")])));
        assert!(!a.sees(&key("heat", &[("org", "b")])));
        // Another organisation's line protocol naming A's device is still the other organisation's.
        assert!(!a.sees(&key("co2", &[("org", "b"), ("device", "dev-a")])));
        assert!(!a.sees(&key("emission_factor", &[("area", "DK1")])));
        let default = Scope {
            orgs: ["default".to_owned()].into(),
            ..Scope::default()
        };
        assert!(default.sees(&key("emission_factor", &[("area", "DK1")])));
        let restricted = Scope {
            only_devices: Some(["dev-a".to_owned()].into()),
            only_measurements: Some(["co2".to_owned()].into()),
            ..a
        };
        assert!(restricted.sees(&key("co2", &[("device", "dev-a")])));
        assert!(!restricted.sees(&key("temperature", &[("device", "dev-a")])));
        assert!(!restricted.sees(&key("co2", &[("org", "a")])));
    }
}
