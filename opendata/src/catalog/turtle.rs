//! The DCAT-AP-DK catalog as Turtle: the JSON-LD graph `dcat` builds, flattened into Turtle subjects.
use super::dcat::{PREFIXES, catalog_node};
use crate::model::{CatalogInfo, PublishedDataset};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt::Write as _;

/// The catalog as Turtle: the same graph as [`catalog_jsonld`](super::dcat::catalog_jsonld).
pub fn catalog_turtle(info: &CatalogInfo, datasets: &[PublishedDataset]) -> String {
    let mut out = String::new();
    for (prefix, iri) in PREFIXES {
        let _ = writeln!(out, "@prefix {prefix}: <{iri}> .");
    }
    write_subjects(&mut out, &catalog_node(info, datasets), &mut HashSet::new());
    out
}

/// Flattens the nested JSON-LD built above into Turtle subjects: every node with an `@id` gets its own block
/// (once, however often it is referenced), nodes without one are written in place as `[ … ]`.
fn write_subjects(out: &mut String, n: &Map<String, Value>, seen: &mut HashSet<String>) {
    let mut nested = Vec::new();
    if seen.insert(Value::Object(n.clone()).to_string()) {
        out.push('\n');
        let id = n.get("@id").and_then(Value::as_str).unwrap_or_default();
        out.push_str(&turtle_iri(id));
        write_properties(out, n, 1, &mut nested);
        out.push_str(" .\n");
    }
    for child in nested {
        write_subjects(out, child, seen);
    }
}

fn write_properties<'a>(
    out: &mut String,
    n: &'a Map<String, Value>,
    depth: usize,
    nested: &mut Vec<&'a Map<String, Value>>,
) {
    let indent = "  ".repeat(depth);
    let mut first = true;
    for (key, value) in n {
        if key == "@id" {
            continue;
        }
        out.push_str(if first { "\n" } else { " ;\n" });
        first = false;
        let values = match value {
            Value::Array(vs) => vs.as_slice(),
            v => std::slice::from_ref(v),
        };
        if key == "@type" {
            let types: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            let _ = write!(out, "{indent}a {}", types.join(", "));
            continue;
        }
        let _ = write!(out, "{indent}{key} ");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_object(out, v, depth, nested);
        }
    }
}

fn write_object<'a>(
    out: &mut String,
    v: &'a Value,
    depth: usize,
    nested: &mut Vec<&'a Map<String, Value>>,
) {
    let Value::Object(o) = v else {
        // Plain JSON strings, numbers and booleans: only strings occur.
        out.push_str(&turtle_string(
            &v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        ));
        return;
    };
    if let Some(text) = o.get("@value").and_then(Value::as_str) {
        out.push_str(&turtle_string(text));
        if let Some(l) = o.get("@language").and_then(Value::as_str) {
            let _ = write!(out, "@{l}");
        } else if let Some(t) = o.get("@type").and_then(Value::as_str) {
            let _ = write!(out, "^^{t}");
        }
    } else if let Some(id) = o.get("@id").and_then(Value::as_str) {
        out.push_str(&turtle_iri(id));
        if o.len() > 1 {
            nested.push(o);
        }
    } else {
        out.push('[');
        write_properties(out, o, depth + 1, nested);
        let _ = write!(out, "\n{}]", "  ".repeat(depth));
    }
}

fn turtle_iri(iri: &str) -> String {
    let mut out = String::from("<");
    for c in iri.chars() {
        match c {
            // Characters Turtle does not allow in an IRIREF, as UCHAR escapes.
            '\u{0}'..='\u{20}' | '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

/// A Turtle `STRING_LITERAL_QUOTE` with the escapes the grammar requires.
fn turtle_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
