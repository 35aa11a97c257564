//! A script codec's `data` object as [`Reading`]s.

use super::super::{DecodeContext, DecodeError, invalid_reason, validate};
use super::Output;
use bydata_schemas::{MeasurementName, Reading, Unit};
use serde_json::Value;

/// Flattens `data` into readings, all at `ctx.received_at`, and returns them (in the order of the flattened
/// names: serde_json keeps object keys sorted) with the names that were skipped, for the caller to warn about:
///
/// - numbers are values, booleans are 1 and 0 (as in flat JSON);
/// - a nested object's keys are joined to its own with `_` (`{"env": {"co2": 1}}` → `env_co2`), and an array's
///   items are numbered (`{"temps": [20, 21]}` → `temps_0`, `temps_1`), to any depth;
/// - strings and nulls are not stored but returned as skipped names; empty objects and arrays give nothing.
///
/// The names must be valid [`MeasurementName`]s and the units are those [`Unit::for_measurement`] knows, as for
/// flat JSON. The message is then checked like every other format (no readings, too many, two with one name),
/// and, as there, refused whole at the first problem.
pub fn readings(
    output: &Output,
    ctx: &DecodeContext,
) -> Result<(Vec<Reading>, Vec<String>), DecodeError> {
    let mut values = Vec::new();
    let mut skipped = Vec::new();
    for (key, value) in &output.data {
        flatten(key.clone(), value, &mut values, &mut skipped);
    }
    let readings = values
        .into_iter()
        .map(|(name, value)| {
            let measurement =
                MeasurementName::new(name.as_str()).map_err(|e| DecodeError::InvalidName {
                    reason: invalid_reason(&e),
                    key: name,
                })?;
            Ok(Reading {
                unit: Unit::for_measurement(measurement.as_str()),
                measurement,
                time: ctx.received_at,
                value,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    validate(&readings, ctx)?;
    Ok((readings, skipped))
}

/// Depth is bounded by serde_json's recursion limit (128) when the output was parsed.
fn flatten(
    name: String,
    value: &Value,
    values: &mut Vec<(String, f64)>,
    skipped: &mut Vec<String>,
) {
    match value {
        // Without serde_json's arbitrary_precision every number has an f64 form.
        Value::Number(n) => values.push((name, n.as_f64().unwrap_or(f64::NAN))),
        Value::Bool(b) => values.push((name, f64::from(u8::from(*b)))),
        Value::String(_) | Value::Null => skipped.push(name),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(format!("{name}_{i}"), item, values, skipped);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                flatten(format!("{name}_{key}"), item, values, skipped);
            }
        }
    }
}
