//! InfluxDB line protocol bodies of `POST /api/v2/write`: the whole-body `parse`, and line by line the
//! `parse_line_ref` the write handler uses with its series cache. Properties: the cached path reads a line as
//! the uncached one does, and every accepted line written back (escaped as a careful client would) parses to
//! the same line.
#![no_main]

use bydata_schemas::line_protocol::{
    self, FieldValue, Line, Precision, SeriesRef, parse_line, parse_line_ref,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let precision =
        [Precision::Ns, Precision::Us, Precision::Ms, Precision::S][usize::from(first & 3)];
    // The handler reads the body as UTF-8 and refuses anything else before parsing.
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let whole = line_protocol::parse(body, precision);
    let mut fields = Vec::new();
    let mut lines = Vec::new();
    for text in body.split('\n') {
        let alone = parse_line(text, precision);
        let unknown = parse_line_ref(text, precision, |_| None::<()>, &mut fields);
        assert_eq!(
            unknown.as_ref().map(|line| line.as_ref().map(|l| l.time)),
            alone.as_ref().map(|line| line.as_ref().map(|l| l.time))
        );
        if let Ok(Some(line)) = &alone {
            // A series text seen before is not parsed again: the fields and time must come out the same.
            let known = parse_line_ref(text, precision, |_| Some(()), &mut fields);
            let known = known.expect("a line that parsed parses with its series known");
            let known = known.expect("not blank");
            assert!(matches!(known.series, SeriesRef::Known(())));
            assert_eq!(known.time, line.time);
            let got: Vec<_> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(got, line.fields);
            lines.push(line.clone());
        }
        if alone.is_err() {
            break;
        }
    }
    match whole {
        Ok(parsed) => {
            assert_eq!(parsed, lines);
            for line in &parsed {
                let text = write(line);
                let again = parse_line(&text, Precision::Ns);
                assert_eq!(
                    again.as_ref().ok().and_then(Option::as_ref),
                    Some(line),
                    "{text:?}"
                );
            }
        }
        Err(e) => assert!((1..=body.split('\n').count()).contains(&e.line)),
    }
});

/// A line as a careful client writes it: every special character escaped, `\` as `\\`, nanoseconds.
fn write(line: &Line) -> String {
    fn escape(out: &mut String, s: &str, specials: &[char]) {
        for c in s.chars() {
            if c == '\\' || specials.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    let mut out = String::new();
    escape(&mut out, &line.measurement, &[',', ' ']);
    for (k, v) in &line.tags {
        out.push(',');
        escape(&mut out, k, &[',', '=', ' ']);
        out.push('=');
        escape(&mut out, v, &[',', '=', ' ']);
    }
    for (i, (k, v)) in line.fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape(&mut out, k, &[',', '=', ' ']);
        out.push('=');
        match v {
            FieldValue::Float(v) => out.push_str(&format!("{v:?}")),
            FieldValue::Integer(v) => out.push_str(&format!("{v}i")),
            FieldValue::UInteger(v) => out.push_str(&format!("{v}u")),
            FieldValue::String(v) => {
                out.push('"');
                escape(&mut out, v, &['"']);
                out.push('"');
            }
            FieldValue::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
        }
    }
    if let Some(t) = line.time {
        out.push_str(&format!(" {t}"));
    }
    out
}
