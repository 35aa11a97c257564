//! Checking a definition: well-formed fields, buckets that tile the published periods, no identifying tag
//! published, and, for personal data, privacy rules that meet the configured minimums.
use crate::definition::{NewDataset, Text};
use crate::error::{Error, Result};
use crate::vocabulary::{
    COLUMNS, COUNT_MEASUREMENTS, FREQUENCIES, IDENTIFYING_TAGS, LICENCES, MIN_TEMPORAL_FROM, THEMES,
};
use bydata_schemas::opendata::privacy::{self, Minimums};
use bydata_schemas::{DeviceId, MeasurementName, parse_rfc3339};
use bydata_store::query::{AggFn, Every};

/// A person-given name (publisher, contact point): trimmed, 1 to 200 characters (as `api` checks names).
fn display_name(raw: &str) -> Result<&str> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::InvalidName {
            message: "name must be 1 to 200 characters".into(),
        });
    }
    Ok(name)
}

fn check_text(field: &str, t: &Text, max: usize) -> Result<()> {
    for (lang, v) in [("da", &t.da), ("en", &t.en)] {
        if v.trim().is_empty() || v.len() > max {
            return Err(Error::invalid(format!(
                "{field}.{lang} must be 1 to {max} characters"
            )));
        }
    }
    Ok(())
}

/// Validates a definition; the bucket width in seconds (approximate for calendar buckets) for the privacy gate.
fn validate(d: &NewDataset) -> Result<u64> {
    DeviceId::new(d.id.as_str()).map_err(|e| Error::invalid(format!("id: {e}")))?;
    check_text("title", &d.title, 200)?;
    check_text("description", &d.description, 5000)?;
    if d.keywords.len() > 50
        || d.keywords
            .iter()
            .any(|k| k.trim().is_empty() || k.len() > 100)
    {
        return Err(Error::invalid(
            "keywords: at most 50, each 1 to 100 characters",
        ));
    }
    if d.themes.is_empty() || d.themes.iter().any(|t| !THEMES.contains(&t.as_str())) {
        return Err(Error::invalid(format!(
            "themes must be one or more of {}",
            THEMES.join(", ")
        )));
    }
    if !LICENCES.contains(&d.licence.as_str()) {
        return Err(Error::invalid("licence must be CC0-1.0 or CC-BY-4.0"));
    }
    if !FREQUENCIES.contains(&d.update_frequency.as_str()) {
        return Err(Error::invalid(format!(
            "update_frequency must be one of {}",
            FREQUENCIES.join(", ")
        )));
    }
    display_name(&d.publisher.name)?;
    display_name(&d.contact_point.name)?;
    if !d
        .contact_point
        .email
        .as_deref()
        .is_some_and(|e| e.contains('@') && e.len() <= 200 && !e.contains(char::is_whitespace))
    {
        return Err(Error::invalid(
            "contact_point.email must be an e-mail address",
        ));
    }
    MeasurementName::new(d.selection.measurement.as_str())
        .map_err(|e| Error::invalid(format!("selection.measurement: {e}")))?;
    if let Some(f) = &d.selection.field {
        MeasurementName::new(f.as_str())
            .map_err(|e| Error::invalid(format!("selection.field: {e}")))?;
    }
    for id in &d.selection.devices {
        DeviceId::new(id.as_str())
            .map_err(|e| Error::invalid(format!("selection.devices: {e}")))?;
    }
    let every: Every = d
        .aggregation
        .every
        .parse()
        .map_err(|e: bydata_store::Error| Error::invalid(format!("aggregation.every: {e}")))?;
    d.aggregation
        .func
        .parse::<AggFn>()
        .map_err(|e| Error::invalid(format!("aggregation.fn: {e}")))?;
    for tag in &d.selection.publish_tags {
        MeasurementName::new(tag.as_str())
            .map_err(|e| Error::invalid(format!("selection.publish_tags: {e}")))?;
        let folded: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if IDENTIFYING_TAGS.contains(&folded.as_str()) {
            return Err(Error::refused(format!(
                "selection.publish_tags: `{tag}` names a device or a radio (device id, DevEUI, gateway, radio metadata) and is never published; open files carry a public device id instead"
            )));
        }
        if COLUMNS.contains(&folded.as_str()) {
            return Err(Error::invalid(format!(
                "selection.publish_tags: `{tag}` is the name of a column of the published files"
            )));
        }
    }
    if !tiles_periods(every) {
        return Err(Error::invalid(format!(
            "aggregation.every: {every} buckets would straddle the published months and years; use 5m, 10m, 15m, 20m, 30m, 1h, 1d, 1mo, 2mo, 3mo, 4mo, 6mo, 12mo or 1y"
        )));
    }
    if let Some(tz) = &d.time_zone {
        tz.parse::<chrono_tz::Tz>()
            .map_err(|_| Error::invalid(format!("time_zone: unknown zone {tz:?}")))?;
    }
    if let Some(t) = &d.temporal {
        let from =
            parse_rfc3339(&t.from).map_err(|e| Error::invalid(format!("temporal.from: {e}")))?;
        if from < MIN_TEMPORAL_FROM {
            return Err(Error::invalid("temporal.from must be 2000-01-01 or later"));
        }
        if let Some(to) = &t.to {
            let to = parse_rfc3339(to).map_err(|e| Error::invalid(format!("temporal.to: {e}")))?;
            if to <= from {
                return Err(Error::invalid("temporal.to must be after temporal.from"));
            }
        }
    }
    Ok(every.approximate_secs())
}

/// Bucket widths that tile the published periods (local months and years), so no bucket straddles two files:
/// divisors of an hour from 5 minutes (fixed buckets align to the local clock in whole-hour zones), a day, a
/// divisor of a year in months, a year.
fn tiles_periods(every: Every) -> bool {
    const HOUR: i64 = 3_600_000_000_000;
    match every {
        Every::Fixed(ns) => (300_000_000_000..=HOUR).contains(&ns) && HOUR % ns == 0,
        Every::Days(n) | Every::Years(n) => n == 1,
        Every::Months(n) => 12 % n == 0,
        Every::Weeks(_) => false,
    }
}

impl NewDataset {
    /// Validation and the privacy gate: the definition is fit to publish under these minimums.
    pub fn check(&self, minimums: &Minimums) -> Result<()> {
        let bucket_secs = validate(self)?;
        let m = self.selection.measurement.as_str();
        // A count of people or vehicles by its name (or `fn count`, which counts events); a count named
        // otherwise is caught at publication by its unit, `count`.
        let counts = COUNT_MEASUREMENTS.contains(&m.to_ascii_lowercase().as_str())
            || self.aggregation.func == "count";
        if self.personal_data && counts && !self.rules().count_measurements.iter().any(|c| c == m) {
            return Err(Error::refused(format!(
                "this dataset is marked as containing personal data and publishes counts (`{m}`, fn {}): list `{m}` in privacy.count_measurements so small counts are suppressed",
                self.aggregation.func
            )));
        }
        privacy::check(self.personal_data, &self.rules(), Some(bucket_secs), minimums).map_err(
            |short| {
                Error::refused(format!(
                        "this dataset is marked as containing personal data and cannot be published as defined: {}",
                        short
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                )
            },
        )
    }
}
