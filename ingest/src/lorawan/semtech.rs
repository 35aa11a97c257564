//! The Semtech UDP packet forwarder protocol, version 2, as written in `PROTOCOL.TXT` of Semtech's
//! packet_forwarder (github.com/Lora-net/packet_forwarder, document revision 1.3, which added TX_ACK).
//!
//! A gateway sends PUSH_DATA (received radio packets, status), PULL_DATA (a keep-alive that opens the downlink
//! route through its NAT) and TX_ACK (the fate of a downlink). [`parse`] reads those three; [`push_ack`],
//! [`pull_ack`] and [`pull_resp`] build bydata's side.
//!
//! What is tolerated, so that one bad radio packet costs only itself:
//! - every `rxpk` element is read on its own ([`PushJson::rxpk`] holds one `Result` each), and so is `stat`;
//! - optional fields may be missing or `null`, unknown fields are ignored; a field of the wrong type is an
//!   error for the element that holds it;
//! - trailing NUL bytes after the JSON are ignored: some forwarders send the C string terminator.
//!
//! What is not: `data` must be standard base64 (padding optional, as in the spec's own third example) and
//! decode to `size` bytes when `size` is given.
//!
//! Version 1 datagrams (packet_forwarder 1.x) are read too, but the replies built here say version 2, and the
//! reference forwarder ignores replies of another version than its own.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bydata_schemas::Eui64;
use serde_json::{Map, Value};
use std::fmt;

/// The protocol version of the datagrams bydata builds.
pub const PROTOCOL_VERSION: u8 = 2;

/// Seconds from the end of an uplink to RX1 for a data downlink (LoRaWAN RECEIVE_DELAY1, EU868 default).
pub const RECEIVE_DELAY1_SECS: u32 = 1;

/// Seconds from the end of a JoinRequest to RX1 for its JoinAccept (LoRaWAN JOIN_ACCEPT_DELAY1).
pub const JOIN_ACCEPT_DELAY1_SECS: u32 = 5;

const PUSH_DATA: u8 = 0x00;
const PUSH_ACK: u8 = 0x01;
const PULL_DATA: u8 = 0x02;
const PULL_RESP: u8 = 0x03;
const PULL_ACK: u8 = 0x04;
const TX_ACK: u8 = 0x05;

/// Version, token (2 bytes) and identifier; upstream packets add the gateway EUI (8 bytes).
const HEADER_LEN: usize = 4;
const UPSTREAM_HEADER_LEN: usize = HEADER_LEN + 8;

/// `rxpk.data`: the standard alphabet, padding optional (the spec says "padded" but its own example is not).
const RXPK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One datagram from a gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// Received radio packets and/or a status report; answer at once with [`push_ack`].
    PushData {
        token: u16,
        gateway: Eui64,
        json: PushJson,
    },
    /// Keep-alive; answer with [`pull_ack`] and send downlinks ([`pull_resp`]) to the address it came from.
    PullData { token: u16, gateway: Eui64 },
    /// The gateway's answer to the PULL_RESP with the same token: `error` is `None` when the downlink was
    /// scheduled (no JSON, or `"error":"NONE"`), else the reason, e.g. `"TOO_LATE"` or `"COLLISION_PACKET"`.
    TxAck {
        token: u16,
        gateway: Eui64,
        error: Option<String>,
    },
}

impl Packet {
    /// The datagram's random token, to echo in the acknowledgement.
    pub fn token(&self) -> u16 {
        match self {
            Packet::PushData { token, .. }
            | Packet::PullData { token, .. }
            | Packet::TxAck { token, .. } => *token,
        }
    }

    pub fn gateway(&self) -> Eui64 {
        match self {
            Packet::PushData { gateway, .. }
            | Packet::PullData { gateway, .. }
            | Packet::TxAck { gateway, .. } => *gateway,
        }
    }
}

/// The JSON of a PUSH_DATA (PROTOCOL.TXT §4).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushJson {
    /// One entry per element of `rxpk`, in order; a bad element is an error here and costs only itself.
    pub rxpk: Vec<Result<Rxpk, SemtechError>>,
    /// The gateway's status report, if the datagram carries one.
    pub stat: Option<Result<Stat, SemtechError>>,
}

/// One received radio packet and its metadata. Packets that failed the CRC (`stat == Some(-1)`) are returned
/// too: whether to drop them is the caller's decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rxpk {
    /// Concentrator counter (µs) at the end of reception; downlink timing counts from it (see [`rx1_tmst`]).
    pub tmst: Option<u32>,
    /// UTC time of reception (ISO 8601), when the gateway has GPS or NTP time.
    pub time: Option<String>,
    /// Centre frequency in MHz.
    pub freq: Option<f64>,
    pub chan: Option<u8>,
    pub rfch: Option<u8>,
    /// CRC status: 1 OK, -1 failed, 0 no CRC.
    pub stat: Option<i8>,
    /// `"LORA"` or `"FSK"`.
    pub modu: Option<String>,
    /// LoRa data rate such as `"SF7BW125"`, or an FSK bit rate (a JSON number) written in decimal.
    pub datr: Option<String>,
    /// LoRa coding rate such as `"4/5"`.
    pub codr: Option<String>,
    /// Signal strength in dBm.
    pub rssi: Option<i32>,
    /// LoRa signal-to-noise ratio in dB.
    pub lsnr: Option<f64>,
    pub size: Option<u16>,
    /// The PHY payload, base64-decoded.
    pub data: Vec<u8>,
}

/// A gateway's status report (PROTOCOL.TXT §4, `stat`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stat {
    /// Gateway system time as the forwarder writes it, e.g. `"2014-01-12 08:59:28 GMT"`.
    pub time: Option<String>,
    /// GPS latitude and longitude in degrees (N and E positive), altitude in metres.
    pub lati: Option<f64>,
    pub long: Option<f64>,
    pub alti: Option<i32>,
    /// Radio packets received, received with a valid CRC, forwarded.
    pub rxnb: Option<u32>,
    pub rxok: Option<u32>,
    pub rxfw: Option<u32>,
    /// Percentage of upstream datagrams acknowledged.
    pub ackr: Option<f64>,
    /// Downlink datagrams received, packets emitted.
    pub dwnb: Option<u32>,
    pub txnb: Option<u32>,
}

/// A LoRa downlink for [`pull_resp`] (PROTOCOL.TXT §6, `txpk`; `modu` is always `"LORA"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Txpk {
    /// Send at once, ignoring `tmst`.
    pub imme: bool,
    /// Concentrator counter (µs) at which to send, e.g. from [`rx1_tmst`]; omitted from the JSON when `None`.
    pub tmst: Option<u32>,
    /// Centre frequency in MHz, finite; written rounded to the Hz (the spec's precision).
    pub freq: f64,
    pub rfch: u8,
    /// Output power in dBm.
    pub powe: u8,
    /// Data rate such as `"SF9BW125"`.
    pub datr: String,
    /// Coding rate such as `"4/5"`.
    pub codr: String,
    /// Invert the polarity: true for LoRaWAN downlinks, so that other gateways do not hear them as uplinks.
    pub ipol: bool,
    /// The PHY payload; `size` is written as its length.
    pub data: Vec<u8>,
}

/// Where in a datagram's JSON an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Root,
    /// The element of `rxpk` at this index (from 0).
    Rxpk(usize),
    Stat,
    TxpkAck,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Root => f.write_str("the JSON root"),
            Place::Rxpk(index) => write!(f, "rxpk[{index}]"),
            Place::Stat => f.write_str("stat"),
            Place::TxpkAck => f.write_str("txpk_ack"),
        }
    }
}

/// A field and the object that holds it, written as a path: `rxpk[1].tmst`, `stat.lati`, `rxpk`.
struct Path<'a>(Place, &'a str);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Place::Root => f.write_str(self.1),
            place => write!(f, "{place}.{}", self.1),
        }
    }
}

/// Why a datagram, or one `rxpk` or `stat` within it, was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SemtechError {
    #[error("datagram of {got} bytes is too short; expected at least {expected}")]
    Truncated { expected: usize, got: usize },
    #[error("protocol version {version} is not supported; expected 1 or 2")]
    UnsupportedVersion { version: u8 },
    #[error("unknown packet identifier 0x{identifier:02x}")]
    UnknownIdentifier { identifier: u8 },
    #[error("{name} (0x{identifier:02x}) is sent by a server to a gateway, not by a gateway")]
    Downstream { identifier: u8, name: &'static str },
    #[error("{packet} carries no JSON object")]
    MissingJson { packet: &'static str },
    #[error("{packet} JSON is malformed at line {line} column {column}: {reason}")]
    Json {
        packet: &'static str,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{place} is not a JSON object")]
    NotAnObject { place: Place },
    #[error("{} is missing", Path(*place, field))]
    MissingField { place: Place, field: &'static str },
    #[error("{} is not {expected}", Path(*place, field))]
    InvalidField {
        place: Place,
        field: &'static str,
        expected: &'static str,
    },
    #[error("rxpk[{index}].data is not valid base64: {reason}")]
    Base64 {
        index: usize,
        reason: base64::DecodeError,
    },
    #[error("rxpk[{index}].data decodes to {decoded} bytes but its size says {size}")]
    SizeMismatch {
        index: usize,
        size: u16,
        decoded: usize,
    },
}

impl SemtechError {
    /// A stable, low-cardinality name for counting rejections by reason.
    pub fn code(&self) -> &'static str {
        match self {
            SemtechError::Truncated { .. } => "truncated",
            SemtechError::UnsupportedVersion { .. } => "unsupported_version",
            SemtechError::UnknownIdentifier { .. } => "unknown_identifier",
            SemtechError::Downstream { .. } => "downstream_packet",
            SemtechError::MissingJson { .. } => "missing_json",
            SemtechError::Json { .. } => "invalid_json",
            SemtechError::NotAnObject { .. } => "not_an_object",
            SemtechError::MissingField { .. } => "missing_field",
            SemtechError::InvalidField { .. } => "invalid_field",
            SemtechError::Base64 { .. } => "invalid_base64",
            SemtechError::SizeMismatch { .. } => "size_mismatch",
        }
    }
}

/// Reads one datagram from a gateway. The token is bytes 1–2 read big-endian, so the builders echo the bytes
/// as they came; bytes after the EUI of a PULL_DATA are ignored.
pub fn parse(bytes: &[u8]) -> Result<Packet, SemtechError> {
    let truncated = |expected| SemtechError::Truncated {
        expected,
        got: bytes.len(),
    };
    let Some((&[version, token_hi, token_lo, identifier], rest)) =
        bytes.split_first_chunk::<HEADER_LEN>()
    else {
        return Err(truncated(HEADER_LEN));
    };
    if !matches!(version, 1 | 2) {
        return Err(SemtechError::UnsupportedVersion { version });
    }
    let downstream = |name| SemtechError::Downstream { identifier, name };
    match identifier {
        PUSH_DATA | PULL_DATA | TX_ACK => {}
        PUSH_ACK => return Err(downstream("PUSH_ACK")),
        PULL_RESP => return Err(downstream("PULL_RESP")),
        PULL_ACK => return Err(downstream("PULL_ACK")),
        _ => return Err(SemtechError::UnknownIdentifier { identifier }),
    }
    let Some((eui, body)) = rest.split_first_chunk::<8>() else {
        return Err(truncated(UPSTREAM_HEADER_LEN));
    };
    let token = u16::from_be_bytes([token_hi, token_lo]);
    let gateway = Eui64::from_bytes(*eui);
    let body = trim_end(body);
    match identifier {
        PUSH_DATA => {
            let root = json_object("PUSH_DATA", body)?;
            Ok(Packet::PushData {
                token,
                gateway,
                json: push_json(&root)?,
            })
        }
        PULL_DATA => Ok(Packet::PullData { token, gateway }),
        _ => Ok(Packet::TxAck {
            token,
            gateway,
            error: if body.is_empty() {
                None
            } else {
                tx_ack_error(&json_object("TX_ACK", body)?)?
            },
        }),
    }
}

/// The body without trailing whitespace and NUL bytes (a C string terminator some forwarders send along).
fn trim_end(body: &[u8]) -> &[u8] {
    let end = body
        .iter()
        .rposition(|&b| b != 0 && !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &body[..end]
}

/// The acknowledgement of a PUSH_DATA: version, the same token, PUSH_ACK.
pub fn push_ack(token: u16) -> [u8; 4] {
    ack(token, PUSH_ACK)
}

/// The acknowledgement of a PULL_DATA: version, the same token, PULL_ACK.
pub fn pull_ack(token: u16) -> [u8; 4] {
    ack(token, PULL_ACK)
}

fn ack(token: u16, identifier: u8) -> [u8; 4] {
    let [hi, lo] = token.to_be_bytes();
    [PROTOCOL_VERSION, hi, lo, identifier]
}

/// A downlink for the gateway: header (version, `token`, PULL_RESP) and `{"txpk":{…}}` with the fields in the
/// order of PROTOCOL.TXT §6, `size` the length of `data` and `data` padded base64. The gateway answers with a
/// TX_ACK carrying `token`.
pub fn pull_resp(token: u16, txpk: &Txpk) -> Vec<u8> {
    // Written by hand rather than through a derived Serialize: the order is the spec's, and nothing can fail.
    let string = |s: &str| Value::from(s).to_string();
    let tmst = txpk
        .tmst
        .map(|t| format!("\"tmst\":{t},"))
        .unwrap_or_default();
    let json = format!(
        "{{\"txpk\":{{\"imme\":{imme},{tmst}\"freq\":{freq},\"rfch\":{rfch},\"powe\":{powe},\"modu\":\"LORA\",\
         \"datr\":{datr},\"codr\":{codr},\"ipol\":{ipol},\"size\":{size},\"data\":\"{data}\"}}}}",
        imme = txpk.imme,
        freq = Value::from((txpk.freq * 1e6).round() / 1e6),
        rfch = txpk.rfch,
        powe = txpk.powe,
        datr = string(&txpk.datr),
        codr = string(&txpk.codr),
        ipol = txpk.ipol,
        size = txpk.data.len(),
        data = STANDARD.encode(&txpk.data),
    );
    let [hi, lo] = token.to_be_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + json.len());
    out.extend_from_slice(&[PROTOCOL_VERSION, hi, lo, PULL_RESP]);
    out.extend_from_slice(json.as_bytes());
    out
}

/// The concentrator counter at which RX1 opens, `delay_secs` after an uplink that ended at `uplink_tmst`
/// ([`RECEIVE_DELAY1_SECS`] for data, [`JOIN_ACCEPT_DELAY1_SECS`] for a JoinAccept). The counter is 32 bits of
/// microseconds and wraps about every 71.6 minutes, so the sum wraps too.
pub fn rx1_tmst(uplink_tmst: u32, delay_secs: u32) -> u32 {
    uplink_tmst.wrapping_add(delay_secs.wrapping_mul(1_000_000))
}

fn json_object(packet: &'static str, body: &[u8]) -> Result<Map<String, Value>, SemtechError> {
    if body.is_empty() {
        return Err(SemtechError::MissingJson { packet });
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SemtechError::NotAnObject { place: Place::Root }),
        Err(e) => {
            let (line, column, reason) = crate::codec::json_error_at(&e);
            Err(SemtechError::Json {
                packet,
                line,
                column,
                reason,
            })
        }
    }
}

fn push_json(root: &Map<String, Value>) -> Result<PushJson, SemtechError> {
    let rxpk = match root.get("rxpk") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().enumerate().map(rxpk).collect(),
        Some(_) => {
            return Err(SemtechError::InvalidField {
                place: Place::Root,
                field: "rxpk",
                expected: "an array",
            });
        }
    };
    let stat = match root.get("stat") {
        None | Some(Value::Null) => None,
        Some(value) => Some(stat(value)),
    };
    Ok(PushJson { rxpk, stat })
}

fn rxpk((index, value): (usize, &Value)) -> Result<Rxpk, SemtechError> {
    let place = Place::Rxpk(index);
    let f = Fields::of(value, place)?;
    let mut rxpk = Rxpk {
        time: f.string("time")?,
        tmst: f.int("tmst", "an unsigned 32-bit integer")?,
        freq: f.number("freq")?,
        chan: f.int("chan", "an integer 0 to 255")?,
        rfch: f.int("rfch", "an integer 0 to 255")?,
        stat: f.int("stat", "an integer -128 to 127")?,
        modu: f.string("modu")?,
        datr: f.get(
            "datr",
            "a string (LoRa) or an unsigned integer (FSK bit rate)",
            |v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => n.as_u64().map(|n| n.to_string()),
                _ => None,
            },
        )?,
        codr: f.string("codr")?,
        rssi: f.int("rssi", "a 32-bit integer")?,
        lsnr: f.number("lsnr")?,
        size: f.int("size", "an integer 0 to 65535")?,
        data: Vec::new(),
    };
    let text = f
        .get("data", "a string", Value::as_str)?
        .ok_or(SemtechError::MissingField {
            place,
            field: "data",
        })?;
    rxpk.data = RXPK_BASE64
        .decode(text)
        .map_err(|reason| SemtechError::Base64 { index, reason })?;
    if let Some(size) = rxpk.size
        && usize::from(size) != rxpk.data.len()
    {
        return Err(SemtechError::SizeMismatch {
            index,
            size,
            decoded: rxpk.data.len(),
        });
    }
    Ok(rxpk)
}

fn stat(value: &Value) -> Result<Stat, SemtechError> {
    let f = Fields::of(value, Place::Stat)?;
    let count = "an unsigned 32-bit integer";
    Ok(Stat {
        time: f.string("time")?,
        lati: f.number("lati")?,
        long: f.number("long")?,
        alti: f.int("alti", "a 32-bit integer")?,
        rxnb: f.int("rxnb", count)?,
        rxok: f.int("rxok", count)?,
        rxfw: f.int("rxfw", count)?,
        ackr: f.number("ackr")?,
        dwnb: f.int("dwnb", count)?,
        txnb: f.int("txnb", count)?,
    })
}

/// `txpk_ack.error`, with `"NONE"` (scheduled) as `None`. A `warn` (sx1302 forwarders: power was reduced, the
/// packet is still sent) is not an error and is ignored.
fn tx_ack_error(root: &Map<String, Value>) -> Result<Option<String>, SemtechError> {
    let ack = root.get("txpk_ack").ok_or(SemtechError::MissingField {
        place: Place::Root,
        field: "txpk_ack",
    })?;
    let error = Fields::of(ack, Place::TxpkAck)?.string("error")?;
    Ok(error.filter(|e| e != "NONE"))
}

/// One JSON object being read, so that errors can say which field of which object was wrong.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    place: Place,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, place: Place) -> Result<Self, SemtechError> {
        match value {
            Value::Object(map) => Ok(Self { map, place }),
            _ => Err(SemtechError::NotAnObject { place }),
        }
    }

    /// A missing or `null` field is `None`; a present one must satisfy `read`.
    fn get<T>(
        &self,
        field: &'static str,
        expected: &'static str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, SemtechError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => read(value).map(Some).ok_or(SemtechError::InvalidField {
                place: self.place,
                field,
                expected,
            }),
        }
    }

    fn string(&self, field: &'static str) -> Result<Option<String>, SemtechError> {
        self.get(field, "a string", |v| v.as_str().map(str::to_owned))
    }

    fn number(&self, field: &'static str) -> Result<Option<f64>, SemtechError> {
        self.get(field, "a number", Value::as_f64)
    }

    /// An integer that fits `T` (a number written with a fraction or exponent does not).
    fn int<T: TryFrom<i64>>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, SemtechError> {
        self.get(field, expected, |v| {
            v.as_i64().and_then(|n| T::try_from(n).ok())
        })
    }
}

#[cfg(test)]
#[path = "semtech_tests.rs"]
mod tests;
