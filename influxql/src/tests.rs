use super::*;
use proptest::prelude::*;

fn one(q: &str) -> Statement {
    let mut all = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(all.len(), 1, "{q}");
    all.remove(0)
}

fn select(q: &str) -> Select {
    match one(q) {
        Statement::Select(s) => *s,
        other => panic!("{q}: {other:?}"),
    }
}

fn ident(name: &str) -> Expr {
    Expr::Ident {
        name: name.into(),
        hint: None,
    }
}

const MS: i64 = 1_000_000;

/// The queries Grafana's backend renders (grafana/grafana pkg/tsdb/influxdb/models/query_test.go).
#[test]
fn grafana_rendered_selects() {
    let s = select(
        r#"SELECT mean("value") FROM "policy"."cpu" WHERE time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(10s) fill(null)"#,
    );
    assert_eq!(
        s.fields[0].expr,
        Expr::Call {
            name: "mean".into(),
            args: vec![ident("value")]
        }
    );
    assert_eq!(s.from[0].retention_policy.as_deref(), Some("policy"));
    assert_eq!(s.from[0].measurement, Match::Name("cpu".into()));
    assert_eq!(s.group_by_time, Some((10_000 * MS, 0)));
    assert_eq!(s.fill, Fill::Null);
    let Some(Expr::Binary {
        op: Op::And, lhs, ..
    }) = &s.condition
    else {
        panic!("{:?}", s.condition)
    };
    assert_eq!(
        **lhs,
        Expr::Binary {
            op: Op::GtEq,
            lhs: Box::new(ident("time")),
            rhs: Box::new(Expr::Duration(1_596_240_000_000 * MS)),
        }
    );

    let s = select(
        r#"SELECT mean("value") FROM "cpu" WHERE time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(5s) ORDER BY time ASC limit 1 slimit 1 tz('Europe/Paris')"#,
    );
    assert_eq!(
        (s.limit, s.slimit, s.tz.as_deref(), s.descending),
        (Some(1), Some(1), Some("Europe/Paris"), false)
    );

    let s = select(
        r#"SELECT mean("value") FROM "cpu" WHERE ("hostname" = 'server1' OR "hostname" = 'server2') AND time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(5s), "datacenter" fill(null)"#,
    );
    assert_eq!(s.group_by_tags, vec![Dimension::Tag("datacenter".into())]);

    let s = select(
        r#"SELECT mean("value") / 100 FROM "cpu" WHERE time >= 1596240000000ms and time <= 1596240300000ms"#,
    );
    assert!(matches!(s.fields[0].expr, Expr::Binary { op: Op::Div, .. }));

    // The query editor's (public/app/plugins/datasource/influxdb/influx_query_model.ts) regex tag, template
    // variable values, `fill(previous)`, `ORDER BY time DESC`, `LIMIT`.
    let s = select(
        r#"SELECT max("value") AS "peak" FROM "energy_kwh" WHERE ("building" =~ /^(b1|b\/2)$/ AND "device"::tag != 'x') AND time >= now() - 6h GROUP BY time(1h, 15m), * fill(previous) ORDER BY time DESC LIMIT 10 tz('Europe/Copenhagen')"#,
    );
    assert_eq!(s.fields[0].alias.as_deref(), Some("peak"));
    assert_eq!(s.group_by_time, Some((3_600_000 * MS, 900_000 * MS)));
    assert_eq!(s.group_by_tags, vec![Dimension::All]);
    assert_eq!(
        (s.fill, s.descending, s.limit),
        (Fill::Previous, true, Some(10))
    );
    let text = format!("{:?}", s.condition);
    assert!(text.contains(r#"Regex("^(b1|b/2)$")"#), "{text}");
    assert!(text.contains(r#"hint: Some("tag")"#), "{text}");
    for (fill, want) in [
        ("none", Fill::None),
        ("linear", Fill::Linear),
        ("0", Fill::Value(0.0)),
        ("-1.5", Fill::Value(-1.5)),
    ] {
        let s = select(&format!(
            "SELECT last(value) FROM m WHERE time > now() - 1h GROUP BY time(1m) fill({fill})"
        ));
        assert_eq!(s.fill, want);
    }
}

/// The metadata queries of Grafana's query builder (public/app/plugins/datasource/influxdb/
/// influxql_query_builder.ts) and its health check (pkg/tsdb/influxdb/healthcheck.go: `SHOW measurements`).
#[test]
fn grafana_metadata_queries() {
    assert!(matches!(
        one("SHOW measurements"),
        Statement::ShowMeasurements { with: None, .. }
    ));
    assert_eq!(
        one(
            r#"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)energ/ WHERE "building" = 'b1' LIMIT 100"#
        ),
        Statement::ShowMeasurements {
            database: None,
            with: Some(Match::Regex("(?i)energ".into())),
            condition: Some(Expr::Binary {
                op: Op::Eq,
                lhs: Box::new(ident("building")),
                rhs: Box::new(Expr::Str("b1".into())),
            }),
            limit: Some(100),
            offset: None,
        }
    );
    assert_eq!(
        one(r#"SHOW TAG KEYS FROM "energy_kwh""#),
        Statement::ShowTagKeys {
            database: None,
            from: vec![Source {
                database: None,
                retention_policy: None,
                measurement: Match::Name("energy_kwh".into())
            }],
            condition: None,
            limit: None,
            offset: None,
        }
    );
    assert!(matches!(
        one(r#"SHOW TAG VALUES FROM "autogen"."energy_kwh" WITH KEY = "building" WHERE "device" =~ /^m/"#),
        Statement::ShowTagValues { key: KeyMatch::Eq(ref k), condition: Some(_), .. } if k == "building"
    ));
    assert!(matches!(
        one(r#"SHOW TAG VALUES WITH KEY IN ("a", "b")"#),
        Statement::ShowTagValues { key: KeyMatch::In(ref k), .. } if k.len() == 2
    ));
    assert!(matches!(
        one(r#"SHOW FIELD KEYS FROM "climate""#),
        Statement::ShowFieldKeys { ref from, .. } if from.len() == 1
    ));
    assert_eq!(
        one("SHOW FIELD KEYS"),
        Statement::ShowFieldKeys {
            database: None,
            from: vec![],
            limit: None,
            offset: None
        }
    );
    assert_eq!(
        one(r#"SHOW RETENTION POLICIES on "bydata""#),
        Statement::ShowRetentionPolicies {
            database: Some("bydata".into())
        }
    );
    assert_eq!(one("show databases;"), Statement::ShowDatabases);
    assert_eq!(
        parse("SHOW DATABASES; SHOW MEASUREMENTS").map(|s| s.len()),
        Ok(2)
    );
}

#[test]
fn refusals_name_what_is_wrong() {
    for (q, says) in [
        ("", "the query is empty"),
        ("  ;; ", "the query is empty"),
        (
            "DROP MEASUREMENT cpu",
            "the statement DROP is not supported",
        ),
        ("SHOW SERIES", "SHOW SERIES is not supported"),
        (
            "SELECT value INTO x FROM m",
            "SELECT … INTO is not supported",
        ),
        ("SELECT value m", "found m, expected FROM at char 14"),
        (
            "SELECT mean(value FROM m",
            "found FROM, expected ) at char 19",
        ),
        (
            "SELECT * FROM m WHERE a = 'x",
            "expected the closing ' of the text begun",
        ),
        (
            "SELECT * FROM m WHERE a =~ /x",
            "closing / of the regular expression",
        ),
        (
            "SELECT * FROM m GROUP BY time(0s)",
            "a bucket width above zero",
        ),
        (
            "SELECT * FROM m fill(sometimes)",
            "found sometimes, expected null, none, previous, linear or a number",
        ),
        ("SELECT * FROM m ORDER BY value", "expected time"),
        (
            "SELECT * FROM m WHERE time > 99999999999999999999ms",
            "expected a whole number",
        ),
        (
            "SELECT * FROM m WHERE time > 9999999999999w",
            "a duration that fits",
        ),
        (
            "SELECT * FROM m LIMIT -1",
            "expected a whole number after LIMIT",
        ),
        ("SELECT * FROM m tz(Europe)", "a time zone in quotes"),
        ("SELECT # FROM m", "found #"),
    ] {
        let e = parse(q).expect_err(q).to_string();
        assert!(e.contains(says), "{q}: {e}");
    }
    let deep = format!(
        "SELECT * FROM m WHERE {}a = 'b'{}",
        "(".repeat(200),
        ")".repeat(200)
    );
    assert_eq!(parse(&deep), Err(Error::TooDeep { limit: 64 }));
    let long = format!("SELECT {} FROM m", vec!["a"; 5000].join(" + "));
    assert!(matches!(parse(&long), Err(Error::TooDeep { .. })));
}

/// Words and symbols of InfluxQL, to build query-like soup from.
const WORDS: [&str; 40] = [
    "SELECT",
    "SHOW",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "time",
    "(",
    ")",
    "fill",
    "null",
    "none",
    "previous",
    "linear",
    "ORDER",
    "DESC",
    "LIMIT",
    "SLIMIT",
    "tz",
    "'Europe/Copenhagen'",
    "mean",
    "\"value\"",
    "\"m\"",
    "=",
    "=~",
    "!~",
    "!=",
    "/^a$/",
    "AND",
    "OR",
    "now()",
    "-",
    "1h",
    "10ms",
    ",",
    "*",
    "TAG",
    "KEYS",
    "VALUES",
    "WITH KEY",
];

proptest! {
    /// Any text: an answer or a named refusal, never a panic.
    #[test]
    fn any_text_parses_or_is_refused(q in "\\PC{0,200}") {
        let _ = parse(&q);
    }

    /// Query-like soup reaches deeper into the grammar than random text.
    #[test]
    fn query_soup_parses_or_is_refused(words in proptest::collection::vec(prop::sample::select(WORDS.to_vec()), 0..40)) {
        let _ = parse(&words.join(" "));
    }

    /// Queries shaped as Grafana's editor writes them parse to what was written.
    #[test]
    fn grafana_shaped_queries_round_trip(
        agg in prop::sample::select(vec!["mean", "max", "min", "sum", "count", "last", "first", "median"]),
        field in "[a-z_][a-z0-9_]{0,8}",
        measurement in "[a-zæøå_][a-z0-9_.-]{0,12}",
        tag in "[a-z][a-z_]{0,6}",
        value in "[ -~]{0,12}",
        from_ms in 0i64..4_000_000_000_000,
        span_ms in 1i64..100_000_000_000,
        every_s in 1i64..100_000,
        fill in prop::sample::select(vec!["null", "none", "previous", "linear", "0"]),
        desc in any::<bool>(),
        limit in proptest::option::of(0u64..10_000),
    ) {
        let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
        let q = format!(
            "SELECT {agg}(\"{field}\") FROM \"{measurement}\" WHERE (\"{tag}\" = '{quoted}') AND time >= {from_ms}ms and time <= {to}ms GROUP BY time({every_s}s), \"{tag}\" fill({fill}){order}{limit}",
            to = from_ms + span_ms,
            order = if desc { " ORDER BY time DESC" } else { "" },
            limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default(),
        );
        let s = select(&q);
        prop_assert_eq!(&s.fields[0].expr, &Expr::Call { name: agg.into(), args: vec![ident(&field)] });
        prop_assert_eq!(&s.from[0].measurement, &Match::Name(measurement));
        prop_assert_eq!(s.group_by_time, Some((every_s * 1_000_000_000, 0)));
        prop_assert_eq!(&s.group_by_tags, &vec![Dimension::Tag(tag.clone())]);
        prop_assert_eq!((s.descending, s.limit), (desc, limit));
        let Some(Expr::Binary { op: Op::And, lhs, .. }) = s.condition else { panic!("condition") };
        let Expr::Binary { op: Op::And, lhs: tag_cond, rhs: from } = *lhs else { panic!("and") };
        prop_assert_eq!(*tag_cond, Expr::Binary { op: Op::Eq, lhs: Box::new(ident(&tag)), rhs: Box::new(Expr::Str(value)) });
        prop_assert_eq!(*from, Expr::Binary { op: Op::GtEq, lhs: Box::new(ident("time")), rhs: Box::new(Expr::Duration(from_ms * MS)) });
    }
}
