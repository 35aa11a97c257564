//! Examples marked "v2 ref" are from the InfluxDB v2 line protocol reference,
//! <https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/>.

use super::*;
use proptest::prelude::*;

use FieldValue::{Boolean, Float, Integer, String as Str, UInteger};
use LineErrorReason as R;

fn line(
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, FieldValue)],
    time: Option<i64>,
) -> Line {
    Line {
        measurement: measurement.to_owned(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        time,
    }
}

fn one(text: &str) -> Result<Line, LineErrorReason> {
    parse_line(text, Precision::Ns).map(|l| l.expect("not a blank or comment line"))
}

fn s(v: &str) -> FieldValue {
    Str(v.to_owned())
}

#[test]
fn valid_lines() {
    let cases: Vec<(&str, Line)> = vec![
        // v2 ref: syntax example
        (
            r#"myMeasurement,tag1=value1,tag2=value2 fieldKey="fieldValue" 1556813561098000000"#,
            line(
                "myMeasurement",
                &[("tag1", "value1"), ("tag2", "value2")],
                &[("fieldKey", s("fieldValue"))],
                Some(1556813561098000000),
            ),
        ),
        // tags come out sorted
        (
            "cpu,zone=b,host=a v=1",
            line(
                "cpu",
                &[("host", "a"), ("zone", "b")],
                &[("v", Float(1.0))],
                None,
            ),
        ),
        // v2 ref: measurement name with spaces
        (
            r#"my\ Measurement fieldKey="string value""#,
            line(
                "my Measurement",
                &[],
                &[("fieldKey", s("string value"))],
                None,
            ),
        ),
        // v2 ref: double quotes in a string field value
        (
            r#"myMeasurement fieldKey="\"string\" within a string""#,
            line(
                "myMeasurement",
                &[],
                &[("fieldKey", s(r#""string" within a string"#))],
                None,
            ),
        ),
        // v2 ref: tag keys and values with spaces
        (
            r"myMeasurement,tag\ Key1=tag\ Value1,tag\ Key2=tag\ Value2 fieldKey=100",
            line(
                "myMeasurement",
                &[("tag Key1", "tag Value1"), ("tag Key2", "tag Value2")],
                &[("fieldKey", Float(100.0))],
                None,
            ),
        ),
        // v2 ref: emojis
        (
            r#"myMeasurement,tagKey=🍭 fieldKey="Launch 🚀" 1556813561098000000"#,
            line(
                "myMeasurement",
                &[("tagKey", "🍭")],
                &[("fieldKey", s("Launch 🚀"))],
                Some(1556813561098000000),
            ),
        ),
        // measurement: `\,` and `\ ` escape; `=` needs no escape and `\=` stays as written
        (
            r"a\,b\ c=d\=e v=1",
            line("a,b c=d\\=e", &[], &[("v", Float(1.0))], None),
        ),
        // tag key/value and field key: `\,` `\=` `\ ` escape
        (
            r"m,k\,\=\ 1=v\,\=\ 1 f\,\=\ 1=1",
            line("m", &[("k,= 1", "v,= 1")], &[("f,= 1", Float(1.0))], None),
        ),
        // backslash before any other character is kept
        (
            r#"m\x,k\x=v\x f\x="s\x" "#,
            line("m\\x", &[("k\\x", "v\\x")], &[("f\\x", s("s\\x"))], None),
        ),
        // v2 ref "Escaping backslashes": \ → \, \\ → \, \\\ → \\, \\\\ → \\, \\\\\ → \\\, \\\\\\ → \\\
        (
            r"m\\\x,t1=x\y,t2=x\\y,t3=x\\\y,t4=x\\\\y,t5=x\\\\\y,t6=x\\\\\\y f\\=1",
            line(
                "m\\\\x",
                &[
                    ("t1", r"x\y"),
                    ("t2", r"x\y"),
                    ("t3", r"x\\y"),
                    ("t4", r"x\\y"),
                    ("t5", r"x\\\y"),
                    ("t6", r"x\\\y"),
                ],
                &[("f\\", Float(1.0))],
                None,
            ),
        ),
        (
            r#"m s1="x\y",s2="x\\y",s3="x\\\y",s4="x\\\\y",s5="x\\\\\y",s6="x\\\\\\y",s7="\\""#,
            line(
                "m",
                &[],
                &[
                    ("s1", s(r"x\y")),
                    ("s2", s(r"x\y")),
                    ("s3", s(r"x\\y")),
                    ("s4", s(r"x\\y")),
                    ("s5", s(r"x\\\y")),
                    ("s6", s(r"x\\\y")),
                    ("s7", s("\\")),
                ],
                None,
            ),
        ),
        // strings may hold spaces, commas, equals signs and quotes
        (
            r#"m s="a b,c=d\"e" 5"#,
            line("m", &[], &[("s", s("a b,c=d\"e"))], Some(5)),
        ),
        (r#"m s="""#, line("m", &[], &[("s", s(""))], None)),
        // quotes in names are part of the name (v2 ref: Quotes)
        (
            r#""m",'t'="v" 'f'=1"#,
            line("\"m\"", &[("'t'", "\"v\"")], &[("'f'", Float(1.0))], None),
        ),
        // v2 ref float examples, plus exponent spellings
        (
            "m a=1.0,b=1,c=-1.234456e+78,d=-1.5e3,e=1E5,f=.5,g=1.,h=-0,i=1e-3",
            line(
                "m",
                &[],
                &[
                    ("a", Float(1.0)),
                    ("b", Float(1.0)),
                    ("c", Float(-1.234456e78)),
                    ("d", Float(-1500.0)),
                    ("e", Float(1e5)),
                    ("f", Float(0.5)),
                    ("g", Float(1.0)),
                    ("h", Float(-0.0)),
                    ("i", Float(0.001)),
                ],
                None,
            ),
        ),
        // v2 ref integer examples and limits
        (
            "m a=1i,b=12485903i,c=-12485903i,d=-9223372036854775808i,e=9223372036854775807i",
            line(
                "m",
                &[],
                &[
                    ("a", Integer(1)),
                    ("b", Integer(12485903)),
                    ("c", Integer(-12485903)),
                    ("d", Integer(i64::MIN)),
                    ("e", Integer(i64::MAX)),
                ],
                None,
            ),
        ),
        // v2 ref uinteger examples and limits
        (
            "m a=1u,b=12485903u,c=0u,d=18446744073709551615u",
            line(
                "m",
                &[],
                &[
                    ("a", UInteger(1)),
                    ("b", UInteger(12485903)),
                    ("c", UInteger(0)),
                    ("d", UInteger(u64::MAX)),
                ],
                None,
            ),
        ),
        // v2 ref boolean spellings
        (
            "m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE",
            line(
                "m",
                &[],
                &[
                    ("a", Boolean(true)),
                    ("b", Boolean(true)),
                    ("c", Boolean(true)),
                    ("d", Boolean(true)),
                    ("e", Boolean(true)),
                    ("f", Boolean(false)),
                    ("g", Boolean(false)),
                    ("h", Boolean(false)),
                    ("i", Boolean(false)),
                    ("j", Boolean(false)),
                ],
                None,
            ),
        ),
        // a quoted boolean is a string (v2 ref)
        (r#"m b="true""#, line("m", &[], &[("b", s("true"))], None)),
        // duplicate field: the last value wins, at the first position
        (
            "m a=1,b=2,a=3i",
            line("m", &[], &[("a", Integer(3)), ("b", Float(2.0))], None),
        ),
        // the same past the point where duplicates are found by an index rather than a scan
        (
            "m f0=0,f1=1,f2=2,f3=3,f4=4,f5=5,f6=6,f7=7,f8=8,f9=9,f10=10,f11=11,f12=12,f13=13,f14=14,f15=15,\
             f16=16,f17=17,f1=-1,f17=-17",
            Line {
                fields: (0..18)
                    .map(|i| {
                        let v = if i == 1 || i == 17 { -i } else { i };
                        (format!("f{i}"), Float(f64::from(v)))
                    })
                    .collect(),
                ..line("m", &[], &[], None)
            },
        ),
        // whitespace: leading, runs between sections, trailing; CRLF
        (
            "  \tm,t=1   f=1   -5  ",
            line("m", &[("t", "1")], &[("f", Float(1.0))], Some(-5)),
        ),
        ("m f=1 7\r", line("m", &[], &[("f", Float(1.0))], Some(7))),
        ("m f=1\r", line("m", &[], &[("f", Float(1.0))], None)),
        // a tab is not a separator
        ("m\tx f=1", line("m\tx", &[], &[("f", Float(1.0))], None)),
        // names may start with `_`: that is InfluxDB's storage rule, not syntax
        (
            "_m,_t=v _f=1",
            line("_m", &[("_t", "v")], &[("_f", Float(1.0))], None),
        ),
        // timestamp limits (v2 ref: Unix timestamp)
        (
            "m f=1 -9223372036854775806",
            line("m", &[], &[("f", Float(1.0))], Some(-9223372036854775806)),
        ),
        (
            "m f=1 9223372036854775806",
            line("m", &[], &[("f", Float(1.0))], Some(9223372036854775806)),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(one(text).as_ref(), Ok(&expected), "{text}");
    }
}

#[test]
fn invalid_lines() {
    let k = |v: &str| v.to_owned();
    let cases: Vec<(&str, LineErrorReason)> = vec![
        (",t=1 f=1", R::EmptyMeasurement),
        // leading whitespace is skipped, so this is a measurement `f=1` with no fields
        (" f=1", R::MissingFields),
        ("m", R::MissingFields),
        ("m ", R::MissingFields),
        ("m,t=1", R::MissingFields),
        ("m,t=1 ", R::MissingFields),
        (r"m\ f=1", R::MissingFields),
        ("m, f=1", R::EmptyTagKey),
        ("m,=v f=1", R::EmptyTagKey),
        ("m,t f=1", R::MissingTagValue { key: k("t") }),
        ("m,t,u=1 f=1", R::MissingTagValue { key: k("t") }),
        ("m,t= f=1", R::EmptyTagValue { key: k("t") }),
        ("m,t=,u=1 f=1", R::EmptyTagValue { key: k("t") }),
        ("m,t=a=b f=1", R::UnescapedEqualsInTagValue { key: k("t") }),
        ("m,b=1,a=2,b=3 f=1", R::DuplicateTag { key: k("b") }),
        ("m =1", R::EmptyFieldKey),
        ("m f=1,", R::EmptyFieldKey),
        ("m f=1,,g=2", R::EmptyFieldKey),
        ("m f", R::MissingFieldValue { key: k("f") }),
        ("m f=", R::MissingFieldValue { key: k("f") }),
        ("m f= 1", R::MissingFieldValue { key: k("f") }),
        ("m f=1,g", R::MissingFieldValue { key: k("g") }),
        ("m f,g=1", R::MissingFieldValue { key: k("f") }),
        (
            "m f=NaN",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("NaN"),
            },
        ),
        (
            "m f=nan",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("nan"),
            },
        ),
        (
            "m f=inf",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("inf"),
            },
        ),
        (
            "m f=-inf",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("-inf"),
            },
        ),
        (
            "m f=+1",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("+1"),
            },
        ),
        (
            "m f=1.1.1",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("1.1.1"),
            },
        ),
        (
            "m f=.",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("."),
            },
        ),
        (
            "m f=1e",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("1e"),
            },
        ),
        (
            "m f=-",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("-"),
            },
        ),
        (
            "m f=yes",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("yes"),
            },
        ),
        (
            "m f=tRUE",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("tRUE"),
            },
        ),
        (
            "m f=i",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("i"),
            },
        ),
        (
            "m f=1.5i",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("1.5i"),
            },
        ),
        (
            "m f=-1u",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("-1u"),
            },
        ),
        (
            "m f=1iu",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("1iu"),
            },
        ),
        (
            r#"m f="a"b"#,
            R::InvalidFieldValue {
                key: k("f"),
                value: k(r#""a"b"#),
            },
        ),
        (
            "m f='a'",
            R::InvalidFieldValue {
                key: k("f"),
                value: k("'a'"),
            },
        ),
        (
            "m f=9223372036854775808i",
            R::FieldValueOutOfRange {
                key: k("f"),
                value: k("9223372036854775808i"),
            },
        ),
        (
            "m f=-9223372036854775809i",
            R::FieldValueOutOfRange {
                key: k("f"),
                value: k("-9223372036854775809i"),
            },
        ),
        (
            "m f=18446744073709551616u",
            R::FieldValueOutOfRange {
                key: k("f"),
                value: k("18446744073709551616u"),
            },
        ),
        (
            "m f=1e309",
            R::FieldValueOutOfRange {
                key: k("f"),
                value: k("1e309"),
            },
        ),
        (r#"m f="abc"#, R::UnterminatedString { key: k("f") }),
        (r#"m f="abc\""#, R::UnterminatedString { key: k("f") }),
        (r#"m f="abc\"#, R::UnterminatedString { key: k("f") }),
        ("m f=1 12a", R::InvalidTimestamp { value: k("12a") }),
        ("m f=1 1.5", R::InvalidTimestamp { value: k("1.5") }),
        ("m f=1 -", R::InvalidTimestamp { value: k("-") }),
        ("m f=1 +5", R::InvalidTimestamp { value: k("+5") }),
        (
            "m f=1 2026-01-01T00:00:00Z",
            R::InvalidTimestamp {
                value: k("2026-01-01T00:00:00Z"),
            },
        ),
        (
            "m f=1 9223372036854775807",
            R::TimestampOutOfRange {
                value: k("9223372036854775807"),
            },
        ),
        (
            "m f=1 -9223372036854775807",
            R::TimestampOutOfRange {
                value: k("-9223372036854775807"),
            },
        ),
        (
            "m f=1 99999999999999999999",
            R::TimestampOutOfRange {
                value: k("99999999999999999999"),
            },
        ),
        ("m f=1 1 2", R::TrailingCharacters { rest: k("2") }),
        ("m f=1 1 x y", R::TrailingCharacters { rest: k("x y") }),
        ("m f=1 1\r\r", R::InvalidTimestamp { value: k("1\r") }),
    ];
    for (text, expected) in cases {
        assert_eq!(one(text), Err(expected), "{text}");
    }
}

#[test]
fn string_length_limit() {
    let at_limit = format!("m f=\"{}\"", "a".repeat(MAX_STRING_FIELD_BYTES));
    assert!(one(&at_limit).is_ok());
    // the limit counts unescaped bytes: 32 KiB of `\"` is 32 KiB of `"`
    let escaped = format!("m f=\"{}\"", "\\\"".repeat(MAX_STRING_FIELD_BYTES));
    assert!(one(&escaped).is_ok());
    let over = format!("m f=\"{}é\"", "a".repeat(MAX_STRING_FIELD_BYTES - 1));
    assert_eq!(
        one(&over),
        Err(R::StringTooLong {
            key: "f".to_owned(),
            len: MAX_STRING_FIELD_BYTES + 1
        })
    );
}

#[test]
fn error_text_is_shortened_and_names_the_line() {
    let long = "x".repeat(1000);
    let err = parse(&format!("m f=1\n\nm f={long}"), Precision::Ns).expect_err("invalid");
    assert_eq!(err.line, 3);
    let text = err.to_string();
    assert!(
        text.starts_with("line 3: field \"f\" has invalid value \"xxx"),
        "{text}"
    );
    assert!(text.len() < 400, "{text}");
}

#[test]
fn body_skips_blanks_and_comments_and_reports_the_first_bad_line() {
    let body =
        "# a comment\r\n\r\ncpu,host=a v=1 1\r\n  # indented comment\n   \n\ncpu,host=b v=2 2\n";
    let lines = parse(body, Precision::Ns).expect("valid");
    assert_eq!(
        lines,
        vec![
            line("cpu", &[("host", "a")], &[("v", Float(1.0))], Some(1)),
            line("cpu", &[("host", "b")], &[("v", Float(2.0))], Some(2)),
        ]
    );
    assert_eq!(parse("", Precision::Ns), Ok(vec![]));
    assert_eq!(parse("\n\n# only comments\n", Precision::Ns), Ok(vec![]));
    assert_eq!(parse_line("# m f=1", Precision::Ns), Ok(None));
    assert_eq!(parse_line(" \t ", Precision::Ns), Ok(None));

    let cases = [
        (
            "m f=1\nm f=2\nm f=\nm g",
            3,
            R::MissingFieldValue {
                key: "f".to_owned(),
            },
        ),
        ("bad\nm f=\n", 1, R::MissingFields),
        (
            "# c\n\nm f=1\r\nm f=1 x\r\n",
            4,
            R::InvalidTimestamp {
                value: "x".to_owned(),
            },
        ),
        // a newline ends a string: strings cannot span lines (v2 ref)
        (
            "m s=\"a\nb\" 1",
            1,
            R::UnterminatedString {
                key: "s".to_owned(),
            },
        ),
    ];
    for (body, line, reason) in cases {
        assert_eq!(
            parse(body, Precision::Ns),
            Err(LineError { line, reason }),
            "{body:?}"
        );
    }
}

#[test]
fn precision() {
    let cases = [
        (
            Precision::Ns,
            "1556813561098000000",
            Ok(1_556_813_561_098_000_000),
        ),
        (
            Precision::Us,
            "1556813561098000",
            Ok(1_556_813_561_098_000_000),
        ),
        (
            Precision::Ms,
            "1556813561098",
            Ok(1_556_813_561_098_000_000),
        ),
        (Precision::S, "1556813561", Ok(1_556_813_561_000_000_000)),
        (Precision::S, "-1", Ok(-1_000_000_000)),
        (Precision::S, "0", Ok(0)),
        (Precision::S, "9223372036", Ok(9_223_372_036_000_000_000)),
        (Precision::S, "9223372037", Err(())),
        (Precision::S, "-9223372037", Err(())),
        (Precision::Ms, "9223372036855", Err(())),
        (Precision::Us, "9223372036854776", Err(())),
        (
            Precision::Us,
            "-9223372036854775",
            Ok(-9_223_372_036_854_775_000),
        ),
    ];
    for (precision, ts, expected) in cases {
        let got = parse_line(&format!("m f=1 {ts}"), precision);
        let want = match expected {
            Ok(nanos) => Ok(Some(line("m", &[], &[("f", Float(1.0))], Some(nanos)))),
            Err(()) => Err(R::TimestampOutOfRange {
                value: ts.to_owned(),
            }),
        };
        assert_eq!(got, want, "{precision} {ts}");
    }

    for p in [Precision::Ns, Precision::Us, Precision::Ms, Precision::S] {
        assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
    }
    assert_eq!(Precision::default(), Precision::Ns);
    let err = "h".parse::<Precision>().expect_err("not a v2 precision");
    assert_eq!(
        err.to_string(),
        "unknown precision \"h\": expected one of ns, us, ms, s"
    );
}

#[test]
fn integers_parse_as_std_does_in_one_pass() {
    use super::lexer::parse_integer;
    for (text, want) in [
        ("0", Some(Some(0))),
        ("-0", Some(Some(0))),
        ("007", Some(Some(7))),
        ("9223372036854775807", Some(Some(i64::MAX))),
        ("-9223372036854775808", Some(Some(i64::MIN))),
        ("9223372036854775808", Some(None)),
        ("-9223372036854775809", Some(None)),
        ("99999999999999999999999", Some(None)),
        ("", None),
        ("-", None),
        ("+1", None),
        ("--1", None),
        ("1-", None),
        ("1 ", None),
        ("1_000", None),
    ] {
        assert_eq!(parse_integer(text), want, "{text:?}");
    }
}

/// Parses `body` line by line as a caller with a series cache does: what `known` answers for a series text
/// is the measurement and tags parsed from it the first time.
fn parse_with_cache(
    body: &str,
    precision: Precision,
) -> Vec<Result<Option<Line>, LineErrorReason>> {
    let mut cache: HashMap<&str, (String, BTreeMap<String, String>)> = HashMap::new();
    let mut fields = Vec::new();
    let mut out = Vec::new();
    for text in body.split('\n') {
        let known = |series_text: &str| cache.get(series_text).cloned();
        let parsed = parse_line_ref(text, precision, known, &mut fields).map(|parsed| {
            parsed.map(|parsed| {
                let (measurement, tags) = match parsed.series {
                    SeriesRef::Known(series) => series,
                    SeriesRef::Parsed { measurement, tags } => {
                        cache.insert(parsed.series_text, (measurement.clone(), tags.clone()));
                        (measurement, tags)
                    }
                };
                let fields = fields.iter().map(|(k, v)| (k.to_string(), v.clone()));
                Line {
                    measurement,
                    tags,
                    fields: fields.collect(),
                    time: parsed.time,
                }
            })
        });
        out.push(parsed);
    }
    out
}

#[test]
fn a_known_series_text_is_not_parsed_again() {
    let body = "m,t=1 f=1 1\nm,t=1 g=2i 2\nm,t=2 f=3 3\n  m,t=1 f=4\r";
    let mut fields = Vec::new();
    let mut texts = Vec::new();
    for text in body.split('\n') {
        let known = |series_text: &'static str| {
            texts.push(series_text);
            (series_text == "m,t=1").then_some(7)
        };
        let parsed = parse_line_ref(text, Precision::Ns, known, &mut fields);
        let parsed = parsed.expect("valid").expect("not blank");
        assert_eq!(
            matches!(parsed.series, SeriesRef::Known(7)),
            parsed.series_text == "m,t=1"
        );
        assert_eq!(fields.len(), 1);
    }
    assert_eq!(texts, ["m,t=1", "m,t=1", "m,t=2", "m,t=1"]);
    assert_eq!(
        parse_with_cache(body, Precision::Ns),
        body.split('\n')
            .map(|text| parse_line(text, Precision::Ns))
            .collect::<Vec<_>>()
    );
}

/// Serialises a line the way a careful client would: every special character escaped, `\` as `\\`.
fn write(line: &Line) -> String {
    fn escape(s: &str, specials: &[char]) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c == '\\' || specials.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }
    let mut out = escape(&line.measurement, &[',', ' ']);
    for (k, v) in &line.tags {
        out += &format!(
            ",{}={}",
            escape(k, &[',', '=', ' ']),
            escape(v, &[',', '=', ' '])
        );
    }
    for (i, (k, v)) in line.fields.iter().enumerate() {
        let value = match v {
            Float(v) => format!("{v:?}"),
            Integer(v) => format!("{v}i"),
            UInteger(v) => format!("{v}u"),
            Str(v) => format!("\"{}\"", escape(v, &['"'])),
            Boolean(v) => v.to_string(),
        };
        out += &format!(
            "{}{}={value}",
            if i == 0 { ' ' } else { ',' },
            escape(k, &[',', '=', ' '])
        );
    }
    if let Some(t) = line.time {
        out += &format!(" {t}");
    }
    out
}

/// Text full of the characters line protocol treats specially.
fn text() -> impl Strategy<Value = String> {
    "[a-z0-9_,= \"\\\\#\\t'é🚀]{1,10}"
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Float),
        any::<i64>().prop_map(Integer),
        any::<u64>().prop_map(UInteger),
        "[a-z0-9_,= \"\\\\#\\t'é🚀]{0,10}".prop_map(Str),
        any::<bool>().prop_map(Boolean),
    ]
}

fn arb_line() -> impl Strategy<Value = Line> {
    (
        // a measurement cannot start with `#` (a comment) or a tab (leading whitespace); an escape can't help
        text().prop_filter("not a comment or indent", |m| !m.starts_with(['#', '\t'])),
        prop::collection::btree_map(text(), text(), 0..4),
        prop::collection::btree_map(text(), field_value(), 1..5),
        prop::option::of(MIN_TIME..=MAX_TIME),
    )
        .prop_map(|(measurement, tags, fields, time)| Line {
            measurement,
            tags,
            fields: fields.into_iter().collect(),
            time,
        })
}

/// Compares floats by bits, so `-0.0` and `0.0` differ and every digit must survive.
fn bits(line: &Line) -> Vec<Option<u64>> {
    line.fields
        .iter()
        .map(|(_, v)| {
            if let Float(f) = v {
                Some(f.to_bits())
            } else {
                None
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn round_trips(lines in prop::collection::vec(arb_line(), 1..4)) {
        let body: Vec<String> = lines.iter().map(write).collect();
        let parsed = parse(&body.join("\n"), Precision::Ns);
        prop_assert_eq!(parsed.as_ref(), Ok(&lines), "{:?}", body);
        let parsed = parsed.unwrap_or_default();
        prop_assert_eq!(parsed.iter().map(bits).collect::<Vec<_>>(), lines.iter().map(bits).collect::<Vec<_>>());
    }

    #[test]
    fn never_panics_on_arbitrary_text(body in any::<String>()) {
        let _ = parse(&body, Precision::S);
    }

    #[test]
    fn never_panics_on_near_misses(body in "[a-z0-9,= \"\\\\#.\\-+iuetfE\r\n\té]{0,60}") {
        for p in [Precision::Ns, Precision::S] {
            let _ = parse(&body, p);
        }
    }

    #[test]
    fn a_known_series_parses_as_an_unknown_one(
        lines in prop::collection::vec("[a-c0-9,= \"\\\\#.\\-iuetfE\r\té]{0,30}", 1..6),
        repeats in 1usize..3,
    ) {
        let body = vec![lines.join("\n"); repeats].join("\n");
        for p in [Precision::Ns, Precision::S] {
            let alone: Vec<_> = body.split('\n').map(|text| parse_line(text, p)).collect();
            prop_assert_eq!(parse_with_cache(&body, p), alone, "{:?}", body);
        }
    }

    #[test]
    fn integers_parse_as_std_does(text in "-?[0-9]{0,22}|[-+0-9 a_]{0,5}") {
        let grammar = text.strip_prefix('-').unwrap_or(&text);
        let want = (!grammar.is_empty() && grammar.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<i64>().ok());
        prop_assert_eq!(super::lexer::parse_integer(&text), want);
    }
}
