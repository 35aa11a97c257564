//! A script codec's `data` object as what bydata keeps: readings, text state, warnings.

use super::super::{DecodeContext, DecodeError, Decoded, Sorter, invalid_reason};
use super::Output;
use bydata_schemas::{MeasurementName, Reading, Unit};
use serde_json::Value;

/// Flattens `data` into what bydata keeps, all at `ctx.received_at` (in the order of the flattened names:
/// serde_json keeps object keys sorted). The codec's own warnings come first in [`Decoded::warnings`], then
/// what bydata says about the values:
///
/// - numbers are readings, booleans are 1 and 0 (as in flat JSON);
/// - a nested object's keys are joined to its own with `_` (`{"env": {"co2": 1}}` → `env_co2`), and an array's
///   items are numbered (`{"temps": [20, 21]}` → `temps_0`, `temps_1`), to any depth;
/// - strings are text, kept as the device's latest state (`{"button": "open"}`), so a message of text only is
///   decoded, not refused;
/// - nulls, and text under a name that is not a valid field name, are skipped and named in a warning; empty
///   objects and arrays give nothing.
///
/// The names must be valid [`MeasurementName`]s and the units are those [`Unit::for_measurement`] knows, as for
/// flat JSON. The message is then checked like every other format (nothing to keep, too many readings, two
/// with one name), and, as there, refused whole at the first problem. This is what the pipeline stores.
pub fn readings(output: &Output, ctx: &DecodeContext) -> Result<Decoded, DecodeError> {
    let mut values = Vec::new();
    for (key, value) in &output.data {
        flatten(key.clone(), value, &mut values);
    }
    let mut sorter = Sorter::default();
    for (name, value) in values {
        let measurement = || {
            MeasurementName::new(name.as_str()).map_err(|e| DecodeError::InvalidName {
                reason: invalid_reason(&e),
                key: name.clone(),
            })
        };
        match value {
            Flat::Number(value) => {
                let measurement = measurement()?;
                sorter.reading(Reading {
                    unit: Unit::for_measurement(measurement.as_str()),
                    measurement,
                    time: ctx.received_at,
                    value,
                });
            }
            // Text was skipped before it was kept, whatever its name: an unusable name skips it still.
            Flat::Text(text) => match MeasurementName::new(name.as_str()) {
                Ok(field) => sorter.text(field, text, ctx.received_at),
                Err(_) => sorter.skip(name, "text under a name that is not a valid field name"),
            },
            Flat::Null => sorter.skip(name, "null"),
        }
    }
    let mut decoded = sorter.finish(ctx)?;
    let mut warnings = output.warnings.clone();
    warnings.append(&mut decoded.warnings);
    decoded.warnings = warnings;
    Ok(decoded)
}

enum Flat<'a> {
    Number(f64),
    Text(&'a str),
    Null,
}

/// Depth is bounded by serde_json's recursion limit (128) when the output was parsed.
fn flatten<'a>(name: String, value: &'a Value, out: &mut Vec<(String, Flat<'a>)>) {
    match value {
        // Without serde_json's arbitrary_precision every number has an f64 form.
        Value::Number(n) => out.push((name, Flat::Number(n.as_f64().unwrap_or(f64::NAN)))),
        Value::Bool(b) => out.push((name, Flat::Number(f64::from(u8::from(*b))))),
        Value::String(s) => out.push((name, Flat::Text(s))),
        Value::Null => out.push((name, Flat::Null)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(format!("{name}_{i}"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                flatten(format!("{name}_{key}"), item, out);
            }
        }
    }
}
