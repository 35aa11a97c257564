//! The Things Stack v3's MQTT server: `ttnpb.ApplicationUp` messages in JSON (snake_case names), published on
//! `v3/{application_id}@{tenant_id}/devices/{device_id}/{event}` where the event is `up`, `join`,
//! `down/{queued,sent,ack,nack,failed}`, `service/data` or `location/solved`. Formats:
//! https://www.thethingsindustries.com/docs/integrations/data-formats/
//!
//! Read from an `up` message: `end_device_ids.dev_eui`, `uplink_message.{f_port, f_cnt, frm_payload,
//! decoded_payload, received_at, rx_metadata[].{gateway_ids, rssi, channel_rssi, snr}}` and the top-level
//! `received_at`; everything else is ignored.

use super::{Event, IntegrationError, Kind, NsUplink, Obj, Result, RxMeta};

const EXPECTED_TOPIC: &str = "v3/{application_id}@{tenant_id}/devices/{device_id}/{event}";

pub(super) fn parse(topic: &str, payload: &[u8]) -> Result<Event> {
    let (topic_device, event) = topic_parts(topic)?;
    if event != "up" {
        return Ok(Event::Ignored {
            event: event.to_owned(),
        });
    }
    let value = super::json_body(Kind::Tts, payload)?;
    let root = Obj::root(&value)?;
    let ids = root.required_object("end_device_ids")?;
    let dev_eui = ids
        .eui("dev_eui")?
        .ok_or_else(|| IntegrationError::NoDevEui {
            device_id: super::quote(
                ids.string("device_id")
                    .ok()
                    .flatten()
                    .unwrap_or(topic_device),
                super::MAX_QUOTED,
            ),
        })?;
    let up = root.required_object("uplink_message")?;
    let rx = up
        .objects("rx_metadata")?
        .iter()
        .map(rx_meta)
        .collect::<Result<_>>()?;
    Ok(Event::Uplink(NsUplink {
        dev_eui,
        f_port: up.f_port("f_port")?,
        f_cnt: Some(up.f_cnt("f_cnt")?),
        payload: up.bytes("frm_payload")?,
        received_at: match up.time("received_at")? {
            Some(t) => Some(t),
            None => root.time("received_at")?,
        },
        rx,
        network_decoded: up.get("decoded_payload").cloned(),
    }))
}

/// One element of `rx_metadata`: the gateway's ID (its EUI if it has none), and `rssi`, or `channel_rssi`
/// which newer versions write instead.
fn rx_meta(rx: &Obj<'_>) -> Result<RxMeta> {
    let ids = rx.required_object("gateway_ids")?;
    let gateway = match ids.string("gateway_id")? {
        Some(id) => id,
        None => ids
            .string("eui")?
            .ok_or_else(|| ids.missing("gateway_id"))?,
    };
    Ok(RxMeta {
        gateway: gateway.to_owned(),
        rssi: match rx.number("rssi")? {
            Some(rssi) => Some(rssi),
            None => rx.number("channel_rssi")?,
        },
        snr: rx.number("snr")?,
    })
}

/// The device ID and the event (which may span segments, `down/sent`) of a topic in the form above. Topics
/// are read from the first `v3/{application}/devices/{device}/` found, so a bridge's prefix does no harm.
fn topic_parts(topic: &str) -> Result<(&str, &str)> {
    let segments: Vec<&str> = topic.split('/').collect();
    let start = segments
        .windows(5)
        .position(|w| w[0] == "v3" && !w[1].is_empty() && w[2] == "devices" && !w[3].is_empty());
    match start {
        Some(i) => {
            // The segments before the event, with their separators: v3/app/devices/dev/ is 4 segments.
            let skip: usize = segments[..i + 4].iter().map(|s| s.len() + 1).sum();
            let event = topic.get(skip..).unwrap_or_default();
            if event.is_empty() {
                Err(super::unsupported_topic(Kind::Tts, topic, EXPECTED_TOPIC))
            } else {
                Ok((segments[i + 3], event))
            }
        }
        None => Err(super::unsupported_topic(Kind::Tts, topic, EXPECTED_TOPIC)),
    }
}

#[cfg(test)]
#[path = "tts_tests.rs"]
mod tests;
