//! Tests shared by both network servers — topics, ignored events, refusals, names — the helpers and test
//! vectors the per-server tests (`chirpstack_tests.rs`, `tts_tests.rs`) use, and property tests: no topic and
//! body make `parse` panic.
//!
//! Test vectors (wire-format examples, used as published):
//! - `testdata/chirpstack_up.json`: the `up` event JSON example of
//!   https://www.chirpstack.io/docs/chirpstack/integrations/events.html (source: github.com/chirpstack/
//!   chirpstack-docs, `src/chirpstack/integrations/events.md`, unchanged since 2022-07-18).
//! - `testdata/tts_up.json`: the "Uplink message example" of
//!   https://www.thethingsindustries.com/docs/integrations/data-formats/ (source: github.com/
//!   TheThingsIndustries/lorawan-stack-docs, `doc/content/integrations/data-formats/_index.md`, revision of
//!   2025-01-29 "Add attributes to uplink message data format"), with one repair: the page lacks the comma
//!   after the `attributes` object, so as printed it is not JSON (`tts_tests.rs` checks the error it gets).

use super::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::json;

pub(super) const CHIRPSTACK_UP: &str = include_str!("testdata/chirpstack_up.json");
pub(super) const TTS_UP: &str = include_str!("testdata/tts_up.json");
pub(super) const CS_TOPIC: &str =
    "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up";
pub(super) const TTS_TOPIC: &str = "v3/app1@tenant1/devices/dev1/up";

pub(super) fn eui(text: &str) -> Eui64 {
    Eui64::new(text).expect("valid EUI")
}

pub(super) fn uplink(kind: Kind, topic: &str, body: &[u8]) -> NsUplink {
    match parse(kind, topic, body) {
        Ok(Event::Uplink(up)) => up,
        other => panic!("not an uplink: {other:?}"),
    }
}

pub(super) fn error(kind: Kind, topic: &str, body: &[u8]) -> IntegrationError {
    match parse(kind, topic, body) {
        Err(e) => e,
        Ok(other) => panic!("accepted: {other:?}"),
    }
}

/// The documented example with `edit` applied to its JSON.
pub(super) fn edited(example: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(example).expect("example is JSON");
    edit(&mut value);
    serde_json::to_vec(&value).expect("serialisable")
}

pub(super) fn nanos(rfc3339: &str) -> UnixNanos {
    parse_rfc3339(rfc3339).expect("valid time")
}

#[test]
fn other_events_are_ignored_without_reading_the_body() {
    let cases: &[(Kind, &str, &str)] = &[
        (
            Kind::Chirpstack,
            "join",
            "application/a/device/0101010101010101/event/join",
        ),
        (
            Kind::Chirpstack,
            "status",
            "application/a/device/0101010101010101/event/status",
        ),
        (
            Kind::Chirpstack,
            "ack",
            "application/a/device/0101010101010101/event/ack",
        ),
        (
            Kind::Chirpstack,
            "txack",
            "application/a/device/0101010101010101/event/txack",
        ),
        (
            Kind::Chirpstack,
            "log",
            "application/a/device/0101010101010101/event/log",
        ),
        (
            Kind::Chirpstack,
            "location",
            "application/a/device/0101010101010101/event/location",
        ),
        (
            Kind::Chirpstack,
            "integration",
            "application/a/device/0101010101010101/event/integration",
        ),
        (
            Kind::Chirpstack,
            "join",
            "application/a/device/0101010101010101/state/join",
        ),
        (
            Kind::Chirpstack,
            "status",
            "application/a/device/0101010101010101/state/status",
        ),
        (
            Kind::Chirpstack,
            "location",
            "application/a/device/0101010101010101/state/location",
        ),
        (
            Kind::Chirpstack,
            "command/down",
            "application/a/device/0101010101010101/command/down",
        ),
        (Kind::Tts, "join", "v3/app1@tenant1/devices/dev1/join"),
        (
            Kind::Tts,
            "down/queued",
            "v3/app1@tenant1/devices/dev1/down/queued",
        ),
        (Kind::Tts, "down/sent", "v3/app1@ttn/devices/dev1/down/sent"),
        (Kind::Tts, "down/ack", "v3/app1/devices/dev1/down/ack"),
        (Kind::Tts, "down/nack", "v3/app1/devices/dev1/down/nack"),
        (Kind::Tts, "down/failed", "v3/app1/devices/dev1/down/failed"),
        (
            Kind::Tts,
            "service/data",
            "v3/app1/devices/dev1/service/data",
        ),
        (
            Kind::Tts,
            "location/solved",
            "v3/app1/devices/dev1/location/solved",
        ),
    ];
    for &(kind, event, topic) in cases {
        for body in [&b""[..], b"\x0a\x24not json", b"{}"] {
            assert_eq!(
                parse(kind, topic, body),
                Ok(Event::Ignored {
                    event: event.to_owned()
                }),
                "{topic}"
            );
        }
    }
}

#[test]
fn topics() {
    // A prefix before the expected form is tolerated (a bridge's; a customised ChirpStack event_topic).
    let prefixed = format!("bridge/{CS_TOPIC}");
    assert!(matches!(
        parse(Kind::Chirpstack, &prefixed, CHIRPSTACK_UP.as_bytes()),
        Ok(Event::Uplink(_))
    ));
    let prefixed = format!("ttn/eu1/{TTS_TOPIC}");
    assert!(matches!(
        parse(Kind::Tts, &prefixed, TTS_UP.as_bytes()),
        Ok(Event::Uplink(_))
    ));
    let upper = CS_TOPIC.replace(
        "0101010101010101",
        "0101010101010101".to_uppercase().as_str(),
    );
    assert!(matches!(
        parse(Kind::Chirpstack, &upper, CHIRPSTACK_UP.as_bytes()),
        Ok(Event::Uplink(_))
    ));
    for (kind, topic) in [
        (Kind::Chirpstack, ""),
        (
            Kind::Chirpstack,
            "application/a/device/0101010101010101/event/",
        ),
        (Kind::Chirpstack, "application/a/device//event/up"),
        (
            Kind::Chirpstack,
            "application/a/devices/0101010101010101/event/up",
        ),
        (Kind::Chirpstack, "gateway/0016c001f153a14c/event/up"),
        (Kind::Chirpstack, TTS_TOPIC),
        (Kind::Tts, ""),
        (Kind::Tts, "v3/app1/devices/dev1"),
        (Kind::Tts, "v3/app1/devices/dev1/"),
        (Kind::Tts, "v3//devices/dev1/up"),
        (Kind::Tts, "v2/app1/devices/dev1/up"),
        (Kind::Tts, CS_TOPIC),
    ] {
        let e = error(kind, topic, CHIRPSTACK_UP.as_bytes());
        assert_eq!(e.code(), "unsupported_topic", "{topic:?}: {e}");
    }
    assert_eq!(
        error(Kind::Tts, "v3/app1/devices/dev1", b"{}").to_string(),
        "topic \"v3/app1/devices/dev1\" is not a The Things Stack event topic; expected \
         v3/{application_id}@{tenant_id}/devices/{device_id}/{event}"
    );
}

#[test]
fn refusals() {
    let cs = |edit: fn(&mut Value)| error(Kind::Chirpstack, CS_TOPIC, &edited(CHIRPSTACK_UP, edit));
    let tts = |edit: fn(&mut Value)| error(Kind::Tts, TTS_TOPIC, &edited(TTS_UP, edit));
    let cases: Vec<(IntegrationError, &str, &str)> = vec![
        (
            error(Kind::Chirpstack, CS_TOPIC, b" \r\n"),
            "empty",
            "message from ChirpStack is empty; expected JSON: set the MQTT integration's marshaler to json \
             (`json=true` under [integration.mqtt] in chirpstack.toml); protobuf is not read",
        ),
        (
            error(Kind::Tts, TTS_TOPIC, b"up!"),
            "not_json",
            "message from The Things Stack is not JSON (first byte 0x75); expected JSON, which The Things \
             Stack's MQTT server publishes; is something else publishing on this topic?",
        ),
        (
            error(Kind::Chirpstack, CS_TOPIC, b"[1, 2]"),
            "not_an_object",
            "message is an array; expected a JSON object",
        ),
        (
            error(Kind::Chirpstack, CS_TOPIC, b"{\"deviceInfo\": }"),
            "invalid_json",
            "malformed JSON at line 1 column 16: expected value",
        ),
        (
            cs(|v| v["data"] = json!("qg=!")),
            "invalid_base64",
            "data is not valid base64: Invalid symbol 61, offset 2.",
        ),
        (
            tts(|v| v["uplink_message"]["frm_payload"] = json!(42)),
            "invalid_field",
            "uplink_message.frm_payload is a number; expected a string",
        ),
        (
            cs(|v| v["fPort"] = json!(256)),
            "f_port_out_of_range",
            "fPort is 256; a LoRaWAN FPort is 0 to 255",
        ),
        (
            tts(|v| v["uplink_message"]["f_port"] = json!(-1)),
            "f_port_out_of_range",
            "uplink_message.f_port is -1; a LoRaWAN FPort is 0 to 255",
        ),
        (
            cs(|v| v["fPort"] = json!(1.5)),
            "invalid_field",
            "fPort is a number; expected an integer 0 to 255",
        ),
        (
            cs(|v| v["fCnt"] = json!(4_294_967_296u64)),
            "invalid_field",
            "fCnt is a number; expected an integer 0 to 4294967295",
        ),
        (
            cs(|v| v["deviceInfo"]["devEui"] = json!("01010101010101")),
            "invalid_eui",
            "deviceInfo.devEui \"01010101010101\" is not an EUI-64: expected 16 hex digits, e.g. \
             0016c001ff10a235",
        ),
        (
            cs(|v| {
                v["deviceInfo"]
                    .as_object_mut()
                    .expect("object")
                    .remove("devEui");
            }),
            "missing_field",
            "deviceInfo.devEui is missing",
        ),
        (
            cs(|v| {
                v.as_object_mut().expect("object").remove("deviceInfo");
            }),
            "missing_field",
            "deviceInfo is missing",
        ),
        (
            tts(|v| {
                v.as_object_mut().expect("object").remove("uplink_message");
            }),
            "missing_field",
            "uplink_message is missing",
        ),
        (
            cs(|v| v["time"] = json!("yesterday")),
            "invalid_time",
            "time \"yesterday\" is not an RFC 3339 time within the years 1677 to 2262",
        ),
        (
            cs(|v| v["rxInfo"][0]["rssi"] = json!("-36")),
            "invalid_field",
            "rxInfo[0].rssi is a string; expected a number",
        ),
        (
            cs(|v| v["rxInfo"] = json!([{"rssi": -36}])),
            "missing_field",
            "rxInfo[0].gatewayId is missing",
        ),
        (
            cs(|v| v["rxInfo"] = json!([7])),
            "invalid_field",
            "rxInfo[0] is a number; expected an object",
        ),
        (
            tts(|v| v["uplink_message"]["rx_metadata"][0]["gateway_ids"] = json!({})),
            "missing_field",
            "uplink_message.rx_metadata[0].gateway_ids.gateway_id is missing",
        ),
    ];
    for (e, code, message) in cases {
        assert_eq!((e.code(), e.to_string().as_str()), (code, message));
    }
}

#[test]
fn kind_names_and_subscriptions() {
    for (kind, text, filter) in [
        (
            Kind::Chirpstack,
            "chirpstack",
            "application/+/device/+/event/up",
        ),
        (Kind::Tts, "tts", "v3/+/devices/+/up"),
    ] {
        assert_eq!(kind.to_string(), text);
        assert_eq!(text.parse::<Kind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).expect("serialise"), json!(text));
        assert_eq!(
            serde_json::from_value::<Kind>(json!(text)).expect("deserialise"),
            kind
        );
        assert_eq!(kind.subscription(), filter);
        assert!(rumqttc::valid_filter(filter));
    }
    let e = "ttn".parse::<Kind>().expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "unknown network server \"ttn\"; expected \"chirpstack\" or \"tts\""
    );
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9+/=_-]{0,24}".prop_map(Value::from),
        Just(Value::from("0101010101010101")),
        Just(Value::from("2022-07-18T09:34:15Z")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map("[a-z_A-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field path of either documented example, as a list of keys (array elements by index).
fn example_path() -> impl Strategy<Value = (Kind, Vec<&'static str>)> {
    prop_oneof![
        Just((Kind::Chirpstack, vec!["deviceInfo"])),
        Just((Kind::Chirpstack, vec!["deviceInfo", "devEui"])),
        Just((Kind::Chirpstack, vec!["fPort"])),
        Just((Kind::Chirpstack, vec!["fCnt"])),
        Just((Kind::Chirpstack, vec!["data"])),
        Just((Kind::Chirpstack, vec!["time"])),
        Just((Kind::Chirpstack, vec!["object"])),
        Just((Kind::Chirpstack, vec!["rxInfo"])),
        Just((Kind::Chirpstack, vec!["rxInfo", "0"])),
        Just((Kind::Chirpstack, vec!["rxInfo", "0", "gatewayId"])),
        Just((Kind::Chirpstack, vec!["rxInfo", "0", "rssi"])),
        Just((Kind::Chirpstack, vec!["rxInfo", "0", "snr"])),
        Just((Kind::Tts, vec!["end_device_ids"])),
        Just((Kind::Tts, vec!["end_device_ids", "dev_eui"])),
        Just((Kind::Tts, vec!["end_device_ids", "device_id"])),
        Just((Kind::Tts, vec!["received_at"])),
        Just((Kind::Tts, vec!["uplink_message"])),
        Just((Kind::Tts, vec!["uplink_message", "f_port"])),
        Just((Kind::Tts, vec!["uplink_message", "f_cnt"])),
        Just((Kind::Tts, vec!["uplink_message", "frm_payload"])),
        Just((Kind::Tts, vec!["uplink_message", "received_at"])),
        Just((Kind::Tts, vec!["uplink_message", "rx_metadata"])),
        Just((Kind::Tts, vec!["uplink_message", "rx_metadata", "0"])),
        Just((
            Kind::Tts,
            vec!["uplink_message", "rx_metadata", "0", "gateway_ids"]
        )),
        Just((
            Kind::Tts,
            vec!["uplink_message", "rx_metadata", "0", "rssi"]
        )),
        Just((
            Kind::Tts,
            vec!["uplink_message", "rx_metadata", "0", "channel_rssi"]
        )),
    ]
}

fn set_at(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for key in parents {
        at = match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*key],
        };
    }
    match last.parse::<usize>() {
        Ok(i) => at[i] = new,
        Err(_) => at[*last] = new,
    }
}

fn topic_for(kind: Kind) -> &'static str {
    match kind {
        Kind::Chirpstack => CS_TOPIC,
        Kind::Tts => TTS_TOPIC,
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        for kind in [Kind::Chirpstack, Kind::Tts] {
            let _ = parse(kind, topic_for(kind), &bytes);
        }
    }

    #[test]
    fn arbitrary_topics_never_panic(topic in "[a-z0-9@/+#_]{0,60}", body in vec(any::<u8>(), 0..32)) {
        for kind in [Kind::Chirpstack, Kind::Tts] {
            let _ = parse(kind, &topic, &body);
            let _ = parse(kind, &topic, CHIRPSTACK_UP.as_bytes());
            let _ = parse(kind, &topic, TTS_UP.as_bytes());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let body = serde_json::to_vec(&value).expect("serialisable");
        for kind in [Kind::Chirpstack, Kind::Tts] {
            let _ = parse(kind, topic_for(kind), &body);
        }
    }

    #[test]
    fn arbitrary_field_values_never_panic((kind, path) in example_path(), new in any_json()) {
        let example = match kind {
            Kind::Chirpstack => CHIRPSTACK_UP,
            Kind::Tts => TTS_UP,
        };
        let mut value: Value = serde_json::from_str(example).expect("example is JSON");
        set_at(&mut value, &path, new);
        let body = serde_json::to_vec(&value).expect("serialisable");
        let _ = parse(kind, topic_for(kind), &body);
    }
}
