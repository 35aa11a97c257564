//! Checking a codec against its examples, on what bydata stores: an example may be partial (keys it leaves out
//! are not checked), and what bydata never keeps is not compared — nulls, and `unit` texts (units come from
//! the measurement's name). Numbers (booleans as 1 and 0) are compared with the readings, other texts with the
//! text state. Every difference of every example is reported at once.

use super::error::shown;
pub use super::example_shape::Example;
use super::stored::{Leaf, Stored, leaves, stored};
use super::{ExampleDifference, ExampleFailures, Output, ScriptCodec, ScriptError};
use crate::codec::DecodeContext;
use bydata_schemas::UnixNanos;
use serde_json::Value;
use std::collections::HashMap;

/// The receive time examples are decoded at unless they give one: 2026-01-01T00:00:00Z, fixed so that checks
/// are repeatable.
pub const EXAMPLE_RECV_TIME: UnixNanos = 1_767_225_600_000_000_000;

/// Numbers match when they differ by at most this fraction of the larger one (about 9 significant digits), so
/// a vendor's `22.9` matches a codec's `22.900000000000002`.
const RELATIVE_TOLERANCE: f64 = 1e-9;

impl ScriptCodec {
    /// Decodes every example and compares it with what it states; lists every difference of every example.
    pub fn check_examples(&mut self, examples: &[Example]) -> Result<(), ExampleFailures> {
        let mut found = Vec::new();
        for (i, ex) in examples.iter().enumerate() {
            let recv = ex.recv_time.unwrap_or(EXAMPLE_RECV_TIME);
            let decoded = self.decode_uplink(ex.fport, &ex.bytes, recv);
            let mut differ = |path: &str, message: String| {
                found.push(ExampleDifference {
                    example: i + 1,
                    description: ex.description.clone(),
                    path: path.to_owned(),
                    message,
                });
            };
            compare(ex, decoded, &DecodeContext::new(recv), &mut differ);
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(ExampleFailures(found))
        }
    }
}

fn compare(
    ex: &Example,
    decoded: Result<Output, ScriptError>,
    ctx: &DecodeContext,
    differ: &mut dyn FnMut(&str, String),
) {
    let output = match decoded {
        Ok(output) => output,
        Err(ScriptError::CodecErrors { errors }) if !ex.errors.is_empty() => {
            if errors != ex.errors {
                differ(
                    "errors",
                    format!("expected {}, got {}", texts(&ex.errors), texts(&errors)),
                );
            }
            return;
        }
        Err(e) => return differ("", e.to_string()),
    };
    if !ex.errors.is_empty() {
        return differ(
            "errors",
            format!(
                "expected the codec to report {}, but it decoded without errors",
                texts(&ex.errors)
            ),
        );
    }
    for warning in &ex.warnings {
        if !output.warnings.contains(warning) {
            differ(
                "warnings",
                format!(
                    "expected the warning {}, got {}",
                    shown(Some(&Value::String(warning.clone()))),
                    texts(&output.warnings)
                ),
            );
        }
    }
    let Some(expected) = &ex.data else { return };
    let stored = match stored(&output, ctx) {
        Ok(stored) => stored,
        Err(e) => {
            return differ(
                "",
                format!("bydata would refuse what the codec returned: {e}"),
            );
        }
    };
    let numbers: HashMap<&str, f64> = stored
        .readings
        .iter()
        .map(|r| (r.measurement.as_str(), r.value))
        .collect();
    leaves(expected, &mut |leaf| {
        if let Some(message) = difference(&leaf, &numbers, &stored, &output) {
            differ(leaf.path, message);
        }
    });
}

/// How the stored value differs from the expected leaf, if it does and the leaf is compared at all.
fn difference(
    leaf: &Leaf<'_>,
    numbers: &HashMap<&str, f64>,
    stored: &Stored,
    output: &Output,
) -> Option<String> {
    let number = numbers.get(leaf.name).copied();
    let text = stored.state.get(leaf.name);
    let expected = shown(Some(leaf.value));
    let got = match (number, text) {
        (Some(n), _) => number_text(n),
        (None, Some(t)) => shown(Some(&Value::String(t.clone()))),
        (None, None) => {
            let mut why = format!("expected {expected}, but the key is absent");
            if output.undefined_keys.iter().any(|k| k == leaf.key) {
                why.push_str(&format!(
                    ": the codec set {} to undefined, and JavaScript's undefined is dropped by JSON, so \
                     the key is absent (leave it out of the example, or expect null)",
                    leaf.key
                ));
            }
            return compared(leaf).then_some(why);
        }
    };
    let same = match (leaf.value, number, text) {
        (Value::Number(e), Some(n), _) => e.as_f64().is_some_and(|e| close(e, n)),
        (Value::Bool(b), Some(n), _) => close(f64::from(u8::from(*b)), n),
        (Value::String(e), _, Some(t)) => e == t,
        (Value::String(e), Some(n), None) => {
            word_bool(e).is_some_and(|b| close(f64::from(u8::from(b)), n))
        }
        _ => false,
    };
    (compared(leaf) && !same).then(|| format!("expected {expected}, got {got}"))
}

/// Whether bydata keeps what this leaf states: not a null, not a unit's text.
fn compared(leaf: &Leaf<'_>) -> bool {
    match leaf.value {
        Value::Null => false,
        Value::String(_) => !is_unit_key(leaf.key),
        _ => true,
    }
}

fn is_unit_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.ends_with("unit") || key.ends_with("units")
}

fn word_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "open" => Some(true),
        "false" | "off" | "no" | "closed" => Some(false),
        _ => None,
    }
}

fn close(e: f64, g: f64) -> bool {
    e == g || (e - g).abs() <= RELATIVE_TOLERANCE * e.abs().max(g.abs())
}

fn number_text(n: f64) -> String {
    // Rust writes 1234.0 as `1234`, as JSON would.
    n.to_string()
}

fn texts(items: &[String]) -> String {
    let items: Vec<Value> = items.iter().map(|s| Value::String(s.clone())).collect();
    shown(Some(&Value::Array(items)))
}

#[cfg(test)]
#[path = "example_tests.rs"]
mod tests;
