//! Table tests of `decode` over every format, and the helpers the format modules' tests share.
use super::*;
use bydata_schemas::parse_rfc3339;

pub(super) fn ctx() -> DecodeContext {
    DecodeContext::new(parse_rfc3339("2026-11-22T10:00:00Z").expect("valid"))
}

/// A decoded reading as plain values, for compact expectations in table tests.
pub(super) type Row = (String, Option<String>, UnixNanos, f64);

pub(super) fn rows(codec: Codec, payload: &str) -> Result<Vec<Row>, DecodeError> {
    decode(&codec, payload.as_bytes(), &ctx()).map(|decoded| {
        decoded
            .readings
            .into_iter()
            .map(|r| {
                (
                    r.measurement.to_string(),
                    r.unit.map(|u| u.to_string()),
                    r.time,
                    r.value,
                )
            })
            .collect()
    })
}

#[test]
fn auto_dispatch() {
    let ctx = ctx();
    let senml = decode(&Codec::Auto, br#" [{"n":"co2","v":640}]"#, &ctx).expect("senml");
    let flat = decode(&Codec::Auto, b"\n{\"co2\": 640}", &ctx).expect("flat");
    assert_eq!(senml, flat);
    assert_eq!(
        flat.readings[0].unit.as_ref().map(|u| u.as_str()),
        Some("ppm")
    );

    let cases: &[(&[u8], DecodeError)] = &[
        (b"", DecodeError::Empty),
        (
            b"42",
            DecodeError::UnknownFormat {
                found: JsonType::Number,
            },
        ),
        (
            b" \"hi\"",
            DecodeError::UnknownFormat {
                found: JsonType::String,
            },
        ),
        (
            b"null",
            DecodeError::UnknownFormat {
                found: JsonType::Null,
            },
        ),
        (b"\x01\x02", DecodeError::NotJson { first_byte: 1 }),
        (
            b"hello",
            DecodeError::Malformed {
                line: 1,
                column: 1,
                reason: "expected value".into(),
            },
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(
            &decode(&Codec::Auto, payload, &ctx).expect_err("rejected"),
            want
        );
    }
}

#[test]
fn explicit_codec_checks_the_shape() {
    let ctx = ctx();
    assert_eq!(
        decode(&Codec::Senml, br#"{"co2": 1}"#, &ctx),
        Err(DecodeError::WrongType {
            expected: "a SenML pack (a JSON array of records)",
            found: JsonType::Object
        })
    );
    assert_eq!(
        decode(&Codec::Json, br#"[{"n":"co2","v":1}]"#, &ctx),
        Err(DecodeError::WrongType {
            expected: "a JSON object of measurements",
            found: JsonType::Array
        })
    );
}

#[test]
fn validation() {
    let ctx = ctx();
    let now = ctx.received_at;
    let at = |s: &str| parse_rfc3339(s).expect("valid");
    let many = format!(
        "[{}]",
        (0..=MAX_READINGS)
            .map(|i| format!(r#"{{"n":"c","t":-{i},"v":1}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: &[(&str, DecodeError)] = &[
        ("{}", DecodeError::NoReadings),
        (r#"{"time": 1790000000}"#, DecodeError::NoReadings),
        ("[]", DecodeError::NoReadings),
        (
            &many,
            DecodeError::TooManyReadings {
                count: MAX_READINGS + 1,
                limit: MAX_READINGS,
            },
        ),
        (
            r#"{"co2": 1, "time": "2100-01-01T00:00:00Z"}"#,
            DecodeError::InFuture {
                measurement: "co2".into(),
                time: at("2100-01-01T00:00:00Z"),
                ahead: at("2100-01-01T00:00:00Z") - now,
                max_future: DEFAULT_MAX_FUTURE,
            },
        ),
        (
            r#"{"co2": 1, "time": 0}"#,
            DecodeError::TooOld {
                measurement: "co2".into(),
                time: 0,
                min_time: DEFAULT_MIN_TIME,
            },
        ),
        (
            r#"[{"bv": 1e308, "n": "x", "v": 1e308}]"#,
            DecodeError::NonFinite {
                measurement: "x".into(),
            },
        ),
        (
            r#"[{"n":"/3303/0/5700","v":21},{"n":"/3304/0/5700","v":40}]"#,
            DecodeError::Duplicate {
                measurement: "5700".into(),
                time: now,
            },
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(
            &decode(&Codec::Auto, payload.as_bytes(), &ctx).expect_err("rejected"),
            want,
            "{payload:.80}"
        );
    }
    let ahead = r#"{"co2": 1, "time": "2026-11-22T10:05:00Z"}"#;
    assert!(
        decode(&Codec::Auto, ahead.as_bytes(), &ctx).is_ok(),
        "exactly max_future ahead is fine"
    );
}

#[test]
fn messages_read_well() {
    let ctx = ctx();
    let shown = |payload: &str| {
        decode(&Codec::Auto, payload.as_bytes(), &ctx)
            .expect_err("rejected")
            .to_string()
    };
    let cases = [
        (
            r#"{"temperature": }"#,
            "malformed JSON at line 1 column 17: expected value",
        ),
        (
            r#"{"t": NaN}"#,
            "malformed JSON at line 1 column 7: NaN is not a finite number; JSON has no NaN or Infinity, \
             and numbers must fit a 64-bit float",
        ),
        (
            r#"{"temperature": 21.5, "time": "2100-01-01T00:00:00Z"}"#,
            "time 2100-01-01T00:00:00Z of \"temperature\" is 2307103200 s in the future (at most 300 s is \
             accepted; is the device clock set?)",
        ),
        (
            r#"{"co2": 1, "timestamp": "yesterday"}"#,
            "time key \"timestamp\" is \"yesterday\", which is not an RFC 3339 time (e.g. \
             2026-11-22T10:00:00Z); give RFC 3339 text or seconds or milliseconds since the epoch",
        ),
        (
            r#"{"env": {"co2": 1}, "note": null}"#,
            "message contains nothing bydata keeps: env (an object), note (null); send numbers or booleans \
             (stored as series) or text (kept as the device's state)",
        ),
        (
            "\u{1}",
            "payload is not JSON text (first byte 0x01); expected SenML JSON or a JSON object",
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(shown(payload), want);
    }
}

#[test]
fn numeric_times() {
    assert_eq!(numeric_time(1.5, NANOS_PER_SEC), Some(1_500_000_000));
    assert_eq!(numeric_time(-1.5, NANOS_PER_SEC), Some(-1_500_000_000));
    // RFC 8428 §5.1.3's bt: the f64 is 1276020076.0009999275…, which is 1 ms after rounding to µs.
    assert_eq!(
        numeric_time(1.276020076001e9, NANOS_PER_SEC),
        Some(1_276_020_076_001_000_000)
    );
    assert_eq!(
        numeric_time(1_790_000_000_123.0, 1_000_000),
        Some(1_790_000_000_123_000_000)
    );
    assert_eq!(numeric_time(1e12, NANOS_PER_SEC), None);
    assert_eq!(numeric_time(f64::NAN, NANOS_PER_SEC), None);
}

/// What a message keeps besides its readings: (field, text, time) and the warnings.
type Kept = (Vec<(String, String, UnixNanos)>, Vec<String>);

fn kept(payload: &str) -> Kept {
    let d = decode(&Codec::Auto, payload.as_bytes(), &ctx()).expect(payload);
    let texts = d
        .state
        .into_iter()
        .map(|t| (t.field.to_string(), t.value, t.time))
        .collect();
    (texts, d.warnings)
}

#[test]
fn text_is_kept_and_the_rest_explained() {
    let now = ctx().received_at;
    let at = |s: &str| parse_rfc3339(s).expect("valid");
    let text = |f: &str, v: &str, t| (f.to_owned(), v.to_owned(), t);
    let state_note = |fields: &str| {
        format!("kept as text state, not as series: {fields} (see the device's latest state)")
    };
    let cases: Vec<(&str, Kept)> = vec![
        (
            r#"{"co2": 655, "firmware": "1.2.3"}"#,
            (
                vec![text("firmware", "1.2.3", now)],
                vec![state_note("firmware")],
            ),
        ),
        (
            r#"{"button": "open", "ts": 1795341600}"#,
            (
                vec![text("button", "open", at("2026-11-22T10:00:00Z"))],
                vec![state_note("button")],
            ),
        ),
        (
            r#"{"door": "on", "temperature": "21.5", "seen": "2026-11-22T09:00:00Z", "x": [1], "y": null}"#,
            (
                vec![
                    text("door", "on", now),
                    text("seen", "2026-11-22T09:00:00Z", now),
                    text("temperature", "21.5", now),
                ],
                vec![
                    state_note("door, seen, temperature"),
                    "text that reads as a number: temperature; send it as a JSON number (without quotes) \
                     to store it as a series"
                        .into(),
                    "text that reads as a time: seen; the message time is read from \"time\", \
                     \"timestamp\", \"ts\" or \"t\""
                        .into(),
                    "not stored (not a number, boolean or text): x (an array), y (null)".into(),
                ],
            ),
        ),
        (
            r#"{"co2": 1, "time": "2026-11-22T09:00:00Z", "ts": 1, "t": 1795341600000}"#,
            (
                vec![],
                vec![
                    "time keys ignored: ts, t (the message time is taken from \"time\")".into(),
                ],
            ),
        ),
        (
            r#"[{"n":"temp","v":23.1},{"n":"label","vs":"Machine Room"},{"n":"nfc","vd":"aGkgCg"}]"#,
            (
                vec![text("label", "Machine Room", now)],
                vec![
                    state_note("label"),
                    "not stored (not a number, boolean or text): record 3 (nfc) (a data value (vd))"
                        .into(),
                ],
            ),
        ),
        (
            r#"[{"n":"state","vs":"a","t":-2},{"n":"state","vs":"b"},{"n":"state","vs":"c","t":-1}]"#,
            (vec![text("state", "b", now)], vec![state_note("state")]),
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(kept(payload), want, "{payload}");
    }
    // Bounds: a text is cut at a character boundary, a message keeps at most MAX_TEXT_FIELDS texts.
    let long = format!(r#"{{"note": "{}"}}"#, "ø".repeat(MAX_TEXT_BYTES));
    let (texts, warnings) = kept(&long);
    assert_eq!(texts[0].1.len(), MAX_TEXT_BYTES);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("text cut to 256 bytes: note"))
    );
    let many: Vec<String> = (0..=MAX_TEXT_FIELDS)
        .map(|i| format!(r#""f{i:03}": "x""#))
        .collect();
    let (texts, warnings) = kept(&format!("{{{}}}", many.join(",")));
    assert_eq!(texts.len(), MAX_TEXT_FIELDS);
    assert!(warnings.iter().any(|w| w.contains("f064")), "{warnings:?}");
}

#[test]
fn time_keys_set_the_time_and_are_never_measurements() {
    let at = parse_rfc3339("2026-11-22T09:30:00Z").expect("valid");
    let s = at / 1_000_000_000;
    for payload in [
        format!(r#"{{"co2": 656, "ts": {s}}}"#),
        format!(r#"{{"co2": 656, "t": {s}}}"#),
        format!(r#"{{"co2": 656, "timestamp": {}}}"#, s * 1000),
        r#"{"co2": 656, "timestamp": "2026-11-22T09:30:00Z"}"#.to_owned(),
        r#"{"co2": 656, "time": "2026-11-22T10:30:00+01:00"}"#.to_owned(),
    ] {
        assert_eq!(
            rows(Codec::Json, &payload).expect(&payload),
            vec![("co2".to_owned(), Some("ppm".to_owned()), at, 656.0)],
            "{payload}"
        );
    }
    // A small t is a measurement (a temperature, say), as it always was.
    assert_eq!(
        rows(Codec::Json, r#"{"t": 21.5}"#).expect("t")[0].0,
        "t".to_owned()
    );
}
