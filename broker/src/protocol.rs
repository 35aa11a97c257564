//! The per-connection protocol wrapper: identity and topic authorisation on top of rumqttd's MQTT 3.1.1 codec.
//!
//! `read_mut` is synchronous and runs before the router sees a packet; the router produces the PUBACK only
//! after `read_mut` has returned it. So an uplink appended to the journal here is in the journal before its
//! PUBACK is sent. The append writes to the OS but does not fsync (the journal's group commit does): an fsync
//! per message here stalled every client of the listener. Returning an error closes the connection without a
//! PUBACK (any error but `InsufficientBytes`, which would wait for more bytes).
use crate::metrics::inc;
use crate::{Deps, device_prefix};
use bydata_schemas::{DeviceId, EdgeRejection, JournalEntry, RejectReason, Source, Uplink};
use bytes::BytesMut;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{Error, Packet, Protocol};

#[derive(Clone)]
pub(crate) struct DeviceProtocol {
    inner: V4,
    deps: Deps,
    max_message_bytes: usize,
    /// The connection's device, set from its CONNECT (the auth handler then checks the password, and nothing
    /// after the CONNECT is read unless it passed).
    device: Option<DeviceId>,
}

impl DeviceProtocol {
    pub(crate) fn new(deps: Deps, max_message_bytes: usize) -> Self {
        Self {
            inner: V4,
            deps,
            max_message_bytes,
            device: None,
        }
    }

    fn reject(&self, reason: RejectReason) -> Error {
        if let Some(device) = &self.device {
            tracing::warn!(device = %device, %reason, "MQTT packet refused");
            let entry = JournalEntry::Rejected(EdgeRejection {
                received_at: (self.deps.clock)(),
                device: device.clone(),
                reason,
            });
            if let Err(e) = self.deps.journal.append(&entry) {
                inc(&self.deps.metrics.journal_errors);
                tracing::error!(error = %e, "cannot journal a refusal");
            }
        }
        Error::MalformedPacket
    }

    fn on_connect(&mut self, packet: &Packet) -> Result<(), Error> {
        let Packet::Connect(connect, _, will, _, _) = packet else {
            return Ok(());
        };
        // Empty ids would get a broker-generated id, and `/`, `+`, `#` could escape the device's subtree:
        // DeviceId rules out all of them.
        let Ok(device) = DeviceId::new(connect.client_id.as_str()) else {
            inc(&self.deps.metrics.auth_bad_client_id);
            tracing::warn!(client_id = %connect.client_id.escape_debug(), "MQTT connect refused: client id is not a device id");
            return Err(Error::InvalidProtocol);
        };
        // A last will is published by the broker on the device's behalf: it must stay in the subtree too.
        if let Some(will) = will {
            let topic = String::from_utf8_lossy(&will.topic).into_owned();
            if !topic.starts_with(&device_prefix(&device)) {
                self.device = Some(device);
                inc(&self.deps.metrics.publish_denied);
                return Err(self.reject(RejectReason::PublishDenied { topic }));
            }
        }
        self.device = Some(device);
        Ok(())
    }

    fn on_publish(&mut self, packet: &Packet) -> Result<(), Error> {
        let Packet::Publish(publish, _) = packet else {
            return Ok(());
        };
        let Some(device) = &self.device else {
            return Err(Error::InvalidProtocol);
        };
        let prefix = device_prefix(device);
        let topic = match std::str::from_utf8(&publish.topic) {
            Ok(t) if t.starts_with(&prefix) => t,
            _ => {
                inc(&self.deps.metrics.publish_denied);
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                return Err(self.reject(RejectReason::PublishDenied { topic }));
            }
        };
        if &topic[prefix.len()..] != "up" {
            return Ok(());
        }
        let entry = JournalEntry::Uplink(Uplink {
            received_at: (self.deps.clock)(),
            device: device.clone(),
            source: Source::Mqtt,
            topic: topic.to_owned(),
            payload: publish.payload.to_vec(),
        });
        match self.deps.journal.append(&entry) {
            Ok(_) => {
                inc(&self.deps.metrics.uplinks_journaled);
                Ok(())
            }
            Err(e) => {
                // Not journaled means not acknowledged: the device keeps the message and retries.
                inc(&self.deps.metrics.journal_errors);
                tracing::error!(device = %device, error = %e, "cannot journal an uplink; closing the connection");
                Err(Error::InvalidProtocol)
            }
        }
    }

    fn on_subscribe(&mut self, packet: &Packet) -> Result<(), Error> {
        let Packet::Subscribe(subscribe, _) = packet else {
            return Ok(());
        };
        let Some(device) = &self.device else {
            return Err(Error::InvalidProtocol);
        };
        let prefix = device_prefix(device);
        if let Some(bad) = subscribe
            .filters
            .iter()
            .find(|f| !f.path.starts_with(&prefix))
        {
            inc(&self.deps.metrics.subscribe_denied);
            let filter = bad.path.clone();
            return Err(self.reject(RejectReason::SubscribeDenied { filter }));
        }
        Ok(())
    }
}

impl Protocol for DeviceProtocol {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        let packet = match self.inner.read_mut(stream, max_size) {
            Err(Error::PayloadSizeLimitExceeded(size)) => {
                inc(&self.deps.metrics.too_large);
                return Err(self.reject(RejectReason::PayloadTooLarge {
                    size,
                    limit: self.max_message_bytes,
                }));
            }
            other => other?,
        };
        self.on_connect(&packet)?;
        self.on_publish(&packet)?;
        self.on_subscribe(&packet)?;
        Ok(packet)
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        self.inner.write(packet, write)
    }
}
