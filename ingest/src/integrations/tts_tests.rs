//! The Things Stack: its documented uplink message, the fields it omits, and a device without a DevEUI.

use super::super::tests::{TTS_TOPIC, TTS_UP, edited, error, eui, nanos, uplink};
use super::super::*;
use serde_json::json;

#[test]
fn tts_documented_example() {
    let up = uplink(Kind::Tts, TTS_TOPIC, TTS_UP.as_bytes());
    assert_eq!(
        up,
        NsUplink {
            dev_eui: eui("0004a30b001c0530"),
            // The example carries a payload but no f_port; read as written, it is FPort 0 (omitted as zero).
            f_port: None,
            f_cnt: Some(1),
            payload: vec![0x82, 0x41, 0xde],
            // The Network Server's time, not the Application Server's (top level, 2020-02-12T15:15:46.01…).
            received_at: Some(nanos("2020-02-12T15:15:45.789585559Z")),
            rx: vec![RxMeta {
                gateway: "gtw1".into(),
                rssi: Some(-35.0),
                snr: Some(5.0),
            }],
            network_decoded: Some(json!({"temperature": 1.0, "luminosity": 0.64})),
        }
    );
}

#[test]
fn tts_example_as_printed_is_refused() {
    let printed = TTS_UP.replacen(
        "      \"key2\": \"value2\"\n    },",
        "      \"key2\": \"value2\"\n    }",
        1,
    );
    assert_ne!(printed, TTS_UP, "the repair is where it is expected");
    let e = error(Kind::Tts, TTS_TOPIC, printed.as_bytes());
    assert_eq!(e.code(), "invalid_json");
    assert_eq!(
        e.to_string(),
        "malformed JSON at line 79 column 5: expected `,` or `}`"
    );
}

#[test]
fn tts_variations() {
    let body = edited(TTS_UP, |v| {
        let up = &mut v["uplink_message"];
        up["f_port"] = json!(2);
        up.as_object_mut().expect("object").remove("received_at");
        up.as_object_mut().expect("object").remove("f_cnt");
        let rx = &mut up["rx_metadata"][0];
        rx.as_object_mut().expect("object").remove("rssi");
        rx["gateway_ids"] = json!({"eui": "9C5C8E00001A05C4"});
    });
    let up = uplink(Kind::Tts, TTS_TOPIC, &body);
    assert_eq!(up.f_port, Some(2));
    assert_eq!(up.f_cnt, Some(0));
    assert_eq!(
        up.received_at,
        Some(nanos("2020-02-12T15:15:46.014773143Z")),
        "top-level received_at when the uplink's own is missing"
    );
    assert_eq!(
        up.rx,
        [RxMeta {
            gateway: "9C5C8E00001A05C4".into(),
            rssi: Some(-35.0), // channel_rssi
            snr: Some(5.0),
        }]
    );
}

#[test]
fn tts_device_without_dev_eui() {
    let body = edited(TTS_UP, |v| {
        v["end_device_ids"]
            .as_object_mut()
            .expect("object")
            .remove("dev_eui");
    });
    let e = error(Kind::Tts, TTS_TOPIC, &body);
    assert_eq!(
        e,
        IntegrationError::NoDevEui {
            device_id: "dev1".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "The Things Stack device \"dev1\" has no DevEUI; bydata finds devices by DevEUI, so set one on the \
         device in The Things Stack (ABP devices can be registered without)"
    );
}
