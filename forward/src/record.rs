//! What a receiver gets: one JSON record per reading, each with its idempotency key.
//!
//! ```json
//! {"key": "room-1:1767225600000000000:4096:temperature", "device": "room-1", "org": "default",
//!  "measurement": "temperature", "value": 21.5, "unit": "Cel", "time": "2026-01-01T00:00:00Z",
//!  "received_at": "2026-01-01T00:00:00.012Z", "position": 4096, "codec": "senml",
//!  "tags": {"domain": "building", "floor": "2"}}
//! ```
//!
//! The key is the device, the reading's time (Unix nanoseconds) and the journal position of the uplink it
//! came from — and the measurement, since one uplink carries several measurements at the same time. The same
//! reading sent again (a retried batch, a replay, a resend after a restart) has the same key, and no two
//! readings share one. An HTTP batch is `{"target", "batch", "readings": [record, …]}` with the batch id
//! also in `X-Bydata-Batch`; an MQTT target publishes each record on its own.
use bydata_schemas::{DeviceId, OrgId, Reading, TargetId, UnixNanos, format_rfc3339};
use bydata_store::Device;
use serde_json::{Value, json};

/// The idempotency key of a reading.
pub fn key(device: &DeviceId, time: UnixNanos, position: u64, measurement: &str) -> String {
    format!("{device}:{time}:{position}:{measurement}")
}

/// A batch's id: the target and the journal range its readings came from. A batch sent again carries the
/// same id (the range is the same), so a receiver may also drop a whole repeated batch.
pub fn batch_id(target: &TargetId, first: u64, end: u64) -> String {
    format!("{target}:{first}-{end}")
}

/// The records of one uplink's readings.
pub(crate) fn records(
    device: &Device,
    position: u64,
    received_at: UnixNanos,
    codec: &str,
    readings: impl IntoIterator<Item = Reading>,
) -> Vec<Value> {
    let mut tags: serde_json::Map<String, Value> = device
        .tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    tags.insert("domain".into(), json!(device.domain));
    readings
        .into_iter()
        .map(|r| {
            json!({
                "key": key(&device.id, r.time, position, r.measurement.as_str()),
                "device": device.id,
                "org": device.org,
                "measurement": r.measurement,
                "value": r.value,
                "unit": r.unit,
                "time": format_rfc3339(r.time),
                "received_at": format_rfc3339(received_at),
                "position": position,
                "codec": codec,
                "tags": tags,
            })
        })
        .collect()
}

/// The record of a test message: shaped as a reading, from the device `bydata-test`, with `"test": true`.
pub(crate) fn test_record(org: &OrgId, now: UnixNanos) -> Value {
    json!({
        "key": format!("bydata-test:{now}:0:test"),
        "device": "bydata-test",
        "org": org,
        "measurement": "test",
        "value": 1.0,
        "unit": null,
        "time": format_rfc3339(now),
        "received_at": format_rfc3339(now),
        "position": 0,
        "codec": "test",
        "tags": {},
        "test": true,
    })
}

/// An HTTP batch's body.
pub(crate) fn http_body(target: &TargetId, batch: &str, records: &[Value], test: bool) -> Value {
    let mut body = json!({"target": target, "batch": batch, "readings": records});
    if test {
        body["test"] = json!(true);
    }
    body
}

/// The MQTT topic of a record: the template with `{device}`, `{measurement}`, `{org}` and `{target}`
/// filled in (ids and measurement names hold no `/`, `+` or `#`, so the topic has the template's levels).
pub(crate) fn topic(template: &str, target: &TargetId, record: &Value) -> String {
    let field = |name: &str| record[name].as_str().unwrap_or("unknown").to_owned();
    template
        .replace("{device}", &field("device"))
        .replace("{measurement}", &field("measurement"))
        .replace("{org}", &field("org"))
        .replace("{target}", target.as_str())
}

/// Whether a topic template makes valid topics to publish on: 1 to 512 bytes, no wildcard, no empty
/// placeholder left (`{device}`, `{measurement}`, `{org}`, `{target}` only). `Err` says what is wrong.
pub fn check_topic_template(template: &str) -> Result<(), String> {
    if template.is_empty() || template.len() > 512 {
        return Err("topic must be 1 to 512 characters".into());
    }
    if template.contains(['+', '#']) {
        return Err(
            "topic is where readings are published: it may not hold the wildcards + or #".into(),
        );
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("topic has a { without its }".into());
        };
        let name = &after[..close];
        if !["device", "measurement", "org", "target"].contains(&name) {
            return Err(format!(
                "topic names {{{name}}}: the placeholders are {{device}}, {{measurement}}, {{org}} and {{target}}"
            ));
        }
        rest = &after[close + 1..];
    }
    if template.contains('\0') {
        return Err("topic may not hold a NUL character".into());
    }
    Ok(())
}

/// At most `max` characters of a receiver's answer, for the delivery log (never cut inside a character).
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_schemas::{Codec, Domain, MeasurementName, Transport, Unit};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    fn device() -> Device {
        Device {
            id: DeviceId::new("room-1").expect("id"),
            name: "room".into(),
            transport: Transport::Mqtt,
            domain: Domain::new("building").expect("domain"),
            location: None,
            tags: BTreeMap::from([("floor".parse().expect("tag"), "2".into())]),
            codec: Codec::Auto,
            created_at: 0,
            org: OrgId::default(),
        }
    }

    fn reading(m: &str, time: i64) -> Reading {
        Reading {
            measurement: MeasurementName::new(m).expect("name"),
            unit: Unit::new("Cel").ok(),
            time,
            value: 21.5,
        }
    }

    #[test]
    fn every_reading_of_an_uplink_has_its_own_stable_key() {
        let d = device();
        let rs = records(
            &d,
            4096,
            7,
            "senml",
            [
                reading("temperature", 5),
                reading("humidity", 5),
                reading("temperature", 6),
            ],
        );
        let keys: HashSet<&str> = rs.iter().map(|r| r["key"].as_str().expect("key")).collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(rs[0]["key"], "room-1:5:4096:temperature");
        assert_eq!(rs[0]["tags"], json!({"domain": "building", "floor": "2"}));
        assert_eq!(rs[0]["unit"], "Cel");
        let again = records(&d, 4096, 7, "senml", [reading("temperature", 5)]);
        assert_eq!(again[0]["key"], rs[0]["key"]);
        let target = TargetId::new("t").expect("id");
        assert_eq!(
            topic("bydata/{org}/{device}/{measurement}", &target, &rs[1]),
            "bydata/default/room-1/humidity"
        );
    }

    #[test]
    fn topic_templates_are_checked() {
        for ok in ["bydata/{device}/{measurement}", "a", "{org}/{target}/x"] {
            assert_eq!(check_topic_template(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/+/b", "a/#", "{devices}/x", "a/{device", "x\0"] {
            assert!(check_topic_template(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn cutting_an_answer_never_panics(text in ".{0,300}", max in 0usize..200) {
            let out = cut(&text, max);
            prop_assert!(out.chars().count() <= max + 1);
        }

        #[test]
        fn checking_a_template_never_panics(t in "\\PC{0,80}") {
            let _ = check_topic_template(&t);
        }
    }
}
