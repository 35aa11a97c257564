//! The hook's reading of a device's connection (SUBSCRIBE/SUBACK, the PUBLISH rumqttd writes, the PUBACK)
//! and topic-filter matching; the end-to-end path is `tests/downlinks.rs`.
#![allow(clippy::unwrap_used)]
use super::*;
use bytes::Bytes;
use rumqttd::protocol::{
    Filter, PubAck, PubAckReason, Publish, RetainForwardRule, SubAck, Subscribe,
};

#[test]
fn filters_match_as_mqtt_says() {
    let cases = [
        ("devices/a/down/#", "devices/a/down/5", true),
        ("devices/a/down/#", "devices/a/down", true),
        ("devices/a/down/+", "devices/a/down/5", true),
        ("devices/a/down/+", "devices/a/down", false),
        ("devices/a/#", "devices/a/down/5", true),
        ("devices/a/down", "devices/a/down", true),
        ("devices/a/down", "devices/a/down/5", false),
        ("devices/+/down/5", "devices/a/down/5", true),
        ("devices/a/up", "devices/a/down", false),
        ("#", "devices/a/down", true),
    ];
    for (filter, topic, want) in cases {
        assert_eq!(matches(filter, topic), want, "{filter} {topic}");
    }
}

fn downlink(id: u64, fport: u8) -> Downlink {
    Downlink {
        id,
        device: DeviceId::new("valve-1").unwrap(),
        org: Default::default(),
        fport,
        bytes: vec![1, 2],
        confirmed: false,
        state: DownlinkState::Queued,
        attempts: 0,
        created_at: 0,
        updated_at: 0,
        error: None,
        via: None,
        fcnt: None,
        tx_ack: None,
    }
}

#[test]
fn raw_bytes_on_the_fport_topic_else_json_on_down() {
    let dev = DeviceId::new("valve-1").unwrap();
    let d = downlink(7, 10);
    let raw = message(
        &dev,
        &d,
        &[("devices/valve-1/down/#".into(), QoS::AtLeastOnce)],
    )
    .unwrap();
    assert_eq!(raw, ("devices/valve-1/down/10".to_owned(), vec![1, 2]));
    let (topic, json) = message(
        &dev,
        &d,
        &[("devices/valve-1/down".into(), QoS::AtLeastOnce)],
    )
    .unwrap();
    assert_eq!(topic, "devices/valve-1/down");
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id": 7, "fport": 10, "confirmed": false, "bytes": "AQI=", "hex": "0102"})
    );
    assert!(message(&dev, &d, &[("devices/valve-1/up".into(), QoS::AtLeastOnce)]).is_none());
}

fn hook() -> Arc<Downlinks> {
    // The registry is not reached by the hook itself.
    let dir = tempfile::tempdir().unwrap();
    let registry = bydata_store::RedbRegistry::open(
        &dir.path().join("r.redb"),
        bydata_store::SecretKey::from_bytes([1; 32]),
    )
    .unwrap()
    .shared();
    Downlinks::new(registry, Arc::new(|| 0), Config::default())
}

fn subscribe(pkid: u16, path: &str) -> Packet {
    Packet::Subscribe(
        Subscribe {
            pkid,
            filters: vec![Filter {
                path: path.into(),
                qos: QoS::AtLeastOnce,
                nolocal: false,
                preserve_retain: false,
                retain_forward_rule: RetainForwardRule::Never,
            }],
        },
        None,
    )
}

fn publish(topic: &str, payload: &[u8], pkid: u16, qos: QoS) -> Packet {
    // rumqttd's Publish keeps QoS and packet id private: made from its own serialisation.
    let mut raw = vec![0b0011_0000 | ((qos as u8) << 1)];
    raw.extend_from_slice(&pkid.to_be_bytes());
    raw.extend_from_slice(&u16::try_from(topic.len()).unwrap().to_be_bytes());
    raw.extend_from_slice(topic.as_bytes());
    raw.extend_from_slice(payload);
    Packet::Publish(Publish::deserialize(Bytes::from(raw)), None)
}

#[tokio::test]
async fn a_subscription_counts_once_granted_and_a_puback_acknowledges_the_write() {
    let h = hook();
    let dev = DeviceId::new("valve-1").unwrap();
    let mut inbox = h.inbox.lock().unwrap().take().unwrap();
    h.on_read(&dev, &subscribe(3, "devices/valve-1/down/#"));
    assert!(
        h.sessions().get(&dev).unwrap().filters.is_empty(),
        "not before the SUBACK"
    );
    h.on_write(
        &dev,
        &Packet::SubAck(
            SubAck {
                pkid: 3,
                return_codes: vec![SubscribeReasonCode::QoS1],
            },
            None,
        ),
    );
    assert!(matches!(inbox.try_recv(), Ok(Event::Wake(_))));
    assert_eq!(h.sessions().get(&dev).unwrap().filters.len(), 1);
    // The delivery put a downlink in flight; rumqttd writes it with packet id 9.
    h.sessions().get_mut(&dev).unwrap().in_flight = Some(InFlight {
        id: 7,
        topic: "devices/valve-1/down/10".into(),
        payload: vec![1, 2],
        pkids: Vec::new(),
        written: false,
        since: Instant::now(),
    });
    // Another message on another topic is not it.
    h.on_write(
        &dev,
        &publish("devices/valve-1/down/11", &[1, 2], 8, QoS::AtLeastOnce),
    );
    assert!(inbox.try_recv().is_err());
    h.on_write(
        &dev,
        &publish("devices/valve-1/down/10", &[1, 2], 9, QoS::AtLeastOnce),
    );
    assert!(matches!(
        inbox.try_recv(),
        Ok(Event::Written {
            id: 7,
            qos: QoS::AtLeastOnce,
            ..
        })
    ));
    // A PUBACK of another packet is not its acknowledgement.
    h.on_read(
        &dev,
        &Packet::PubAck(
            PubAck {
                pkid: 8,
                reason: PubAckReason::Success,
            },
            None,
        ),
    );
    assert!(inbox.try_recv().is_err());
    h.on_read(
        &dev,
        &Packet::PubAck(
            PubAck {
                pkid: 9,
                reason: PubAckReason::Success,
            },
            None,
        ),
    );
    assert!(matches!(inbox.try_recv(), Ok(Event::Acked { id: 7, .. })));
    assert!(h.sessions().get(&dev).unwrap().in_flight.is_none());
}

#[tokio::test]
async fn at_qos_0_the_slot_frees_when_written() {
    let h = hook();
    let dev = DeviceId::new("valve-1").unwrap();
    let mut inbox = h.inbox.lock().unwrap().take().unwrap();
    h.on_read(&dev, &subscribe(1, "devices/valve-1/down/+"));
    h.on_write(
        &dev,
        &Packet::SubAck(
            SubAck {
                pkid: 1,
                return_codes: vec![SubscribeReasonCode::QoS0],
            },
            None,
        ),
    );
    let _ = inbox.try_recv();
    h.sessions().get_mut(&dev).unwrap().in_flight = Some(InFlight {
        id: 4,
        topic: "devices/valve-1/down/1".into(),
        payload: vec![],
        pkids: Vec::new(),
        written: false,
        since: Instant::now(),
    });
    h.on_write(
        &dev,
        &publish("devices/valve-1/down/1", &[], 0, QoS::AtMostOnce),
    );
    assert!(matches!(
        inbox.try_recv(),
        Ok(Event::Written {
            id: 4,
            qos: QoS::AtMostOnce,
            ..
        })
    ));
    assert!(h.sessions().get(&dev).unwrap().in_flight.is_none());
}

proptest::proptest! {
    #[test]
    fn matching_never_panics(filter in "[a-z+#/]{0,16}", topic in "[a-z/]{0,16}") {
        let _ = matches(&filter, &topic);
        proptest::prop_assert!(matches(&topic, &topic) || topic.contains('+') || topic.contains('#'));
    }
}

#[test]
fn the_delivery_counters_are_in_the_metrics_registry() {
    let h = hook();
    let dev = DeviceId::new("valve-1").unwrap();
    // Nothing runs the task here: its queue fills, and what does not fit is counted.
    for _ in 0..EVENTS + 3 {
        h.wake(&dev);
    }
    h.counters.published.fetch_add(2, Ordering::Relaxed);
    h.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
    h.counters.failed.fetch_add(1, Ordering::Relaxed);
    let mut registry = bydata_admission::metrics::Registry::default();
    registry.register_collector(Box::new(h.metrics()));
    let text = bydata_admission::metrics::encode(&registry);
    for line in [
        "bydata_mqtt_downlinks_total{outcome=\"published\"} 2",
        "bydata_mqtt_downlinks_total{outcome=\"acknowledged\"} 1",
        "bydata_mqtt_downlinks_total{outcome=\"failed\"} 1",
        "bydata_mqtt_downlink_events_dropped_total 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}
