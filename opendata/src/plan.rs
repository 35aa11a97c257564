//! Planning a run: what a dataset's definition means for it (the query, the time zone, the temporal
//! coverage), the periods it spans, and which of them are due.
use crate::definition::Dataset;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::period::{DEFAULT_TZ, Period};
use bydata_schemas::{MeasurementName, SeriesKey, UnixNanos};
use bydata_store::query::{AggFn, Every};
use chrono_tz::Tz;

/// What a dataset's definition means for a run.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) measurement: MeasurementName,
    pub(crate) field: MeasurementName,
    pub(crate) every: Every,
    pub(crate) func: AggFn,
    pub(crate) tz: Tz,
    /// Periods are years when buckets are a month or more, months otherwise.
    yearly: bool,
    pub(crate) from: UnixNanos,
    pub(crate) to: Option<UnixNanos>,
}

impl Spec {
    pub(crate) fn new(dataset: &Dataset) -> Result<Self> {
        let (def, created_at) = (&dataset.definition, dataset.created_at);
        let bad = |m: String| Error::invalid(m);
        let every: Every = def
            .aggregation
            .every
            .parse()
            .map_err(|e: bydata_store::Error| bad(e.to_string()))?;
        let tz: Tz = def
            .time_zone
            .as_deref()
            .map_or(Ok(DEFAULT_TZ), str::parse)
            .map_err(|_| bad("time_zone".into()))?;
        let (from, to) = match &def.temporal {
            Some(t) => (
                bydata_schemas::parse_rfc3339(&t.from).map_err(|e| bad(e.to_string()))?,
                t.to.as_deref()
                    .map(bydata_schemas::parse_rfc3339)
                    .transpose()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            None => (created_at, None),
        };
        Ok(Self {
            measurement: MeasurementName::new(def.selection.measurement.as_str())
                .map_err(|e| bad(e.to_string()))?,
            field: MeasurementName::new(
                def.selection
                    .field
                    .as_deref()
                    .unwrap_or(SeriesKey::DEFAULT_FIELD),
            )
            .map_err(|e| bad(e.to_string()))?,
            every,
            func: def
                .aggregation
                .func
                .parse()
                .map_err(|e: bydata_store::Error| bad(e.to_string()))?,
            tz,
            yearly: every.approximate_secs() >= 28 * 86_400,
            from,
            to,
        })
    }

    /// A period asked for on demand: well-formed, begun, and inside the temporal coverage.
    pub(crate) fn requested(&self, label: &str, now: UnixNanos) -> Result<Period> {
        let p = Period::parse(label, self.yearly).ok_or_else(|| {
            Error::period(format!(
                "period must look like {}",
                if self.yearly { "2026" } else { "2026-03" }
            ))
        })?;
        let (start, end) = (p.start(self.tz)?, p.end(self.tz)?);
        if start > now {
            return Err(Error::period("that period has not begun"));
        }
        if end <= self.from || self.to.is_some_and(|to| start >= to) {
            return Err(Error::period(format!(
                "{label} is outside the dataset's temporal coverage"
            )));
        }
        Ok(p)
    }

    /// The periods from the dataset's start up to now (or its end), oldest first.
    pub(crate) fn periods(&self, now: UnixNanos) -> Result<Vec<Period>> {
        let last = self.to.map_or(now, |to| to.saturating_sub(1).min(now));
        if last < self.from {
            return Ok(Vec::new());
        }
        let mut p = Period::containing(self.from, self.tz, self.yearly);
        let stop = Period::containing(last, self.tz, self.yearly);
        let mut out = Vec::new();
        while p <= stop {
            out.push(p);
            p = p.next();
        }
        Ok(out)
    }

    /// Whether a period has ended, and `settle` nanoseconds passed since: its files get versions.
    pub(crate) fn complete(&self, p: Period, now: UnixNanos, settle: i64) -> Result<bool> {
        Ok(now >= p.end(self.tz)?.saturating_add(settle))
    }

    /// What a scheduled run computes: every period without a version yet, the most recently completed one
    /// again (late data after its version 1), and the running one — oldest first, at most
    /// [`MAX_PERIODS_PER_RUN`]; `true` when more were due (the rest at the next tick).
    pub(crate) fn due(
        &self,
        manifest: &Manifest,
        now: UnixNanos,
        settle: i64,
    ) -> Result<(Vec<Period>, bool)> {
        let all = self.periods(now)?;
        let mut recheck = None;
        for p in all.iter().rev() {
            if self.complete(*p, now, settle)? {
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
        let more = due.len() > MAX_PERIODS_PER_RUN;
        due.truncate(MAX_PERIODS_PER_RUN);
        Ok((due, more))
    }
}

/// Most periods one run computes (ten years of months).
const MAX_PERIODS_PER_RUN: usize = 120;

/// Seconds as nanoseconds, saturating.
pub(crate) fn secs(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_periods_of_a_run_run_from_the_start_to_now_or_the_end() {
        let spec = |from: &str, to: Option<&str>, yearly| Spec {
            measurement: MeasurementName::new("x").expect("name"),
            field: MeasurementName::new("value").expect("name"),
            every: "1h".parse().expect("every"),
            func: AggFn::Mean,
            tz: DEFAULT_TZ,
            yearly,
            from: bydata_schemas::parse_rfc3339(from).expect("from"),
            to: to.map(|t| bydata_schemas::parse_rfc3339(t).expect("to")),
        };
        let now = bydata_schemas::parse_rfc3339("2026-11-22T12:00:00Z").expect("now");
        let labels = |s: &Spec| -> Vec<String> {
            s.periods(now)
                .expect("periods")
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            labels(&spec("2026-09-15T00:00:00Z", None, false)),
            ["2026-09", "2026-10", "2026-11"]
        );
        // `to` is exclusive: a dataset ending at April's first instant covers March only.
        assert_eq!(
            labels(&spec(
                "2026-03-01T00:00:00+01:00",
                Some("2026-04-01T00:00:00+02:00"),
                false
            )),
            ["2026-03"]
        );
        assert_eq!(
            labels(&spec("2024-06-01T00:00:00Z", None, true)),
            ["2024", "2025", "2026"]
        );
        assert!(labels(&spec("2027-01-01T00:00:00Z", None, false)).is_empty());
        let long = spec("2000-01-01T00:00:00Z", None, false);
        let all = labels(&long);
        assert_eq!(all.len(), 26 * 12 + 11);
        assert_eq!(all.last().map(String::as_str), Some("2026-11"));
    }
}
