#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn doc_patterns(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(p)) = m.get("pattern") {
                out.push(p.clone());
            }
            m.values().for_each(|v| doc_patterns(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| doc_patterns(v, out)),
        _ => {}
    }
}

#[test]
fn every_pattern_of_the_document_compiles_and_has_words() {
    let mut patterns = Vec::new();
    doc_patterns(&Value::Object(SCHEMAS.clone()), &mut patterns);
    assert!(!patterns.is_empty());
    for p in patterns {
        assert!(
            regex_automata::dfa::regex::Regex::new(&p).is_ok(),
            "{p} does not compile"
        );
        assert!(
            words::PATTERN_WORDS.iter().any(|(q, _)| *q == p),
            "{p} has no words in PATTERN_WORDS"
        );
    }
    assert!(words::matches("^[a-z0-9][a-z0-9._-]{0,63}$", "b7-co2"));
    assert!(!words::matches("^[a-z0-9][a-z0-9._-]{0,63}$", "Bad Id"));
}

#[test]
fn a_dataset_with_several_problems_names_each() {
    let body = json!({"id": "ok", "title": "CO2", "description": {"da": "x"}, "extra": 1,
                      "themes": ["ENVI"], "licence": "CC0-1.0", "update_frequency": "DAILY",
                      "publisher": {"name": "x"}, "contact_point": {"name": "x"},
                      "selection": {"measurement": "co2"}, "aggregation": {"every": "1h", "fn": 3}});
    let problems = problems_of::<bydata_opendata::NewDataset>(&body);
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect();
    for want in [
        r#"title: expected an object with "da" and "en", found the string "CO2""#,
        "description.en: required",
        "extra: unknown field",
        "aggregation.fn: expected a string, found the number 3",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(want)),
            "{want} in {text:?}"
        );
    }
}

#[test]
fn serde_messages_are_reworded() {
    let (f, m) = serde_words(
        "title".into(),
        "invalid type: string \"CO2\", expected struct Text at line 1 column 49",
    );
    assert_eq!(
        (f.as_str(), m.as_str()),
        ("title", "expected struct Text, found string \"CO2\"")
    );
    let (f, m) = serde_words("publisher".into(), "missing field `name`");
    assert_eq!((f.as_str(), m.as_str()), ("publisher.name", "required"));
}

#[test]
fn non_json_says_so() {
    let e = parse::<crate::tokens::NewToken>(b"name=x&role=admin").unwrap_err();
    assert!(e.to_string().contains("the body is not JSON"), "{e}");
}

fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9 æøå/_.-]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,12}",
                    Just("id".to_owned()),
                    Just("name".to_owned()),
                    Just("location".to_owned()),
                    Just("lorawan".to_owned()),
                    Just("title".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Whatever a client sends, the checker answers (a problem list, or the value), never a panic.
    #[test]
    fn any_body_is_answered_never_a_panic(value in any_json(), bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let _ = problems_of::<crate::devices::NewDevice>(&value);
        let _ = problems_of::<bydata_opendata::NewDataset>(&value);
        let _ = parse::<crate::devices::NewDevice>(value.to_string().as_bytes());
        let _ = parse::<crate::gateways::NewGateway>(&bytes);
    }
}
