use super::*;
use bydata_schemas::line_protocol::{self, FieldValue, MAX_TIME, MIN_TIME, Precision};
use proptest::prelude::*;

mod csv_tests;
mod delete_tests;
mod http;

fn name(s: &str) -> MeasurementName {
    MeasurementName::new(s).expect("valid name")
}

fn key(measurement: &str, tags: &[(&str, &str)], field: &str) -> SeriesKey {
    SeriesKey {
        measurement: name(measurement),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        field: name(field),
    }
}

fn point(series: SeriesKey, unit: Option<&str>, time: UnixNanos, value: f64) -> Point {
    Point {
        series,
        unit: unit.map(|u| Unit::new(u).expect("valid unit")),
        time,
        value,
    }
}

fn serialise(points: &[Point]) -> String {
    let mut body = String::new();
    for p in points {
        line::push_line(&mut body, p).expect("writable");
    }
    body
}

/// Parses our output with the project's own line-protocol parser and checks every element came back.
fn assert_round_trip(p: &Point) {
    let body = serialise(std::slice::from_ref(p));
    let lines = line_protocol::parse(&body, Precision::Ns)
        .unwrap_or_else(|e| panic!("{body:?} does not parse: {e}"));
    assert_eq!(lines.len(), 1, "{body:?}");
    let l = &lines[0];
    assert_eq!(l.measurement, p.series.measurement.as_str(), "{body:?}");
    assert_eq!(l.tags, p.series.tags, "{body:?}");
    assert_eq!(l.time, Some(p.time), "{body:?}");
    let unit_field = format!("{}{UNIT_FIELD_SUFFIX}", p.series.field.as_str());
    let unit = p
        .unit
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default();
    assert_eq!(
        l.fields,
        vec![
            (
                p.series.field.as_str().to_owned(),
                FieldValue::Float(p.value)
            ),
            (unit_field, FieldValue::String(unit)),
        ],
        "{body:?}"
    );
}

#[test]
fn tricky_keys_round_trip_through_the_line_protocol_parser() {
    let tricky = [
        ("device", "b7"),
        ("a key", "a value"),
        ("k,comma", "v,comma"),
        ("k=eq", "v=eq"),
        ("back\\slash", "ends in backslash\\"),
        ("\\", "\\\\"),
        ("quote\"d", "\"quoted\""),
        ("#hash", "#"),
        ("ünï", "日本語 ,= \\ x"),
        ("trailing", "space "),
    ];
    for (k, v) in tricky {
        let p = point(
            key("temperature", &[(k, v)], "value"),
            Some("Cel"),
            1_700_000_000_123_456_789,
            21.5,
        );
        assert_round_trip(&p);
    }
    let all = point(key("m-1.x", &tricky, "f_1"), None, -5, -0.25);
    assert_round_trip(&all);
    for value in [1e-7, 1e300, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, 3.0] {
        assert_round_trip(&point(
            key("m", &[], "value"),
            Some("a\\b"),
            MAX_TIME,
            value,
        ));
    }
    assert_round_trip(&point(key("m", &[], "value"), None, MIN_TIME, 1.0));
}

#[test]
fn the_written_line_is_the_documented_shape() {
    let p = point(
        key(
            "temperature",
            &[("domain", "building"), ("device", "b 7")],
            "value",
        ),
        Some("Cel"),
        1_700_000_000_000_000_000,
        21.5,
    );
    assert_eq!(
        serialise(&[p]),
        "temperature,device=b\\ 7,domain=building value=21.5,value#unit=\"Cel\" 1700000000000000000\n"
    );
}

#[test]
fn points_line_protocol_cannot_carry_are_refused() {
    let ok = key("m", &[("device", "d")], "value");
    let cases = [
        point(ok.clone(), None, 0, f64::NAN),
        point(ok.clone(), None, 0, f64::INFINITY),
        point(ok.clone(), None, i64::MIN, 1.0),
        point(ok.clone(), None, i64::MAX, 1.0),
        point(key("m", &[("device", "")], "value"), None, 0, 1.0),
        point(key("m", &[("", "v")], "value"), None, 0, 1.0),
        point(key("m", &[("_internal", "v")], "value"), None, 0, 1.0),
        point(key("m", &[("time", "v")], "value"), None, 0, 1.0),
        point(key("m", &[("k", "line\nbreak")], "value"), None, 0, 1.0),
        point(key("m", &[("k\r", "v")], "value"), None, 0, 1.0),
        point(key("_m", &[], "value"), None, 0, 1.0),
        point(key("m", &[], "_value"), None, 0, 1.0),
        point(key("m", &[], "time"), None, 0, 1.0),
    ];
    for p in cases {
        let mut out = String::new();
        assert!(line::push_line(&mut out, &p).is_err(), "{p:?} was accepted");
        assert!(out.is_empty(), "nothing is written for a refused point");
    }
}

fn arb_name() -> impl Strategy<Value = MeasurementName> {
    "[A-Za-z0-9.-][A-Za-z0-9_.-]{0,8}"
        .prop_filter("time is refused", |s| s != "time")
        .prop_map(|s| name(&s))
}

fn arb_tag_text() -> impl Strategy<Value = String> {
    "[^\n\r]{1,10}".prop_filter("reserved", |s| !s.starts_with('_') && s != "time")
}

fn arb_point() -> impl Strategy<Value = Point> {
    (
        arb_name(),
        prop::collection::btree_map(arb_tag_text(), arb_tag_text(), 0..4),
        arb_name(),
        prop::option::of("[A-Za-z0-9%/\\\\]{1,6}"),
        MIN_TIME..=MAX_TIME,
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
    )
        .prop_map(|(measurement, tags, field, unit, time, value)| Point {
            series: SeriesKey {
                measurement,
                tags,
                field,
            },
            unit: unit.map(|u| Unit::new(u).expect("valid unit")),
            time,
            value,
        })
}

/// Reads a Flux string literal back (the spec's escapes), to check `string_lit` against.
fn flux_unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '$' if chars.peek() == Some(&'{') => out.push('$'),
                _ => return None,
            },
            '"' => return None,
            '$' if chars.peek() == Some(&'{') => return None, // would interpolate
            _ => out.push(c),
        }
    }
    Some(out)
}

#[test]
fn flux_string_literals_escape_quotes_backslashes_and_interpolation() {
    let cases = [
        ("abc", r#""abc""#),
        (r#"say "hi""#, r#""say \"hi\"""#),
        (r"C:\dir\", r#""C:\\dir\\""#),
        ("${r._value}", r#""\${r._value}""#),
        ("$5 {x} $", r#""$5 {x} $""#),
        ("a\nb\tc\r", r#""a\nb\tc\r""#),
        ("日本語", r#""日本語""#),
        ("", r#""""#),
    ];
    for (raw, lit) in cases {
        assert_eq!(flux::string_lit(raw), lit);
        assert_eq!(flux_unquote(lit).as_deref(), Some(raw));
    }
}

#[test]
fn flux_queries_quote_every_user_string() {
    let k = key("temperature", &[("room\"x", "${evil}")], "value");
    let q = flux::range("my \"bucket\"", &k, -1, 1_000);
    assert!(q.contains(r#"from(bucket: "my \"bucket\"")"#), "{q}");
    assert!(
        q.contains("range(start: time(v: -1), stop: time(v: 1000))"),
        "{q}"
    );
    assert!(q.contains(r#"r["room\"x"] == "\${evil}""#), "{q}");
    assert!(
        q.contains(r#"r._measurement == "temperature" and r._field == "value""#),
        "{q}"
    );
    let q = flux::last_before("b", &k, i64::MAX);
    assert!(q.contains("time(v: -9223372036854775806)"), "{q}");
    assert!(q.contains("stop: time(v: 9223372036854775807)"), "{q}");
    assert!(q.contains("|> last()"), "{q}");
    assert_eq!(flux::time_lit(i64::MIN), "time(v: -9223372036854775806)");
    let all = flux::series(
        "b",
        &SeriesFilter {
            scope: None,
            measurement: None,
            field: None,
            tags: BTreeMap::new(),
        },
    );
    assert!(!all.contains("filter"), "{all}");
    let some = flux::series(
        "b",
        &SeriesFilter {
            scope: None,
            measurement: None,
            field: Some(name("value")),
            tags: [("device".to_owned(), "b7".to_owned())].into(),
        },
    );
    assert!(
        some.contains(r#"filter(fn: (r) => (r._field == "value" or r._field == "value#unit") and r["device"] == "b7")"#),
        "{some}"
    );
}

proptest! {
    #[test]
    fn written_points_parse_back(p in arb_point()) {
        assert_round_trip(&p);
    }

    #[test]
    fn flux_literals_read_back(s in any::<String>()) {
        prop_assert_eq!(flux_unquote(&flux::string_lit(&s)), Some(s));
    }
}

#[test]
fn new_validates_the_configuration_without_panicking() {
    let config = |url: &str| InfluxConfig {
        url: url.to_owned(),
        org: "o".to_owned(),
        bucket: "b".to_owned(),
        token: "t".to_owned(),
    };
    for url in [
        "",
        "not a url",
        "localhost:8086",
        "ftp://x",
        "https://influx:8086",
        "http://x/?a=b",
        "http://x/#f",
        "mailto:a@b",
        "http://",
    ] {
        assert!(
            InfluxStore::new(config(url)).is_err(),
            "{url:?} was accepted"
        );
    }
    assert!(
        InfluxStore::new(InfluxConfig {
            token: "bad\ntoken".to_owned(),
            ..config("http://x")
        })
        .is_err()
    );
    assert!(
        InfluxStore::new(InfluxConfig {
            bucket: String::new(),
            ..config("http://x")
        })
        .is_err()
    );
    let store = InfluxStore::new(InfluxConfig {
        token: "s3cret".to_owned(),
        ..config("http://influx:8086/prefix/")
    })
    .expect("valid");
    assert_eq!(
        store.write_url.as_str(),
        "http://influx:8086/prefix/api/v2/write?org=o&bucket=b&precision=ns"
    );
    assert_eq!(
        store.query_url.as_str(),
        "http://influx:8086/prefix/api/v2/query?org=o"
    );
    let shown = format!("{store:?} {:?}", config("http://x"));
    assert!(
        !shown.contains("s3cret") && !shown.contains("token: \"t\""),
        "{shown}"
    );
}
