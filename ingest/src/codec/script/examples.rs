//! A codec's examples: payloads with the `data` they must decode to, checked before a codec is accepted.

use super::output::push_key;
use super::{ExampleFailure, ScriptCodec};
/// A codec example is the API's type: what an uploader sends is what is checked here.
pub use bydata_schemas::CodecExample as Example;
use bydata_schemas::UnixNanos;
use serde_json::Value;

/// The receive time examples are decoded at: 2026-01-01T00:00:00Z, fixed so that checks are repeatable.
pub const EXAMPLE_RECV_TIME: UnixNanos = 1_767_225_600_000_000_000;

/// Numbers in an example match when they differ by at most this fraction of the larger one.
const RELATIVE_TOLERANCE: f64 = 1e-9;

impl ScriptCodec {
    /// Decodes every example (at [`EXAMPLE_RECV_TIME`]) and compares its `data` with the expected one;
    /// stops at the first failure, naming the example and the first differing path.
    pub fn check_examples(&mut self, examples: &[Example]) -> Result<(), ExampleFailure> {
        for (i, ex) in examples.iter().enumerate() {
            let example = i + 1;
            let bytes = hex(&ex.bytes_hex, example)?;
            let output = self
                .decode_uplink(ex.fport, &bytes, EXAMPLE_RECV_TIME)
                .map_err(|error| ExampleFailure::Decode { example, error })?;
            let got = Value::Object(output.data);
            if let Some((path, expected, got)) = difference(&ex.expected, &got, "data".to_owned()) {
                return Err(ExampleFailure::Mismatch {
                    example,
                    path,
                    expected: expected.cloned(),
                    got: got.cloned(),
                });
            }
        }
        Ok(())
    }
}

fn hex(text: &str, example: usize) -> Result<Vec<u8>, ExampleFailure> {
    let mut digits = Vec::with_capacity(text.len());
    for (offset, c) in text.char_indices() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let digit = c.to_digit(16).ok_or(ExampleFailure::NotHex {
            example,
            offset,
            found: c,
        })?;
        // A hex digit is below 16, so it fits a byte.
        digits.push(digit as u8);
    }
    if digits.len() % 2 != 0 {
        return Err(ExampleFailure::OddHex {
            example,
            digits: digits.len(),
        });
    }
    Ok(digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect())
}

type Difference<'a> = (String, Option<&'a Value>, Option<&'a Value>);

/// The first place where `got` differs from `expected`: expected keys in order, then keys only `got` has.
fn difference<'a>(expected: &'a Value, got: &'a Value, path: String) -> Option<Difference<'a>> {
    match (expected, got) {
        (Value::Number(e), Value::Number(g)) => {
            let (e, g) = (e.as_f64()?, g.as_f64()?);
            let close = e == g || (e - g).abs() <= RELATIVE_TOLERANCE * e.abs().max(g.abs());
            (!close).then_some((path, Some(expected), Some(got)))
        }
        (Value::Object(e), Value::Object(g)) => {
            let keys = e.keys().chain(g.keys().filter(|k| !e.contains_key(*k)));
            keys.into_iter().find_map(|key| {
                let mut inner = path.clone();
                push_key(&mut inner, key);
                match (e.get(key), g.get(key)) {
                    (Some(ev), Some(gv)) => difference(ev, gv, inner),
                    (ev, gv) => Some((inner, ev, gv)),
                }
            })
        }
        (Value::Array(e), Value::Array(g)) => (0..e.len().max(g.len())).find_map(|i| {
            let inner = format!("{path}[{i}]");
            match (e.get(i), g.get(i)) {
                (Some(ev), Some(gv)) => difference(ev, gv, inner),
                (ev, gv) => Some((inner, ev, gv)),
            }
        }),
        _ => (expected != got).then_some((path, Some(expected), Some(got))),
    }
}
