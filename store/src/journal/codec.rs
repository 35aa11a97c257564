//! Record framing: `[len: u32 LE][crc32: u32 LE of body][body]`, the body starting with a kind byte that also
//! versions the layout. Pure: bytes in, an entry or a reason out.

use super::{Error, Result};
use bydata_schemas::{DeviceId, EdgeRejection, JournalEntry, RejectReason, Source, Uplink};
use std::io::{self, Read};

pub(crate) const HEADER_LEN: usize = 8;

/// Bounds what a corrupt length field can make a reader allocate; no legitimate entry comes near it (the MQTT
/// edge caps payloads far lower).
pub(crate) const MAX_BODY_LEN: usize = 16 * 1024 * 1024;

const KIND_UPLINK_V1: u8 = 1;
const KIND_REJECTED_V1: u8 = 2;
/// An uplink with radio receptions (JSON) after the payload. Written by bydata before the FPort had a field
/// of its own (the FPort was then the topic `lorawan/{fport}`); still read.
const KIND_UPLINK_V2: u8 = 3;
/// A LoRaWAN uplink: v1's fields, then the FPort (a presence byte, then the port) and the radio receptions
/// (JSON, empty when none). Written for LoRaWAN sources and uplinks with an FPort; MQTT and HTTP uplinks
/// keep the smaller v1 layout.
const KIND_UPLINK_V3: u8 = 4;

/// Encodes one entry as a complete record, so that appending it is a single write.
pub(crate) fn encode(entry: &JournalEntry) -> Result<Vec<u8>> {
    let mut out = vec![0; HEADER_LEN];
    match entry {
        JournalEntry::Uplink(u) => {
            let kind = if u.fport.is_some() || over_lorawan(u.source) {
                KIND_UPLINK_V3
            } else if u.radio.is_empty() {
                KIND_UPLINK_V1
            } else {
                KIND_UPLINK_V2
            };
            out.push(kind);
            out.extend_from_slice(&u.received_at.to_le_bytes());
            out.push(u.source.as_u8());
            put_str16(&mut out, "device id", u.device.as_str())?;
            put_str16(&mut out, "topic", &u.topic)?;
            put_bytes32(&mut out, "payload", &u.payload)?;
            if kind == KIND_UPLINK_V3 {
                match u.fport {
                    Some(fport) => out.extend_from_slice(&[1, fport]),
                    None => out.push(0),
                }
            }
            if kind != KIND_UPLINK_V1 {
                let radio = if u.radio.is_empty() {
                    Vec::new()
                } else {
                    serde_json::to_vec(&u.radio).map_err(|source| Error::Encode { source })?
                };
                put_bytes32(&mut out, "radio receptions", &radio)?;
            }
        }
        JournalEntry::Rejected(r) => {
            out.push(KIND_REJECTED_V1);
            out.extend_from_slice(&r.received_at.to_le_bytes());
            put_str16(&mut out, "device id", r.device.as_str())?;
            let reason =
                serde_json::to_vec(&r.reason).map_err(|source| Error::Encode { source })?;
            put_bytes32(&mut out, "reject reason", &reason)?;
        }
    }
    let body_len = out.len() - HEADER_LEN;
    if body_len > MAX_BODY_LEN {
        return Err(Error::TooLarge {
            field: "record",
            len: body_len,
            max: MAX_BODY_LEN,
        });
    }
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    // Both fit: body_len <= MAX_BODY_LEN < u32::MAX.
    out[..4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn put_str16(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| Error::TooLarge {
        field,
        len: s.len(),
        max: u16::MAX.into(),
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_bytes32(out: &mut Vec<u8>, field: &'static str, b: &[u8]) -> Result<()> {
    let len = u32::try_from(b.len())
        .ok()
        .filter(|&l| l as usize <= MAX_BODY_LEN)
        .ok_or(Error::TooLarge {
            field,
            len: b.len(),
            max: MAX_BODY_LEN,
        })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// What the next bytes of a segment hold.
#[derive(Debug)]
pub(crate) enum Next {
    Record {
        entry: JournalEntry,
        len: u64,
    },
    /// No bytes left.
    End,
    /// A partial record or one whose checksum fails: what a crash mid-write leaves behind.
    Torn(&'static str),
    /// The checksum holds but the body does not decode: not a crash artefact (a bug, or a newer format), so
    /// recovery must not cut it away.
    Undecodable(&'static str),
}

/// Reads the record at the reader's position, looking at no more than `remaining` bytes. `buf` is reused
/// between calls to avoid an allocation per record.
pub(crate) fn read_record(
    r: &mut impl Read,
    remaining: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Next> {
    if remaining == 0 {
        return Ok(Next::End);
    }
    if remaining < HEADER_LEN as u64 {
        return Ok(Next::Torn("partial record header"));
    }
    let mut header = [0u8; HEADER_LEN];
    if let Some(torn) = read_exact_or_torn(r, &mut header, "partial record header")? {
        return Ok(torn);
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len == 0 || len > MAX_BODY_LEN {
        return Ok(Next::Torn("record length out of range"));
    }
    let total = (HEADER_LEN + len) as u64;
    if total > remaining {
        return Ok(Next::Torn("partial record body"));
    }
    buf.clear();
    buf.resize(len, 0);
    if let Some(torn) = read_exact_or_torn(r, buf, "partial record body")? {
        return Ok(torn);
    }
    if crc32fast::hash(buf) != crc {
        return Ok(Next::Torn("record checksum mismatch"));
    }
    Ok(match decode_body(buf) {
        Ok(entry) => Next::Record { entry, len: total },
        Err(reason) => Next::Undecodable(reason),
    })
}

fn read_exact_or_torn(
    r: &mut impl Read,
    buf: &mut [u8],
    reason: &'static str,
) -> io::Result<Option<Next>> {
    match r.read_exact(buf) {
        Ok(()) => Ok(None),
        // The file is shorter than the caller believed: the same thing as a torn tail.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(Next::Torn(reason))),
        Err(e) => Err(e),
    }
}

fn decode_body(body: &[u8]) -> std::result::Result<JournalEntry, &'static str> {
    let mut b = Body(body);
    let entry = match b.u8()? {
        kind @ (KIND_UPLINK_V1 | KIND_UPLINK_V2 | KIND_UPLINK_V3) => {
            let received_at = b.i64()?;
            let source = Source::from_u8(b.u8()?).ok_or("unknown source")?;
            let device = b.device()?;
            let topic = b.str16()?.to_owned();
            let payload = b.bytes32()?.to_vec();
            let fport = match kind {
                KIND_UPLINK_V3 => match b.u8()? {
                    0 => None,
                    1 => Some(b.u8()?),
                    _ => return Err("invalid FPort presence byte"),
                },
                _ => fport_in_topic(source, &topic),
            };
            let radio = match kind {
                KIND_UPLINK_V1 => Vec::new(),
                _ => match b.bytes32()? {
                    [] => Vec::new(),
                    json => serde_json::from_slice(json).map_err(|_| "invalid radio receptions")?,
                },
            };
            JournalEntry::Uplink(Uplink {
                received_at,
                device,
                source,
                topic,
                fport,
                payload,
                radio,
            })
        }
        KIND_REJECTED_V1 => {
            let received_at = b.i64()?;
            let device = b.device()?;
            let reason: RejectReason =
                serde_json::from_slice(b.bytes32()?).map_err(|_| "invalid reject reason")?;
            JournalEntry::Rejected(EdgeRejection {
                received_at,
                device,
                reason,
            })
        }
        _ => return Err("unknown record kind"),
    };
    if !b.0.is_empty() {
        return Err("trailing bytes after entry");
    }
    Ok(entry)
}

/// Whether uplinks from `source` are LoRaWAN frames (which always get the v3 layout, so that a v1 or v2
/// record of such a source is one written before the FPort had a field).
fn over_lorawan(source: Source) -> bool {
    matches!(source, Source::Lorawan | Source::Chirpstack | Source::Tts)
}

/// The FPort of a LoRaWAN uplink journaled before the FPort had a field: its topic was `lorawan/{fport}`.
fn fport_in_topic(source: Source, topic: &str) -> Option<u8> {
    if !over_lorawan(source) {
        return None;
    }
    topic.strip_prefix("lorawan/")?.parse().ok()
}

struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err("entry truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> std::result::Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn i64(&mut self) -> std::result::Result<i64, &'static str> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn str16(&mut self) -> std::result::Result<&'a str, &'static str> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "string is not UTF-8")
    }

    fn bytes32(&mut self) -> std::result::Result<&'a [u8], &'static str> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn device(&mut self) -> std::result::Result<DeviceId, &'static str> {
        DeviceId::new(self.str16()?).map_err(|_| "invalid device id")
    }
}
