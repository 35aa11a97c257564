//! Examples from Semtech's `PROTOCOL.TXT` (Lora-net/packet_forwarder, document revision 1.3), the cases real
//! forwarders add, and property tests: no datagram makes the parser panic.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;

/// The gateway EUI of the reference forwarder's sample `global_conf.json`.
const EUI: [u8; 8] = [0xAA, 0x55, 0x5A, 0x00, 0x00, 0x00, 0x00, 0x00];

fn datagram(identifier: u8, token: u16, json: &[u8]) -> Vec<u8> {
    let [hi, lo] = token.to_be_bytes();
    let mut out = vec![2, hi, lo, identifier];
    out.extend_from_slice(&EUI);
    out.extend_from_slice(json);
    out
}

fn push_json(json: &str) -> PushJson {
    match parse(&datagram(0x00, 0x1234, json.as_bytes())).expect("valid PUSH_DATA") {
        Packet::PushData {
            token,
            gateway,
            json,
        } => {
            assert_eq!(token, 0x1234);
            assert_eq!(gateway.to_string(), "aa555a0000000000");
            json
        }
        other => panic!("not a PUSH_DATA: {other:?}"),
    }
}

/// PROTOCOL.TXT §4, the `rxpk` example as printed (whitespace included). Its first packet's data mixes the
/// URL-safe `-` with the standard `+`, so it is not base64 in either alphabet: that packet alone is refused.
/// The third packet's data is unpadded, which is accepted.
const SPEC_RXPK: &str = r#"{"rxpk":[
	{
		"time":"2013-03-31T16:21:17.528002Z",
		"tmst":3512348611,
		"chan":2,
		"rfch":0,
		"freq":866.349812,
		"stat":1,
		"modu":"LORA",
		"datr":"SF7BW125",
		"codr":"4/6",
		"rssi":-35,
		"lsnr":5.1,
		"size":32,
		"data":"-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84"
	},{
		"time":"2013-03-31T16:21:17.530974Z",
		"tmst":3512348514,
		"chan":9,
		"rfch":1,
		"freq":869.1,
		"stat":1,
		"modu":"FSK",
		"datr":50000,
		"rssi":-75,
		"size":16,
		"data":"VEVTVF9QQUNLRVRfMTIzNA=="
	},{
		"time":"2013-03-31T16:21:17.532038Z",
		"tmst":3316387610,
		"chan":0,
		"rfch":0,
		"freq":863.00981,
		"stat":1,
		"modu":"LORA",
		"datr":"SF10BW125",
		"codr":"4/7",
		"rssi":-38,
		"lsnr":5.5,
		"size":32,
		"data":"ysgRl452xNLep9S1NTIg2lomKDxUgn3DJ7DE+b00Ass"
	}
]}"#;

#[test]
fn spec_rxpk_example() {
    let json = push_json(SPEC_RXPK);
    assert_eq!(json.stat, None);
    assert_eq!(json.rxpk.len(), 3);
    assert_eq!(
        json.rxpk[0],
        Err(SemtechError::Base64 {
            index: 0,
            reason: base64::DecodeError::InvalidByte(0, b'-'),
        })
    );
    assert_eq!(
        json.rxpk[1],
        Ok(Rxpk {
            time: Some("2013-03-31T16:21:17.530974Z".into()),
            tmst: Some(3_512_348_514),
            freq: Some(869.1),
            chan: Some(9),
            rfch: Some(1),
            stat: Some(1),
            modu: Some("FSK".into()),
            datr: Some("50000".into()),
            codr: None,
            rssi: Some(-75),
            lsnr: None,
            size: Some(16),
            data: b"TEST_PACKET_1234".to_vec(),
        })
    );
    assert_eq!(
        json.rxpk[2],
        Ok(Rxpk {
            time: Some("2013-03-31T16:21:17.532038Z".into()),
            tmst: Some(3_316_387_610),
            freq: Some(863.00981),
            chan: Some(0),
            rfch: Some(0),
            stat: Some(1),
            modu: Some("LORA".into()),
            datr: Some("SF10BW125".into()),
            codr: Some("4/7".into()),
            rssi: Some(-38),
            lsnr: Some(5.5),
            size: Some(32),
            data: vec![
                0xca, 0xc8, 0x11, 0x97, 0x8e, 0x76, 0xc4, 0xd2, 0xde, 0xa7, 0xd4, 0xb5, 0x35, 0x32,
                0x20, 0xda, 0x5a, 0x26, 0x28, 0x3c, 0x54, 0x82, 0x7d, 0xc3, 0x27, 0xb0, 0xc4, 0xf9,
                0xbd, 0x34, 0x02, 0xcb,
            ],
        })
    );
    assert_eq!(
        json.rxpk[0].as_ref().map_err(SemtechError::code),
        Err("invalid_base64")
    );
}

/// PROTOCOL.TXT §4, the `stat` example; and a status report sent along with a packet.
#[test]
fn spec_stat_example() {
    let json = push_json(
        r#"{"stat":{
	"time":"2014-01-12 08:59:28 GMT",
	"lati":46.24000,
	"long":3.25230,
	"alti":145,
	"rxnb":2,
	"rxok":2,
	"rxfw":2,
	"ackr":100.0,
	"dwnb":2,
	"txnb":2
}}"#,
    );
    assert!(json.rxpk.is_empty());
    assert_eq!(
        json.stat,
        Some(Ok(Stat {
            time: Some("2014-01-12 08:59:28 GMT".into()),
            lati: Some(46.24),
            long: Some(3.2523),
            alti: Some(145),
            rxnb: Some(2),
            rxok: Some(2),
            rxfw: Some(2),
            ackr: Some(100.0),
            dwnb: Some(2),
            txnb: Some(2),
        }))
    );

    // Unknown fields (TTN's forwarders add desc, mail, pfrm) are ignored; a mistyped field costs only the stat.
    let json = push_json(
        r#"{"rxpk":[{"data":"AQI="}],"stat":{"time":"2026-11-22 10:00:00 GMT","pfrm":"IMST","ackr":0}}"#,
    );
    assert_eq!(
        json.rxpk[0].as_ref().map(|r| &r.data[..]),
        Ok(&[1u8, 2][..])
    );
    assert_eq!(
        json.stat,
        Some(Ok(Stat {
            time: Some("2026-11-22 10:00:00 GMT".into()),
            ackr: Some(0.0),
            ..Stat::default()
        }))
    );
    let json = push_json(r#"{"rxpk":[{"data":"AQI="}],"stat":{"rxnb":-1}}"#);
    assert!(json.rxpk[0].is_ok());
    assert_eq!(
        json.stat,
        Some(Err(SemtechError::InvalidField {
            place: Place::Stat,
            field: "rxnb",
            expected: "an unsigned 32-bit integer",
        }))
    );
    assert_eq!(
        push_json(r#"{"stat":[]}"#).stat,
        Some(Err(SemtechError::NotAnObject { place: Place::Stat }))
    );
}

#[test]
fn one_bad_rxpk_costs_only_itself() {
    let json = push_json(
        r#"{"rxpk":[{"tmst":1,"datr":"SF7BW125","data":"QAEAAAA*"},{"tmst":2,"rssi":-101,"lsnr":-7.25,"datr":"SF12BW125","size":4,"data":"QAECAw=="}]}"#,
    );
    assert_eq!(
        json.rxpk[0],
        Err(SemtechError::Base64 {
            index: 0,
            reason: base64::DecodeError::InvalidByte(7, b'*'),
        })
    );
    assert_eq!(
        json.rxpk[1],
        Ok(Rxpk {
            tmst: Some(2),
            datr: Some("SF12BW125".into()),
            rssi: Some(-101),
            lsnr: Some(-7.25),
            size: Some(4),
            data: vec![0x40, 0x01, 0x02, 0x03],
            ..Rxpk::default()
        })
    );
}

#[test]
fn rxpk_errors() {
    let cases: &[(&str, SemtechError)] = &[
        (
            "[]",
            SemtechError::NotAnObject {
                place: Place::Rxpk(0),
            },
        ),
        (
            r#"{"tmst":1}"#,
            SemtechError::MissingField {
                place: Place::Rxpk(0),
                field: "data",
            },
        ),
        (
            r#"{"data":null}"#,
            SemtechError::MissingField {
                place: Place::Rxpk(0),
                field: "data",
            },
        ),
        (
            r#"{"data":1}"#,
            SemtechError::InvalidField {
                place: Place::Rxpk(0),
                field: "data",
                expected: "a string",
            },
        ),
        (
            r#"{"tmst":4294967296,"data":""}"#,
            SemtechError::InvalidField {
                place: Place::Rxpk(0),
                field: "tmst",
                expected: "an unsigned 32-bit integer",
            },
        ),
        (
            r#"{"tmst":1.5,"data":""}"#,
            SemtechError::InvalidField {
                place: Place::Rxpk(0),
                field: "tmst",
                expected: "an unsigned 32-bit integer",
            },
        ),
        (
            r#"{"chan":256,"data":""}"#,
            SemtechError::InvalidField {
                place: Place::Rxpk(0),
                field: "chan",
                expected: "an integer 0 to 255",
            },
        ),
        (
            r#"{"datr":true,"data":""}"#,
            SemtechError::InvalidField {
                place: Place::Rxpk(0),
                field: "datr",
                expected: "a string (LoRa) or an unsigned integer (FSK bit rate)",
            },
        ),
        (
            r#"{"freq":"868.1","data":""}"#,
            SemtechError::InvalidField {
                place: Place::Rxpk(0),
                field: "freq",
                expected: "a number",
            },
        ),
        (
            r#"{"size":3,"data":"QAECAw=="}"#,
            SemtechError::SizeMismatch {
                index: 0,
                size: 3,
                decoded: 4,
            },
        ),
        (
            // Stray bits after the last byte: "QAE=" is the canonical spelling of [0x40, 0x01].
            r#"{"data":"QAF="}"#,
            SemtechError::Base64 {
                index: 0,
                reason: base64::DecodeError::InvalidLastSymbol(2, b'F'),
            },
        ),
    ];
    for (rxpk, want) in cases {
        let json = push_json(&format!(r#"{{"rxpk":[{rxpk}]}}"#));
        assert_eq!(json.rxpk, [Err(want.clone())], "{rxpk}");
    }
    // Missing optional fields and nulls are fine; an empty payload is a payload.
    let json = push_json(r#"{"rxpk":[{"data":"","tmst":null,"size":0}]}"#);
    assert_eq!(
        json.rxpk,
        [Ok(Rxpk {
            size: Some(0),
            ..Rxpk::default()
        })]
    );
    assert_eq!(
        SemtechError::InvalidField {
            place: Place::Rxpk(1),
            field: "tmst",
            expected: "an unsigned 32-bit integer"
        }
        .to_string(),
        "rxpk[1].tmst is not an unsigned 32-bit integer"
    );
}

#[test]
fn pull_data() {
    let bytes = [
        0x02, 0xAB, 0xCD, 0x02, 0xAA, 0x55, 0x5A, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let packet = parse(&bytes).expect("PULL_DATA");
    assert_eq!(
        packet,
        Packet::PullData {
            token: 0xABCD,
            gateway: Eui64::from_bytes(EUI),
        }
    );
    assert_eq!(pull_ack(packet.token()), [0x02, 0xAB, 0xCD, 0x04]);
    // packet_forwarder 1.x speaks version 1.
    let mut v1 = bytes;
    v1[0] = 1;
    assert_eq!(parse(&v1), Ok(packet));
}

#[test]
fn tx_ack() {
    let tx_ack = |json: &[u8]| match parse(&datagram(0x05, 0x0102, json)) {
        Ok(Packet::TxAck {
            token,
            gateway,
            error,
        }) => {
            assert_eq!((token, gateway.to_bytes()), (0x0102, EUI));
            Ok(error)
        }
        Ok(other) => panic!("not a TX_ACK: {other:?}"),
        Err(e) => Err(e),
    };
    // No JSON: accepted (PROTOCOL.TXT §5.5).
    assert_eq!(tx_ack(b""), Ok(None));
    assert_eq!(tx_ack(br#"{"txpk_ack":{"error":"NONE"}}"#), Ok(None));
    // PROTOCOL.TXT §6, the txpk_ack example.
    assert_eq!(
        tx_ack(b"{\"txpk_ack\":{\n\t\"error\":\"COLLISION_PACKET\"\n}}"),
        Ok(Some("COLLISION_PACKET".into()))
    );
    // sx1302 forwarders: a warning (power reduced, still sent), with tmst, NUL-terminated.
    assert_eq!(
        tx_ack(b"{\"txpk_ack\":{\"warn\":\"TX_POWER\",\"value\":14,\"tmst\":3975366891}}\0"),
        Ok(None)
    );
    assert_eq!(tx_ack(b"\0"), Ok(None));
    assert_eq!(
        tx_ack(br#"{"error":"TOO_LATE"}"#),
        Err(SemtechError::MissingField {
            place: Place::Root,
            field: "txpk_ack"
        })
    );
    assert_eq!(
        tx_ack(br#"{"txpk_ack":{"error":7}}"#),
        Err(SemtechError::InvalidField {
            place: Place::TxpkAck,
            field: "error",
            expected: "a string"
        })
    );
}

#[test]
fn refused_datagrams() {
    let push = |json: &[u8]| datagram(0x00, 1, json);
    let cases: Vec<(Vec<u8>, SemtechError, &str)> = vec![
        (
            vec![],
            SemtechError::Truncated {
                expected: 4,
                got: 0,
            },
            "truncated",
        ),
        (
            vec![2, 0, 0],
            SemtechError::Truncated {
                expected: 4,
                got: 3,
            },
            "truncated",
        ),
        (
            vec![2, 0, 0, 0, 0xAA, 0x55, 0x5A, 0, 0, 0, 0],
            SemtechError::Truncated {
                expected: 12,
                got: 11,
            },
            "truncated",
        ),
        (
            vec![3, 0, 0, 0],
            SemtechError::UnsupportedVersion { version: 3 },
            "unsupported_version",
        ),
        (
            vec![2, 0, 0, 0x06],
            SemtechError::UnknownIdentifier { identifier: 6 },
            "unknown_identifier",
        ),
        (
            vec![2, 0, 0, 0x01],
            SemtechError::Downstream {
                identifier: 1,
                name: "PUSH_ACK",
            },
            "downstream_packet",
        ),
        (
            pull_resp_bytes(),
            SemtechError::Downstream {
                identifier: 3,
                name: "PULL_RESP",
            },
            "downstream_packet",
        ),
        (
            vec![2, 0, 0, 0x04],
            SemtechError::Downstream {
                identifier: 4,
                name: "PULL_ACK",
            },
            "downstream_packet",
        ),
        (
            push(b""),
            SemtechError::MissingJson {
                packet: "PUSH_DATA",
            },
            "missing_json",
        ),
        (
            push(b" \0"),
            SemtechError::MissingJson {
                packet: "PUSH_DATA",
            },
            "missing_json",
        ),
        (
            push(b"\x01\x02"),
            SemtechError::Json {
                packet: "PUSH_DATA",
                line: 1,
                column: 1,
                reason: "expected value".into(),
            },
            "invalid_json",
        ),
        (
            push(br#"{"rxpk":[}"#),
            SemtechError::Json {
                packet: "PUSH_DATA",
                line: 1,
                column: 10,
                reason: "expected value".into(),
            },
            "invalid_json",
        ),
        (
            push(b"[]"),
            SemtechError::NotAnObject { place: Place::Root },
            "not_an_object",
        ),
        (
            push(br#"{"rxpk":{}}"#),
            SemtechError::InvalidField {
                place: Place::Root,
                field: "rxpk",
                expected: "an array",
            },
            "invalid_field",
        ),
    ];
    for (bytes, want, code) in cases {
        let got = parse(&bytes).expect_err("refused");
        assert_eq!(got, want, "{bytes:02x?}");
        assert_eq!(got.code(), code);
    }
    assert_eq!(
        SemtechError::Downstream {
            identifier: 3,
            name: "PULL_RESP"
        }
        .to_string(),
        "PULL_RESP (0x03) is sent by a server to a gateway, not by a gateway"
    );
}

fn pull_resp_bytes() -> Vec<u8> {
    pull_resp(7, &sample_txpk())
}

fn sample_txpk() -> Txpk {
    Txpk {
        imme: false,
        tmst: Some(rx1_tmst(3_512_348_611, RECEIVE_DELAY1_SECS)),
        freq: 868.1,
        rfch: 0,
        powe: 14,
        datr: "SF7BW125".into(),
        codr: "4/5".into(),
        ipol: true,
        data: vec![
            0x60, 0x04, 0x03, 0x02, 0x01, 0x00, 0x01, 0x00, 0x01, 0xb0, 0xc4, 0x3e, 0x92,
        ],
    }
}

#[test]
fn builders_write_exact_bytes() {
    assert_eq!(push_ack(0xABCD), [0x02, 0xAB, 0xCD, 0x01]);
    assert_eq!(pull_ack(0x0001), [0x02, 0x00, 0x01, 0x04]);

    let mut want = vec![0x02, 0x00, 0x07, 0x03];
    want.extend_from_slice(
        br#"{"txpk":{"imme":false,"tmst":3513348611,"freq":868.1,"rfch":0,"powe":14,"modu":"LORA","datr":"SF7BW125","codr":"4/5","ipol":true,"size":13,"data":"YAQDAgEAAQABsMQ+kg=="}}"#,
    );
    assert_eq!(pull_resp(7, &sample_txpk()), want);

    // PROTOCOL.TXT §6, the first txpk example's values (its data is not valid base64, so ours differs); without
    // tmst, and a frequency computed in Hz that is written to the Hz.
    let txpk = Txpk {
        imme: true,
        tmst: None,
        freq: 864_123_456.0 / 1e6 + 1e-9,
        rfch: 0,
        powe: 14,
        datr: "SF11BW125".into(),
        codr: "4/6".into(),
        ipol: false,
        data: b"TEST_PACKET_1234".to_vec(),
    };
    let mut want = vec![0x02, 0xFF, 0xFE, 0x03];
    want.extend_from_slice(
        br#"{"txpk":{"imme":true,"freq":864.123456,"rfch":0,"powe":14,"modu":"LORA","datr":"SF11BW125","codr":"4/6","ipol":false,"size":16,"data":"VEVTVF9QQUNLRVRfMTIzNA=="}}"#,
    );
    assert_eq!(pull_resp(0xFFFE, &txpk), want);
}

#[test]
fn rx1_timing() {
    assert_eq!(rx1_tmst(3_512_348_611, RECEIVE_DELAY1_SECS), 3_513_348_611);
    assert_eq!(rx1_tmst(1_000, JOIN_ACCEPT_DELAY1_SECS), 5_001_000);
    // The counter wraps every 2^32 µs; so does the sum.
    assert_eq!(rx1_tmst(u32::MAX - 499_999, 1), 500_000);
    assert_eq!(rx1_tmst(u32::MAX, 5), 4_999_999);
}

/// A valid PUSH_DATA to mutate: two packets and a status report.
fn valid_push() -> Vec<u8> {
    datagram(
        0x00,
        0xBEEF,
        br#"{"rxpk":[{"tmst":3512348611,"chan":2,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-35,"lsnr":5.1,"size":4,"data":"QAECAw=="},{"datr":50000,"data":"AA=="}],"stat":{"time":"2026-11-22 10:00:00 GMT","lati":55.67,"long":12.56,"alti":14,"rxnb":2,"ackr":100.0}}"#,
    )
}

fn rxpk_strategy() -> impl Strategy<Value = Rxpk> {
    (
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(860_000_000u32..=1_020_000_000),
            proptest::option::of(any::<u8>()),
            proptest::option::of(-1i8..=1),
            proptest::option::of(prop_oneof![
                (7u8..=12).prop_map(|sf| format!("SF{sf}BW125")),
                (1u32..=300_000).prop_map(|bps| bps.to_string()),
            ]),
        ),
        (
            proptest::option::of(-140i32..=0),
            proptest::option::of(-200i32..=150),
            vec(any::<u8>(), 0..=255),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((tmst, freq_hz, chan, stat, datr), (rssi, lsnr_tenths, data, with_size))| Rxpk {
                tmst,
                time: None,
                freq: freq_hz.map(|hz| f64::from(hz) / 1e6),
                chan,
                rfch: chan.map(|c| c % 2),
                stat,
                modu: datr
                    .as_ref()
                    .map(|d| if d.starts_with("SF") { "LORA" } else { "FSK" }.to_owned()),
                datr,
                codr: Some("4/5".into()),
                rssi,
                lsnr: lsnr_tenths.map(|t| f64::from(t) / 10.0),
                size: with_size.then(|| u16::try_from(data.len()).expect("at most 255")),
                data,
            },
        )
}

/// The JSON a forwarder would write for `rxpk` (FSK data rates as numbers).
fn rxpk_json(rxpk: &Rxpk) -> Value {
    let datr = rxpk.datr.as_ref().map(|d| match d.parse::<u64>() {
        Ok(bps) => json!(bps),
        Err(_) => json!(d),
    });
    json!({
        "tmst": rxpk.tmst, "freq": rxpk.freq, "chan": rxpk.chan, "rfch": rxpk.rfch, "stat": rxpk.stat,
        "modu": rxpk.modu, "datr": datr, "codr": rxpk.codr, "rssi": rxpk.rssi, "lsnr": rxpk.lsnr,
        "size": rxpk.size, "data": STANDARD.encode(&rxpk.data),
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        version in 0u8..=3,
        identifier in 0u8..=6,
        token: u16,
        body in vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = datagram(identifier, token, &body);
        bytes[0] = version;
        let _ = parse(&bytes);
    }

    /// Replace, insert or delete JSON-ish characters anywhere in a valid PUSH_DATA.
    #[test]
    fn mutated_packets_never_panic(
        edits in vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
            br#"{}[]":,0123456789.-+eE ntruefalsenull\AQ=*"#.to_vec()
        )), 1..8),
    ) {
        let mut bytes = valid_push();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        if let Ok(Packet::PushData { json, .. }) = parse(&bytes) {
            for rxpk in json.rxpk.iter().flatten() {
                if let Some(size) = rxpk.size {
                    prop_assert_eq!(usize::from(size), rxpk.data.len());
                }
            }
        }
    }

    #[test]
    fn rxpk_round_trips(rxpks in vec(rxpk_strategy(), 0..4), token: u16) {
        let items: Vec<Value> = rxpks.iter().map(rxpk_json).collect();
        let text = json!({ "rxpk": items }).to_string();
        let parsed = parse(&datagram(0x00, token, text.as_bytes()));
        let want = Packet::PushData {
            token,
            gateway: Eui64::from_bytes(EUI),
            json: PushJson { rxpk: rxpks.into_iter().map(Ok).collect(), stat: None },
        };
        prop_assert_eq!(parsed, Ok(want));
    }

    #[test]
    fn pull_resp_is_the_txpk(
        token: u16,
        tmst in proptest::option::of(any::<u32>()),
        freq_hz in 860_000_000u32..=1_020_000_000,
        powe in 0u8..=30,
        sf in 7u8..=12,
        ipol: bool,
        data in vec(any::<u8>(), 0..=255),
    ) {
        let txpk = Txpk {
            imme: tmst.is_none(),
            tmst,
            freq: f64::from(freq_hz) / 1e6,
            rfch: 0,
            powe,
            datr: format!("SF{sf}BW125"),
            codr: "4/5".into(),
            ipol,
            data,
        };
        let bytes = pull_resp(token, &txpk);
        let [hi, lo] = token.to_be_bytes();
        prop_assert_eq!(&bytes[..4], &[2, hi, lo, 0x03]);
        let json: Value = serde_json::from_slice(&bytes[4..]).expect("JSON");
        let t = &json["txpk"];
        prop_assert_eq!(t["imme"].as_bool(), Some(txpk.imme));
        prop_assert_eq!(t["tmst"].as_u64(), tmst.map(u64::from));
        prop_assert_eq!(t["freq"].as_f64(), Some(txpk.freq));
        prop_assert_eq!(t["powe"].as_u64(), Some(u64::from(powe)));
        prop_assert_eq!(t["datr"].as_str(), Some(txpk.datr.as_str()));
        prop_assert_eq!(t["ipol"].as_bool(), Some(ipol));
        prop_assert_eq!(t["size"].as_u64(), Some(txpk.data.len() as u64));
        let data = STANDARD.decode(t["data"].as_str().expect("data")).expect("base64");
        prop_assert_eq!(data, txpk.data);
    }
}
