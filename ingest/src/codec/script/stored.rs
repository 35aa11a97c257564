//! What bydata would store from one decode of a script codec: its numeric readings and its text state. Both the
//! example check and the codec test (`POST /api/v1/codecs/test`) ask [`stored`], so an example is judged on
//! exactly what the pipeline keeps.

use super::super::{DecodeContext, DecodeError};
use super::{Output, output::push_key, readings};
use bydata_schemas::Reading;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What one decode would leave in bydata.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The numbers (booleans as 1 and 0), named as [`readings`] flattens them (`env_co2`, `temps_0`).
    pub readings: Vec<Reading>,
    /// The text values under the same flattened names: a device's latest state, not series.
    pub state: BTreeMap<String, String>,
    /// The codec's warnings, then bydata's own (what went to text state, keys it keeps nowhere).
    pub warnings: Vec<String>,
}

/// Converts a decode's output as the pipeline does, or says why the pipeline would refuse the message.
pub fn stored(output: &Output, ctx: &DecodeContext) -> Result<Stored, DecodeError> {
    // The pipeline's conversion, readings and text state alike.
    let decoded = readings(output, ctx)?;
    let state = decoded
        .state
        .into_iter()
        .map(|t| (t.field.to_string(), t.value))
        .collect();
    Ok(Stored {
        readings: decoded.readings,
        state,
        warnings: decoded.warnings,
    })
}

/// One value of a decode's `data` that is not an object or array.
#[derive(Debug)]
pub(super) struct Leaf<'a> {
    /// The name bydata stores it under: keys joined by `_`, array items numbered.
    pub(super) name: &'a str,
    /// Where it is in the codec's result, as JavaScript writes it: `data.env.co2`, `data.temps[0]`.
    pub(super) path: &'a str,
    /// Its own key (or index).
    pub(super) key: &'a str,
    pub(super) value: &'a Value,
}

/// Visits every leaf of `data`, depth first, in key order. Depth is bounded by serde_json's recursion limit.
pub(super) fn leaves(data: &Map<String, Value>, visit: &mut dyn FnMut(Leaf<'_>)) {
    for (key, value) in data {
        let mut path = "data".to_owned();
        push_key(&mut path, key);
        walk(key.clone(), path, key, value, visit);
    }
}

fn walk(name: String, path: String, key: &str, value: &Value, visit: &mut dyn FnMut(Leaf<'_>)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let mut inner = path.clone();
                push_key(&mut inner, k);
                walk(format!("{name}_{k}"), inner, k, v, visit);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let index = i.to_string();
                walk(
                    format!("{name}_{i}"),
                    format!("{path}[{i}]"),
                    &index,
                    v,
                    visit,
                );
            }
        }
        leaf => visit(Leaf {
            name: &name,
            path: &path,
            key,
            value: leaf,
        }),
    }
}
