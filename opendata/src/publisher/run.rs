//! A run: one dataset's due periods, and for each the gate, the identifier check, rendering, hashing and
//! writing; then the manifest, and the CKAN push.
use super::core::Publisher;
use crate::definition::Dataset;
use crate::disk::write_atomic;
use crate::error::{Error, Result, blocking};
use crate::gate::Gate;
use crate::identifiers::Identifiers;
use crate::manifest::{self, FileRecord, Manifest, PeriodRecord, RunRecord, file_name};
use crate::model::FileFormat;
use crate::outcome::{Outcome, PeriodOutcome, RunReport};
use crate::period::{Period, time_in};
use crate::plan::{Spec, secs};
use crate::table::Table;
use bydata_schemas::opendata::privacy;
use bydata_schemas::{Location, UnixNanos, format_rfc3339};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

impl Publisher {
    /// Publishes a dataset: the periods that are due (`which: None`: every period without a version yet, the
    /// most recently ended one again for late data, and the running one) or one period on demand. One run per
    /// dataset at a time; the CKAN push follows outside the lock.
    pub async fn publish(&self, dataset: &Dataset, which: Option<&str>) -> Result<RunReport> {
        let now = self.now();
        // A request for a period is checked before anything is locked or written.
        let spec = Spec::new(dataset)?;
        let requested = which.map(|label| spec.requested(label, now)).transpose()?;
        let lock = self.lock(&dataset.id);
        let guard = lock.lock().await;
        // Deleted (or deleted and defined again) while this run waited: nothing may be written for it.
        if !self.still_defined(dataset).await? {
            return Err(Error::DatasetNotFound {
                id: dataset.id.clone(),
            });
        }
        let mut manifest = self.archive.manifest(&dataset.id)?;
        let result = self.run(dataset, &spec, &manifest, requested, now).await;
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
        self.save_manifest(&dataset.id, manifest).await?;
        drop(guard);
        let run = result?;
        let changed = run.outcomes.iter().any(|o| o.outcome != Outcome::Unchanged);
        let landing = format!("{}/opendata/datasets/{}", self.base_url, dataset.id);
        let ckan = self.push_if_wanted(dataset, changed).await?;
        Ok(RunReport {
            dataset: dataset.id.clone(),
            at: format_rfc3339(now),
            periods: run
                .outcomes
                .iter()
                .map(|o| o.report(&landing, &dataset.id))
                .collect(),
            ckan,
        })
    }

    /// Writes a dataset's manifest (the caller holds its lock), off the async workers.
    pub(super) async fn save_manifest(&self, id: &str, manifest: Manifest) -> Result<()> {
        let dir = self.archive.dataset_dir(id);
        blocking(move || manifest::save(&dir, &manifest)).await
    }

    /// Computes the due periods and writes the files of those that changed (the manifest is the caller's).
    async fn run(
        &self,
        dataset: &Dataset,
        spec: &Spec,
        manifest: &Manifest,
        requested: Option<Period>,
        now: UnixNanos,
    ) -> Result<Run> {
        let def = &dataset.definition;
        def.check(&self.settings.minimums)?;
        let settle = secs(self.settings.settle_secs);
        let (periods, more) = match requested {
            Some(p) => (vec![p], false),
            None => spec.due(manifest, now, settle)?,
        };
        let identifiers = self.registry().device_identifiers().await?;
        let devices = self.registry().devices().await?;
        let identifiers = Arc::new(Identifiers::new(identifiers));
        // A dataset publishes only its organisation's series (see `bydata_store::Scope`).
        let scope = Arc::new(bydata_store::Scope {
            orgs: [dataset.org.to_string()].into(),
            devices: devices
                .iter()
                .filter(|d| d.org == dataset.org)
                .map(|d| d.id.to_string())
                .collect(),
            ..Default::default()
        });
        let locations: HashMap<String, Location> = devices
            .into_iter()
            .filter_map(|d| Some((d.id.to_string(), d.location?)))
            .collect();
        let secret = if def.personal_data {
            // Per dataset id (not per definition: published files must be reproducible from the stored points,
            // the definition and the secret alone).
            privacy::scoped_secret(&self.secret, &format!("dataset {}", dataset.id))
        } else {
            self.secret
        };
        let gate = Gate {
            def,
            spec,
            now,
            locations: &locations,
            secret: &secret,
            scope: &scope,
        };
        let mut outcomes = Vec::new();
        let mut unit = None;
        for period in periods {
            let start = period.start(spec.tz)?;
            let end = period.end(spec.tz)?;
            let table = gate.table(&*self.deps.reader, start, end).await?;
            if unit.is_none() {
                unit = table.series.iter().find_map(|s| s.unit.clone());
            }
            let work = PeriodWork {
                id: dataset.id.clone(),
                dir: self.archive.dataset_dir(&dataset.id),
                label: period.to_string(),
                start: time_in(spec.tz, start),
                end: time_in(spec.tz, end),
                complete: spec.complete(period, now, settle)?,
                record: manifest.periods.get(&period.to_string()).cloned(),
                identifiers: identifiers.clone(),
            };
            // Rendering, hashing and writing are CPU and disk work: off the async workers, a period at a time.
            outcomes.push(blocking(move || work.write(&table)).await?);
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

/// One period's files to check, render, hash and write.
struct PeriodWork {
    id: String,
    dir: PathBuf,
    label: String,
    start: String,
    end: String,
    complete: bool,
    record: Option<PeriodRecord>,
    identifiers: Arc<Identifiers>,
}

impl PeriodWork {
    /// Refuses a table that exposes an identifier; otherwise renders it and writes the files when they are a
    /// new version or new running files.
    fn write(self, table: &Table) -> Result<PeriodOutcome> {
        let label = self.label;
        if let Some(key) = table.exposes(&self.identifiers) {
            return Err(Error::refused(format!(
                "period {label}: values of tag `{key}` contain a device or radio identifier (a device id, DevEUI, DevAddr, JoinEUI, gateway EUI, or anything shaped like an EUI-64); remove `{key}` from selection.publish_tags"
            )));
        }
        let files: Vec<(FileFormat, Vec<u8>)> = FileFormat::ALL
            .into_iter()
            .map(|f| (f, table.render(f, &self.id, &label)))
            .collect();
        let hashes: BTreeMap<String, FileRecord> = files
            .iter()
            .map(|(f, bytes)| (f.extension().to_owned(), FileRecord::of(bytes)))
            .collect();
        let record = self.record.as_ref();
        let outcome = if self.complete {
            match record.and_then(|r| r.versions.last()) {
                Some(v) if v.files == hashes => Outcome::Unchanged,
                Some(v) => Outcome::NewVersion(v.version + 1),
                None => Outcome::NewVersion(1),
            }
        } else {
            match record.and_then(|r| r.running.as_ref()) {
                Some(r) if r.files == hashes => Outcome::Unchanged,
                _ => Outcome::Running,
            }
        };
        let o = PeriodOutcome {
            period: label,
            start: self.start,
            end: self.end,
            outcome,
            hashes,
        };
        if let Some(sub) = o.dir() {
            for (format, bytes) in &files {
                let path = self
                    .dir
                    .join(&o.period)
                    .join(&sub)
                    .join(file_name(&self.id, &o.period, *format));
                write_atomic(&path, bytes).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(o)
    }
}
