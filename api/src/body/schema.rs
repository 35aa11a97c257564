//! Checks a JSON value against a schema of the OpenAPI document and names every problem, in words a person
//! can act on: `title: expected an object with "da" and "en", found the string "CO2"`.
//!
//! Why our own checker rather than a JSON Schema crate: the document uses a small part of JSON Schema
//! (`$ref`, `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `pattern`, lengths,
//! bounds, `oneOf`/`anyOf`/`allOf`), every kind of problem needs its own wording anyway, and a general
//! validator would bring some thirty crates to build for that subset.
use super::Problem;
use super::words::{expected, found, matches, number, pattern_words};
use serde_json::{Map, Value};

/// A position in the body: `selection.tags.room`, `examples[2].fport`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Path(Vec<Seg>);

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Path {
    fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }
    fn index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Checks `value` against `schema`, whose `$ref`s point into `schemas` (the document's
/// `components.schemas`), and adds every problem found to `out`.
pub(crate) fn check(
    value: &Value,
    schema: &Value,
    schemas: &Map<String, Value>,
    path: &Path,
    out: &mut Vec<Problem>,
) {
    let schema = resolve(schema, schemas);
    macro_rules! problem {
        ($message:expr) => {
            out.push(Problem {
                field: path.to_string(),
                message: $message,
            })
        };
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(value, s, schemas, path, out);
        }
        return;
    }
    if let Some(any) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        let real: Vec<&Value> = any
            .iter()
            .filter(|s| resolve(s, schemas).get("type") != Some(&Value::from("null")))
            .collect();
        if value.is_null() && real.len() < any.len() {
            return;
        }
        match real.as_slice() {
            [only] => check(value, only, schemas, path, out),
            _ => {
                let fits = real.iter().any(|s| {
                    let mut none = Vec::new();
                    check(value, s, schemas, path, &mut none);
                    none.is_empty()
                });
                if !fits {
                    problem!(format!(
                        "expected {}, found {}",
                        real.iter()
                            .map(|s| expected(s, schemas))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        found(value)
                    ));
                }
            }
        }
        return;
    }
    if !type_fits(value, schema) {
        problem!(format!(
            "expected {}, found {}",
            expected(schema, schemas),
            found(value)
        ));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let list: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
            .collect();
        problem!(format!("{value} is not one of {}", list.join(", ")));
        return;
    }
    match value {
        Value::Object(map) => check_object(map, schema, schemas, path, out),
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(v, item, schemas, &path.index(i), out);
                }
            }
        }
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                problem!(if min == 1 {
                    "must not be empty".to_owned()
                } else {
                    format!("must be at least {min} characters")
                });
            } else if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                problem!(format!("must be at most {max} characters"));
            } else if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !matches(pattern, s)
            {
                problem!(format!("{value} is not valid: {}", pattern_words(pattern)));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let (lo, hi) = bounds(schema);
            if let Some(lo) = lo.filter(|lo| x < *lo) {
                problem!(format!("must be at least {}", number(lo)));
            } else if let Some(hi) = hi.filter(|hi| x > *hi) {
                problem!(format!("must be at most {}", number(hi)));
            } else if let Some(lo) = schema
                .get("exclusiveMinimum")
                .and_then(Value::as_f64)
                .filter(|lo| x <= *lo)
            {
                problem!(format!("must be more than {}", number(lo)));
            }
        }
        _ => {}
    }
}

fn check_object(
    map: &Map<String, Value>,
    schema: &Value,
    schemas: &Map<String, Value>,
    path: &Path,
    out: &mut Vec<Problem>,
) {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(key) {
                out.push(Problem {
                    field: path.key(key).to_string(),
                    message: "required".to_owned(),
                });
            }
        }
    }
    for (key, v) in map {
        let at = path.key(key);
        if let Some(s) = properties.get(key) {
            check(v, s, schemas, &at, out);
            continue;
        }
        match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => {
                let known: Vec<&str> = properties.keys().map(String::as_str).collect();
                out.push(Problem {
                    field: at.to_string(),
                    message: format!("unknown field (the fields are {})", known.join(", ")),
                });
            }
            Some(s @ Value::Object(_)) => check(v, s, schemas, &at, out),
            _ => {}
        }
    }
}

pub(super) fn resolve<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| schemas.get(name))
        {
            Some(next) => s = next,
            None => break,
        }
    }
    s
}

pub(super) fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_fits(value: &Value, schema: &Value) -> bool {
    let types = types(schema);
    types.is_empty()
        || types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            _ => true,
        })
}

/// The lower and upper bound of a number, from `minimum`/`maximum` and an integer `format`.
fn bounds(schema: &Value) -> (Option<f64>, Option<f64>) {
    let (flo, fhi) = match schema.get("format").and_then(Value::as_str) {
        Some("int8") => (Some(-128.0), Some(127.0)),
        Some("uint8") => (Some(0.0), Some(255.0)),
        Some("int16") => (Some(-32768.0), Some(32767.0)),
        Some("uint16") => (Some(0.0), Some(65535.0)),
        Some("int32") => (Some(-2147483648.0), Some(2147483647.0)),
        Some("uint32") => (Some(0.0), Some(4294967295.0)),
        Some("uint64") => (Some(0.0), None),
        _ => (None, None),
    };
    let lo = schema.get("minimum").and_then(Value::as_f64);
    let hi = schema.get("maximum").and_then(Value::as_f64);
    (
        lo.into_iter().chain(flo).reduce(f64::max),
        hi.into_iter().chain(fhi).reduce(f64::min),
    )
}
