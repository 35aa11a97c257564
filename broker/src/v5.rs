//! The MQTT 5 wrapper around rumqttd's v5 codec: the same [`Session`] checks as 3.1.1 (identity, topic
//! confinement, size limit, journal before the acknowledgement), and what MQTT 5 adds.
//!
//! - **Topic aliases** are resolved here, before authorisation and the journal: a PUBLISH with an alias and an
//!   empty topic is checked and journaled under the topic the alias stands for, so an alias cannot smuggle a
//!   topic past the check. The router never sees an alias (it is replaced by its topic). At most
//!   [`TOPIC_ALIAS_MAX`] per connection; a larger or unknown alias is a protocol error (DISCONNECT 0x94/0x82).
//! - **User properties** are bounded ([`USER_PROPERTIES_MAX`], [`USER_PROPERTY_BYTES`] per packet; more:
//!   PUBACK 0x97 quota exceeded) and not journaled: the payload is the message.
//! - **Reason codes**: a refused PUBLISH gets PUBACK (QoS 1) or PUBREC (QoS 2) 0x87 not authorized with a
//!   reason string, and the connection stays open; a refused SUBSCRIBE filter gets 0x87 in the SUBACK. Where
//!   closing is right (too large, a QoS 0 PUBLISH to a foreign topic, an alias error, the journal not
//!   accepting) the client gets a DISCONNECT with the reason code, and the edge closes the connection once the
//!   DISCONNECT has passed (`crate::edge`).
//!
//! rumqttd's router answers every PUBLISH it is given with a successful PUBACK, and the codec cannot write a
//! packet of its own accord. So a refused packet is handed to the router as a PINGREQ *stand-in*: the router
//! answers each PINGREQ with one PINGRESP, in order with its other acknowledgements (one queue per
//! connection), and [`write`](Protocol::write) replaces the PINGRESP that answers a stand-in with the refusal.
//! A PUBACK with a reason code therefore leaves in the order its PUBLISH came, like any other.
use crate::metrics::inc;
use crate::protocol::{PublishRefusal, Session, quoted};
use bydata_schemas::RejectReason;
use bytes::{Buf, Bytes, BytesMut};
use rumqttd::protocol::v5::V5;
use rumqttd::protocol::{
    ConnAckProperties, Disconnect, DisconnectProperties, DisconnectReasonCode, Error, Packet,
    PingReq, PingResp, Protocol, PubAck, PubAckProperties, PubAckReason, PubRec, PubRecProperties,
    PubRecReason, SubAck, SubscribeReasonCode,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Topic aliases a client may set (Topic Alias Maximum in the CONNACK): a device publishes on one or two topics.
pub(crate) const TOPIC_ALIAS_MAX: u16 = 16;
/// Most user properties on one packet.
pub(crate) const USER_PROPERTIES_MAX: usize = 16;
/// Most bytes of user properties (keys and values together) on one packet.
pub(crate) const USER_PROPERTY_BYTES: usize = 1024;

/// Whether a packet's user properties are within the bounds.
pub(crate) fn user_properties_ok(properties: &[(String, String)]) -> bool {
    properties.len() <= USER_PROPERTIES_MAX
        && properties
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            <= USER_PROPERTY_BYTES
}

/// Largest whole packet (Maximum Packet Size in the CONNACK) whose remaining length is at most `max_remaining`,
/// the limit the codec applies.
pub(crate) fn max_packet_size(max_remaining: usize) -> u32 {
    let len_len = match max_remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    u32::try_from(1 + len_len + max_remaining).unwrap_or(u32::MAX)
}

/// The QoS and packet id of a PUBLISH at the front of `stream` (read from the bytes: rumqttd keeps both to
/// itself); `None` if the front is not a whole-enough PUBLISH.
pub(crate) fn peek_publish(stream: &[u8]) -> Option<(u8, u16)> {
    let (&byte1, rest) = stream.split_first()?;
    if byte1 >> 4 != 3 {
        return None;
    }
    let qos = (byte1 >> 1) & 0b11;
    let mut at = 0;
    loop {
        let b = *rest.get(at)?;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at == 4 {
            return None;
        }
    }
    if qos == 0 {
        return Some((0, 0));
    }
    let topic_len = usize::from(u16::from_be_bytes([*rest.get(at)?, *rest.get(at + 1)?]));
    let pkid = at + 2 + topic_len;
    Some((
        qos,
        u16::from_be_bytes([*rest.get(pkid)?, *rest.get(pkid + 1)?]),
    ))
}

/// What a connection's packets need answered by [`Protocol::write`] rather than by the router.
#[derive(Debug, Default)]
struct Replies {
    /// One per PINGREQ handed to the router, in order: `None` for a client's own ping, or the refusal its
    /// PINGRESP stands in for. Bounded by what rumqttd reads ahead of its answers (`max_inflight` packets).
    stand_ins: VecDeque<Option<Packet>>,
    /// SUBSCRIBEs passed on without their refused filters: packet id → the refused filters' positions, put
    /// back into the SUBACK as 0x87. Removed when the SUBACK passes.
    refused_filters: HashMap<u16, Vec<usize>>,
    /// Server Keep Alive for the CONNACK, when the client's was changed.
    server_keep_alive: Option<u16>,
}

/// The MQTT 5 wrapper rumqttd clones for each connection (each clone starts with empty state).
pub(crate) struct DeviceProtocolV5 {
    inner: V5,
    session: Session,
    max_inflight: u16,
    /// The client's topic aliases (at most [`TOPIC_ALIAS_MAX`]).
    aliases: HashMap<u16, Bytes>,
    /// A DISCONNECT is queued: nothing more is read (the edge closes the connection once it has passed).
    closing: bool,
    /// Shared with `write`, which rumqttd calls through `&self` on the same instance.
    replies: Arc<Mutex<Replies>>,
}

impl Clone for DeviceProtocolV5 {
    fn clone(&self) -> Self {
        Self {
            inner: V5,
            session: self.session.clone(),
            max_inflight: self.max_inflight,
            aliases: HashMap::new(),
            closing: false,
            replies: Arc::default(),
        }
    }
}

impl DeviceProtocolV5 {
    pub(crate) fn new(session: Session, max_inflight: usize) -> Self {
        Self {
            inner: V5,
            session,
            max_inflight: u16::try_from(max_inflight.max(1)).unwrap_or(u16::MAX),
            aliases: HashMap::new(),
            closing: false,
            replies: Arc::default(),
        }
    }

    fn replies(&self) -> std::sync::MutexGuard<'_, Replies> {
        self.replies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the router a PINGREQ whose PINGRESP `write` replaces with `reply`.
    fn stand_in(&mut self, reply: Packet) -> Packet {
        self.replies().stand_ins.push_back(Some(reply));
        Packet::PingReq(PingReq)
    }

    /// Ends the connection with a DISCONNECT carrying `code` and `reason` (recorded on the device's status).
    fn disconnect(&mut self, code: DisconnectReasonCode, number: u8, reason: String) -> Packet {
        self.session.record(RejectReason::Mqtt5 {
            code: number,
            detail: reason.clone(),
            closed: true,
        });
        self.closing = true;
        self.stand_in(Packet::Disconnect(
            Disconnect { reason_code: code },
            Some(DisconnectProperties {
                session_expiry_interval: None,
                reason_string: Some(reason),
                user_properties: Vec::new(),
                server_reference: None,
            }),
        ))
    }

    /// Refuses a PUBLISH with 0x87 not authorized (QoS 0, having no acknowledgement, is disconnected).
    fn not_authorized(&mut self, qos: u8, pkid: u16, topic: &[u8], why: String) -> Packet {
        let detail = format!("publish to {:?} refused: {why}", quoted(topic));
        if qos == 0 {
            return self.disconnect(DisconnectReasonCode::NotAuthorized, 0x87, detail);
        }
        self.session.record(RejectReason::Mqtt5 {
            code: 0x87,
            detail: detail.clone(),
            closed: false,
        });
        self.refuse_publish(qos, pkid, PubAckReason::NotAuthorized, detail)
    }

    fn refuse_publish(&mut self, qos: u8, pkid: u16, reason: PubAckReason, why: String) -> Packet {
        let reply = if qos == 2 {
            Packet::PubRec(
                PubRec {
                    pkid,
                    reason: match reason {
                        PubAckReason::QuotaExceeded => PubRecReason::QuotaExceeded,
                        _ => PubRecReason::NotAuthorized,
                    },
                },
                Some(PubRecProperties {
                    reason_string: Some(why),
                    user_properties: Vec::new(),
                }),
            )
        } else {
            Packet::PubAck(
                PubAck { pkid, reason },
                Some(PubAckProperties {
                    reason_string: Some(why),
                    user_properties: Vec::new(),
                }),
            )
        };
        self.stand_in(reply)
    }

    fn on_connect(&mut self, packet: &mut Packet) -> Result<(), Error> {
        let Packet::Connect(connect, properties, will, _, _) = packet else {
            return Ok(());
        };
        if properties
            .as_ref()
            .is_some_and(|p| !user_properties_ok(&p.user_properties))
        {
            return Err(Error::InvalidProtocol);
        }
        // MQTT 5 lets the server say the keep-alive it uses: a longer one (or 0, "never") becomes the maximum,
        // and the CONNACK says so.
        if self
            .session
            .connect(&connect.client_id, will.is_some(), &mut connect.keep_alive)?
        {
            self.replies().server_keep_alive = Some(connect.keep_alive);
        }
        // No session outlives its connection: what must survive is in the journal and the registry.
        connect.clean_session = true;
        if let Some(p) = properties {
            p.session_expiry_interval = None;
        }
        Ok(())
    }

    /// A PUBLISH: its alias resolved, its properties bounded, then the same check and journal as 3.1.1.
    /// Returns what the router gets: the PUBLISH (journaled), or a stand-in for the refusal.
    fn on_publish(&mut self, packet: Packet, qos: u8, pkid: u16) -> Packet {
        let Packet::Publish(mut publish, mut properties) = packet else {
            return packet;
        };
        if let Some(p) = &mut properties {
            if let Some(alias) = p.topic_alias.take() {
                if alias == 0 || alias > TOPIC_ALIAS_MAX {
                    return self.disconnect(
                        DisconnectReasonCode::TopicAliasInvalid,
                        0x94,
                        format!("topic alias {alias} refused: aliases are 1 to {TOPIC_ALIAS_MAX}"),
                    );
                }
                if publish.topic.is_empty() {
                    let Some(topic) = self.aliases.get(&alias) else {
                        return self.disconnect(
                            DisconnectReasonCode::ProtocolError,
                            0x82,
                            format!(
                                "topic alias {alias} was never set: send the topic with it first"
                            ),
                        );
                    };
                    publish.topic = topic.clone();
                } else {
                    self.aliases.insert(alias, publish.topic.clone());
                }
            }
            if !user_properties_ok(&p.user_properties) {
                inc(&self.session.deps.metrics.user_properties);
                let why = format!(
                    "at most {USER_PROPERTIES_MAX} user properties of {USER_PROPERTY_BYTES} bytes in all per message"
                );
                if qos == 0 {
                    return self.disconnect(DisconnectReasonCode::QuotaExceeded, 0x97, why);
                }
                self.session.record(RejectReason::Mqtt5 {
                    code: 0x97,
                    detail: why.clone(),
                    closed: false,
                });
                return self.refuse_publish(qos, pkid, PubAckReason::QuotaExceeded, why);
            }
        }
        if publish.topic.is_empty() {
            return self.disconnect(
                DisconnectReasonCode::ProtocolError,
                0x82,
                "a PUBLISH without a topic or a topic alias".to_owned(),
            );
        }
        match self.session.publish(&publish.topic, &publish.payload) {
            Ok(()) => Packet::Publish(publish, properties),
            Err(PublishRefusal::NotAuthorized { advice, .. }) => {
                self.not_authorized(qos, pkid, &publish.topic, advice)
            }
            Err(PublishRefusal::NotAccepting(reason)) => {
                // No acknowledgement: the client keeps the message and sends it again when it reconnects.
                self.disconnect(DisconnectReasonCode::ServerBusy, 0x89, reason)
            }
            Err(PublishRefusal::Failed) => self.disconnect(
                DisconnectReasonCode::UnspecifiedError,
                0x80,
                "the message could not be stored; send it again".to_owned(),
            ),
        }
    }

    /// A SUBSCRIBE: filters outside the connection's subtree are answered 0x87 in the SUBACK, the rest go on.
    fn on_subscribe(&mut self, packet: Packet) -> Result<Packet, Error> {
        let Packet::Subscribe(mut subscribe, properties) = packet else {
            return Ok(packet);
        };
        let prefix = self
            .session
            .subscribe_prefix()
            .ok_or(Error::InvalidProtocol)?;
        let refused: Vec<usize> = (subscribe.filters.iter().enumerate())
            .filter(|(_, f)| !f.path.starts_with(&prefix))
            .map(|(i, _)| i)
            .collect();
        if refused.is_empty() {
            return Ok(Packet::Subscribe(subscribe, properties));
        }
        for &i in &refused {
            self.session.subscribe_denied();
            self.session.record(RejectReason::Mqtt5 {
                code: 0x87,
                detail: format!(
                    "subscribe to {:?} refused: a device may only subscribe under devices/<its id>/",
                    quoted(subscribe.filters[i].path.as_bytes())
                ),
                closed: false,
            });
        }
        if refused.len() == subscribe.filters.len() {
            let suback = SubAck {
                pkid: subscribe.pkid,
                return_codes: vec![SubscribeReasonCode::NotAuthorized; refused.len()],
            };
            return Ok(self.stand_in(Packet::SubAck(suback, None)));
        }
        for &i in refused.iter().rev() {
            subscribe.filters.remove(i);
        }
        self.replies()
            .refused_filters
            .insert(subscribe.pkid, refused);
        Ok(Packet::Subscribe(subscribe, properties))
    }

    /// The CONNACK rumqttd wrote, with what bydata grants.
    fn connack_properties(&self, properties: &mut ConnAckProperties) {
        properties.session_expiry_interval = Some(0);
        properties.receive_max = Some(self.max_inflight);
        properties.max_packet_size = Some(max_packet_size(self.session.max_message_bytes));
        properties.topic_alias_max = Some(TOPIC_ALIAS_MAX);
        properties.server_keep_alive = self.replies().server_keep_alive;
        // `$share/…` is outside every device's subtree.
        properties.shared_subscription_available = Some(0);
    }
}

impl Protocol for DeviceProtocolV5 {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        if self.closing {
            stream.clear();
            return Err(Error::InsufficientBytes(1));
        }
        // rumqttd's v5 codec panics (`unreachable!`) on a CONNACK or UNSUBACK with a body: packets only a
        // server sends. They are a protocol error from a client either way, so they never reach it.
        if stream.first().is_some_and(|b| matches!(b >> 4, 2 | 9 | 11)) {
            if !self.session.identified() {
                return Err(Error::InvalidProtocol);
            }
            stream.clear();
            return Ok(self.disconnect(
                DisconnectReasonCode::ProtocolError,
                0x82,
                "a packet only a server sends (CONNACK, SUBACK or UNSUBACK)".to_owned(),
            ));
        }
        let header = peek_publish(stream);
        let packet = match self.inner.read_mut(stream, max_size) {
            Ok(packet) => packet,
            Err(Error::PayloadSizeLimitExceeded(size)) if self.session.identified() => {
                self.session.too_large(size);
                stream.clear();
                let limit = self.session.max_message_bytes;
                return Ok(self.disconnect(
                    DisconnectReasonCode::PacketTooLarge,
                    0x95,
                    format!("a message of {size} bytes; at most {limit} are taken"),
                ));
            }
            Err(e @ Error::InsufficientBytes(_)) => return Err(e),
            Err(e) if self.session.identified() => {
                stream.clear();
                tracing::debug!(error = %e, "malformed MQTT 5 packet");
                return Ok(self.disconnect(
                    DisconnectReasonCode::MalformedPacket,
                    0x81,
                    "a malformed packet".to_owned(),
                ));
            }
            Err(e) => return Err(e),
        };
        let packet = self.on_packet(packet, header);
        if let Ok(packet) = &packet {
            self.session.downlink_read(packet);
        }
        packet
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        self.session.downlink_write(&packet);
        self.write_answer(packet, write)
    }
}

impl DeviceProtocolV5 {
    /// A whole packet from the client, checked: passed on, or replaced by its refusal.
    fn on_packet(&mut self, packet: Packet, header: Option<(u8, u16)>) -> Result<Packet, Error> {
        match packet {
            Packet::Connect(..) => {
                let mut packet = packet;
                self.on_connect(&mut packet)?;
                Ok(packet)
            }
            _ if !self.session.identified() => Err(Error::InvalidProtocol),
            Packet::Publish(..) => {
                let (qos, pkid) = header.unwrap_or((0, 0));
                Ok(self.on_publish(packet, qos, pkid))
            }
            Packet::Subscribe(..) => self.on_subscribe(packet),
            Packet::PingReq(_) => {
                self.replies().stand_ins.push_back(None);
                Ok(packet)
            }
            packet => Ok(packet),
        }
    }

    /// A packet for the client, with the answers only MQTT 5 can give put in.
    fn write_answer(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        let packet = match packet {
            Packet::ConnAck(ack, properties) => {
                let mut properties = properties.unwrap_or_default();
                self.connack_properties(&mut properties);
                Packet::ConnAck(ack, Some(properties))
            }
            Packet::PingResp(_) => match self.replies().stand_ins.pop_front() {
                Some(Some(reply)) => reply,
                _ => Packet::PingResp(PingResp),
            },
            Packet::SubAck(mut suback, properties) => {
                if let Some(refused) = self.replies().refused_filters.remove(&suback.pkid) {
                    for i in refused {
                        let at = i.min(suback.return_codes.len());
                        suback
                            .return_codes
                            .insert(at, SubscribeReasonCode::NotAuthorized);
                    }
                }
                Packet::SubAck(suback, properties)
            }
            packet => packet,
        };
        self.inner.write(packet, write)
    }
}

/// Where a DISCONNECT ends in a stream of MQTT packets going to the client, so the edge can close the
/// connection right after it. Fed the bytes in order, in chunks of any size.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    /// Bytes of the current packet still to come after its fixed header.
    body_left: usize,
    /// The fixed header read so far (type byte, then the remaining length's bytes).
    header: Vec<u8>,
    /// The current packet is a DISCONNECT.
    disconnect: bool,
}

impl Framer {
    /// Reads `chunk`; returns the offset just past the end of a DISCONNECT in it, or `None`. `Err` if the
    /// stream is not MQTT.
    pub(crate) fn advance(&mut self, chunk: &[u8]) -> Result<Option<usize>, ()> {
        let mut bytes = chunk;
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes.advance(n);
            } else {
                self.header.push(bytes.get_u8());
                if self.header.len() == 1 {
                    self.disconnect = self.header[0] >> 4 == 14;
                    continue;
                }
                let last = self.header[self.header.len() - 1];
                if last & 0x80 != 0 {
                    if self.header.len() == 5 {
                        return Err(());
                    }
                    continue;
                }
                self.body_left = self.header[1..]
                    .iter()
                    .rev()
                    .fold(0, |n, b| (n << 7) | usize::from(b & 0x7f));
                self.header.clear();
            }
            if self.body_left == 0 && self.header.is_empty() && self.disconnect {
                return Ok(Some(chunk.len() - bytes.len()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_sizes() {
        assert_eq!(max_packet_size(127), 129);
        assert_eq!(max_packet_size(128), 131);
        assert_eq!(max_packet_size(64 * 1024), 64 * 1024 + 4);
    }

    #[test]
    fn publish_headers() {
        // QoS 1, topic "a/b", pkid 0x0102.
        let publish = [0x32, 8, 0, 3, b'a', b'/', b'b', 1, 2, 0];
        assert_eq!(peek_publish(&publish), Some((1, 0x0102)));
        assert_eq!(peek_publish(&publish[..8]), None);
        assert_eq!(peek_publish(&[0x30, 5]), Some((0, 0)));
        assert_eq!(peek_publish(&[0xc0, 0]), None);
        assert_eq!(peek_publish(&[0x32, 0xff, 0xff, 0xff, 0xff, 0]), None);
    }

    #[test]
    fn disconnects_are_found_in_any_chunking() {
        // PUBACK, PINGRESP, a PUBLISH of 200 bytes (two-byte length), DISCONNECT with a reason, a PINGRESP.
        let mut stream = vec![0x40, 2, 0, 1, 0xd0, 0];
        stream.extend([0x30, 0xc8, 0x01]);
        stream.extend([0u8; 200]);
        stream.extend([0xe0, 2, 0x87, 0]);
        let end = stream.len();
        stream.extend([0xd0, 0]);
        for size in 1..stream.len() {
            let mut framer = Framer::default();
            let mut found = None;
            for (i, chunk) in stream.chunks(size).enumerate() {
                if let Some(at) = framer.advance(chunk).expect("mqtt") {
                    found = Some(i * size + at);
                    break;
                }
            }
            assert_eq!(found, Some(end), "chunks of {size}");
        }
        let mut framer = Framer::default();
        assert!(framer.advance(&[0x30, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = peek_publish(&bytes);
            let _ = Framer::default().advance(&bytes);
        }
    }
}
