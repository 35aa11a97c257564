//! Reading `decodeUplink`'s result (as JSON.stringify wrote it in the codec's context) into an [`Output`].

use super::super::json::json_type;
use super::{Encoded, Limits, Output, ScriptError};
use serde_json::{Map, Value};

/// What the prelude writes for a non-finite number, since JSON has none.
const NON_FINITE: [(&str, &str); 3] = [
    ("\u{0}NaN", "NaN"),
    ("\u{0}Infinity", "Infinity"),
    ("\u{0}-Infinity", "-Infinity"),
];

pub(super) fn parse(json: &str, limits: &Limits) -> Result<Output, ScriptError> {
    if json.len() > limits.max_output_bytes {
        return Err(ScriptError::OutputTooLarge {
            size: json.len(),
            limit: limits.max_output_bytes,
        });
    }
    let bad = |reason: String| ScriptError::BadOutput { reason };
    let mut result = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(bad(format!(
                "decodeUplink returned {}; expected an object {{data, warnings, errors}}",
                json_type(&other)
            )));
        }
        // serde_json refuses nesting deeper than 128 levels.
        Err(e) => return Err(bad(format!("its JSON cannot be read: {e}"))),
    };
    let errors = messages(result.remove("errors"), "errors")?;
    if !errors.is_empty() {
        return Err(ScriptError::CodecErrors { errors });
    }
    let warnings = messages(result.remove("warnings"), "warnings")?;
    let data = match result.remove("data") {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => {
            return Err(bad(
                "it has no data and no errors; TS013 asks for one of them".to_owned(),
            ));
        }
        Some(other) => {
            return Err(bad(format!(
                "its data is {}; expected an object",
                json_type(&other)
            )));
        }
    };
    if let Some((path, value)) = non_finite(&data) {
        return Err(ScriptError::NonFinite { path, value });
    }
    Ok(Output {
        data,
        warnings,
        undefined_keys: Vec::new(),
    })
}

/// Reads `encodeDownlink`'s result: `bytes` an array of integers 0–255, `fPort` 1–223 (absent: the requested
/// one), `warnings` and `errors` as for a decode.
pub(super) fn parse_encoded(
    json: &str,
    limits: &Limits,
    requested_fport: u8,
) -> Result<Encoded, ScriptError> {
    if json.len() > limits.max_output_bytes {
        return Err(ScriptError::OutputTooLarge {
            size: json.len(),
            limit: limits.max_output_bytes,
        });
    }
    let bad = |reason: String| ScriptError::BadOutput { reason };
    let mut result = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(bad(format!(
                "encodeDownlink returned {}; expected an object {{bytes, fPort, warnings, errors}}",
                json_type(&other)
            )));
        }
        Err(e) => return Err(bad(format!("its JSON cannot be read: {e}"))),
    };
    let errors = messages(result.remove("errors"), "errors")?;
    if !errors.is_empty() {
        return Err(ScriptError::CodecErrors { errors });
    }
    let warnings = messages(result.remove("warnings"), "warnings")?;
    let items = match result.remove("bytes") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(bad(
                "it has no bytes and no errors; encodeDownlink must return {bytes: [...]} or {errors: [...]}"
                    .to_owned(),
            ));
        }
        Some(other) => {
            return Err(bad(format!(
                "its bytes is {}; expected an array of integers 0 to 255",
                json_type(&other)
            )));
        }
    };
    let mut bytes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(b) => bytes.push(b),
            None => {
                return Err(bad(format!(
                    "bytes[{i}] is {item}; each byte must be an integer 0 to 255"
                )));
            }
        }
    }
    let fport = match result.remove("fPort") {
        None | Some(Value::Null) => requested_fport,
        Some(v) => match v.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(p) if (1..=223).contains(&p) => p,
            _ => {
                return Err(bad(format!(
                    "its fPort is {v}; expected an integer 1 to 223"
                )));
            }
        },
    };
    Ok(Encoded {
        bytes,
        fport,
        warnings,
    })
}

/// TS013's `warnings` / `errors`: an array of strings. Absent or null is none; a lone string is one; other
/// entries are kept as their JSON text rather than refusing the decode over a message.
fn messages(value: Option<Value>, field: &str) -> Result<Vec<String>, ScriptError> {
    let text = |v: Value| match v {
        Value::String(s) => marker_text(&s).map_or(s, str::to_owned),
        other => other.to_string(),
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.into_iter().map(text).collect()),
        Some(Value::String(s)) => Ok(vec![text(Value::String(s))]),
        Some(other) => Err(ScriptError::BadOutput {
            reason: format!(
                "its {field} is {}; expected an array of strings",
                json_type(&other)
            ),
        }),
    }
}

fn marker_text(s: &str) -> Option<&'static str> {
    NON_FINITE
        .iter()
        .find(|(marker, _)| *marker == s)
        .map(|(_, text)| *text)
}

/// The path (`data.temperature`, `data.values[2]`) and text of the first non-finite number in `data`.
fn non_finite(data: &Map<String, Value>) -> Option<(String, &'static str)> {
    fn object(map: &Map<String, Value>, path: &mut String) -> Option<(String, &'static str)> {
        map.iter().find_map(|(k, v)| {
            let len = path.len();
            push_key(path, k);
            let found = value(v, path);
            path.truncate(len);
            found
        })
    }
    fn value(v: &Value, path: &mut String) -> Option<(String, &'static str)> {
        match v {
            Value::String(s) => marker_text(s).map(|text| (path.clone(), text)),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = value(v, path);
                path.truncate(len);
                found
            }),
            Value::Object(map) => object(map, path),
            _ => None,
        }
    }
    object(data, &mut "data".to_owned())
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier, as JavaScript would write the path.
pub(super) fn push_key(path: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_owned()).to_string());
        path.push(']');
    }
}
