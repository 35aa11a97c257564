use crate::{DeviceId, UnixNanos};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One entry of the raw journal: what arrived at an edge, under the identity the edge authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEntry {
    Uplink(Uplink),
    Rejected(EdgeRejection),
}

/// Which edge a message came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Mqtt,
    Http,
    Lorawan,
    /// A ChirpStack v4 MQTT integration (an uplink event, already decrypted by ChirpStack).
    Chirpstack,
    /// A The Things Stack v3 MQTT integration.
    Tts,
}

impl Source {
    pub fn as_u8(self) -> u8 {
        match self {
            Source::Mqtt => 1,
            Source::Http => 2,
            Source::Lorawan => 3,
            Source::Chirpstack => 4,
            Source::Tts => 5,
        }
    }
    pub fn from_u8(b: u8) -> Option<Source> {
        match b {
            1 => Some(Source::Mqtt),
            2 => Some(Source::Http),
            3 => Some(Source::Lorawan),
            4 => Some(Source::Chirpstack),
            5 => Some(Source::Tts),
            _ => None,
        }
    }
}

/// Raw bytes a device sent, with the device id the edge authenticated (never taken from the payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    pub received_at: UnixNanos,
    pub device: DeviceId,
    pub source: Source,
    /// The MQTT topic it was published on; empty for LoRaWAN uplinks (journals written before `fport` was
    /// a field hold `lorawan/{fport}` here, and the journal reads the FPort back from it).
    pub topic: String,
    /// The LoRaWAN FPort the frame came on (from a gateway or a network server; 0 for a frame without one,
    /// which carries no application payload); `None` for MQTT and HTTP uplinks.
    pub fport: Option<u8>,
    pub payload: Vec<u8>,
    /// For LoRaWAN: every gateway that heard the frame, with its signal (empty for other sources).
    pub radio: Vec<Reception>,
}

/// One gateway's reception of a LoRaWAN uplink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reception {
    /// The gateway as its network names it: an EUI in hex for bydata's own gateways.
    pub gateway: String,
    /// Received signal strength, dBm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi: Option<f64>,
    /// Signal-to-noise ratio, dB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr: Option<f64>,
}

// NaN is never stored (the edges drop non-finite signal values), so equality is total.
impl Eq for Reception {}

/// A message an edge refused before it could be journaled as an uplink; journaled so the refusal is counted
/// and explained on the device's status in the same place, and in the same order, as decode errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRejection {
    pub received_at: UnixNanos,
    pub device: DeviceId,
    pub reason: RejectReason,
}

/// Why an edge refused something a device did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// An integration published outside `integrations/{id}/` (journals written before `UplinkTopic` also
    /// hold devices' refused publishes as this).
    PublishDenied { topic: String },
    /// A device published anywhere but `devices/{id}/up` or `devices/{id}/up/{fport}`; `uplink` is the
    /// topic it should use.
    UplinkTopic { topic: String, uplink: String },
    /// A device whose password verified connected with a client id other than its id.
    ClientIdMismatch { client_id: String },
    /// Subscribed outside its own `devices/{id}/` subtree.
    SubscribeDenied { filter: String },
    /// A payload larger than the configured limit.
    PayloadTooLarge { size: usize, limit: usize },
    /// A connection attempt with the device's id and a wrong password (journals written before bydata
    /// stopped recording unauthenticated attempts hold these).
    AuthenticationFailed,
    /// A CONNECT carrying a last will: bydata would publish it without journaling it, so it is refused.
    LastWill { topic: String },
    /// A CONNECT with keep-alive 0 (a connection that could stay open forever without a word).
    KeepAliveZero,
    /// A LoRaWAN frame of the device refused by the network layer (bad MIC, replayed counter, …).
    LorawanFrame { code: String, detail: String },
    /// A network server's event about the device that could not be read (bad base64, missing fields, …).
    IntegrationEvent {
        integration: String,
        code: String,
        detail: String,
    },
    /// bydata was not accepting new data (its disk is full, or it is shutting down); `reason` says which.
    NotAccepting { reason: String },
    /// An MQTT 5 packet refused with the reason code the client was sent (`code`, e.g. 0x87 not authorized);
    /// `detail` says what was wrong and what to do. The connection stays open unless `closed`.
    Mqtt5 {
        code: u8,
        detail: String,
        closed: bool,
    },
    /// An HTTP push (`POST /api/v1/devices/{id}/up`) with the device's credentials refused: `code` as the
    /// answer's error code (`too_large`, `other_device`, `invalid_fport`, `unsupported_media_type`, …), `detail`
    /// in words.
    HttpPush { code: String, detail: String },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::PublishDenied { topic } => write!(
                f,
                "publish to {topic:?} refused: a device publishes its uplinks on devices/<its id>/up and nowhere else; connection closed"
            ),
            RejectReason::UplinkTopic { topic, uplink } => write!(
                f,
                "publish to {topic:?} refused: this device publishes its uplinks on {uplink} (or \
                 {uplink}/<FPort 1-223> to give its codec an FPort) and nowhere else; connection closed"
            ),
            RejectReason::ClientIdMismatch { client_id } => write!(
                f,
                "connection refused: connected with client id {client_id:?}; a device must use its id as \
                 both client id and username (CONNACK 2, identifier rejected)"
            ),
            RejectReason::SubscribeDenied { filter } => write!(
                f,
                "subscribe to {filter:?} refused: a device may only subscribe under devices/<its id>/; connection closed"
            ),
            RejectReason::PayloadTooLarge { size, limit } => write!(
                f,
                "message of {size} bytes exceeds the limit of {limit} bytes; connection closed"
            ),
            RejectReason::LorawanFrame { code, detail } => {
                write!(f, "LoRaWAN frame refused ({code}): {detail}")
            }
            RejectReason::IntegrationEvent {
                integration,
                code,
                detail,
            } => write!(
                f,
                "event from integration {integration} refused ({code}): {detail}"
            ),
            RejectReason::LastWill { topic } => write!(
                f,
                "connection refused: it carried a last will (to {topic:?}), which bydata does not accept; connect without a will"
            ),
            // Already a whole sentence ("disk full: …"); the device keeps the message and sends it again.
            RejectReason::NotAccepting { reason } => f.write_str(reason),
            RejectReason::Mqtt5 {
                code,
                detail,
                closed,
            } => {
                write!(f, "{detail} (MQTT 5 reason code 0x{code:02X}")?;
                f.write_str(if *closed { "; connection closed)" } else { ")" })
            }
            RejectReason::HttpPush { code, detail } => {
                write!(f, "HTTP push refused ({code}): {detail}")
            }
            RejectReason::KeepAliveZero => f.write_str(
                "connection refused: keep-alive 0 is not accepted; set a keep-alive such as 60 s",
            ),
            RejectReason::AuthenticationFailed => {
                write!(
                    f,
                    "MQTT connection refused: wrong password for this device id"
                )
            }
        }
    }
}
