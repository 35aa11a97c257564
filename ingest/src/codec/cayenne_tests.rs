//! The examples of myDevices' Cayenne LPP documentation, every data type, the refusals, and property tests: no
//! payload makes the decoder panic, and what an independent encoder writes decodes to the values it encoded.

use super::*;
use bydata_schemas::{MeasurementName, Unit};
use proptest::collection::vec;
use proptest::prelude::*;

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// (name, unit, value) of every value of a payload.
fn rows(payload: &str) -> Vec<(String, Option<&'static str>, f64)> {
    decode(&hex(payload))
        .expect("valid payload")
        .into_iter()
        .map(|v| (v.name, v.unit, v.value))
        .collect()
}

fn row(name: &str, unit: Option<&'static str>, value: f64) -> (String, Option<&'static str>, f64) {
    (name.to_owned(), unit, value)
}

/// docs.mydevices.com/docs/lorawan/cayenne-lpp, "Examples".
#[test]
fn documentation_examples() {
    // Device with 2 temperature sensors.
    let values = decode(&hex("03 67 01 10 05 67 00 FF")).expect("valid");
    assert_eq!(
        values,
        [
            LppValue {
                channel: 3,
                kind: "temperature",
                name: "temperature_3".into(),
                unit: Some("Cel"),
                value: 27.2,
            },
            LppValue {
                channel: 5,
                kind: "temperature",
                name: "temperature_5".into(),
                unit: Some("Cel"),
                value: 25.5,
            },
        ]
    );
    // Device with temperature and acceleration sensors, frames N and N+1.
    assert_eq!(
        rows("01 67 FF D7"),
        [row("temperature_1", Some("Cel"), -4.1)]
    );
    assert_eq!(
        rows("06 71 04 D2 FB 2E 00 00"),
        [
            row("accelerometer_6_x", None, 1.234),
            row("accelerometer_6_y", None, -1.234),
            row("accelerometer_6_z", None, 0.0),
        ]
    );
    // Device with GPS.
    let values = decode(&hex("01 88 06 76 5f f2 96 0a 00 03 e8")).expect("valid");
    assert!(values.iter().all(|v| v.channel == 1 && v.kind == "gps"));
    assert_eq!(
        rows("01 88 06 76 5f f2 96 0a 00 03 e8"),
        [
            row("gps_1_lat", Some("lat"), 42.3519),
            row("gps_1_lon", Some("lon"), -87.9094),
            row("gps_1_alt", Some("m"), 10.0),
        ]
    );
}

/// A value's name, unit and value, as written in a table.
type Expected = (&'static str, Option<&'static str>, f64);

#[test]
fn every_type() {
    let cases: &[(&str, &[Expected])] = &[
        ("0A 00 01", &[("digital_input_10", None, 1.0)]),
        ("0B 01 00", &[("digital_output_11", None, 0.0)]),
        ("02 02 FF FF", &[("analog_input_2", None, -0.01)]),
        ("04 02 01 2C", &[("analog_input_4", None, 3.0)]),
        ("03 03 FC 18", &[("analog_output_3", None, -10.0)]),
        ("04 65 FF FF", &[("illuminance_4", Some("lx"), 65535.0)]),
        ("05 66 01", &[("presence_5", None, 1.0)]),
        ("06 68 61", &[("humidity_6", Some("%RH"), 48.5)]),
        (
            "01 71 FF FF 00 01 80 00",
            &[
                ("accelerometer_1_x", None, -0.001),
                ("accelerometer_1_y", None, 0.001),
                ("accelerometer_1_z", None, -32.768),
            ],
        ),
        ("07 73 27 7F", &[("barometer_7", Some("hPa"), 1011.1)]),
        (
            "08 86 FF 9C 00 64 7F FF",
            &[
                ("gyrometer_8_x", None, -1.0),
                ("gyrometer_8_y", None, 1.0),
                ("gyrometer_8_z", None, 327.67),
            ],
        ),
        (
            // Southern and western hemispheres, below sea level.
            "00 88 FD 3E 29 FF FF 9C FF FF 9C",
            &[
                ("gps_0_lat", Some("lat"), -18.0695),
                ("gps_0_lon", Some("lon"), -0.01),
                ("gps_0_alt", Some("m"), -1.0),
            ],
        ),
        ("09 74 01 4A", &[("voltage_9", Some("V"), 3.3)]),
        ("0A 75 04 D2", &[("current_10", Some("A"), 1.234)]),
        ("0B 76 33 BC A1 00", &[("frequency_11", Some("Hz"), 868e6)]),
        ("0C 78 64", &[("percentage_12", Some("%"), 100.0)]),
        ("0D 79 FF F6", &[("altitude_13", Some("m"), -10.0)]),
        ("0E 7D 01 9F", &[("concentration_14", Some("ppm"), 415.0)]),
        ("0F 80 00 FA", &[("power_15", Some("W"), 250.0)]),
        ("10 82 00 00 30 39", &[("distance_16", Some("m"), 12.345)]),
        ("11 83 00 01 E2 40", &[("energy_17", Some("kWh"), 123.456)]),
        ("12 84 01 0E", &[("direction_18", Some("deg"), 270.0)]),
        ("13 85 69 24 81 00", &[("unix_time_19", Some("s"), 1.764e9)]),
        (
            "14 87 FF 80 00",
            &[
                ("colour_20_r", None, 255.0),
                ("colour_20_g", None, 128.0),
                ("colour_20_b", None, 0.0),
            ],
        ),
        ("15 8E 01", &[("switch_21", None, 1.0)]),
        ("FF 67 80 00", &[("temperature_255", Some("Cel"), -3276.8)]),
    ];
    for (payload, want) in cases {
        let want: Vec<_> = want.iter().map(|&(n, u, v)| row(n, u, v)).collect();
        assert_eq!(rows(payload), want, "{payload}");
    }
    // All of them in one payload, in order.
    let all: String = cases.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(" ");
    let want: Vec<_> = cases
        .iter()
        .flat_map(|(_, w)| w.iter().map(|&(n, u, v)| row(n, u, v)))
        .collect();
    assert_eq!(rows(&all), want);
    // Every type of the decoder's table is covered above, and by the independent encoder below.
    for t in TYPES {
        let code = format!("{:02X}", t.code);
        assert!(
            cases
                .iter()
                .any(|(p, _)| p.split(' ').nth(1) == Some(&code)),
            "type {} untested",
            t.code
        );
        assert!(doc(t.code).is_some(), "type {} missing from DOC", t.code);
    }
    assert_eq!(TYPES.len(), DOC.len());
    assert_eq!(decode(&[]), Ok(vec![]));
}

#[test]
fn refusals() {
    let cases = [
        (
            "03",
            CayenneError::MissingType {
                offset: 0,
                channel: 3,
            },
        ),
        (
            "03 67 01 10 05",
            CayenneError::MissingType {
                offset: 4,
                channel: 5,
            },
        ),
        (
            "03 67 01",
            CayenneError::Truncated {
                offset: 0,
                channel: 3,
                data_type: 103,
                kind: "temperature",
                expected: 2,
                got: 1,
            },
        ),
        (
            "03 67 01 10 05 67 00",
            CayenneError::Truncated {
                offset: 4,
                channel: 5,
                data_type: 103,
                kind: "temperature",
                expected: 2,
                got: 1,
            },
        ),
        (
            "01 71",
            CayenneError::Truncated {
                offset: 0,
                channel: 1,
                data_type: 113,
                kind: "accelerometer",
                expected: 6,
                got: 0,
            },
        ),
        (
            "01 88 06 76 5f f2 96 0a 00 03",
            CayenneError::Truncated {
                offset: 0,
                channel: 1,
                data_type: 136,
                kind: "gps",
                expected: 9,
                got: 8,
            },
        ),
        (
            "03 67 01 10 05 05 00",
            CayenneError::UnknownType {
                offset: 4,
                channel: 5,
                data_type: 5,
            },
        ),
        // ElectronicCats' generic sensor (100) and its own PPM/RGB ids (143, 144) are not read.
        (
            "00 64 00 00 00 01",
            CayenneError::UnknownType {
                offset: 0,
                channel: 0,
                data_type: 100,
            },
        ),
        (
            "01 8F 01 9F",
            CayenneError::UnknownType {
                offset: 0,
                channel: 1,
                data_type: 143,
            },
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(decode(&hex(payload)), Err(want), "{payload}");
    }
    let shown = |payload: &str| {
        let e = decode(&hex(payload)).expect_err("refused");
        (e.to_string(), e.code())
    };
    assert_eq!(
        shown("03 67 01 10 05 05 00"),
        (
            "unknown Cayenne LPP data type 5 (0x05) on channel 5 at byte 4".to_owned(),
            "unknown_type"
        )
    );
    assert_eq!(
        shown("03 67 01 10 05 67 00"),
        (
            "Cayenne LPP temperature (type 103) on channel 5 at byte 4 needs 2 bytes of value, 1 left"
                .to_owned(),
            "truncated"
        )
    );
    assert_eq!(
        shown("03 67 01 10 05"),
        (
            "Cayenne LPP payload ends at byte 4 after channel 5, before its data type".to_owned(),
            "missing_type"
        )
    );
}

/// The data types as the documentation tables state them, kept apart from the decoder's table so that the
/// round trip checks one against the other: type, bytes per value, signed, and a multiplier per value.
const DOC: &[(u8, usize, bool, &[f64])] = &[
    (0, 1, false, &[1.0]),
    (1, 1, false, &[1.0]),
    (2, 2, true, &[100.0]),
    (3, 2, true, &[100.0]),
    (101, 2, false, &[1.0]),
    (102, 1, false, &[1.0]),
    (103, 2, true, &[10.0]),
    (104, 1, false, &[2.0]),
    (113, 2, true, &[1000.0, 1000.0, 1000.0]),
    (115, 2, false, &[10.0]),
    (134, 2, true, &[100.0, 100.0, 100.0]),
    (136, 3, true, &[10_000.0, 10_000.0, 100.0]),
    (116, 2, false, &[100.0]),
    (117, 2, false, &[1000.0]),
    (118, 4, false, &[1.0]),
    (120, 1, false, &[1.0]),
    (121, 2, true, &[1.0]),
    (125, 2, false, &[1.0]),
    (128, 2, false, &[1.0]),
    (130, 4, false, &[1000.0]),
    (131, 4, false, &[1000.0]),
    (132, 2, false, &[1.0]),
    (133, 4, false, &[1.0]),
    (135, 1, false, &[1.0, 1.0, 1.0]),
    (142, 1, false, &[1.0]),
];

fn doc(code: u8) -> Option<(usize, bool, &'static [f64])> {
    DOC.iter()
        .find(|t| t.0 == code)
        .map(|&(_, width, signed, mults)| (width, signed, mults))
}

/// Writes one record the way a device library does: value × multiplier, rounded, big-endian, two's complement.
fn encode(channel: u8, code: u8, values: &[f64]) -> Vec<u8> {
    let (width, signed, mults) = doc(code).expect("documented type");
    assert_eq!(values.len(), mults.len());
    let mut out = vec![channel, code];
    for (value, mult) in values.iter().zip(mults) {
        let raw = (value * mult).round() as i64;
        let (lo, hi) = range(width, signed);
        assert!((lo..=hi).contains(&raw), "{value} does not fit type {code}");
        out.extend_from_slice(&raw.to_be_bytes()[8 - width..]);
    }
    out
}

/// The raw integers a value of `width` bytes can hold.
fn range(width: usize, signed: bool) -> (i64, i64) {
    let bits = 8 * width as u32;
    if signed {
        (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    } else {
        (0, (1 << bits) - 1)
    }
}

/// A record of a random documented type: channel, type, and values that fit it.
fn record() -> impl Strategy<Value = (u8, u8, Vec<f64>)> {
    (any::<u8>(), 0..DOC.len()).prop_flat_map(|(channel, i)| {
        let (code, width, signed, mults) = DOC[i];
        let (lo, hi) = range(width, signed);
        vec(lo..=hi, mults.len()).prop_map(move |raws| {
            let values = raws.iter().zip(mults).map(|(&r, m)| r as f64 / m).collect();
            (channel, code, values)
        })
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        if let Ok(values) = decode(&bytes) {
            for v in values {
                prop_assert!(v.value.is_finite());
                prop_assert!(MeasurementName::new(v.name.as_str()).is_ok(), "{}", v.name);
                if let Some(unit) = v.unit {
                    prop_assert!(Unit::new(unit).is_ok());
                }
            }
        }
    }

    #[test]
    fn encoded_values_round_trip(records in vec(record(), 1..6)) {
        let mut payload = Vec::new();
        let mut want = Vec::new();
        for (channel, code, values) in &records {
            payload.extend(encode(*channel, *code, values));
            want.extend(values.iter().map(|&v| (*channel, *code, v)));
        }
        let decoded = decode(&payload).expect("valid payload");
        let got: Vec<_> = decoded
            .iter()
            .map(|v| {
                let code = TYPES.iter().find(|t| t.kind == v.kind).expect("known kind").code;
                (v.channel, code, v.value)
            })
            .collect();
        prop_assert_eq!(got, want);
        for v in &decoded {
            let prefix = format!("{}_{}", v.kind, v.channel);
            prop_assert!(v.name.starts_with(&prefix), "{} / {}", v.name, prefix);
        }
        // Decoded values encode back to the same bytes.
        let mut again = Vec::new();
        let mut values = decoded.iter();
        for (channel, code, original) in &records {
            let vs: Vec<f64> = values.by_ref().take(original.len()).map(|v| v.value).collect();
            again.extend(encode(*channel, *code, &vs));
        }
        prop_assert_eq!(again, payload);
    }
}
