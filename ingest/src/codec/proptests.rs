//! Property tests: no payload makes a decoder panic, and generated messages decode to the readings they encode.

use super::decode;
use super::tests::ctx;
use bydata_schemas::{Codec, Unit};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const CODECS: [Codec; 4] = [Codec::Auto, Codec::Senml, Codec::Json, Codec::Cayenne];

/// A sensor-like value: up to 12 significant digits and 6 decimals. serde_json (without its `float_roundtrip`
/// feature) may read a 17-digit number 1 ULP off, so arbitrary f64s would not round-trip bit for bit; values a
/// sensor sends take its exact fast path.
fn finite() -> impl Strategy<Value = f64> {
    (-999_999_999_999i64..=999_999_999_999, 0u32..=6)
        .prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32))
}

/// A measurement name, some of them with a default unit.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,20}",
        Just("temperature".to_owned()),
        Just("co2".to_owned()),
    ]
    .prop_filter("time keys are reserved in flat JSON", |n| {
        !super::TIME_KEYS.contains(&n.as_str())
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        for codec in CODECS {
            let _ = decode(&codec, &bytes, &ctx());
        }
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[\[\]{}":,0-9a-zA-Z .eE+\-_\n]{0,80}"#) {
        for codec in CODECS {
            let _ = decode(&codec, text.as_bytes(), &ctx());
        }
    }

    #[test]
    fn senml_like_text_never_panics(
        records in vec(
            btree_map(
                prop_oneof![
                    Just("n"), Just("bn"), Just("v"), Just("bv"), Just("vb"), Just("s"), Just("bs"),
                    Just("t"), Just("bt"), Just("u"), Just("bu"), Just("bver"), Just("vs"), Just("x_"),
                ],
                prop_oneof![
                    any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    any::<bool>().prop_map(Value::from),
                    "[a-z:/ ]{0,8}".prop_map(Value::from),
                    Just(Value::Null),
                ],
                0..5,
            ),
            0..6,
        )
    ) {
        let pack: Vec<Value> = records
            .into_iter()
            .map(|r| Value::Object(r.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
            .collect();
        let _ = decode(&Codec::Senml, Value::Array(pack).to_string().as_bytes(), &ctx());
    }

    #[test]
    fn flat_objects_round_trip(
        values in btree_map(name(), prop_oneof![finite().prop_map(Value::from), any::<bool>().prop_map(Value::from)], 1..20),
        seconds_ago in proptest::option::of(0u32..1_000_000),
    ) {
        let ctx = ctx();
        let mut object: Map<String, Value> = values.clone().into_iter().collect();
        let time = match seconds_ago {
            Some(ago) => {
                let t = ctx.received_at / 1_000_000_000 - i64::from(ago);
                object.insert("time".into(), json!(t));
                t * 1_000_000_000
            }
            None => ctx.received_at,
        };
        let readings = decode(&Codec::Auto, Value::Object(object).to_string().as_bytes(), &ctx).expect("valid").readings;
        prop_assert_eq!(readings.len(), values.len());
        // BTreeMap order is the promised order: sorted by name.
        for (r, (name, v)) in readings.iter().zip(&values) {
            prop_assert_eq!(r.measurement.as_str(), name);
            prop_assert_eq!(r.time, time);
            prop_assert_eq!(&r.unit, &Unit::for_measurement(name));
            let want = v.as_f64().unwrap_or_else(|| f64::from(u8::from(v.as_bool() == Some(true))));
            prop_assert_eq!(r.value, want);
        }
    }

    #[test]
    fn senml_packs_round_trip(
        names in proptest::collection::btree_set(name(), 1..20),
        values in vec(finite(), 20),
        offsets in vec(-4000i32..=0, 20),
        base_name in prop_oneof![Just(""), Just("urn:dev:ow:10e2073a01080063:"), Just("/3303/0/")],
        base_time in proptest::option::of(1_700_000_000i64..1_795_000_000),
        base_unit in proptest::option::of("[A-Za-z%/]{1,4}"),
    ) {
        let ctx = ctx();
        let mut pack = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut record = json!({"n": name, "v": values[i], "t": f64::from(offsets[i]) / 4.0});
            if i == 0 {
                record["bn"] = json!(base_name);
                if let Some(bt) = base_time { record["bt"] = json!(bt); }
                if let Some(bu) = &base_unit { record["bu"] = json!(bu); }
            }
            pack.push(record);
        }
        let readings = decode(&Codec::Auto, Value::Array(pack).to_string().as_bytes(), &ctx).expect("valid").readings;
        prop_assert_eq!(readings.len(), names.len());
        let origin = base_time.map_or(ctx.received_at, |bt| bt * 1_000_000_000);
        for (i, (r, name)) in readings.iter().zip(&names).enumerate() {
            // With a prefix the full name is invalid (':' or '/'), so the last segment — the record's n — stays.
            let full = format!("{base_name}{name}");
            let want_name = if base_name.is_empty() { name } else { &full[base_name.len()..] };
            prop_assert_eq!(r.measurement.as_str(), want_name);
            prop_assert_eq!(r.value, values[i]);
            prop_assert_eq!(r.time, origin + i64::from(offsets[i]) * 250_000_000);
            let want_unit = match &base_unit {
                Some(u) => Unit::new(u.as_str()).ok(),
                None => Unit::for_measurement(name),
            };
            prop_assert_eq!(&r.unit, &want_unit);
        }
    }

    #[test]
    fn text_is_kept_beside_the_numbers(
        values in btree_map(name(), finite(), 1..10),
        text in "[a-zA-Z0-9 .:-]{0,300}",
    ) {
        let mut object: Map<String, Value> = values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        object.insert("zz_status".into(), json!(text));
        let decoded = decode(&Codec::Json, Value::Object(object).to_string().as_bytes(), &ctx()).expect("kept");
        prop_assert_eq!(decoded.readings.len(), values.len());
        prop_assert_eq!(decoded.state.len(), 1);
        prop_assert_eq!(decoded.state[0].field.as_str(), "zz_status");
        let kept = &decoded.state[0].value;
        prop_assert!(kept.len() <= super::MAX_TEXT_BYTES && text.starts_with(kept.as_str()));
        prop_assert!(decoded.warnings[0].contains("zz_status"));
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        for codec in CODECS {
            if let Ok(d) = decode(&codec, text.as_bytes(), &ctx()) {
                prop_assert!(!d.readings.is_empty() || !d.state.is_empty());
            }
        }
        let records = Value::Array(vec![value.clone(), json!({"n": "a", "vs": value.clone()})]);
        let _ = decode(&Codec::Senml, records.to_string().as_bytes(), &ctx());
        if let Value::Object(data) = value {
            let output = super::script::Output { data, warnings: Vec::new(), undefined_keys: Vec::new() };
            let _ = super::script::readings(&output, &ctx());
        }
    }
}

/// Any JSON value, nested a few levels, with keys that are sometimes time keys or SenML fields.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "[a-z_]{1,6}",
        Just("time".to_owned()),
        Just("ts".to_owned()),
        Just("t".to_owned()),
        Just("timestamp".to_owned()),
        Just("n".to_owned()),
        Just("v".to_owned()),
        Just("vs".to_owned()),
        Just("vd".to_owned()),
        Just("a b".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::from("2026-11-22T10:00:00Z")),
        Just(Value::from("21.5")),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
