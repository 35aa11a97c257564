//! The per-connection protocol wrapper: identity and topic authorisation on top of rumqttd's MQTT 3.1.1 codec.
//!
//! `read_mut` is synchronous and runs before the router sees a packet; the router produces the PUBACK only
//! after `read_mut` has returned it. So an uplink appended to the journal here is in the journal before its
//! PUBACK is sent. The append writes to the OS but does not fsync (the journal's group commit does): an fsync
//! per message here stalled every client of the listener. Returning an error closes the connection without a
//! PUBACK (any error but `InsufficientBytes`, which would wait for more bytes).
use crate::gate::Identity;
use crate::metrics::inc;
use crate::{Deps, device_prefix};
use bydata_schemas::{DeviceId, IntegrationId, RejectReason, Source, Uplink};
use bydata_store::refusals::truncate;
use bytes::BytesMut;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{Error, Packet, Protocol};

#[derive(Clone)]
pub(crate) struct DeviceProtocol {
    inner: V4,
    deps: Deps,
    max_message_bytes: usize,
    max_keep_alive: u16,
    /// The connection's device, set from its CONNECT (the edge checked its password before forwarding it, and
    /// rumqttd's auth handler reads nothing after the CONNECT unless the edge's gate verified that login).
    device: Option<DeviceId>,
    /// Or the network-server integration it is (client id `integration:{id}`).
    integration: Option<IntegrationId>,
}

/// Longest topic or filter quoted in a refusal (a device's status keeps the reason).
const MAX_QUOTED: usize = 200;

fn quoted(bytes: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(bytes), MAX_QUOTED)
}

/// What follows `devices/{id}/` in an uplink topic: `up` (`Some(None)`), or `up/{fport}` with an FPort of 1 to
/// 223 written plainly (`Some(Some(fport))`) — the LoRaWAN application ports, which a codec may tell apart.
/// Anything else is not an uplink topic (`None`).
pub(crate) fn uplink_fport(rest: &str) -> Option<Option<u8>> {
    match rest.strip_prefix("up")? {
        "" => Some(None),
        port => {
            let port = port.strip_prefix('/')?;
            let n: u8 = port.parse().ok()?;
            ((1..=223).contains(&n) && n.to_string() == port).then_some(Some(n))
        }
    }
}

/// A topic bydata could never journal: wildcards or NUL have no place in a PUBLISH topic.
fn unusable_topic(topic: &str) -> bool {
    topic.contains(['+', '#', '\0'])
}

impl DeviceProtocol {
    pub(crate) fn new(deps: Deps, max_message_bytes: usize, max_keep_alive: u16) -> Self {
        Self {
            inner: V4,
            deps,
            max_message_bytes,
            max_keep_alive: max_keep_alive.max(1),
            device: None,
            integration: None,
        }
    }

    /// Refuses what an authenticated connection sent: the device's status counts it (aggregated, at most one
    /// registry write per interval, one log line per device and interval), and the connection closes.
    fn reject(&self, reason: RejectReason) -> Error {
        if let Some(integration) = &self.integration {
            tracing::warn!(%integration, %reason, "MQTT packet of an integration refused");
        }
        if let Some(device) = &self.device
            && self
                .deps
                .refusals
                .record(device, (self.deps.clock)(), &reason)
        {
            tracing::warn!(device = %device, %reason, "MQTT packet refused");
        }
        Error::MalformedPacket
    }

    /// The CONNECT has been vetted by the edge (`crate::edge`) before it reaches rumqttd; these checks hold
    /// for any connection all the same. Nothing is recorded here: the login has not been checked yet.
    fn on_connect(&mut self, packet: &mut Packet) -> Result<(), Error> {
        let Packet::Connect(connect, _, will, _, _) = packet else {
            return Ok(());
        };
        let identity = Identity::parse(&connect.client_id);
        if identity.is_none() {
            inc(&self.deps.metrics.auth_bad_client_id);
            return Err(Error::InvalidProtocol);
        }
        if will.is_some() {
            inc(&self.deps.metrics.connect_will);
            return Err(Error::InvalidProtocol);
        }
        // MQTT 3.1.1 has no way to tell a client the server's keep-alive: a longer one is shortened, so an idle
        // connection is dropped after 1.5 times the maximum (rumqttd's rule) rather than after hours.
        connect.keep_alive = connect.keep_alive.min(self.max_keep_alive);
        match identity {
            Some(Identity::Device(d)) => self.device = Some(d),
            Some(Identity::Integration(i)) => self.integration = Some(i),
            None => {}
        }
        Ok(())
    }

    fn on_publish(&mut self, packet: &Packet) -> Result<(), Error> {
        let Packet::Publish(publish, _) = packet else {
            return Ok(());
        };
        if let Some(integration) = &self.integration {
            return self.on_integration_publish(integration, &publish.topic, &publish.payload);
        }
        let Some(device) = &self.device else {
            return Err(Error::InvalidProtocol);
        };
        // Only `devices/{id}/up` and `devices/{id}/up/{fport}` are journaled, so only they are acknowledged: a
        // PUBACK means "in the journal". At QoS 0 there is no PUBACK to withhold; the refusal is on the
        // device's status and in the metrics all the same.
        let uplink = std::str::from_utf8(&publish.topic).ok().and_then(|t| {
            Some((
                t,
                uplink_fport(t.strip_prefix(device_prefix(device).as_str())?)?,
            ))
        });
        let Some((topic, fport)) = uplink else {
            inc(&self.deps.metrics.publish_denied);
            return Err(self.reject(RejectReason::UplinkTopic {
                topic: quoted(&publish.topic),
                uplink: format!("{}up", device_prefix(device)),
            }));
        };
        let uplink = Uplink {
            received_at: (self.deps.clock)(),
            device: device.clone(),
            source: Source::Mqtt,
            topic: topic.to_owned(),
            fport,
            payload: publish.payload.to_vec(),
            radio: Vec::new(),
        };
        let counters = bydata_store::intake::UplinkCounters {
            journaled: &self.deps.metrics.uplinks_journaled,
            not_journaled: &self.deps.metrics.journal_errors,
        };
        // The same append as the HTTP push's; a refusal is on the device's status, and no PUBACK closes the
        // connection so the device retries.
        bydata_store::intake::append_uplink(
            &self.deps.journal,
            &self.deps.refusals,
            uplink,
            counters,
        )
        .map(drop)
        .map_err(|_| Error::InvalidProtocol)
    }

    /// An inbound integration publishes under `integrations/{id}/`; the sink parses the event, finds the
    /// device by DevEUI and journals it before this returns (so before the PUBACK).
    fn on_integration_publish(
        &self,
        integration: &IntegrationId,
        topic: &[u8],
        payload: &[u8],
    ) -> Result<(), Error> {
        let prefix = integration.topic_prefix();
        let Some(rest) = std::str::from_utf8(topic)
            .ok()
            .filter(|t| !unusable_topic(t))
            .and_then(|t| t.strip_prefix(prefix.as_str()))
        else {
            inc(&self.deps.metrics.publish_denied);
            return Err(self.reject(RejectReason::PublishDenied {
                topic: quoted(topic),
            }));
        };
        let Some(sink) = &self.deps.integrations else {
            tracing::warn!(%integration, "integration event refused: integrations are not enabled");
            return Err(Error::InvalidProtocol);
        };
        sink.publish(integration, rest, payload).map_err(|e| {
            inc(&self.deps.metrics.journal_errors);
            tracing::error!(%integration, error = %e, "cannot journal an integration event; closing the connection");
            Error::InvalidProtocol
        })
    }

    fn on_subscribe(&mut self, packet: &Packet) -> Result<(), Error> {
        let Packet::Subscribe(subscribe, _) = packet else {
            return Ok(());
        };
        let prefix = match (&self.device, &self.integration) {
            (Some(device), _) => device_prefix(device),
            (None, Some(integration)) => integration.topic_prefix(),
            (None, None) => return Err(Error::InvalidProtocol),
        };
        if let Some(bad) = subscribe
            .filters
            .iter()
            .find(|f| !f.path.starts_with(&prefix))
        {
            inc(&self.deps.metrics.subscribe_denied);
            return Err(self.reject(RejectReason::SubscribeDenied {
                filter: quoted(bad.path.as_bytes()),
            }));
        }
        Ok(())
    }
}

impl Protocol for DeviceProtocol {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        let mut packet = match self.inner.read_mut(stream, max_size) {
            Err(Error::PayloadSizeLimitExceeded(size)) => {
                inc(&self.deps.metrics.too_large);
                return Err(self.reject(RejectReason::PayloadTooLarge {
                    size,
                    limit: self.max_message_bytes,
                }));
            }
            other => other?,
        };
        self.on_connect(&mut packet)?;
        self.on_publish(&packet)?;
        self.on_subscribe(&packet)?;
        Ok(packet)
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        self.inner.write(packet, write)
    }
}

#[cfg(test)]
mod tests {
    use super::uplink_fport;

    #[test]
    fn uplink_topics() {
        let cases = [
            ("up", Some(None)),
            ("up/1", Some(Some(1))),
            ("up/100", Some(Some(100))),
            ("up/223", Some(Some(223))),
            ("up/0", None),
            ("up/224", None),
            ("up/007", None),
            ("up/+1", None),
            ("up/", None),
            ("up/1/x", None),
            ("upx", None),
            ("data", None),
            ("", None),
        ];
        for (rest, want) in cases {
            assert_eq!(uplink_fport(rest), want, "{rest}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_topic_rest_is_read_without_panic(rest in "\\PC{0,12}", port in 0u16..1000) {
            if let Some(Some(fport)) = uplink_fport(&rest) {
                proptest::prop_assert!((1..=223).contains(&fport));
                proptest::prop_assert_eq!(rest, format!("up/{fport}"));
            }
            let numbered = format!("up/{port}");
            proptest::prop_assert_eq!(
                uplink_fport(&numbered),
                (1..=223).contains(&port).then(|| u8::try_from(port).ok())
            );
        }
    }
}
