//! The words of the body checker: what a schema expects, what was found, what a pattern means.
use regex_automata::dfa::regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::schema::{resolve, types};

/// What the schema wants, in words: `an object with "da" and "en"`, `a whole number`, `one of abp, otaa`.
pub(super) fn expected(schema: &Value, schemas: &Map<String, Value>) -> String {
    let schema = resolve(schema, schemas);
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        let list: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
            .collect();
        return format!("one of {}", list.join(", "));
    }
    let words: Vec<String> = types(schema)
        .into_iter()
        .map(|t| match t {
            "object" => {
                let required: Vec<String> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().map(|k| k.to_string()).collect())
                    .unwrap_or_default();
                match required.as_slice() {
                    [] => "an object".to_owned(),
                    [one] => format!("an object with {one}"),
                    [init @ .., last] => format!("an object with {} and {last}", init.join(", ")),
                }
            }
            "array" => "a list".to_owned(),
            "string" => "a string".to_owned(),
            "boolean" => "true or false".to_owned(),
            "integer" => "a whole number".to_owned(),
            "number" => "a number".to_owned(),
            "null" => "null".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    if words.is_empty() {
        "a value".to_owned()
    } else {
        words.join(" or ")
    }
}

/// What was sent instead: `the string "CO2"`, `the number 5`, `a list`.
pub(crate) fn found(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 60 => "a long string".to_owned(),
        Value::String(_) => format!("the string {value}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

pub(super) fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// The document's patterns, each with what it means for a person (a test checks every pattern has words).
pub(crate) const PATTERN_WORDS: &[(&str, &str)] = &[
    (
        "^[a-z0-9][a-z0-9._-]{0,63}$",
        "use 1 to 64 of a-z, 0-9, '-', '_' and '.', starting with a letter or a digit (no capitals, spaces or æøå)",
    ),
    (
        "^[0-9a-fA-F]{16}$",
        "use 16 hex digits, such as 70b3d57ed0001234",
    ),
    (
        "^(auto|senml|json|cayenne|js:[a-z0-9][a-z0-9._-]{0,63}(@[0-9]{1,9})?)$",
        "use auto, senml, json, cayenne, js:<name> or js:<name>@<version>",
    ),
    // --- alerts ---
    (
        "^[0-9]+(ms|s|m|h|d)$",
        "write a whole number and a unit: ms, s, m, h or d (such as 30s, 15m, 2h, 1d)",
    ),
];

pub(super) fn pattern_words(pattern: &str) -> String {
    PATTERN_WORDS
        .iter()
        .find(|(p, _)| *p == pattern)
        .map_or_else(
            || format!("it must match {pattern}"),
            |(_, w)| (*w).to_owned(),
        )
}

/// Whether `s` matches `pattern`; a pattern that does not compile lets everything through (the serde types
/// check again), and a test compiles every pattern of the document.
pub(crate) fn matches(pattern: &str, s: &str) -> bool {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> =
        LazyLock::new(Mutex::default);
    let regex = {
        let mut cache = CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).ok().map(Arc::new))
            .clone()
    };
    regex.is_none_or(|r| r.is_match(s))
}
