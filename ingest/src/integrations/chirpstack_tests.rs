//! ChirpStack: its documented `up` event, the zero fields its marshalers omit or write, and its refusals.

use super::super::tests::{CHIRPSTACK_UP, CS_TOPIC, edited, error, eui, nanos, uplink};
use super::super::*;
use serde_json::json;

#[test]
fn chirpstack_documented_example() {
    let up = uplink(Kind::Chirpstack, CS_TOPIC, CHIRPSTACK_UP.as_bytes());
    assert_eq!(
        up,
        NsUplink {
            dev_eui: eui("0101010101010101"),
            f_port: Some(1),
            // The example omits fCnt: it is that device's first uplink, counter 0.
            f_cnt: Some(0),
            payload: vec![0xaa],
            received_at: Some(nanos("2022-07-18T09:34:15.775023242Z")),
            rx: vec![RxMeta {
                gateway: "0016c001f153a14c".into(),
                rssi: Some(-36.0),
                snr: Some(10.5),
            }],
            network_decoded: None,
        }
    );
}

#[test]
fn chirpstack_zero_fields_omitted_or_written() {
    // Older releases omit zero values; newer ones write every field (pbjson `emit_fields`). Both read alike.
    let omitted = edited(CHIRPSTACK_UP, |v| {
        let o = v.as_object_mut().expect("object");
        for field in ["fPort", "data", "time"] {
            o.remove(field);
        }
        o["rxInfo"][0]
            .as_object_mut()
            .expect("object")
            .remove("snr");
    });
    let written = edited(CHIRPSTACK_UP, |v| {
        v["fPort"] = json!(0);
        v["fCnt"] = json!(0);
        v["data"] = json!("");
        v["time"] = Value::Null;
        v["object"] = Value::Null;
        v["rxInfo"][0]["snr"] = Value::Null;
    });
    for body in [omitted, written] {
        let up = uplink(Kind::Chirpstack, CS_TOPIC, &body);
        assert_eq!(up.f_port, None);
        assert_eq!(up.f_cnt, Some(0));
        assert!(up.payload.is_empty());
        assert_eq!(up.received_at, None);
        assert_eq!(up.network_decoded, None);
        assert_eq!(up.rx[0].snr, None);
        assert_eq!(up.rx[0].rssi, Some(-36.0));
    }
}

#[test]
fn chirpstack_codec_output_counter_and_gateways() {
    let body = edited(CHIRPSTACK_UP, |v| {
        v["fCnt"] = json!(4_294_967_295u32);
        v["fPort"] = json!(255);
        v["object"] = json!({"temperature": 21.5});
        v["data"] = json!("AQID-_8"); // URL-safe and unpadded: accepted, as in the proto3 JSON mapping
        let second = json!({"gatewayId": "0016c001f153a14d", "rssi": -120, "snr": -7.25});
        v["rxInfo"].as_array_mut().expect("array").push(second);
    });
    let up = uplink(Kind::Chirpstack, CS_TOPIC, &body);
    assert_eq!(up.f_cnt, Some(u32::MAX));
    assert_eq!(up.f_port, Some(255));
    assert_eq!(up.payload, [1, 2, 3, 0xfb, 0xff]);
    assert_eq!(up.network_decoded, Some(json!({"temperature": 21.5})));
    let gateways: Vec<_> = up.rx.iter().map(|r| r.gateway.as_str()).collect();
    assert_eq!(gateways, ["0016c001f153a14c", "0016c001f153a14d"]);
    assert_eq!(up.rx[1].snr, Some(-7.25));
}

#[test]
fn dev_eui_mismatch_is_refused() {
    let topic = CS_TOPIC.replace("0101010101010101", "0202020202020202");
    let e = error(Kind::Chirpstack, &topic, CHIRPSTACK_UP.as_bytes());
    assert_eq!(
        e,
        IntegrationError::DevEuiMismatch {
            topic: "0202020202020202".into(),
            path: "deviceInfo.devEui",
            body: eui("0101010101010101"),
        }
    );
    assert_eq!(e.code(), "dev_eui_mismatch");
    assert_eq!(
        e.to_string(),
        "the topic names DevEUI \"0202020202020202\" but deviceInfo.devEui is 0101010101010101; the message is \
         refused because it is not clear which device sent it"
    );
}

#[test]
fn protobuf_is_refused_with_the_fix() {
    // The start of a protobuf UplinkEvent: field 1 (deduplication_id), a 36-byte string, then field 2 (time).
    let mut protobuf = vec![0x0a, 0x24];
    protobuf.extend_from_slice(b"3ac7e3c4-4401-4b8d-9386-a5c902f9202d");
    protobuf.extend_from_slice(&[0x12, 0x0c, 0x08, 0xb7, 0xf5, 0xd4, 0x96, 0x06]);
    let e = error(Kind::Chirpstack, CS_TOPIC, &protobuf);
    assert_eq!(
        e,
        IntegrationError::NotJson {
            kind: Kind::Chirpstack,
            first_byte: 0x0a
        }
    );
    assert_eq!(
        e.to_string(),
        "message from ChirpStack is not JSON (first byte 0x0a); expected JSON: set the MQTT integration's \
         marshaler to json (`json=true` under [integration.mqtt] in chirpstack.toml); protobuf is not read"
    );
    assert_eq!(e.code(), "not_json");
}
