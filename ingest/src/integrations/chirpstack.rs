//! ChirpStack v4's MQTT integration with the JSON marshaler: the protobuf `integration.UplinkEvent` in the
//! proto3 JSON mapping (camelCase names), published on `application/{application_id}/device/{dev_eui}/event/
//! {event}` (the default `event_topic`). Events: https://www.chirpstack.io/docs/chirpstack/integrations/events.html
//!
//! Read from an `up` event: `deviceInfo.devEui`, `fPort`, `fCnt`, `data` (the decrypted FRMPayload), `time`,
//! `object` (ChirpStack's codec output) and `rxInfo[].{gatewayId, rssi, snr}`; everything else is ignored.

use super::{Event, IntegrationError, Kind, NsUplink, Obj, Result, RxMeta};

const EXPECTED_TOPIC: &str = "application/{application_id}/device/{dev_eui}/event/{event}";

pub(super) fn parse(topic: &str, payload: &[u8]) -> Result<Event> {
    let topic_eui = match topic_parts(topic)? {
        Named::Uplink { dev_eui } => dev_eui,
        Named::Other { event } => return Ok(Event::Ignored { event }),
    };
    let value = super::json_body(Kind::Chirpstack, payload)?;
    let root = Obj::root(&value)?;
    let device_info = root.required_object("deviceInfo")?;
    let dev_eui = device_info
        .eui("devEui")?
        .ok_or_else(|| device_info.missing("devEui"))?;
    // The topic is ChirpStack's own, built from the same device: a difference means a bridge or a hand-made
    // publish got it wrong, and either could be the one to trust.
    if !topic_eui.eq_ignore_ascii_case(&dev_eui.to_string()) {
        return Err(IntegrationError::DevEuiMismatch {
            topic: super::quote(topic_eui, super::MAX_QUOTED),
            path: "deviceInfo.devEui",
            body: dev_eui,
        });
    }
    let rx = root
        .objects("rxInfo")?
        .iter()
        .map(|rx| {
            Ok(RxMeta {
                gateway: rx
                    .string("gatewayId")?
                    .ok_or_else(|| rx.missing("gatewayId"))?
                    .to_owned(),
                rssi: rx.number("rssi")?,
                snr: rx.number("snr")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Event::Uplink(NsUplink {
        dev_eui,
        f_port: root.f_port("fPort")?,
        f_cnt: Some(root.f_cnt("fCnt")?),
        payload: root.bytes("data")?,
        received_at: root.time("time")?,
        rx,
        network_decoded: root.get("object").cloned(),
    }))
}

/// The DevEUI and the event type named by a topic ending in `device/{dev_eui}/event/{event}`; what comes before
/// (`application/{application_id}/` by default) is not read, so a customised `event_topic` that keeps this
/// ending works too. Newer releases publish join, status and location events on a retained
/// `device/{dev_eui}/state/{state}` topic, and applications send `device/{dev_eui}/command/down`: both name
/// an event that is not an uplink, so a broad subscription (`application/#`) sees them as ignored, not as
/// errors.
fn topic_parts(topic: &str) -> Result<Named<'_>> {
    let mut segments = topic.rsplit('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("up"), Some("event"), Some(dev_eui), Some("device")) if !dev_eui.is_empty() => {
            Ok(Named::Uplink { dev_eui })
        }
        (
            Some(name),
            Some(class @ ("event" | "state" | "command")),
            Some(dev_eui),
            Some("device"),
        ) if !name.is_empty() && !dev_eui.is_empty() => Ok(Named::Other {
            event: match class {
                "command" => format!("{class}/{name}"),
                _ => name.to_owned(),
            },
        }),
        _ => Err(super::unsupported_topic(
            Kind::Chirpstack,
            topic,
            EXPECTED_TOPIC,
        )),
    }
}

/// What a topic names.
enum Named<'a> {
    /// The `up` event of the device with this DevEUI, as the topic spells it.
    Uplink { dev_eui: &'a str },
    /// Any other event, state or command.
    Other { event: String },
}

#[cfg(test)]
#[path = "chirpstack_tests.rs"]
mod tests;
