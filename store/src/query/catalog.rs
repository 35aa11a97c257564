//! What exists to query: the measurements of the store with their fields, units, tag keys and values, and
//! series counts (`GET /api/v1/measurements`), filtered like a query (`measurement`, `device`,
//! `tag.KEY=VALUE`) or by part of a name (`search`). Tag values are bounded per key, with their count, so a
//! tag that names thousands of devices still answers small.
use super::ParamError;
use super::params::{name, refuse_unknown};
use crate::Result;
use crate::series::{SeriesFilter, SeriesReader};
use bydata_schemas::{DeviceId, MeasurementName};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most values listed per tag key of a measurement (the count says how many there are).
pub const MAX_TAG_VALUES: usize = 100;
const KNOWN: [&str; 3] = ["measurement", "device", "search"];

/// Which measurements to describe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogFilter {
    pub measurement: Option<MeasurementName>,
    /// Exact tag values (`device=ID` is the tag `device`).
    pub tags: BTreeMap<String, String>,
    /// Part of the measurement's name, case ignored.
    pub search: Option<String>,
    /// Whose series (`None`: everyone's).
    pub scope: Option<std::sync::Arc<crate::series::Scope>>,
}

/// One measurement: what its series hold.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementInfo {
    pub name: MeasurementName,
    /// Its fields, sorted.
    pub fields: Vec<String>,
    /// The units its series were written with, sorted (none for unitless series).
    pub units: Vec<String>,
    pub series: u64,
    /// Per tag key: up to [`MAX_TAG_VALUES`] values (sorted) and how many there are.
    pub tags: BTreeMap<String, TagValues>,
}

/// Values of one tag key, bounded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagValues {
    pub values: Vec<String>,
    /// Distinct values in all (more than `values` holds when it is cut).
    pub count: u64,
}

/// The query string of `GET /api/v1/measurements` into a filter; unknown parameters are refused.
pub fn catalog_filter(params: &HashMap<String, String>) -> Result<CatalogFilter, ParamError> {
    refuse_unknown(params, &KNOWN)?;
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut filter = CatalogFilter {
        measurement: get("measurement")
            .map(|m| name("measurement", m))
            .transpose()?,
        search: get("search").map(str::to_lowercase),
        ..CatalogFilter::default()
    };
    for (k, v) in params {
        if let Some(key) = k.strip_prefix("tag.") {
            if key.is_empty() {
                return Err(ParamError::Invalid(
                    "tag. needs a key: tag.KEY=VALUE".into(),
                ));
            }
            filter.tags.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(device) = get("device") {
        let id = DeviceId::new(device).map_err(|e| ParamError::Invalid(format!("device: {e}")))?;
        filter.tags.insert("device".to_owned(), id.to_string());
    }
    Ok(filter)
}

/// The measurements matching `filter`, by name.
pub async fn measurements(
    reader: &dyn SeriesReader,
    filter: &CatalogFilter,
) -> Result<Vec<MeasurementInfo>> {
    let series = reader
        .series(&SeriesFilter {
            scope: filter.scope.clone(),
            measurement: filter.measurement.clone(),
            field: None,
            tags: filter.tags.clone(),
        })
        .await?;
    #[derive(Default)]
    struct Acc {
        fields: BTreeSet<String>,
        units: BTreeSet<String>,
        series: u64,
        tags: BTreeMap<String, BTreeSet<String>>,
    }
    let mut by_name: BTreeMap<MeasurementName, Acc> = BTreeMap::new();
    for s in &series {
        let name = &s.key.measurement;
        if let Some(search) = &filter.search
            && !name.as_str().to_lowercase().contains(search.as_str())
        {
            continue;
        }
        let acc = by_name.entry(name.clone()).or_default();
        acc.series += 1;
        acc.fields.insert(s.key.field.to_string());
        if let Some(unit) = &s.unit {
            acc.units.insert(unit.as_str().to_owned());
        }
        for (k, v) in &s.key.tags {
            acc.tags.entry(k.clone()).or_default().insert(v.clone());
        }
    }
    Ok(by_name
        .into_iter()
        .map(|(name, acc)| MeasurementInfo {
            name,
            fields: acc.fields.into_iter().collect(),
            units: acc.units.into_iter().collect(),
            series: acc.series,
            tags: acc
                .tags
                .into_iter()
                .map(|(k, values)| {
                    let count = values.len() as u64;
                    let values = values.into_iter().take(MAX_TAG_VALUES).collect();
                    (k, TagValues { values, count })
                })
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesInfo;
    use bydata_schemas::{SeriesKey, Unit};
    use proptest::prelude::*;

    struct Fixed(Vec<SeriesInfo>);

    #[async_trait::async_trait]
    impl SeriesReader for Fixed {
        async fn series(&self, f: &SeriesFilter) -> Result<Vec<SeriesInfo>> {
            Ok(self
                .0
                .iter()
                .filter(|s| f.matches(&s.key))
                .cloned()
                .collect())
        }
        async fn range(&self, _: &SeriesKey, _: i64, _: i64) -> Result<Vec<(i64, f64)>> {
            Ok(Vec::new())
        }
        async fn last_before(&self, _: &SeriesKey, _: i64) -> Result<Option<(i64, f64)>> {
            Ok(None)
        }
    }

    fn info(m: &str, field: &str, unit: Option<&str>, tags: &[(&str, &str)]) -> SeriesInfo {
        SeriesInfo {
            key: SeriesKey {
                measurement: MeasurementName::new(m).expect("name"),
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                field: MeasurementName::new(field).expect("field"),
            },
            unit: unit.map(|u| Unit::new(u).expect("unit")),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn lists_bounded_and_filtered() {
        let mut all = vec![
            info(
                "co2",
                "value",
                Some("ppm"),
                &[("device", "a"), ("building", "b1")],
            ),
            info("climate", "temperature", Some("°C"), &[("building", "b1")]),
            info("climate", "humidity", None, &[("building", "b2")]),
        ];
        for i in 0..150 {
            all.push(info(
                "energy_kwh",
                "value",
                Some("kWh"),
                &[("device", &format!("m{i:03}"))],
            ));
        }
        let reader = Fixed(all);
        let every = measurements(&reader, &CatalogFilter::default())
            .await
            .expect("list");
        let names: Vec<&str> = every.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["climate", "co2", "energy_kwh"]);
        assert_eq!(every[0].fields, ["humidity", "temperature"]);
        assert_eq!(every[0].units, ["°C"]);
        assert_eq!(every[0].tags["building"].values, ["b1", "b2"]);
        let meters = &every[2].tags["device"];
        assert_eq!((meters.values.len(), meters.count), (MAX_TAG_VALUES, 150));
        assert_eq!(every[2].series, 150);

        let f = catalog_filter(&params(&[("tag.building", "b1")])).expect("filter");
        let b1 = measurements(&reader, &f).await.expect("list");
        assert_eq!(b1.iter().map(|m| m.series).sum::<u64>(), 2);
        let f = catalog_filter(&params(&[("search", "KWH"), ("device", "m007")])).expect("filter");
        let one = measurements(&reader, &f).await.expect("list");
        assert_eq!((one.len(), one[0].series), (1, 1));
        assert!(catalog_filter(&params(&[("measurment", "co2")])).is_err());
        assert!(catalog_filter(&params(&[("device", "Bad Id")])).is_err());
    }

    proptest! {
        #[test]
        fn any_parameters_parse_or_refuse(pairs in proptest::collection::vec((
            prop_oneof![prop::sample::select(KNOWN.to_vec()).prop_map(str::to_owned), "tag\\.[a-z]{0,3}", ".{0,8}"],
            ".{0,16}",
        ), 0..6)) {
            let _ = catalog_filter(&pairs.into_iter().collect());
        }
    }
}
