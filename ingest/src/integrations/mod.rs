//! Network-server integrations: bydata as an application of a LoRaWAN network server that already did the
//! radio work (deduplication, MIC, decryption), reading its uplink events from the server's MQTT broker.
//!
//! [`parse`] turns one MQTT message (topic and JSON body) of ChirpStack v4 (`chirpstack.rs`) or The Things
//! Stack v3 (`tts.rs`) into an [`NsUplink`], [`Event::Ignored`] for the other events a topic names, or an
//! [`IntegrationError`] a sensor owner can act on. It is a pure function and never panics (property-tested).
//! [`subscribe`] (`client.rs`) is the MQTT client that feeds it: broker → `parse` → the caller's bounded queue.
//!
//! Both servers marshal protobuf messages to JSON and omit fields that hold their type's zero value, and some
//! ChirpStack versions write those zeros out instead. So that one uplink reads the same either way:
//! - an absent or zero FPort is `None` (FPort 0 carries MAC commands only, never application data);
//! - an absent frame counter is 0 (a protobuf scalar has no "unset": the field was omitted because it was 0);
//! - an absent payload is empty, and `null` reads as absent everywhere;
//! - an absent RSSI or SNR is `None` (FSK packets have no SNR; a gateway that measured 0 is rare).

mod chirpstack;
mod client;
mod tts;

#[cfg(test)]
mod tests;

use crate::codec::JsonType;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bydata_schemas::{Eui64, UnixNanos, parse_rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::str::FromStr;

pub use client::{ClientError, ClientStatus, Delivery, RemoteBroker, StatusSnapshot, subscribe};

/// Which network server publishes the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// ChirpStack v4 with its MQTT integration's JSON marshaler.
    Chirpstack,
    /// The Things Stack v3 (The Things Network, The Things Industries), its MQTT server.
    Tts,
}

impl Kind {
    /// The MQTT topic filter for uplink events at the network server's default topics.
    pub fn subscription(&self) -> &'static str {
        match self {
            Kind::Chirpstack => "application/+/device/+/event/up",
            Kind::Tts => "v3/+/devices/+/up",
        }
    }

    /// The product name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Chirpstack => "ChirpStack",
            Kind::Tts => "The Things Stack",
        }
    }

    /// What to do about a message that is not JSON.
    fn json_hint(&self) -> &'static str {
        match self {
            Kind::Chirpstack => {
                "expected JSON: set the MQTT integration's marshaler to json \
                 (`json=true` under [integration.mqtt] in chirpstack.toml); protobuf is not read"
            }
            Kind::Tts => {
                "expected JSON, which The Things Stack's MQTT server publishes; \
                 is something else publishing on this topic?"
            }
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Chirpstack => "chirpstack",
            Kind::Tts => "tts",
        })
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        match s {
            "chirpstack" => Ok(Kind::Chirpstack),
            "tts" => Ok(Kind::Tts),
            _ => Err(UnknownKind {
                value: s.chars().take(40).collect(),
            }),
        }
    }
}

/// A network-server name that is neither `chirpstack` nor `tts`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network server {value:?}; expected \"chirpstack\" or \"tts\"")]
pub struct UnknownKind {
    value: String,
}

/// One uplink as the network server reports it, its FRMPayload already decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct NsUplink {
    pub dev_eui: Eui64,
    /// `None`: no application payload (FPort absent or 0, e.g. a frame carrying only MAC commands).
    pub f_port: Option<u8>,
    /// The uplink frame counter; an omitted counter is 0 (see the module docs).
    pub f_cnt: Option<u32>,
    /// The decrypted FRMPayload (ChirpStack `data`, TTS `uplink_message.frm_payload`), base64-decoded.
    pub payload: Vec<u8>,
    /// The network server's time of the uplink: ChirpStack `time`; TTS `uplink_message.received_at` (when its
    /// Network Server received it), else the top-level `received_at` (its Application Server).
    pub received_at: Option<UnixNanos>,
    /// The radio metadata, one per element the network server lists (one per gateway, or per antenna of a
    /// gateway), in its order.
    pub rx: Vec<RxMeta>,
    /// What the network server's own payload codec made of the payload (ChirpStack `object`, TTS
    /// `uplink_message.decoded_payload`): kept for reference, not trusted.
    pub network_decoded: Option<Value>,
}

/// A gateway's reception of an uplink.
#[derive(Debug, Clone, PartialEq)]
pub struct RxMeta {
    /// The gateway as the network server names it: ChirpStack's gateway ID (its EUI), TTS's gateway ID (its EUI
    /// when the gateway has no ID).
    pub gateway: String,
    /// Signal strength in dBm.
    pub rssi: Option<f64>,
    /// Signal-to-noise ratio in dB.
    pub snr: Option<f64>,
}

/// What one message on a network server's topic is.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Uplink(NsUplink),
    /// An event of another type (join, status, ack, downlink, location, …), named as in the topic: not an error,
    /// bydata has no use for it.
    Ignored {
        event: String,
    },
}

/// Why a message from a network server was refused. The `Display` text is for the sensor's owner.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrationError {
    #[error("message from {} is empty; {}", kind.name(), kind.json_hint())]
    Empty { kind: Kind },
    #[error("message from {} is not JSON (first byte 0x{first_byte:02x}); {}", kind.name(), kind.json_hint())]
    NotJson { kind: Kind, first_byte: u8 },
    #[error("malformed JSON at line {line} column {column}: {reason}")]
    Malformed {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("message is {found}; expected a JSON object")]
    NotAnObject { found: JsonType },
    #[error("{path} is missing")]
    MissingField { path: String },
    #[error("{path} is {found}; expected {expected}")]
    InvalidField {
        path: String,
        expected: &'static str,
        found: JsonType,
    },
    #[error("{path} is not valid base64: {reason}")]
    Base64 {
        path: String,
        reason: base64::DecodeError,
    },
    #[error("{path} {value:?} is not an EUI-64: expected 16 hex digits, e.g. 0016c001ff10a235")]
    InvalidEui { path: String, value: String },
    #[error("{path} {value:?} is not an RFC 3339 time within the years 1677 to 2262")]
    InvalidTime { path: String, value: String },
    #[error("{path} is {value}; a LoRaWAN FPort is 0 to 255")]
    FPortOutOfRange { path: String, value: Number },
    #[error(
        "the topic names DevEUI {topic:?} but {path} is {body}; the message is refused because it is not clear \
         which device sent it"
    )]
    DevEuiMismatch {
        topic: String,
        path: &'static str,
        body: Eui64,
    },
    #[error(
        "The Things Stack device {device_id:?} has no DevEUI; bydata finds devices by DevEUI, so set one on the \
         device in The Things Stack (ABP devices can be registered without)"
    )]
    NoDevEui { device_id: String },
    #[error("topic {topic:?} is not a {} event topic; expected {expected}", kind.name())]
    UnsupportedTopic {
        kind: Kind,
        topic: String,
        expected: &'static str,
    },
}

impl IntegrationError {
    /// A stable, low-cardinality name for counting rejections by reason.
    pub fn code(&self) -> &'static str {
        match self {
            IntegrationError::Empty { .. } => "empty",
            IntegrationError::NotJson { .. } => "not_json",
            IntegrationError::Malformed { .. } => "invalid_json",
            IntegrationError::NotAnObject { .. } => "not_an_object",
            IntegrationError::MissingField { .. } => "missing_field",
            IntegrationError::InvalidField { .. } => "invalid_field",
            IntegrationError::Base64 { .. } => "invalid_base64",
            IntegrationError::InvalidEui { .. } => "invalid_eui",
            IntegrationError::InvalidTime { .. } => "invalid_time",
            IntegrationError::FPortOutOfRange { .. } => "f_port_out_of_range",
            IntegrationError::DevEuiMismatch { .. } => "dev_eui_mismatch",
            IntegrationError::NoDevEui { .. } => "no_dev_eui",
            IntegrationError::UnsupportedTopic { .. } => "unsupported_topic",
        }
    }
}

type Result<T, E = IntegrationError> = std::result::Result<T, E>;

/// Reads one message published by a network server. `topic` is the topic as the server publishes it, less any
/// prefix a bridge added (which the caller strips); it says which event the message is, so only uplinks are
/// read and everything else is [`Event::Ignored`] without looking at the body.
pub fn parse(kind: Kind, topic: &str, payload: &[u8]) -> Result<Event> {
    match kind {
        Kind::Chirpstack => chirpstack::parse(topic, payload),
        Kind::Tts => tts::parse(topic, payload),
    }
}

/// Long values are cut to this many characters in error messages.
const MAX_QUOTED: usize = 40;
/// Topics are cut to this many characters in error messages.
const MAX_QUOTED_TOPIC: usize = 200;

fn quote(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

fn unsupported_topic(kind: Kind, topic: &str, expected: &'static str) -> IntegrationError {
    IntegrationError::UnsupportedTopic {
        kind,
        topic: quote(topic, MAX_QUOTED_TOPIC),
        expected,
    }
}

/// The message body as one JSON value. A body that cannot begin a JSON text is refused as "not JSON" rather
/// than handed to the parser: a protobuf message starts with a field tag such as 0x0a (a newline in JSON),
/// and "expected value at line 2" would not tell anyone to change the marshaler.
fn json_body(kind: Kind, payload: &[u8]) -> Result<Value> {
    let text = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
    let first = text
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .ok_or(IntegrationError::Empty { kind })?;
    if !matches!(
        first,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    ) {
        return Err(IntegrationError::NotJson {
            kind,
            first_byte: payload.first().copied().unwrap_or(first),
        });
    }
    serde_json::from_slice(text).map_err(|e| {
        let (line, column, reason) = crate::codec::json_error_at(&e);
        IntegrationError::Malformed {
            line,
            column,
            reason,
        }
    })
}

fn json_type(value: &Value) -> JsonType {
    match value {
        Value::Null => JsonType::Null,
        Value::Bool(_) => JsonType::Boolean,
        Value::Number(_) => JsonType::Number,
        Value::String(_) => JsonType::String,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

/// Protobuf `bytes` in JSON: standard base64 when written, and either alphabet, padded or not, when read
/// (the proto3 JSON mapping).
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One JSON object being read, so that an error names the field by its path (`rxInfo[1].rssi`).
struct Obj<'a> {
    map: &'a Map<String, Value>,
    /// The path of this object; empty for the message itself.
    path: String,
}

impl<'a> Obj<'a> {
    fn root(value: &'a Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: String::new(),
            }),
            other => Err(IntegrationError::NotAnObject {
                found: json_type(other),
            }),
        }
    }

    fn path(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    fn invalid(&self, field: &str, expected: &'static str, found: &Value) -> IntegrationError {
        IntegrationError::InvalidField {
            path: self.path(field),
            expected,
            found: json_type(found),
        }
    }

    /// A field's value; a missing field and `null` are both `None`.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn object(&self, field: &str) -> Result<Option<Obj<'a>>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: self.path(field),
            })),
            Some(other) => Err(self.invalid(field, "an object", other)),
        }
    }

    fn required_object(&self, field: &str) -> Result<Obj<'a>> {
        self.object(field)?.ok_or_else(|| self.missing(field))
    }

    fn missing(&self, field: &str) -> IntegrationError {
        IntegrationError::MissingField {
            path: self.path(field),
        }
    }

    /// The objects of an array field, each with its path (`rxInfo[0]`); a missing array is empty.
    fn objects(&self, field: &str) -> Result<Vec<Obj<'a>>> {
        let items = match self.get(field) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(self.invalid(field, "an array", other)),
        };
        let array_path = self.path(field);
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{array_path}[{i}]");
                match item {
                    Value::Object(map) => Ok(Obj { map, path }),
                    other => Err(IntegrationError::InvalidField {
                        path,
                        expected: "an object",
                        found: json_type(other),
                    }),
                }
            })
            .collect()
    }

    /// A string field; an empty string is `None`, as the servers omit empty fields.
    fn string(&self, field: &str) -> Result<Option<&'a str>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(other) => Err(self.invalid(field, "a string", other)),
        }
    }

    fn number(&self, field: &str) -> Result<Option<f64>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.invalid(field, "a number", other)),
        }
    }

    /// A frame counter: absent is 0 (see the module docs).
    fn f_cnt(&self, field: &str) -> Result<u32> {
        match self.get(field) {
            None => Ok(0),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| self.invalid(field, "an integer 0 to 4294967295", value)),
        }
    }

    /// An FPort: absent and 0 are `None` (see the module docs).
    fn f_port(&self, field: &str) -> Result<Option<u8>> {
        let number = match self.get(field) {
            None => return Ok(None),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n,
            Some(other) => return Err(self.invalid(field, "an integer 0 to 255", other)),
        };
        match number.as_u64().map(u8::try_from) {
            Some(Ok(0)) => Ok(None),
            Some(Ok(port)) => Ok(Some(port)),
            _ => Err(IntegrationError::FPortOutOfRange {
                path: self.path(field),
                value: number.clone(),
            }),
        }
    }

    /// Base64 bytes; absent is empty.
    fn bytes(&self, field: &str) -> Result<Vec<u8>> {
        let Some(text) = self.string(field)? else {
            return Ok(Vec::new());
        };
        let engine = if text.contains(['-', '_']) {
            URL_SAFE
        } else {
            STANDARD
        };
        engine
            .decode(text)
            .map_err(|reason| IntegrationError::Base64 {
                path: self.path(field),
                reason,
            })
    }

    fn time(&self, field: &str) -> Result<Option<UnixNanos>> {
        self.string(field)?
            .map(|text| {
                parse_rfc3339(text).map_err(|_| IntegrationError::InvalidTime {
                    path: self.path(field),
                    value: quote(text, MAX_QUOTED),
                })
            })
            .transpose()
    }

    fn eui(&self, field: &str) -> Result<Option<Eui64>> {
        self.string(field)?
            .map(|text| {
                Eui64::new(text).map_err(|_| IntegrationError::InvalidEui {
                    path: self.path(field),
                    value: quote(text, MAX_QUOTED),
                })
            })
            .transpose()
    }
}
