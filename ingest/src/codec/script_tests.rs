//! The sandbox's behaviour on typical and hostile codecs: decoding, TS013 warnings and errors, every limit (and
//! recovery after it), isolation between codecs, output rules, examples, readings, and a property test.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::codec::DecodeError;
use crate::codec::tests::ctx;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;
use std::time::Instant;

const CLIMATE: &str = include_str!("script/testdata/climate.js");
const LPP: &str = include_str!("script/testdata/lpp.js");
/// 22.9 °C, 45 %RH, 300 lx, 3 movements, 450 ppm, 3 V (see climate.js).
const CLIMATE_PAYLOAD: [u8; 16] = [
    0x01, 0x00, 0xe5, 0x02, 0x2d, 0x04, 0x01, 0x2c, 0x05, 0x03, 0x06, 0x01, 0xc2, 0x07, 0x0b, 0xb8,
];
const RECV: UnixNanos = EXAMPLE_RECV_TIME;

fn codec(source: &str) -> ScriptCodec {
    ScriptCodec::new(source, Limits::default()).expect("loads")
}

fn load_error(source: &str) -> ScriptError {
    ScriptCodec::new(source, Limits::default()).expect_err("refused")
}

/// A codec whose `decodeUplink` runs `body` (with `input` in scope).
fn decoding(body: &str) -> ScriptCodec {
    codec(&format!("function decodeUplink(input) {{ {body} }}"))
}

fn decode(codec: &mut ScriptCodec, fport: u8, bytes: &[u8]) -> Result<Output, ScriptError> {
    codec.decode_uplink(fport, bytes, RECV)
}

fn data(output: &Output) -> Value {
    Value::Object(output.data.clone())
}

fn assert_send<T: Send>() {}

#[test]
fn codec_is_send() {
    assert_send::<ScriptCodec>();
}

#[test]
fn decodes_a_typical_codec() {
    let mut c = codec(CLIMATE);
    let out = decode(&mut c, 1, &CLIMATE_PAYLOAD).unwrap();
    assert_eq!(
        data(&out),
        json!({"temperature": 22.9, "humidity": 45, "light": 300, "motion": 3, "occupied": true,
               "co2": 450, "vdd": 3})
    );
    assert!(out.warnings.is_empty());
    // Negative values and a second decode of the same codec.
    let out = decode(&mut c, 1, &[0x01, 0xff, 0x9c]).unwrap();
    assert_eq!(data(&out), json!({"temperature": -10}));
}

#[test]
fn warnings_come_through() {
    let mut c = codec(CLIMATE);
    let out = decode(&mut c, 1, &[0x07, 0x09, 0x60, 0x02, 0x80]).unwrap();
    assert_eq!(data(&out), json!({"vdd": 2.4, "humidity": 128}));
    assert_eq!(
        out.warnings,
        ["battery low (2.4 V)", "humidity 128 % is out of range"]
    );
}

#[test]
fn codec_errors_refuse_the_decode() {
    let mut c = codec(CLIMATE);
    let cases: &[(u8, &[u8], &str)] = &[
        (1, &[0x09, 0x01], "unknown record type 0x09 at byte 0"),
        (
            1,
            &[0x02, 0x10, 0x06, 0x01],
            "co2 at byte 2 needs 2 bytes, 1 left",
        ),
        (2, &[0x02, 0x10], "unsupported fPort 2"),
        (1, &[], "empty payload"),
    ];
    for (fport, bytes, want) in cases {
        let err = decode(&mut c, *fport, bytes).expect_err("codec errors");
        assert_eq!(
            err,
            ScriptError::CodecErrors {
                errors: vec![(*want).to_owned()]
            }
        );
        assert_eq!(err.code(), "codec_errors");
        assert_eq!(
            err.to_string(),
            format!("the codec reported 1 error: {want}")
        );
    }
}

#[test]
fn endless_loop_in_decode_is_stopped_and_the_codec_recovers() {
    let mut c = codec(
        "var calls = 0;
         function decodeUplink(input) {
           calls++;
           if (input.fPort === 9) { while (true) {} }
           return {data: {calls: calls}};
         }",
    );
    assert_eq!(data(&decode(&mut c, 1, &[]).unwrap()), json!({"calls": 1}));
    let started = Instant::now();
    let err = decode(&mut c, 9, &[]).expect_err("stopped");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err, ScriptError::TimeLimit { limit_ms: 100 });
    assert_eq!(err.code(), "time_limit");
    assert_eq!(
        err.to_string(),
        "the codec ran longer than its 100 ms limit and was stopped"
    );
    // The script was evaluated afresh: its counter starts again.
    assert_eq!(data(&decode(&mut c, 1, &[]).unwrap()), json!({"calls": 1}));
}

#[test]
fn endless_loop_at_load_is_stopped() {
    let started = Instant::now();
    let err = load_error("for (;;) {} function decodeUplink(input) { return {data: {}}; }");
    assert_eq!(err, ScriptError::TimeLimit { limit_ms: 100 });
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn catastrophic_regex_is_stopped() {
    let mut c = decoding("return {data: {m: /(a+)+$/.test('a'.repeat(40) + 'b')}};");
    let started = Instant::now();
    assert_eq!(
        decode(&mut c, 1, &[]),
        Err(ScriptError::TimeLimit { limit_ms: 100 })
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn built_in_that_ignores_the_deadline_is_abandoned() {
    // QuickJS's sort walks all 2^27 indexes in C (seconds) without polling the interrupt handler.
    let mut c = decoding(
        "if (input.fPort === 9) { Array.prototype.sort.call({length: 2 ** 27}); }
         return {data: {ok: 1}};",
    );
    let started = Instant::now();
    assert_eq!(
        decode(&mut c, 9, &[]),
        Err(ScriptError::TimeLimit { limit_ms: 100 })
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let err = decode(&mut c, 1, &[]).expect_err("still busy");
    assert_eq!(err, ScriptError::StillRunning);
    assert_eq!(err.code(), "still_running");
    // Once the abandoned run has ended, a new runtime takes over.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match decode(&mut c, 1, &[]) {
            Ok(out) => break assert_eq!(data(&out), json!({"ok": 1})),
            Err(ScriptError::StillRunning) if Instant::now() < deadline => {
                std::thread::park_timeout(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn out_of_memory_is_stopped_and_the_codec_recovers() {
    // Time enough to fill the memory in an unoptimised build.
    let limits = Limits {
        cpu: Duration::from_secs(10),
        ..Limits::default()
    };
    let source = "function decodeUplink(input) {
        if (input.fPort === 9) { let a = []; while (true) a.push(new Array(1e6).fill(1)); }
        if (input.fPort === 8) { let b = []; while (true) b.push({x: b.length}); }
        return {data: {ok: 1}};
    }";
    let mut c = ScriptCodec::new(source, limits).unwrap();
    for fport in [9, 8] {
        let err = decode(&mut c, fport, &[]).expect_err("out of memory");
        assert_eq!(
            err,
            ScriptError::MemoryLimit {
                limit_bytes: 32 << 20
            }
        );
        assert_eq!(
            err.to_string(),
            "the codec used more than its 32 MiB memory limit and was stopped"
        );
        assert_eq!(data(&decode(&mut c, 1, &[]).unwrap()), json!({"ok": 1}));
    }
}

#[test]
fn a_leaking_codec_is_renewed_before_it_runs_out_of_memory() {
    // About 450 KB kept per decode: the memory limit would be hit near decode 73; the runtime is measured every 64
    // decodes and replaced once it holds three quarters of its limit.
    let mut c = decoding(
        "kept = typeof kept === 'undefined' ? [] : kept;
         kept.push(new Uint8Array(450000));
         return {data: {kept: kept.length}};",
    );
    let kept: Vec<u64> = (0..200)
        .map(|_| {
            decode(&mut c, 1, &[]).unwrap().data["kept"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(kept[63], 64);
    assert_eq!(kept[64], 1, "renewed after 64 decodes");
}

#[test]
fn deep_recursion_is_an_error_not_a_crash() {
    let mut c = decoding(
        "function down(n) { return down(n + 1) + 1; }
         if (input.fPort === 9) down(0);
         return {data: {ok: 1}};",
    );
    assert_eq!(decode(&mut c, 9, &[]), Err(ScriptError::StackOverflow));
    assert_eq!(data(&decode(&mut c, 1, &[]).unwrap()), json!({"ok": 1}));
    // Deep nesting in the source or the result.
    let nested = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(ScriptCodec::new(&nested, Limits::default()).is_err());
    let mut c = decoding("let d = {}; for (let i = 0; i < 100000; i++) d = {d}; return {data: d};");
    assert!(decode(&mut c, 1, &[]).is_err());
}

#[test]
fn exceptions_name_the_message_and_line() {
    let mut c = codec("function decodeUplink(input) {\n  throw new Error('bad');\n}");
    let err = decode(&mut c, 1, &[]).expect_err("throws");
    assert_eq!(
        err,
        ScriptError::Exception {
            message: "bad".into(),
            line: Some(2)
        }
    );
    assert_eq!(err.to_string(), "the codec threw an error at line 2: bad");
    let mut c = decoding("throw 'oops';");
    assert_eq!(
        decode(&mut c, 1, &[]),
        Err(ScriptError::Exception {
            message: "oops".into(),
            line: None
        })
    );
    // QuickJS throws null when it cannot allocate an error object, so a null is read as out of memory.
    let mut c = decoding("throw null;");
    assert_eq!(
        decode(&mut c, 1, &[]).map_err(|e| e.code()),
        Err("memory_limit")
    );
    // A SyntaxError thrown while decoding is the codec's exception, not bad syntax.
    let mut c = decoding("return JSON.parse('{');");
    assert_eq!(
        decode(&mut c, 1, &[]).map_err(|e| e.code()),
        Err("exception")
    );
    assert!(matches!(
        load_error("\nthrow new TypeError('at load');"),
        ScriptError::Exception { line: Some(2), .. }
    ));
}

#[test]
fn load_refusals() {
    let err = load_error("function decodeUplink(input) {\n  return {data: {}\n}");
    assert!(
        matches!(err, ScriptError::Syntax { line: Some(3), .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the codec script has a syntax error at line 3: ")
    );
    assert_eq!(
        load_error("function decode(input) {}"),
        ScriptError::NoDecodeUplink
    );
    assert_eq!(
        load_error("var decodeUplink = 3;"),
        ScriptError::NoDecodeUplink
    );
    // ES modules are not scripts.
    assert_eq!(
        load_error("export function decodeUplink(input) {}").code(),
        "syntax"
    );
    let limits = Limits {
        max_script_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        ScriptCodec::new("function decodeUplink(i) {}", limits).expect_err("large"),
        ScriptError::TooLarge {
            size: 27,
            limit: 10
        }
    );
}

#[test]
fn accepts_what_vendor_codecs_do() {
    // Sloppy mode: undeclared globals, `with`, legacy octal; ES2015+: arrow functions, let/const, classes,
    // destructuring, spread, template literals, Map, typed arrays, DataView; ES2020: ?. and ??.
    let mut c = codec(
        r#"
        counter = 0;
        Object.prototype.toHex = function () {
          return Array.prototype.map.call(this, b => ('0' + b.toString(16)).slice(-2)).join('');
        };
        class Reader {
          constructor(bytes) { this.view = new DataView(new Uint8Array(bytes).buffer); }
          u16(at) { return this.view.getUint16(at, false); }
        }
        function decodeUplink(input) {
          counter++;
          undeclaredToo = input.fPort;
          const {bytes, fPort, recvTime} = input;
          let sum = 0;
          with (Math) { sum = max(...bytes); }
          const map = new Map([["a", 1]]);
          return {
            data: {
              hex: bytes.toHex(), max: sum, octal: 010, u16: new Reader(bytes).u16(0),
              missing: input.nothing?.deeper ?? "none", map: map.get("a"), counter,
              isArray: Array.isArray(bytes), port: fPort, year: recvTime.getUTCFullYear(),
            },
          };
        }"#,
    );
    let out = decode(&mut c, 3, &[0x01, 0xff]).unwrap();
    assert_eq!(
        data(&out),
        json!({"hex": "01ff", "max": 255, "octal": 8, "u16": 511, "missing": "none", "map": 1,
               "counter": 1, "isArray": true, "port": 3, "year": 2026})
    );
}

#[test]
fn a_large_minified_codec_loads() {
    // ~170 KB: many small functions on one line, as a bundler writes them.
    let mut source: String = (0..2800)
        .map(|i| format!("function f{i}(a,b){{var c=a*{i}+b;return c>{i}?c-{i}:c+{i}}}"))
        .collect();
    source.push_str("function decodeUplink(i){return{data:{v:f2799(i.bytes[0],1)}}}");
    assert!(source.len() > 160_000, "{}", source.len());
    let mut c = codec(&source);
    assert_eq!(data(&decode(&mut c, 1, &[2]).unwrap()), json!({"v": 2800}));
}

#[test]
fn codecs_are_isolated() {
    let mut polluter = codec(
        "Object.prototype.leak = function () { return 1; }; Array.prototype.sum = 1; shared = 'a';
         function decodeUplink(input) { return {data: {leak: input.bytes.leak()}}; }",
    );
    let mut other = decoding(
        "return {data: {leak: typeof ({}).leak, sum: typeof [].sum, shared: typeof shared}};",
    );
    assert_eq!(
        data(&decode(&mut polluter, 1, &[]).unwrap()),
        json!({"leak": 1})
    );
    assert_eq!(
        data(&decode(&mut other, 1, &[]).unwrap()),
        json!({"leak": "undefined", "sum": "undefined", "shared": "undefined"})
    );
}

#[test]
fn no_host_access() {
    let names = [
        "require",
        "fetch",
        "XMLHttpRequest",
        "setTimeout",
        "setInterval",
        "std",
        "os",
        "process",
        "module",
        "exports",
        "import",
        "performance",
        "print",
        "scriptArgs",
        "WebAssembly",
        "Deno",
    ];
    let body = format!(
        "return {{data: {{{}}}}};",
        names
            .iter()
            .map(|n| format!("{n}: typeof globalThis.{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = decode(&mut decoding(&body), 1, &[]).unwrap();
    for name in names {
        assert_eq!(out.data[name], "undefined", "{name}");
    }
    // Atomics.wait may not block the thread; console exists and swallows everything.
    let mut c = decoding(
        "console.log('debug', input); let r;
         try { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); r = 'waited'; }
         catch (e) { r = e.name; }
         return {data: {r}};",
    );
    assert_eq!(
        data(&decode(&mut c, 1, &[]).unwrap()),
        json!({"r": "TypeError"})
    );
}

#[test]
fn time_is_the_receive_time() {
    let mut c = decoding(
        "return {data: {recv: input.recvTime.getTime(), now: Date.now(), date: new Date().getTime(),
                        isDate: input.recvTime instanceof Date, parsed: new Date(0).getTime(),
                        text: Date.parse(Date())}};",
    );
    let ms = RECV / 1_000_000;
    assert_eq!(
        data(&decode(&mut c, 1, &[]).unwrap()),
        json!({"recv": ms, "now": ms, "date": ms, "isDate": true, "parsed": 0, "text": ms})
    );
    // Whole milliseconds, rounded down.
    let out = c.decode_uplink(1, &[], RECV + 999_999).unwrap();
    assert_eq!(out.data["now"], json!(ms));
}

#[test]
fn output_rules() {
    let ok = |body: &str| data(&decode(&mut decoding(body), 1, &[]).unwrap());
    let err = |body: &str| decode(&mut decoding(body), 1, &[]).expect_err("refused");
    // undefined is dropped from objects and null in arrays, as JSON.stringify does; BigInt becomes a number.
    assert_eq!(
        ok("return {data: {a: 1, b: undefined, c: [1, undefined], f() {}, big: 2n ** 40n}};"),
        json!({"a": 1, "c": [1, null], "big": 1_099_511_627_776u64})
    );
    assert_eq!(
        ok("return {data: {}, warnings: 'one', errors: []};"),
        json!({})
    );
    assert_eq!(
        err("return {data: {env: {values: [1, NaN]}}};"),
        ScriptError::NonFinite {
            path: "data.env.values[1]".into(),
            value: "NaN"
        }
    );
    assert_eq!(
        err("return {data: {'a b': -Infinity}};").to_string(),
        "the codec returned -Infinity for data[\"a b\"]; only finite numbers can be stored"
    );
    assert_eq!(
        err("return {data: {s: 'x'.repeat(70000)}};"),
        ScriptError::OutputTooLarge {
            size: 70_017,
            limit: 65_536
        }
    );
    let reasons = [
        (
            "return 3;",
            "decodeUplink returned a number; expected an object {data, warnings, errors}",
        ),
        (
            "return;",
            "decodeUplink returned undefined; expected an object {data, warnings, errors}",
        ),
        (
            "return [];",
            "decodeUplink returned an array; expected an object {data, warnings, errors}",
        ),
        (
            "return {warnings: []};",
            "it has no data and no errors; TS013 asks for one of them",
        ),
        (
            "return {data: [1]};",
            "its data is an array; expected an object",
        ),
        (
            "return {data: {}, warnings: 3};",
            "its warnings is a number; expected an array of strings",
        ),
    ];
    for (body, reason) in reasons {
        assert_eq!(
            err(body),
            ScriptError::BadOutput {
                reason: reason.into()
            },
            "{body}"
        );
    }
    let mut c = codec("async function decodeUplink(input) { return {data: {}}; }");
    assert!(
        decode(&mut c, 1, &[])
            .expect_err("async")
            .to_string()
            .contains("Promise")
    );
    // Non-string messages are kept as JSON text.
    assert_eq!(
        err("return {errors: ['a', 2, NaN]};"),
        ScriptError::CodecErrors {
            errors: vec!["a".into(), "2".into(), "NaN".into()]
        }
    );
}

#[test]
fn readings_flatten_the_data() {
    let output = |data: Value| Output {
        data: data.as_object().unwrap().clone(),
        warnings: Vec::new(),
        undefined_keys: Vec::new(),
    };
    let ctx = ctx();
    let got = readings(
        &output(
            json!({"temperature": 21.5, "occupied": true, "env": {"co2": 640, "label": "x"},
                       "temps": [20, 21], "note": null, "empty": {}}),
        ),
        &ctx,
    )
    .unwrap();
    let rows: Vec<_> = got
        .readings
        .iter()
        .map(|r| {
            (
                r.measurement.as_str(),
                r.unit.as_ref().map(|u| u.as_str()),
                r.value,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("env_co2", None, 640.0),
            ("occupied", None, 1.0),
            ("temperature", Some("Cel"), 21.5),
            ("temps_0", None, 20.0),
            ("temps_1", None, 21.0),
        ]
    );
    assert!(got.readings.iter().all(|r| r.time == ctx.received_at));
    let texts: Vec<_> = got
        .state
        .iter()
        .map(|t| (t.field.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(texts, [("env_label", "x")]);
    assert_eq!(
        got.warnings,
        [
            "kept as text state, not as series: env_label (see the device's latest state)",
            "not stored (not a number, boolean or text): note (null)"
        ]
    );
    let refused = |data: Value| readings(&output(data), &ctx).expect_err("refused");
    assert_eq!(
        refused(json!({"a b": 1})),
        DecodeError::InvalidName {
            key: "a b".into(),
            reason: "may only contain A-Z, a-z, 0-9, '-', '_' and '.'"
        }
    );
    // Text alone is decoded (kept as state); nothing at all is refused.
    assert_eq!(
        readings(&output(json!({"button": "open"})), &ctx)
            .unwrap()
            .state
            .len(),
        1
    );
    assert_eq!(refused(json!({"empty": {}})), DecodeError::NoReadings);
    assert!(matches!(
        refused(json!({"a_b": 1, "a": {"b": 2}})),
        DecodeError::Duplicate { .. }
    ));
}

#[test]
fn cayenne_in_javascript() {
    let mut c = codec(LPP);
    let out = decode(
        &mut c,
        1,
        &[
            0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00, 0xff, 0x06, 0x71, 0x04, 0xd2, 0xfb, 0x2e,
            0x00, 0x00,
        ],
    )
    .unwrap();
    assert_eq!(
        data(&out),
        json!({"temperature_3": 27.2, "temperature_5": 25.5,
               "accelerometer_6": {"x": 1.234, "y": -1.234, "z": 0}})
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_payloads_never_panic(fport in any::<u8>(), bytes in vec(any::<u8>(), 0..64)) {
        let mut c = codec(CLIMATE);
        if let Ok(out) = decode(&mut c, fport, &bytes) {
            prop_assert_eq!(fport, 1);
            let _ = readings(&out, &ctx());
        }
        let mut lpp = codec(LPP);
        let _ = decode(&mut lpp, fport, &bytes);
    }
}
