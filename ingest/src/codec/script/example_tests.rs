//! Examples: the shapes accepted (bydata's, TS013's output, TTN's), partial comparison on what bydata stores,
//! every difference listed at once, `undefined` explained, expected errors; and the parser never panics.
#![allow(clippy::unwrap_used)]

use super::super::{
    CodecCheckError, Limits, ScriptCodec, decode_hex, examples_json, parse_examples,
};
use super::Example;
use proptest::prelude::*;
use serde_json::{Value, json};

const CLIMATE: &str = include_str!("testdata/climate.js");
/// A vendor codec from TTN's device repository, and its own examples in TTN's shape (see the fixture's header).
const DL_MBX: &str = include_str!("../../../../tests/fixtures/codecs/decentlab-dl-mbx.js");
const DL_MBX_EXAMPLES: &str =
    include_str!("../../../../tests/fixtures/codecs/decentlab-dl-mbx-examples.json");

fn codec(source: &str) -> ScriptCodec {
    ScriptCodec::new(source, Limits::default()).unwrap()
}

fn examples(values: Value) -> Vec<Example> {
    parse_examples(values.as_array().unwrap()).unwrap()
}

/// The check's message, or "ok".
fn check(source: &str, values: Value) -> String {
    match codec(source).check_examples(&examples(values)) {
        Ok(()) => "ok".to_owned(),
        Err(e) => CodecCheckError::from(e).to_string(),
    }
}

#[test]
fn a_vendor_codec_passes_its_own_partial_examples() {
    let values: Value = serde_json::from_str(DL_MBX_EXAMPLES).unwrap();
    assert_eq!(check(DL_MBX, values), "ok");
}

#[test]
fn examples_are_partial_and_compared_on_what_is_stored() {
    // Keys left out are not checked; numbers match within 1e-9; nulls and unit texts are not compared.
    let ok = json!([
        {"fport": 1, "bytes_hex": "0100E5 022d", "expected": {"temperature": 22.900000000000002}},
        {"fport": 1, "bytes_hex": "0100e5", "expected": {"temperature": 22.9, "unit": "°C", "note": null}},
    ]);
    assert_eq!(check(CLIMATE, ok), "ok");
    let text = "function decodeUplink(i) { return {data: {battery: 3.1, button: 'open', on: true, \
                temperature: {value: 21.5, unit: undefined}}}; }";
    let ok = json!([{"fport": 1, "bytes_hex": "", "expected":
        {"button": "open", "on": true, "temperature": {"value": 21.5, "unit": null}}}]);
    assert_eq!(check(text, ok), "ok");
    let wrong = json!([{"fport": 1, "bytes_hex": "", "expected": {"button": "closed", "on": 0}}]);
    assert_eq!(
        check(text, wrong),
        "the examples do not decode as stated: 2 problems: example 1, data.button: expected \"closed\", \
         got \"open\"; example 1, data.on: expected 0, got 1"
    );
}

#[test]
fn every_difference_of_every_example_is_listed() {
    let values = json!([
        {"description": "warm room", "fport": 1, "bytes_hex": "0100e5022d",
         "expected": {"temperature": 23, "humidity": 40}},
        {"fport": 1, "bytes_hex": "0100e5", "expected": {"temperature": 22.9, "co2": 400}},
        {"fport": 1, "bytes_hex": "0100e5", "expected": {"temperature": 22.9}},
    ]);
    assert_eq!(
        check(CLIMATE, values),
        "the examples do not decode as stated: 3 problems: \
         example 1 (\"warm room\"), data.humidity: expected 40, got 45; \
         example 1 (\"warm room\"), data.temperature: expected 23, got 22.9; \
         example 2, data.co2: expected 400, but the key is absent"
    );
}

#[test]
fn undefined_is_explained() {
    let source = "function decodeUplink(i) { return {data: {level: i.bytes[0] > 1 ? i.bytes[0] : undefined, \
                  vdd: 3}}; }";
    let message = check(
        source,
        json!([{"fport": 1, "bytes_hex": "01", "expected": {"level": 1}}]),
    );
    assert!(
        message.contains(
            "data.level: expected 1, but the key is absent: the codec set level to undefined, \
                          and JavaScript's undefined is dropped by JSON"
        ),
        "{message}"
    );
}

#[test]
fn ts013_and_ttn_shapes_are_read() {
    let parsed = examples(json!([
        {"fport": 2, "bytes_base64": "AQDl", "expected": {"data": {"t": 1}, "warnings": ["w"]}},
        {"description": "Example 1", "input": {"fPort": 1, "bytes": [1, 0, 229], "recvTime": "2026-03-01T10:00:00Z"},
         "output": {"data": {"temperature": 22.9}, "errors": [], "warnings": []}, "normalizedOutput": {"data": []}},
        {"input": {"fPort": 3, "bytes": "01 00e5"}, "output": {"errors": ["unsupported fPort 3"]}},
        {"fport": 1, "bytes_hex": "", "expected": {"errors": 0}},
    ]));
    assert_eq!(parsed[0].bytes, [1, 0, 0xe5]);
    assert_eq!(
        parsed[0].data,
        Some(json!({"t": 1}).as_object().unwrap().clone())
    );
    assert_eq!(parsed[0].warnings, ["w"]);
    assert_eq!(parsed[1].description.as_deref(), Some("Example 1"));
    assert_eq!(
        (parsed[1].fport, parsed[1].bytes.as_slice()),
        (1, &[1, 0, 0xe5][..])
    );
    assert!(parsed[1].recv_time.is_some());
    assert_eq!(
        (parsed[2].data.is_none(), parsed[2].errors.len()),
        (true, 1)
    );
    // Not TS013's output (errors is no array): it is the data.
    assert_eq!(
        parsed[3].data,
        Some(json!({"errors": 0}).as_object().unwrap().clone())
    );
    // What is stored reads back the same, and shows only what is checked.
    let stored = examples_json(&parsed);
    assert_eq!(examples(stored.clone()), parsed);
    assert_eq!(stored[1]["expected"], json!({"temperature": 22.9}));
    assert!(stored[1].get("normalizedOutput").is_none());
    assert_eq!(stored[3]["expected"], json!({"errors": 0}));
    // A data object that reads as TS013's output is stored as one, so it reads back as the same data.
    let odd = Example {
        data: Some(json!({"errors": []}).as_object().unwrap().clone()),
        ..parsed[3].clone()
    };
    let stored = examples_json(std::slice::from_ref(&odd));
    assert_eq!(
        stored[0]["expected"],
        json!({"data": {"errors": []}, "errors": [], "warnings": []})
    );
    assert_eq!(examples(stored), [odd]);
}

#[test]
fn expected_errors_are_checked() {
    let check_on = |expected: Value| {
        check(
            CLIMATE,
            json!([{"fport": 2, "bytes_hex": "01", "expected": expected}]),
        )
    };
    assert_eq!(check_on(json!({"errors": ["unsupported fPort 2"]})), "ok");
    assert!(
        check_on(json!({"errors": ["other"]}))
            .contains("example 1, errors: expected [\"other\"], got [\"unsupported fPort 2\"]")
    );
    assert!(check_on(json!({"x": 1})).contains("the codec reported 1 error: unsupported fPort 2"));
    let decodes = check(
        CLIMATE,
        json!([{"input": {"fPort": 1, "bytes": [1, 0, 229]}, "output": {"errors": ["bad"]}}]),
    );
    assert!(
        decodes.contains("expected the codec to report [\"bad\"], but it decoded"),
        "{decodes}"
    );
}

#[test]
fn what_bydata_would_refuse_fails_the_example() {
    let source = "function decodeUplink(i) { return {data: {'a b': 1}}; }";
    let message = check(
        source,
        json!([{"fport": 1, "bytes_hex": "", "expected": {"a b": 1}}]),
    );
    assert!(
        message.contains("bydata would refuse what the codec returned"),
        "{message}"
    );
}

#[test]
fn every_shape_problem_is_listed_with_the_known_keys() {
    let values = json!([
        {"fport": 1, "bytes_hex": "0x", "expected": {}, "comment": "x"},
        {"input": {"fPort": 300, "bytes": [1, 256]}, "output": {"data": {}, "extra": 1}},
        {"fport": 1, "bytes_hex": "01", "bytes_base64": "AQ==", "expected": {}},
        7,
    ]);
    let problems = parse_examples(values.as_array().unwrap()).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "examples[0].comment",
            "examples[0].bytes_hex",
            "examples[1].input.fPort",
            "examples[1].input.bytes",
            "examples[1].output.extra",
            "examples[2]",
            "examples[3]",
        ]
    );
    assert_eq!(
        problems[0].message,
        "unknown key; an example has: description, fport, bytes_hex, bytes_base64, recv_time, expected"
    );
    assert!(
        problems[1].message.contains("'x' at offset 1"),
        "{}",
        problems[1].message
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hex_never_panics(text in ".{0,40}") {
        let _ = decode_hex(&text);
    }

    #[test]
    fn comparing_any_expected_data_never_panics(expected in json_value()) {
        let mut c = codec(
            "function decodeUplink(i) { return {data: {a: 1, b: 'x', c: {d: [true, null, 2.5]}, \
             e: undefined}}; }",
        );
        let ex = parse_examples(&[json!({"fport": 1, "bytes_hex": "", "expected": {"a": expected.clone(),
            "c": {"d": expected.clone()}, "e": expected}})]);
        if let Ok(ex) = ex {
            let _ = c.check_examples(&ex);
        }
    }

    #[test]
    fn example_parsing_never_panics(value in json_value()) {
        let _ = parse_examples(std::slice::from_ref(&value));
        let _ = parse_examples(&[json!({"input": value.clone(), "output": value.clone()})]);
        let _ = parse_examples(&[json!({"fport": 1, "bytes_hex": "", "expected": value})]);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9 ]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("fPort".to_owned()),
                    Just("bytes".to_owned()),
                    Just("data".to_owned()),
                    Just("errors".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
