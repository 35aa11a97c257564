//! What one message decoded to — numbers for series, text for the device's state, and warnings naming what
//! was kept as text or skipped — and the checks every format's result goes through.
//!
//! The flat formats (flat JSON, SenML, a JavaScript codec's `data`) fill a [`Sorter`] value by value; it
//! decides where each goes: numbers and JSON booleans (1/0) become readings, strings become text state
//! (a word such as `"on"` or `"open"` too: what it means is the device's business, so it is kept as written),
//! anything else (null, an object or array where the format has no meaning for one, binary data) is skipped
//! and named in a warning. [`Sorter::finish`] checks the result: a message is refused only when it holds
//! nothing to keep, or when a value is invalid (a time in the future, a non-finite number, …) — then whole.

use super::{DecodeContext, DecodeError};
use bydata_schemas::{MeasurementName, Reading, UnixNanos, parse_rfc3339};
use std::collections::HashSet;

/// At most this many readings are accepted from one message; a larger message is rejected whole.
pub const MAX_READINGS: usize = 1000;
/// At most this many text fields are kept from one message (the first by name); the rest are named in a
/// warning. The registry keeps at most as many per device (the oldest give way).
pub const MAX_TEXT_FIELDS: usize = 64;
/// Longest text kept, in bytes (UTF-8); a longer one is cut at a character boundary, with a warning.
pub const MAX_TEXT_BYTES: usize = 256;

/// A text value a device sent, kept as the device's latest state of `field` rather than as a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextValue {
    pub field: MeasurementName,
    pub value: String,
    pub time: UnixNanos,
}

/// What one message decoded to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// Numbers (and JSON booleans as 1/0), for series.
    pub readings: Vec<Reading>,
    /// Text, for the device's latest state.
    pub state: Vec<TextValue>,
    /// What was kept as text, skipped, or read in a way the sender may not expect, in words.
    pub warnings: Vec<String>,
}

/// Collects a message's values and sorts them into readings, text and skipped fields.
#[derive(Debug, Default)]
pub(crate) struct Sorter {
    readings: Vec<Reading>,
    texts: Vec<TextValue>,
    /// Skipped fields with what they were ("null", "an object", "a data value (vd)").
    skipped: Vec<(String, String)>,
    /// Text fields whose text reads as a number, or as a time.
    numeric_text: Vec<String>,
    time_text: Vec<String>,
    /// Whether the format reads its time from the time keys (flat JSON), so a time-like text is worth a hint.
    time_keys: bool,
    /// Other warnings, in the order they arose.
    notes: Vec<String>,
}

impl Sorter {
    /// For flat JSON: a text that reads as a time under another key gets a hint naming the time keys.
    pub(crate) fn with_time_keys() -> Self {
        Self {
            time_keys: true,
            ..Self::default()
        }
    }

    pub(crate) fn reading(&mut self, reading: Reading) {
        self.readings.push(reading);
    }

    pub(crate) fn text(&mut self, field: MeasurementName, value: &str, time: UnixNanos) {
        let trimmed = value.trim();
        if !trimmed.is_empty() && trimmed.parse::<f64>().is_ok_and(f64::is_finite) {
            self.numeric_text.push(field.to_string());
        } else if self.time_keys && parse_rfc3339(trimmed).is_ok() {
            self.time_text.push(field.to_string());
        }
        self.texts.push(TextValue {
            field,
            value: value.to_owned(),
            time,
        });
    }

    pub(crate) fn skip(&mut self, field: impl Into<String>, what: impl Into<String>) {
        self.skipped.push((field.into(), what.into()));
    }

    pub(crate) fn note(&mut self, warning: String) {
        self.notes.push(warning);
    }

    /// Checks every value against `ctx` and the limits; `Err` refuses the whole message.
    pub(crate) fn finish(self, ctx: &DecodeContext) -> Result<Decoded, DecodeError> {
        let Sorter {
            readings,
            mut texts,
            skipped,
            numeric_text,
            time_text,
            notes,
            time_keys: _,
        } = self;
        let skipped_list = || {
            skipped
                .iter()
                .map(|(f, what)| format!("{f} ({what})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if readings.is_empty() && texts.is_empty() {
            return Err(if skipped.is_empty() {
                DecodeError::NoReadings
            } else {
                DecodeError::NothingStored {
                    skipped: skipped_list(),
                }
            });
        }
        validate(&readings, ctx)?;
        for t in &texts {
            check_time(t.field.as_str(), t.time, ctx)?;
        }
        let mut warnings = Vec::new();
        // One value per field: the latest (or, at one time, the last given) is the state.
        texts.sort_by(|a, b| a.field.cmp(&b.field).then(a.time.cmp(&b.time)));
        texts.reverse();
        texts.dedup_by(|later, kept| later.field == kept.field);
        texts.reverse();
        if texts.len() > MAX_TEXT_FIELDS {
            let dropped: Vec<String> = texts
                .drain(MAX_TEXT_FIELDS..)
                .map(|t| t.field.to_string())
                .collect();
            warnings.push(format!(
                "not kept (at most {MAX_TEXT_FIELDS} text fields a message): {}",
                dropped.join(", ")
            ));
        }
        let mut cut = Vec::new();
        for t in &mut texts {
            if t.value.len() > MAX_TEXT_BYTES {
                let mut end = MAX_TEXT_BYTES;
                while !t.value.is_char_boundary(end) {
                    end -= 1;
                }
                t.value.truncate(end);
                cut.push(t.field.to_string());
            }
        }
        if !texts.is_empty() {
            let names: Vec<&str> = texts.iter().map(|t| t.field.as_str()).collect();
            warnings.insert(
                0,
                format!(
                    "kept as text state, not as series: {} (see the device's latest state)",
                    names.join(", ")
                ),
            );
        }
        if !cut.is_empty() {
            warnings.push(format!(
                "text cut to {MAX_TEXT_BYTES} bytes: {}",
                cut.join(", ")
            ));
        }
        if !numeric_text.is_empty() {
            warnings.push(format!(
                "text that reads as a number: {}; send it as a JSON number (without quotes) to store it as a series",
                numeric_text.join(", ")
            ));
        }
        if !time_text.is_empty() {
            warnings.push(format!(
                "text that reads as a time: {}; the message time is read from \"time\", \"timestamp\", \"ts\" or \"t\"",
                time_text.join(", ")
            ));
        }
        if !skipped.is_empty() {
            warnings.push(format!(
                "not stored (not a number, boolean or text): {}",
                skipped_list()
            ));
        }
        warnings.extend(notes);
        Ok(Decoded {
            readings,
            state: texts,
            warnings,
        })
    }
}

/// Checks a message's readings: how many, finite, not too far in the future or past, one per name and time.
fn validate(readings: &[Reading], ctx: &DecodeContext) -> Result<(), DecodeError> {
    if readings.len() > MAX_READINGS {
        return Err(DecodeError::TooManyReadings {
            count: readings.len(),
            limit: MAX_READINGS,
        });
    }
    let mut seen = HashSet::with_capacity(readings.len());
    for r in readings {
        let measurement = || r.measurement.as_str().to_owned();
        if !r.value.is_finite() {
            return Err(DecodeError::NonFinite {
                measurement: measurement(),
            });
        }
        check_time(r.measurement.as_str(), r.time, ctx)?;
        // The store keeps one point per series and time, so a second value would silently replace the first.
        if !seen.insert((r.measurement.as_str(), r.time)) {
            return Err(DecodeError::Duplicate {
                measurement: measurement(),
                time: r.time,
            });
        }
    }
    Ok(())
}

fn check_time(name: &str, time: UnixNanos, ctx: &DecodeContext) -> Result<(), DecodeError> {
    let latest = ctx.received_at.saturating_add(ctx.max_future);
    if time > latest {
        return Err(DecodeError::InFuture {
            measurement: name.to_owned(),
            time,
            ahead: time.saturating_sub(ctx.received_at),
            max_future: ctx.max_future,
        });
    }
    if time < ctx.min_time {
        return Err(DecodeError::TooOld {
            measurement: name.to_owned(),
            time,
            min_time: ctx.min_time,
        });
    }
    Ok(())
}
