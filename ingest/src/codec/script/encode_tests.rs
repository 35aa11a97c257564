//! `encodeDownlink`: TS013's shape, its refusals in the codec owner's words, the same limits as a decode, and
//! a property test that no result the codec can return panics the host.
#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use serde_json::json;

const VALVE: &str = r#"
function decodeUplink(input) { return { data: { open: input.bytes[0] } }; }
function encodeDownlink(input) {
  if (typeof input.data.open !== "boolean") return { errors: ["open must be true or false"] };
  return { bytes: [input.data.open ? 1 : 0, input.fPort], fPort: input.fPort, warnings: [] };
}
"#;

fn codec(source: &str) -> ScriptCodec {
    ScriptCodec::new(source, Limits::default()).expect("loads")
}

fn encoding(body: &str) -> ScriptCodec {
    codec(&format!(
        "function decodeUplink(i) {{ return {{data: {{}}}}; }}\nfunction encodeDownlink(input) {{ {body} }}"
    ))
}

#[test]
fn encodes_data_into_bytes_and_fport() {
    let mut c = codec(VALVE);
    let out = c.encode_downlink(10, &json!({"open": true})).unwrap();
    assert_eq!((out.bytes, out.fport), (vec![1, 10], 10));
    // Decoding still works on the same codec.
    assert!(c.decode_uplink(1, &[1], 0).is_ok());
}

#[test]
fn the_codec_may_choose_the_fport_or_leave_it() {
    let mut c = encoding("return {bytes: [7], fPort: 99};");
    assert_eq!(c.encode_downlink(5, &json!({})).unwrap().fport, 99);
    let mut c = encoding("return {bytes: [7]};");
    assert_eq!(c.encode_downlink(5, &json!({})).unwrap().fport, 5);
}

#[test]
fn a_codec_without_encode_downlink_says_what_to_add() {
    let mut c = codec("function decodeUplink(i) { return {data: {}}; }");
    let err = c.encode_downlink(1, &json!({})).unwrap_err();
    assert_eq!(err, ScriptError::NoEncodeDownlink);
    assert!(
        err.to_string().contains("function encodeDownlink(input)"),
        "{err}"
    );
    assert_eq!(err.code(), "no_encode_downlink");
}

#[test]
fn refusals_name_the_problem() {
    let cases = [
        ("return {errors: ['valve is stuck']};", "valve is stuck"),
        ("return {bytes: [1, 256]};", "bytes[1] is 256"),
        ("return {bytes: [1, -1]};", "bytes[1] is -1"),
        ("return {bytes: [1.5]};", "bytes[0] is 1.5"),
        ("return {bytes: 'AQ=='};", "its bytes is a string"),
        ("return {bytes: [1], fPort: 0};", "its fPort is 0"),
        ("return {bytes: [1], fPort: 224};", "its fPort is 224"),
        ("return {};", "no bytes and no errors"),
        ("return 3;", "encodeDownlink returned a number"),
        ("throw new Error('no such command');", "no such command"),
    ];
    for (body, needle) in cases {
        let mut c = encoding(body);
        let err = c.encode_downlink(1, &json!({"x": 1})).unwrap_err();
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }
}

#[test]
fn limits_apply_as_to_a_decode() {
    let limits = Limits {
        cpu: std::time::Duration::from_millis(50),
        ..Limits::default()
    };
    let mut c = ScriptCodec::new(
        "function decodeUplink(i) { return {data: {}}; }\nfunction encodeDownlink(i) { for(;;){} }",
        limits,
    )
    .unwrap();
    assert!(matches!(
        c.encode_downlink(1, &json!({})),
        Err(ScriptError::TimeLimit { .. })
    ));
    // The runtime was renewed; the codec still decodes.
    assert!(c.decode_uplink(1, &[], 0).is_ok());
    let mut big = encoding("return {bytes: JSON.parse('[' + '1,'.repeat(40000) + '1]')};");
    let err = big.encode_downlink(1, &json!({})).unwrap_err();
    assert!(matches!(err, ScriptError::OutputTooLarge { .. }), "{err}");
}

#[test]
fn the_data_is_the_codecs_own_object() {
    // Made in the codec's context from JSON: nested values, arrays and strings arrive intact.
    let mut c = encoding(
        "var d = input.data; return {bytes: [d.list.length, d.nested.n, d.text.length, d.list instanceof Array ? 1 : 0]};",
    );
    let out = c
        .encode_downlink(
            1,
            &json!({"list": [1, 2, 3], "nested": {"n": 9}, "text": "héllo"}),
        )
        .unwrap();
    assert_eq!(out.bytes, vec![3, 9, 5, 1]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn any_result_is_read_without_panic(result in r#"[\[\]{}":,0-9a-zA-Z .\-]{0,60}"#) {
        let mut c = encoding(&format!("return JSON.parse({});", serde_json::to_string(&result).unwrap()));
        if let Ok(out) = c.encode_downlink(3, &json!({})) {
            prop_assert!((1..=223).contains(&out.fport));
        }
    }
}
