//! Tests of the body reading beyond what the HTTP tests (`api/tests/write.rs`) see.
use super::*;

const NOW: UnixNanos = 1_790_000_000_000_000_000;

/// Bodies found by the `write_body` fuzz target (`fuzz/`): texts that differ but name one series must reach the
/// store as one group, its points in the order written (so the value written last at a time is kept).
#[test]
fn fuzz_regressions() {
    type Case = (
        &'static str,
        &'static [u8],
        Precision,
        &'static [&'static [(i64, f64)]],
    );
    let cases: &[Case] = &[
        (
            "tags in another order",
            b"m,a=1,b=2 v=1 100\nm,b=2,a=1 v=2 100\nm,a=1,b=2 v=3 100",
            Precision::Ns,
            &[&[(100, 1.0), (100, 2.0), (100, 3.0)]],
        ),
        (
            "an escaped backslash and a kept one",
            b"m,t=\\a f=1\nm,t=\\\\a f=2",
            Precision::Ns,
            &[&[(NOW, 1.0), (NOW, 2.0)]],
        ),
        (
            "the fuzzer's input (crash-65c2bdd4, minimised)",
            b"mm,t=\\(\0\x000\0\0\0\0\0\0ur%0)\0\0\0)m f=0\n\
              mm,t=\\\\(\0\x000\0\0\0\0\0\0ur%0)\0\0\0)m f=1",
            Precision::Ms,
            &[&[(NOW, 0.0), (NOW, 1.0)]],
        ),
    ];
    for (name, body, precision, want) in cases {
        let text = std::str::from_utf8(body).expect("UTF-8");
        let groups = match parse_body(text, *precision, NOW) {
            Ok(body) => body.groups,
            Err(e) => panic!("{name}: {e}"),
        };
        let points: Vec<&[(i64, f64)]> = groups.iter().map(|g| g.points.as_slice()).collect();
        assert_eq!(&points, want, "{name}");
    }
}
