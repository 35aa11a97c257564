//! A codec's examples as an uploader writes them, read into [`Example`]s. Three shapes are accepted, so a
//! vendor's examples can be pasted as they are:
//!
//! - bydata's: `{"description"?, "fport", "bytes_hex" | "bytes_base64", "recv_time"?, "expected"}`, where
//!   `expected` is the `data` object, or TS013's whole output `{"data"?, "errors"?, "warnings"?}`;
//! - The Things Network's device repository (`uplinkDecoder.examples` of a `*-codec.yaml`, as JSON):
//!   `{"description"?, "input": {"fPort", "bytes", "recvTime"?}, "output": {"data"?, "errors"?, "warnings"?},
//!   "normalizedOutput"?}` with `bytes` an array of numbers or a hex string. `normalizedOutput` (TTN's
//!   normalized payload) is known but not checked, so it is not kept.
//!
//! Any other key is refused with the list of known ones: a key that is stored but never checked would look
//! like a check that passed. Every problem of every example is reported at once.

use super::error::Problem;
use super::example_fields::{
    base64_bytes, encode_hex, fport, hex_bytes, number_bytes, problem, recv_time, texts,
};
use bydata_schemas::{UnixNanos, format_rfc3339};
use serde_json::{Map, Value, json};

/// One example: a payload and what its decode must give. Only what the example states is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub description: Option<String>,
    pub fport: u8,
    pub bytes: Vec<u8>,
    /// When the decode runs (`Date.now()` in the codec); [`super::EXAMPLE_RECV_TIME`] when not given.
    pub recv_time: Option<UnixNanos>,
    /// The expected `data`, compared on what bydata stores; `None` when the example states none.
    pub data: Option<Map<String, Value>>,
    /// The errors the codec must report (then it returns no data); empty: it must decode.
    pub errors: Vec<String>,
    /// Warnings the codec must give (each must be among its warnings).
    pub warnings: Vec<String>,
}

const BYDATA_KEYS: &str = "description, fport, bytes_hex, bytes_base64, recv_time, expected";
const TTN_KEYS: &str = "description, input, output, normalizedOutput";
const OUTPUT_KEYS: [&str; 3] = ["data", "errors", "warnings"];

/// Reads every example, or lists every problem (`examples[1].input.bytes: …`).
pub fn parse_examples(values: &[Value]) -> Result<Vec<Example>, Vec<Problem>> {
    let mut problems = Vec::new();
    let examples: Vec<Example> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| parse(v, &format!("examples[{i}]"), &mut problems))
        .collect();
    if problems.is_empty() {
        Ok(examples)
    } else {
        Err(problems)
    }
}

/// The examples as bydata stores and shows them: its own shape, with only what is checked.
pub fn examples_json(examples: &[Example]) -> Value {
    Value::Array(examples.iter().map(Example::to_json).collect())
}

impl Example {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(d) = &self.description {
            out.insert("description".into(), json!(d));
        }
        out.insert("fport".into(), json!(self.fport));
        out.insert("bytes_hex".into(), json!(encode_hex(&self.bytes)));
        if let Some(t) = self.recv_time {
            out.insert("recv_time".into(), json!(format_rfc3339(t)));
        }
        // The data object alone when that cannot be mistaken for TS013's output, which is written otherwise.
        let plain = self.errors.is_empty()
            && self.warnings.is_empty()
            && self.data.as_ref().is_some_and(|d| !looks_like_output(d));
        let expected = match (&self.data, plain) {
            (Some(data), true) => Value::Object(data.clone()),
            _ => {
                let mut o = Map::new();
                if let Some(data) = &self.data {
                    o.insert("data".into(), Value::Object(data.clone()));
                }
                o.insert("errors".into(), json!(self.errors));
                o.insert("warnings".into(), json!(self.warnings));
                Value::Object(o)
            }
        };
        out.insert("expected".into(), expected);
        Value::Object(out)
    }
}

fn parse(value: &Value, at: &str, problems: &mut Vec<Problem>) -> Option<Example> {
    let Some(map) = value.as_object() else {
        problem(
            problems,
            at,
            "an example is an object: {\"fport\": 1, \"bytes_hex\": \"…\", \"expected\": {…}}",
        );
        return None;
    };
    let before = problems.len();
    let ttn = map.contains_key("input") || map.contains_key("output");
    let known: &[&str] = if ttn {
        &["description", "input", "output", "normalizedOutput"]
    } else {
        &[
            "description",
            "fport",
            "bytes_hex",
            "bytes_base64",
            "recv_time",
            "expected",
        ]
    };
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let list = if ttn { TTN_KEYS } else { BYDATA_KEYS };
        problem(
            problems,
            &format!("{at}.{key}"),
            format!("unknown key; an example has: {list}"),
        );
    }
    let description = match map.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problem(problems, &format!("{at}.description"), "must be text");
            None
        }
    };
    let example = if ttn {
        parse_ttn(map, at, description, problems)
    } else {
        parse_bydata(map, at, description, problems)
    };
    (problems.len() == before).then_some(example).flatten()
}

fn parse_bydata(
    map: &Map<String, Value>,
    at: &str,
    description: Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Example> {
    let fport = fport(map.get("fport"), &format!("{at}.fport"), problems);
    let bytes = match (map.get("bytes_hex"), map.get("bytes_base64")) {
        (Some(h), None) => hex_bytes(h, &format!("{at}.bytes_hex"), problems),
        (None, Some(b)) => base64_bytes(b, &format!("{at}.bytes_base64"), problems),
        (None, None) => {
            problem(
                problems,
                at,
                "give the payload as bytes_hex (\"0100e5\") or bytes_base64",
            );
            None
        }
        (Some(_), Some(_)) => {
            problem(problems, at, "give bytes_hex or bytes_base64, not both");
            None
        }
    };
    let recv_time = recv_time(map.get("recv_time"), &format!("{at}.recv_time"), problems);
    let expected_at = format!("{at}.expected");
    let (data, errors, warnings) = match map.get("expected") {
        Some(Value::Object(e)) if looks_like_output(e) => output(e, &expected_at, problems)?,
        Some(Value::Object(e)) => (Some(e.clone()), Vec::new(), Vec::new()),
        Some(_) => {
            problem(
                problems,
                &expected_at,
                "must be the data object the payload decodes to, or {\"data\", \"errors\", \"warnings\"}",
            );
            return None;
        }
        None => {
            problem(
                problems,
                &expected_at,
                "missing: the data object the payload decodes to (only its keys are checked)",
            );
            return None;
        }
    };
    Some(Example {
        description,
        fport: fport?,
        bytes: bytes?,
        recv_time: recv_time?,
        data,
        errors,
        warnings,
    })
}

fn parse_ttn(
    map: &Map<String, Value>,
    at: &str,
    description: Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Example> {
    let input_at = format!("{at}.input");
    let Some(input) = map.get("input").and_then(Value::as_object) else {
        problem(
            problems,
            &input_at,
            "must be {\"fPort\": 1, \"bytes\": [1, 2]} (TTN's example input)",
        );
        return None;
    };
    for key in input
        .keys()
        .filter(|k| !["fPort", "bytes", "recvTime"].contains(&k.as_str()))
    {
        problem(
            problems,
            &format!("{input_at}.{key}"),
            "unknown key; an input has: fPort, bytes, recvTime",
        );
    }
    let fport = fport(input.get("fPort"), &format!("{input_at}.fPort"), problems);
    let bytes_at = format!("{input_at}.bytes");
    let bytes = match input.get("bytes") {
        Some(Value::Array(items)) => number_bytes(items, &bytes_at, problems),
        Some(s @ Value::String(_)) => hex_bytes(s, &bytes_at, problems),
        _ => {
            problem(
                problems,
                &bytes_at,
                "must be an array of numbers 0–255 or a hex string",
            );
            None
        }
    };
    let recv_time = recv_time(
        input.get("recvTime"),
        &format!("{input_at}.recvTime"),
        problems,
    );
    let output_at = format!("{at}.output");
    let (data, errors, warnings) = match map.get("output") {
        Some(Value::Object(o)) => output(o, &output_at, problems)?,
        _ => {
            problem(
                problems,
                &output_at,
                "must be {\"data\": {…}, \"errors\": [], \"warnings\": []}",
            );
            return None;
        }
    };
    Some(Example {
        description,
        fport: fport?,
        bytes: bytes?,
        recv_time: recv_time?,
        data,
        errors,
        warnings,
    })
}

/// TS013's output: a non-empty object of `data` (an object), `errors` and `warnings` (arrays) only. A data
/// object that happens to have only such keys with other types is taken as data.
fn looks_like_output(map: &Map<String, Value>) -> bool {
    !map.is_empty()
        && map.iter().all(|(k, v)| match k.as_str() {
            "data" => v.is_object() || v.is_null(),
            "errors" | "warnings" => v.is_array() || v.is_null(),
            _ => false,
        })
}

type Expected = (Option<Map<String, Value>>, Vec<String>, Vec<String>);

fn output(map: &Map<String, Value>, at: &str, problems: &mut Vec<Problem>) -> Option<Expected> {
    let before = problems.len();
    for key in map.keys().filter(|k| !OUTPUT_KEYS.contains(&k.as_str())) {
        problem(
            problems,
            &format!("{at}.{key}"),
            "unknown key; an output has: data, errors, warnings",
        );
    }
    let data = match map.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(d)) => Some(d.clone()),
        Some(_) => {
            problem(problems, &format!("{at}.data"), "must be an object");
            None
        }
    };
    let errors = texts(map.get("errors"), &format!("{at}.errors"), problems);
    let warnings = texts(map.get("warnings"), &format!("{at}.warnings"), problems);
    (problems.len() == before).then_some((data, errors, warnings))
}
