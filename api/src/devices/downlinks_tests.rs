//! Reading a downlink request: every way of giving the payload, the FPort's range, and never a panic.
#![allow(clippy::unwrap_used)]
use super::*;
use proptest::prelude::*;
use serde_json::json;

fn req(fport: i64) -> DownlinkRequest {
    DownlinkRequest {
        fport,
        ..DownlinkRequest::default()
    }
}

fn problems(r: &DownlinkRequest) -> Vec<(String, String)> {
    match read_request(r) {
        Err(Error::InvalidBody { problems }) => {
            problems.into_iter().map(|p| (p.field, p.message)).collect()
        }
        other => panic!("expected invalid_body, got {other:?}"),
    }
}

#[test]
fn bytes_hex_and_json_are_read() {
    let cases = [
        (
            DownlinkRequest {
                bytes: Some("AQI=".into()),
                ..req(1)
            },
            Payload::Bytes(vec![1, 2]),
        ),
        (
            DownlinkRequest {
                hex: Some("01 0a FF".into()),
                ..req(223)
            },
            Payload::Bytes(vec![1, 10, 255]),
        ),
        (
            DownlinkRequest {
                hex: Some(String::new()),
                ..req(5)
            },
            Payload::Bytes(vec![]),
        ),
        (
            DownlinkRequest {
                json: Some(json!({"open": true})),
                ..req(10)
            },
            Payload::Json(json!({"open": true})),
        ),
    ];
    for (r, want) in cases {
        let (fport, payload) = read_request(&r).unwrap();
        assert_eq!((fport, payload), (u8::try_from(r.fport).unwrap(), want));
    }
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (
            DownlinkRequest {
                hex: Some("01".into()),
                ..req(0)
            },
            "fport",
        ),
        (
            DownlinkRequest {
                hex: Some("01".into()),
                ..req(224)
            },
            "fport",
        ),
        (
            DownlinkRequest {
                hex: Some("01".into()),
                ..req(-1)
            },
            "fport",
        ),
        (
            DownlinkRequest {
                hex: Some("0g".into()),
                ..req(1)
            },
            "hex",
        ),
        (
            DownlinkRequest {
                hex: Some("010".into()),
                ..req(1)
            },
            "hex",
        ),
        (
            DownlinkRequest {
                bytes: Some("***".into()),
                ..req(1)
            },
            "bytes",
        ),
        (req(1), ""),
        (
            DownlinkRequest {
                bytes: Some("AQ==".into()),
                hex: Some("01".into()),
                ..req(1)
            },
            "",
        ),
    ];
    for (r, field) in cases {
        let found = problems(&r);
        assert!(found.iter().any(|(f, _)| f == field), "{r:?}: {found:?}");
    }
    // Both problems at once.
    let both = problems(&DownlinkRequest {
        hex: Some("zz".into()),
        ..req(300)
    });
    assert_eq!(both.len(), 2, "{both:?}");
}

proptest! {
    #[test]
    fn any_request_is_read_without_panic(
        fport in any::<i64>(),
        bytes in proptest::option::of("\\PC{0,40}"),
        hex in proptest::option::of("[0-9a-fA-F \\t]{0,40}|\\PC{0,20}"),
        json in proptest::option::of(any::<i32>()),
    ) {
        let r = DownlinkRequest { fport, bytes, hex, json: json.map(|n| json!({"n": n})), confirmed: false };
        if let Ok((port, _)) = read_request(&r) {
            prop_assert!((1..=223).contains(&port));
            prop_assert_eq!(i64::from(port), fport);
        }
    }

    #[test]
    fn hex_and_base64_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64), fport in 1u8..=223) {
        use base64::Engine as _;
        let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        for r in [
            DownlinkRequest { hex: Some(hex.clone()), ..req(i64::from(fport)) },
            DownlinkRequest { bytes: Some(b64.clone()), ..req(i64::from(fport)) },
        ] {
            prop_assert_eq!(read_request(&r).unwrap(), (fport, Payload::Bytes(data.clone())));
        }
    }
}
