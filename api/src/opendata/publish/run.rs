//! A run: one dataset's due periods, and for each the gate, the identifier check, rendering, hashing and
//! writing; then the manifest, and the CKAN push.
use super::disk::write_atomic;
use super::identifiers::Identifiers;
use super::manifest::{FileRecord, Manifest, RunRecord, file_name};
use super::period::Period;
use super::report::{Outcome, PeriodOutcome, RunReport};
use super::spec::Spec;
use super::{OpenData, internal, on_blocking_pool, secs};
use crate::datasets::NewDataset;
use crate::opendata::model::FileFormat;
use crate::query::time_in;
use crate::{AppState, Error};
use bydata_schemas::opendata::privacy;
use bydata_schemas::{Location, UnixNanos, format_rfc3339};
use bydata_store::StoredDataset;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Most periods one run computes (ten years of months).
const MAX_PERIODS_PER_RUN: usize = 120;

impl OpenData {
    /// Publishes a dataset: the periods that are due (`which: None`: every period without a version yet, the
    /// most recently ended one again for late data, and the running one) or one period on demand. One run per
    /// dataset at a time; the CKAN push follows outside the lock.
    pub(crate) async fn publish(
        &self,
        state: &AppState,
        stored: &StoredDataset,
        which: Option<&str>,
    ) -> Result<RunReport, Error> {
        let def = NewDataset::of(stored)?;
        let now = (state.clock)();
        // A request for a period is checked before anything is locked or written.
        let spec = Spec::new(&def, stored.created_at)?;
        let requested = which.map(|label| spec.requested(label, now)).transpose()?;
        let lock = self.lock(&stored.id);
        let guard = lock.lock().await;
        // Deleted (or deleted and defined again) while this run waited: nothing may be written for it.
        if !self.still_defined(state, stored).await? {
            return Err(Error::NotFound {
                what: "dataset",
                id: stored.id.clone(),
            });
        }
        let dir = self.dataset_dir(&stored.id);
        let mut manifest = self.manifest(&stored.id)?;
        let result = self
            .run(state, stored, &def, &spec, &manifest, requested, now)
            .await;
        let record = RunRecord {
            at: format_rfc3339(now),
            ok: result.is_ok(),
            error: result.as_ref().err().map(ToString::to_string),
            more: result.as_ref().is_ok_and(|r| r.more),
        };
        if requested.is_none() {
            manifest.last_scheduled_run = Some(record.clone());
        }
        manifest.last_run = Some(record);
        if let Ok(run) = &result {
            for o in &run.outcomes {
                o.apply(&mut manifest, now);
            }
            if run.unit.is_some() {
                manifest.unit.clone_from(&run.unit);
            }
        }
        self.save_manifest(&dir, &manifest).await?;
        drop(guard);
        let run = result?;
        let changed = run.outcomes.iter().any(|o| o.outcome != Outcome::Unchanged);
        let landing = format!("{}/opendata/datasets/{}", self.base_url, stored.id);
        let ckan = self.push_if_wanted(state, stored, &def, changed).await?;
        Ok(RunReport {
            dataset: stored.id.clone(),
            at: format_rfc3339(now),
            periods: run
                .outcomes
                .iter()
                .map(|o| o.report(&landing, &stored.id))
                .collect(),
            ckan,
        })
    }

    /// Whether the registry still holds this very definition (same id and creation time).
    pub(super) async fn still_defined(
        &self,
        state: &AppState,
        stored: &StoredDataset,
    ) -> Result<bool, Error> {
        let now = state.registry.dataset(&stored.id).await?;
        Ok(now.is_some_and(|d| d.created_at == stored.created_at))
    }

    /// Computes the due periods and writes the files of those that changed (the manifest is the caller's).
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        state: &AppState,
        stored: &StoredDataset,
        def: &NewDataset,
        spec: &Spec,
        manifest: &Manifest,
        requested: Option<Period>,
        now: UnixNanos,
    ) -> Result<Run, Error> {
        def.check(&self.settings.minimums)?;
        let settle = secs(self.settings.settle_secs);
        let complete = |p: &Period| -> Result<bool, Error> {
            Ok(now >= p.end(spec.tz)?.saturating_add(settle))
        };
        let mut more = false;
        let periods = match requested {
            Some(p) => vec![p],
            None => {
                let all = spec.periods(now)?;
                // The most recently ended period is looked at again: late data after its version 1.
                let mut recheck = None;
                for p in all.iter().rev() {
                    if complete(p)? {
                        recheck = Some(*p);
                        break;
                    }
                }
                let mut due: Vec<Period> = all
                    .into_iter()
                    .filter(|p| {
                        Some(*p) == recheck
                            || manifest
                                .periods
                                .get(&p.to_string())
                                .is_none_or(|r| r.versions.is_empty())
                    })
                    .collect();
                // Oldest first; the rest at the next tick.
                more = due.len() > MAX_PERIODS_PER_RUN;
                due.truncate(MAX_PERIODS_PER_RUN);
                due
            }
        };
        let identifiers = state.registry.device_identifiers().await?;
        let devices = state.registry.devices().await?;
        let identifiers = Arc::new(Identifiers::new(identifiers));
        let locations: HashMap<String, Location> = devices
            .into_iter()
            .filter_map(|d| Some((d.id.to_string(), d.location?)))
            .collect();
        let secret = if def.personal_data {
            // Per dataset id (not per definition: published files must be reproducible from the stored points,
            // the definition and the secret alone).
            privacy::scoped_secret(&self.secret, &format!("dataset {}", stored.id))
        } else {
            self.secret
        };
        let mut outcomes = Vec::new();
        let mut unit = None;
        for period in periods {
            let start = period.start(spec.tz)?;
            let end = period.end(spec.tz)?;
            let table = self
                .table(state, def, spec, start, end, now, &locations, &secret)
                .await?;
            if unit.is_none() {
                unit = table.series.iter().find_map(|s| s.unit.clone());
            }
            let label = period.to_string();
            let record = manifest.periods.get(&label).cloned();
            let is_complete = complete(&period)?;
            let (id, dir, ids) = (
                stored.id.clone(),
                self.dataset_dir(&stored.id),
                identifiers.clone(),
            );
            let (start_s, end_s) = (time_in(spec.tz, start), time_in(spec.tz, end));
            // Rendering, hashing and writing are CPU and disk work: off the async workers, a period at a time.
            let outcome = on_blocking_pool(move || {
                if let Some(key) = table.exposes(&ids) {
                    return Err(Error::bad(
                        "privacy_refused",
                        format!(
                            "period {label}: values of tag `{key}` contain a device or radio identifier (a device id, DevEUI, DevAddr, JoinEUI, gateway EUI, or anything shaped like an EUI-64); remove `{key}` from selection.publish_tags"
                        ),
                    ));
                }
                let files: Vec<(FileFormat, Vec<u8>)> = FileFormat::ALL
                    .into_iter()
                    .map(|f| (f, table.render(f, &id, &label)))
                    .collect();
                let hashes: BTreeMap<String, FileRecord> = files
                    .iter()
                    .map(|(f, bytes)| (f.extension().to_owned(), FileRecord::of(bytes)))
                    .collect();
                let outcome = if is_complete {
                    match record.as_ref().and_then(|r| r.versions.last()) {
                        Some(v) if v.files == hashes => Outcome::Unchanged,
                        Some(v) => Outcome::NewVersion(v.version + 1),
                        None => Outcome::NewVersion(1),
                    }
                } else {
                    match record.as_ref().and_then(|r| r.running.as_ref()) {
                        Some(r) if r.files == hashes => Outcome::Unchanged,
                        _ => Outcome::Running,
                    }
                };
                let o = PeriodOutcome {
                    period: label,
                    start: start_s,
                    end: end_s,
                    outcome,
                    hashes,
                };
                if let Some(sub) = o.dir() {
                    for (format, bytes) in &files {
                        let path = dir
                            .join(&o.period)
                            .join(&sub)
                            .join(file_name(&id, &o.period, *format));
                        write_atomic(&path, bytes).map_err(|e| internal(&path, e))?;
                    }
                }
                Ok(o)
            })
            .await?;
            outcomes.push(outcome);
        }
        Ok(Run {
            outcomes,
            unit,
            more,
        })
    }
}

/// What a run computed (files already written).
#[derive(Debug)]
struct Run {
    outcomes: Vec<PeriodOutcome>,
    unit: Option<String>,
    more: bool,
}
