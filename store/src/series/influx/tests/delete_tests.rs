//! `delete_range` against InfluxDB's documented delete API: the request on the wire (fake server), and the
//! predicate's quoting read back by the escapes InfluxQL's scanner accepts.

use super::http::{Fake, T0};
use super::*;

fn filter(measurement: Option<&str>, tags: &[(&str, &str)]) -> SeriesFilter {
    SeriesFilter {
        scope: None,
        measurement: measurement.map(name),
        field: None,
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// Reads a double-quoted InfluxQL identifier back as its scanner does (`ScanString`: `\n`, `\\`, `\"`, `\'`
/// are escapes, any other escape and a raw newline are errors).
fn influxql_unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                _ => return None,
            },
            '"' | '\n' => return None,
            _ => out.push(c),
        }
    }
    Some(out)
}

#[tokio::test]
async fn delete_posts_the_documented_request_with_an_inclusive_stop() {
    let fake = Fake::start(vec![(204, String::new()), (204, String::new())]).await;
    let store = fake.store();
    let hour = 3_600_000_000_000;
    let by_key = filter(
        Some("temperature"),
        &[("device", "b7"), ("domain", "building")],
    );
    store
        .delete_range(&by_key, T0, T0 + hour)
        .await
        .expect("delete");
    // Every series in a range: no predicate at all.
    store
        .delete_range(&filter(None, &[]), T0 + 1, T0 + 2)
        .await
        .expect("delete all");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/influx/api/v2/delete?org=city+org&bucket=iot");
    assert_eq!(r.header("authorization"), Some("Token s3cret"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({
            "start": "2026-11-22T10:00:00Z",
            "stop": "2026-11-22T10:59:59.999999999Z",
            "predicate": r#"_measurement="temperature" AND "device"="b7" AND "domain"="building""#,
        })
    );
    let body: serde_json::Value = serde_json::from_str(&requests[1].body).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({
            "start": "2026-11-22T10:00:00.000000001Z",
            "stop": "2026-11-22T10:00:00.000000001Z",
        })
    );
}

#[tokio::test]
async fn deletes_influxdb_cannot_do_or_that_cover_nothing_send_nothing() {
    let fake = Fake::start(vec![]).await;
    let store = fake.store();
    let by_field = SeriesFilter {
        field: Some(name("value")),
        ..filter(Some("temperature"), &[])
    };
    let err = store
        .delete_range(&by_field, T0, T0 + 1)
        .await
        .expect_err("by field");
    assert!(matches!(err, Error::InvalidQuery { .. }), "{err:?}");
    assert!(err.to_string().contains("field"), "{err}");
    let any = filter(None, &[]);
    store.delete_range(&any, T0, T0).await.expect("empty range");
    store
        .delete_range(&any, i64::MIN, MIN_TIME)
        .await
        .expect("before InfluxDB's time");
    assert!(fake.requests().is_empty());
    // An open-ended range is clamped to the times InfluxDB stores.
    let body = delete::body(&any, i64::MIN, i64::MAX)
        .expect("body")
        .expect("a range");
    assert_eq!(body["start"], "1677-09-21T00:12:43.145224194Z");
    assert_eq!(body["stop"], "2262-04-11T23:47:16.854775806Z");
}

#[tokio::test]
async fn a_refused_delete_is_an_error_with_the_servers_message() {
    let fake = Fake::start(vec![(
        400,
        r#"{"code":"invalid","message":"invalid request; error parsing request json: invalid RFC3339Nano for field start"}"#
            .to_owned(),
    )])
    .await;
    let err = fake
        .store()
        .delete_range(&filter(None, &[("device", "b7")]), T0, T0 + 1)
        .await
        .expect_err("400");
    assert!(matches!(err, Error::Task { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("400") && text.contains("RFC3339Nano"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn predicates_quote_keys_and_values_as_influxql_reads_them() {
    let f = filter(
        Some("m-1.x"),
        &[("a key", "v,1=2\\"), ("quote\"d", "line\nbreak 'x'")],
    );
    assert_eq!(
        delete::predicate(&f),
        r#"_measurement="m-1.x" AND "a key"="v,1=2\\" AND "quote\"d"="line\nbreak 'x'""#
    );
    assert_eq!(delete::predicate(&filter(None, &[])), "");
}

proptest! {
    #[test]
    fn predicate_identifiers_read_back(s in any::<String>()) {
        prop_assert_eq!(influxql_unquote(&delete::quoted(&s)), Some(s));
    }
}
