//! The per-connection protocol wrapper: identity and topic authorisation on top of rumqttd's MQTT 3.1.1 codec.
//!
//! `read_mut` is synchronous and runs before the router sees a packet; the router produces the PUBACK only
//! after `read_mut` has returned it. So an uplink appended to the journal here is in the journal before its
//! PUBACK is sent. The append writes to the OS but does not fsync (the journal's group commit does): an fsync
//! per message here stalled every client of the listener. Returning an error closes the connection without a
//! PUBACK (any error but `InsufficientBytes`, which would wait for more bytes).
use crate::metrics::inc;
use crate::{Deps, device_prefix};
use bydata_schemas::{
    DeviceId, EdgeRejection, IntegrationId, JournalEntry, RejectReason, Source, Uplink,
};
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
    /// Or the network-server integration it is (client id `integration:{id}`).
    integration: Option<IntegrationId>,
}

impl DeviceProtocol {
    pub(crate) fn new(deps: Deps, max_message_bytes: usize) -> Self {
        Self {
            inner: V4,
            deps,
            max_message_bytes,
            device: None,
            integration: None,
        }
    }

    fn reject(&self, reason: RejectReason) -> Error {
        if let Some(integration) = &self.integration {
            tracing::warn!(%integration, %reason, "MQTT packet of an integration refused");
        }
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
        if let Some(integration) = IntegrationId::from_mqtt_identity(&connect.client_id) {
            if let Some(will) = will
                && !String::from_utf8_lossy(&will.topic).starts_with(&integration.topic_prefix())
            {
                inc(&self.deps.metrics.publish_denied);
                tracing::warn!(%integration, "MQTT connect refused: last will outside the integration's topics");
                return Err(Error::InvalidProtocol);
            }
            self.integration = Some(integration);
            return Ok(());
        }
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
        if let Some(integration) = &self.integration {
            return self.on_integration_publish(integration, &publish.topic, &publish.payload);
        }
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
            radio: Vec::new(),
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
            .and_then(|t| t.strip_prefix(prefix.as_str()))
        else {
            inc(&self.deps.metrics.publish_denied);
            let topic = String::from_utf8_lossy(topic).into_owned();
            return Err(self.reject(RejectReason::PublishDenied { topic }));
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
