//! The privacy gate: a period's query answer becomes a [`Table`] with public ids for devices, only the
//! published tags, snapped locations, suppressed small counts and only ended buckets inside the coverage.
use crate::definition::NewDataset;
use crate::error::{Error, Result};
use crate::plan::Spec;
use crate::table::{PublicSeries, Table};
use crate::values::canonical;
use bydata_schemas::opendata::privacy;
use bydata_schemas::{DeviceId, Location, UnixNanos};
use bydata_store::query::{self, Query};
use bydata_store::{SeriesFilter, SeriesReader};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the gate needs to know about a run: the definition, its plan, the time, the devices' registered
/// locations and the secret behind public ids.
#[derive(Debug)]
pub(crate) struct Gate<'a> {
    pub(crate) def: &'a NewDataset,
    pub(crate) spec: &'a Spec,
    pub(crate) now: UnixNanos,
    pub(crate) locations: &'a HashMap<String, Location>,
    pub(crate) secret: &'a [u8; 32],
    /// The dataset's organisation's series only.
    pub(crate) scope: &'a std::sync::Arc<bydata_store::Scope>,
}

impl Gate<'_> {
    /// The answer for the period `[start, end)` after the privacy gate.
    pub(crate) async fn table(
        &self,
        reader: &dyn SeriesReader,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Table> {
        let Gate {
            def,
            spec,
            now,
            locations,
            secret,
            scope,
        } = *self;
        // The grid starts at the period's start, so buckets tile it; only buckets wholly inside the dataset's
        // temporal coverage (and ended) are published.
        let (from, to) = (start, end);
        let covered = |bucket_start: UnixNanos, bucket_end: UnixNanos| {
            bucket_start >= spec.from
                && spec.to.is_none_or(|t| bucket_end <= t)
                && bucket_end <= now
        };
        let mut series = Vec::new();
        if spec.from < end && spec.to.is_none_or(|t| t > start) {
            let q = Query {
                filter: SeriesFilter {
                    scope: Some(scope.clone()),
                    measurement: Some(spec.measurement.clone()),
                    field: Some(spec.field.clone()),
                    tags: def.selection.tags.clone(),
                },
                from,
                to,
                every: Some(spec.every),
                func: spec.func,
                group_by: None,
                tz: spec.tz,
            };
            let answer = query::run(reader, &q).await?;
            let bounds = query::bucket_bounds(from, to, spec.every, spec.tz)?;
            let rules = def.rules();
            let suppress_below = rules.suppress_counts_below.filter(|_| {
                rules
                    .count_measurements
                    .contains(&def.selection.measurement)
            });
            let wanted: BTreeSet<&str> = def.selection.devices.iter().map(String::as_str).collect();
            for s in answer {
                let counts_people = s.unit.as_ref().is_some_and(|u| u.as_str() == "count");
                if def.personal_data
                    && counts_people
                    && !rules
                        .count_measurements
                        .contains(&def.selection.measurement)
                {
                    return Err(Error::refused(format!(
                        "this dataset is marked as containing personal data and its values are counts (unit `count`): list `{}` in privacy.count_measurements so small counts are suppressed",
                        def.selection.measurement
                    )));
                }
                let device = s.tags.get("device").cloned();
                if !wanted.is_empty() && !device.as_deref().is_some_and(|d| wanted.contains(d)) {
                    continue;
                }
                let mut tags = BTreeMap::new();
                for key in std::iter::once("domain")
                    .chain(def.selection.publish_tags.iter().map(String::as_str))
                {
                    if let Some(v) = s.tags.get(key) {
                        tags.insert(key.to_owned(), v.clone());
                    }
                }
                let location = device
                    .as_ref()
                    .and_then(|d| locations.get(d))
                    .map(|l| match rules.location_grid_m {
                        Some(grid) => privacy::coarsen(*l, grid),
                        None => *l,
                    });
                let public = device
                    .as_deref()
                    .and_then(|d| DeviceId::new(d).ok())
                    .map(|d| privacy::public_id(secret, &d));
                // Only buckets that have ended and begin inside the period: a bucket still filling is
                // published at a later run.
                let points = s
                    .points
                    .iter()
                    .zip(bounds.iter().skip(1))
                    .filter(|((t, _), bucket_end)| *t >= start && covered(*t, **bucket_end))
                    .map(|((t, v), _)| {
                        let v = v.and_then(canonical);
                        let shown = match (v, suppress_below) {
                            (Some(x), Some(below)) => privacy::suppress(x, below),
                            (v, _) => v,
                        };
                        let suppressed = v.is_some() && shown.is_none();
                        (*t, shown, suppressed)
                    })
                    .collect();
                series.push(PublicSeries {
                    device: public,
                    tags,
                    unit: s.unit.map(|u| u.to_string()),
                    location,
                    points,
                });
            }
        }
        series.sort_by(|a, b| (&a.device, &a.tags).cmp(&(&b.device, &b.tags)));
        let mut columns: BTreeSet<String> = BTreeSet::new();
        for s in &series {
            columns.extend(s.tags.keys().cloned());
        }
        Ok(Table {
            measurement: def.selection.measurement.clone(),
            field: spec.field.to_string(),
            every: def.aggregation.every.clone(),
            func: def.aggregation.func.clone(),
            tz: spec.tz,
            columns: columns.into_iter().collect(),
            series,
        })
    }
}
