//! Reading CKAN's JSON: a field as text, a list, and equality that allows for CKAN's spellings.
use serde_json::Value;

/// Whether CKAN's value equals ours, allowing for CKAN's spellings: null for an empty string, numbers as text.
pub(super) fn same(have: Option<&Value>, want: &Value) -> bool {
    match (have.unwrap_or(&Value::Null), want) {
        (Value::Null, Value::String(w)) => w.is_empty(),
        (Value::String(h), Value::Number(w)) => *h == w.to_string(),
        (Value::String(h), Value::Bool(w)) => {
            h.eq_ignore_ascii_case(if *w { "true" } else { "false" })
        }
        (h, w) => h == w,
    }
}

pub(super) fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn items<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
