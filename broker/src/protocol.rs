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

/// The MQTT 3.1.1 wrapper: every refusal closes the connection (3.1.1 has no way to say why).
#[derive(Clone)]
pub(crate) struct DeviceProtocol {
    inner: V4,
    session: Session,
}

/// Who an authenticated connection is, and the checks every MQTT version shares: identity at CONNECT, topic
/// confinement, the journal append before the acknowledgement. Each version's wrapper decides only how a
/// refusal is told (3.1.1: the connection closes; 5: a reason code).
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) deps: Deps,
    pub(crate) max_message_bytes: usize,
    pub(crate) max_keep_alive: u16,
    /// The connection's device, set from its CONNECT (the edge checked its password before forwarding it, and
    /// rumqttd's auth handler reads nothing after the CONNECT unless the edge's gate verified that login).
    device: Option<DeviceId>,
    /// Or the network-server integration it is (client id `integration:{id}`).
    integration: Option<IntegrationId>,
}

/// Why a PUBLISH was not taken: nothing of it is in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublishRefusal {
    /// Not a topic this client may publish to (counted; the caller records it, in its version's words).
    /// `reason` is the 3.1.1 refusal; `advice` says which topic to use instead.
    NotAuthorized {
        reason: RejectReason,
        advice: String,
    },
    /// The journal is not accepting now (disk below its reserve, or stopping): the client keeps the message
    /// and retries later.
    NotAccepting(String),
    /// The journal (or an integration's sink) failed, or integrations are off: logged, not acknowledged.
    Failed,
}

/// Longest topic or filter quoted in a refusal (a device's status keeps the reason).
const MAX_QUOTED: usize = 200;

pub(crate) fn quoted(bytes: &[u8]) -> String {
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
            session: Session::new(deps, max_message_bytes, max_keep_alive),
        }
    }
}

impl Session {
    pub(crate) fn new(deps: Deps, max_message_bytes: usize, max_keep_alive: u16) -> Self {
        Self {
            deps,
            max_message_bytes,
            max_keep_alive: max_keep_alive.max(1),
            device: None,
            integration: None,
        }
    }

    /// Whether the CONNECT has been read (a device or an integration is known).
    pub(crate) fn identified(&self) -> bool {
        self.device.is_some() || self.integration.is_some()
    }

    /// Counts what an authenticated connection did wrong on the device's status (aggregated, at most one
    /// registry write per interval, one log line per device and interval).
    pub(crate) fn record(&self, reason: RejectReason) {
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
    }

    /// A message over `max_message_bytes`: counted and recorded.
    pub(crate) fn too_large(&self, size: usize) {
        inc(&self.deps.metrics.too_large);
        self.record(RejectReason::PayloadTooLarge {
            size,
            limit: self.max_message_bytes,
        });
    }

    /// The CONNECT has been vetted by the edge (`crate::edge`) before it reaches rumqttd; these checks hold
    /// for any connection all the same. Nothing is recorded here: the login has not been checked yet.
    /// The keep-alive is capped at `max_keep_alive` (0, "never", too); returns whether it was changed.
    pub(crate) fn connect(
        &mut self,
        client_id: &str,
        will: bool,
        keep_alive: &mut u16,
    ) -> Result<bool, Error> {
        let identity = Identity::parse(client_id);
        if identity.is_none() {
            inc(&self.deps.metrics.auth_bad_client_id);
            return Err(Error::InvalidProtocol);
        }
        if will {
            inc(&self.deps.metrics.connect_will);
            return Err(Error::InvalidProtocol);
        }
        let capped = if *keep_alive == 0 {
            self.max_keep_alive
        } else {
            (*keep_alive).min(self.max_keep_alive)
        };
        let changed = capped != *keep_alive;
        *keep_alive = capped;
        match identity {
            Some(Identity::Device(d)) => self.device = Some(d),
            Some(Identity::Integration(i)) => self.integration = Some(i),
            None => {}
        }
        Ok(changed)
    }

    /// Takes a PUBLISH: journaled (before this returns, so before any acknowledgement) or refused.
    pub(crate) fn publish(&self, topic: &[u8], payload: &[u8]) -> Result<(), PublishRefusal> {
        if let Some(integration) = &self.integration {
            return self.integration_publish(integration, topic, payload);
        }
        let Some(device) = &self.device else {
            return Err(PublishRefusal::Failed);
        };
        // Only `devices/{id}/up` and `devices/{id}/up/{fport}` are journaled, so only they are acknowledged: a
        // PUBACK means "in the journal". At QoS 0 there is no PUBACK to withhold; the refusal is on the
        // device's status and in the metrics all the same.
        let uplink = std::str::from_utf8(topic).ok().and_then(|t| {
            Some((
                t,
                uplink_fport(t.strip_prefix(device_prefix(device).as_str())?)?,
            ))
        });
        let Some((topic, fport)) = uplink else {
            inc(&self.deps.metrics.publish_denied);
            let uplink = format!("{}up", device_prefix(device));
            return Err(PublishRefusal::NotAuthorized {
                advice: format!(
                    "this device publishes its uplinks on {uplink} (or {uplink}/<FPort 1-223>) and nowhere else"
                ),
                reason: RejectReason::UplinkTopic {
                    topic: quoted(topic),
                    uplink,
                },
            });
        };
        self.journal_uplink(device, topic, fport, payload)
    }

    /// Appends a device's uplink to the journal.
    fn journal_uplink(
        &self,
        device: &DeviceId,
        topic: &str,
        fport: Option<u8>,
        payload: &[u8],
    ) -> Result<(), PublishRefusal> {
        let uplink = Uplink {
            received_at: (self.deps.clock)(),
            device: device.clone(),
            source: Source::Mqtt,
            topic: topic.to_owned(),
            fport,
            payload: payload.to_vec(),
            radio: Vec::new(),
        };
        let counters = bydata_store::intake::UplinkCounters {
            journaled: &self.deps.metrics.uplinks_journaled,
            not_journaled: &self.deps.metrics.journal_errors,
        };
        // The same append as the HTTP push's; a refusal is already on the device's status. No PUBACK: the
        // device keeps the message and retries.
        match bydata_store::intake::append_uplink(
            &self.deps.journal,
            &self.deps.refusals,
            uplink,
            counters,
        ) {
            Ok(_) => Ok(()),
            Err(bydata_store::intake::NotJournaled::Refused { reason }) => {
                Err(PublishRefusal::NotAccepting(reason.to_string()))
            }
            Err(bydata_store::intake::NotJournaled::Failed(_)) => Err(PublishRefusal::Failed),
        }
    }

    /// An inbound integration publishes under `integrations/{id}/`; the sink parses the event, finds the
    /// device by DevEUI and journals it before this returns (so before the PUBACK).
    fn integration_publish(
        &self,
        integration: &IntegrationId,
        topic: &[u8],
        payload: &[u8],
    ) -> Result<(), PublishRefusal> {
        let prefix = integration.topic_prefix();
        let Some(rest) = std::str::from_utf8(topic)
            .ok()
            .filter(|t| !unusable_topic(t))
            .and_then(|t| t.strip_prefix(prefix.as_str()))
        else {
            inc(&self.deps.metrics.publish_denied);
            return Err(PublishRefusal::NotAuthorized {
                reason: RejectReason::PublishDenied {
                    topic: quoted(topic),
                },
                advice: format!("an integration publishes under {prefix} and nowhere else"),
            });
        };
        let Some(sink) = &self.deps.integrations else {
            tracing::warn!(%integration, "integration event refused: integrations are not enabled");
            return Err(PublishRefusal::Failed);
        };
        sink.publish(integration, rest, payload).map_err(|e| {
            inc(&self.deps.metrics.journal_errors);
            tracing::error!(%integration, error = %e, "cannot journal an integration event; closing the connection");
            PublishRefusal::Failed
        })
    }

    /// The subtree this connection may subscribe under (`None` before its CONNECT).
    pub(crate) fn subscribe_prefix(&self) -> Option<String> {
        match (&self.device, &self.integration) {
            (Some(device), _) => Some(device_prefix(device)),
            (None, Some(integration)) => Some(integration.topic_prefix()),
            (None, None) => None,
        }
    }

    /// Shows the downlink delivery a packet the device sent (its SUBSCRIBE, its PUBACK of a downlink).
    pub(crate) fn downlink_read(&self, packet: &Packet) {
        if let (Some(device), Some(downlinks)) = (&self.device, &self.deps.downlinks) {
            downlinks.on_read(device, packet);
        }
    }

    /// Shows the downlink delivery a packet written to the device (the SUBACK, a downlink PUBLISH and the
    /// packet id rumqttd gave it).
    pub(crate) fn downlink_write(&self, packet: &Packet) {
        if let (Some(device), Some(downlinks)) = (&self.device, &self.deps.downlinks) {
            downlinks.on_write(device, packet);
        }
    }

    /// A SUBSCRIBE filter outside the subtree: counted (the caller records it).
    pub(crate) fn subscribe_denied(&self) {
        inc(&self.deps.metrics.subscribe_denied);
    }
}

impl Protocol for DeviceProtocol {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        let packet = match self.inner.read_mut(stream, max_size) {
            Err(Error::PayloadSizeLimitExceeded(size)) => {
                self.session.too_large(size);
                return Err(Error::MalformedPacket);
            }
            other => other?,
        };
        let mut packet = packet;
        match &mut packet {
            Packet::Connect(connect, _, will, _, _) => {
                // MQTT 3.1.1 has no way to tell a client the server's keep-alive: a longer one is shortened,
                // so an idle connection is dropped after 1.5 times the maximum (rumqttd's rule) rather than
                // after hours. (Keep-alive 0 was refused by the edge.)
                self.session.connect(
                    &connect.client_id,
                    will.is_some(),
                    &mut connect.keep_alive,
                )?;
            }
            Packet::Publish(publish, _) => {
                // Every refusal closes the connection without a PUBACK.
                match self.session.publish(&publish.topic, &publish.payload) {
                    Ok(()) => {}
                    Err(PublishRefusal::NotAuthorized { reason, .. }) => {
                        self.session.record(reason);
                        return Err(Error::MalformedPacket);
                    }
                    Err(_) => return Err(Error::InvalidProtocol),
                }
            }
            Packet::Subscribe(subscribe, _) => {
                let prefix = self
                    .session
                    .subscribe_prefix()
                    .ok_or(Error::InvalidProtocol)?;
                if let Some(bad) = subscribe
                    .filters
                    .iter()
                    .find(|f| !f.path.starts_with(&prefix))
                {
                    self.session.subscribe_denied();
                    self.session.record(RejectReason::SubscribeDenied {
                        filter: quoted(bad.path.as_bytes()),
                    });
                    return Err(Error::MalformedPacket);
                }
            }
            _ => {}
        }
        self.session.downlink_read(&packet);
        Ok(packet)
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        self.session.downlink_write(&packet);
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
