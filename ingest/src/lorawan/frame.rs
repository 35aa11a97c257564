//! LoRaWAN 1.0.x frames and sessions on top of the `lorawan` crate (=0.9.0): data-up decoding with the full
//! 32-bit frame counter, MIC check, replay protection and FRMPayload decryption; OTAA join-request
//! verification, join-accept building and session-key derivation.
//!
//! Byte order: identifiers are held the way people write them (most significant byte first, as printed on a
//! device label); frames carry them least significant byte first, and `from_wire`/`to_wire` convert. AppNonce,
//! NetID and keys are taken as they appear in the frame.
//!
//! Outside bytes are checked here (MHDR, lengths, FOptsLen) before the crate sees them; the crate is asked only
//! for the MIC, decryption and building, and each such call runs under `catch_unwind`, so a crate bug becomes
//! [`FrameError::CratePanic`] instead of a dead listener. MAC commands are never parsed: the crate's iterator
//! panics on truncated ones (DESIGN §4); [`Uplink::fopts_len`] only says they are there.
use lorawan::creator::{DataPayloadCreator, JoinAcceptCreator};
use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::{AES128, CryptoFactory, Encrypter};
use lorawan::maccommands::SerializableMacCommand;
use lorawan::parser::{EncryptedDataPayload, FCtrl, JoinRequestPayload};
use std::fmt;
use std::ops::Range;
use std::panic::{UnwindSafe, catch_unwind};
use std::str::FromStr;

use bydata_schemas::lorawan::parse_hex;
pub use bydata_schemas::lorawan::{AppKey, AppSKey, DevAddr, NwkSKey, ParseHexError};
pub use down::{DataDown, build_downlink};

#[path = "frame_down.rs"]
mod down;

/// The largest forward jump of the frame counter accepted between two uplinks of a session; a device that
/// lost more frames than this must rejoin (ABP: be reset by its operator).
pub const MAX_FCNT_GAP: u32 = 16_384;

/// The largest FRMPayload [`build_uplink`] writes: a PHYPayload is at most 255 bytes, and MHDR, FHDR, FPort
/// and MIC take 13 of them.
pub const MAX_PAYLOAD_LEN: usize = 242;

const MHDR_LEN: usize = 1;
const FHDR_MIN_LEN: usize = 7;
const MIC_LEN: usize = 4;
const DATA_MIN_LEN: usize = MHDR_LEN + FHDR_MIN_LEN + MIC_LEN;
const JOIN_REQUEST_LEN: usize = 23;
const JOIN_ACCEPT_LEN: usize = 17;
const MTYPE_JOIN_REQUEST: u8 = 0b000;
const MTYPE_UNCONFIRMED_UP: u8 = 0b010;
const MTYPE_CONFIRMED_UP: u8 = 0b100;

/// Why a frame was rejected. [`FrameError::code`] is the stable label the platform counts rejects by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too short: {len} bytes, at least {min} needed")]
    TooShort { len: usize, min: usize },
    #[error("unsupported LoRaWAN major version {major} (only LoRaWAN R1 is known)")]
    UnsupportedMajor { major: u8 },
    #[error("not a data-up frame (MType {mtype:#05b})")]
    NotDataUp { mtype: u8 },
    #[error("not a join-request (MType {mtype:#05b})")]
    NotJoinRequest { mtype: u8 },
    #[error("frame is for DevAddr {got}, the session is for {expected}")]
    UnknownDevAddr { got: DevAddr, expected: DevAddr },
    #[error("MIC check failed (wrong key, or the frame was altered)")]
    BadMic,
    #[error("replayed frame counter {got} (last accepted {last})")]
    Replay { got: u32, last: u32 },
    #[error(
        "frame counter gap too large: 16-bit counter {fcnt16} is more than {MAX_FCNT_GAP} past the last \
         accepted {last}; the device must rejoin"
    )]
    FcntGap { fcnt16: u16, last: u32 },
    #[error("malformed frame: {reason}")]
    Malformed { reason: &'static str },
    #[error("the lorawan crate panicked on this frame")]
    CratePanic,
    #[error("payload of {got} bytes does not fit a frame (at most {max})")]
    PayloadTooLong { got: usize, max: usize },
    #[error("FPort {fport} cannot carry application data (1 to 223 can)")]
    InvalidFPort { fport: u8 },
}

impl FrameError {
    /// A stable, machine-readable label for metrics and logs; never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::TooShort { .. } => "too_short",
            FrameError::UnsupportedMajor { .. } => "unsupported_major",
            FrameError::NotDataUp { .. } => "not_data_up",
            FrameError::NotJoinRequest { .. } => "not_join_request",
            FrameError::UnknownDevAddr { .. } => "unknown_dev_addr",
            FrameError::BadMic => "bad_mic",
            FrameError::Replay { .. } => "replay",
            FrameError::FcntGap { .. } => "fcnt_gap",
            FrameError::Malformed { .. } => "malformed",
            FrameError::CratePanic => "crate_panic",
            FrameError::PayloadTooLong { .. } => "payload_too_long",
            FrameError::InvalidFPort { .. } => "invalid_fport",
        }
    }
}

/// The `lorawan` crate's cipher for one of our keys.
fn aes(key: &[u8; 16]) -> AES128 {
    AES128(*key)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

macro_rules! eui64 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Held most significant byte first, as written (`70b3d57ed0012345`); frames carry it reversed.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 8]);

        impl $name {
            /// The EUI from its bytes in written order.
            pub const fn new(bytes: [u8; 8]) -> Self {
                Self(bytes)
            }

            /// The bytes in written order.
            pub const fn as_bytes(&self) -> &[u8; 8] {
                &self.0
            }

            /// The EUI from the eight bytes as they appear in a frame.
            pub fn from_wire(mut bytes: [u8; 8]) -> Self {
                bytes.reverse();
                Self(bytes)
            }

            /// The eight bytes as they appear in a frame.
            pub fn to_wire(self) -> [u8; 8] {
                let mut bytes = self.0;
                bytes.reverse();
                bytes
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseHexError;
            fn from_str(s: &str) -> Result<Self, ParseHexError> {
                parse_hex(s).map(Self)
            }
        }
    };
}

eui64!(
    /// A device's EUI-64.
    DevEui
);
eui64!(
    /// The JoinEUI (LoRaWAN 1.0.x calls it AppEUI) a device sends in its join-request.
    JoinEui
);

/// A LoRaWAN 1.0.x session of one device: its address, keys and frame counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The address the device sends from.
    pub dev_addr: DevAddr,
    /// Checks the MIC of every frame; decrypts FPort 0.
    pub nwk_s_key: NwkSKey,
    /// Decrypts FPort 1..=255.
    pub app_s_key: AppSKey,
    /// The last accepted full uplink counter; `None` until the session's first uplink.
    pub fcnt_up: Option<u32>,
    /// The next downlink counter.
    pub fcnt_down: u32,
}

impl Session {
    /// Records an uplink [`decode_uplink`] accepted, so its counter (and every older one) counts as a replay
    /// from now on. Never moves the counter backwards.
    pub fn accept(&mut self, fcnt: u32) {
        self.fcnt_up = Some(self.fcnt_up.map_or(fcnt, |last| last.max(fcnt)));
    }
}

/// A data-up frame whose MIC and frame counter checked out, with its FRMPayload decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The sender, equal to the session's.
    pub dev_addr: DevAddr,
    /// The full 32-bit frame counter; pass it to [`Session::accept`].
    pub fcnt: u32,
    /// `None` when the frame has no FPort (MAC commands in FOpts only).
    pub fport: Option<u8>,
    /// The decrypted FRMPayload: application data, or MAC commands on FPort 0 (not parsed).
    pub payload: Vec<u8>,
    /// Confirmed data up: the device expects an ACK.
    pub confirmed: bool,
    /// The device runs adaptive data rate.
    pub adr: bool,
    /// The device asks for a downlink to confirm the network still hears it (ADRACKReq).
    pub adr_ack_req: bool,
    /// The device acknowledges the last confirmed downlink.
    pub ack: bool,
    /// Bytes of MAC commands in FOpts (not parsed here).
    pub fopts_len: u8,
}

/// The fields of a data-up frame that can be read before the MIC is checked (and so are not yet trusted).
struct DataUpHeader {
    confirmed: bool,
    dev_addr: DevAddr,
    fctrl: u8,
    fcnt16: u16,
    fport: Option<u8>,
    payload: Range<usize>,
}

fn check_major(mhdr: u8) -> Result<(), FrameError> {
    match mhdr & 0b11 {
        0 => Ok(()),
        major => Err(FrameError::UnsupportedMajor { major }),
    }
}

fn parse_data_up(phy: &[u8]) -> Result<DataUpHeader, FrameError> {
    let too_short = |min| FrameError::TooShort {
        len: phy.len(),
        min,
    };
    let &mhdr = phy.first().ok_or(too_short(DATA_MIN_LEN))?;
    check_major(mhdr)?;
    let confirmed = match mhdr >> 5 {
        MTYPE_UNCONFIRMED_UP => false,
        MTYPE_CONFIRMED_UP => true,
        mtype => return Err(FrameError::NotDataUp { mtype }),
    };
    let &[_, a0, a1, a2, a3, fctrl, c0, c1, ..] = phy else {
        return Err(too_short(DATA_MIN_LEN));
    };
    let fhdr_end = MHDR_LEN + FHDR_MIN_LEN + usize::from(fctrl & 0x0f);
    let mic_start = phy.len().saturating_sub(MIC_LEN);
    if mic_start < fhdr_end {
        return Err(too_short(fhdr_end + MIC_LEN));
    }
    // FPort is the byte after FHDR, when one is left before the MIC; it may be followed by no payload.
    let fport = phy
        .get(fhdr_end..mic_start)
        .and_then(|rest| rest.first().copied());
    let payload = if fport.is_some() {
        fhdr_end + 1..mic_start
    } else {
        mic_start..mic_start
    };
    Ok(DataUpHeader {
        confirmed,
        dev_addr: DevAddr::from_wire([a0, a1, a2, a3]),
        fctrl,
        fcnt16: u16::from_le_bytes([c0, c1]),
        fport,
        payload,
    })
}

/// What the 16-bit counter of a frame means against the session's last accepted counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FcntCheck {
    /// The next counter: accept if the MIC holds.
    Next(u32),
    /// At or behind the last accepted counter, within [`MAX_FCNT_GAP`].
    Replay(u32),
    /// Too far ahead (or behind); the candidate is the nearest counter ahead, if one exists.
    Gap(Option<u32>),
}

fn check_fcnt(last: Option<u32>, fcnt16: u16) -> FcntCheck {
    let Some(last) = last else {
        return FcntCheck::Next(u32::from(fcnt16));
    };
    // Distances in 16-bit arithmetic: how far the frame is ahead of, or behind, the last counter.
    let last16 = last as u16; // the low half, deliberately truncated
    let ahead = u32::from(fcnt16.wrapping_sub(last16));
    let behind = u32::from(last16.wrapping_sub(fcnt16));
    if (1..=MAX_FCNT_GAP).contains(&ahead) {
        return match last.checked_add(ahead) {
            Some(full) => FcntCheck::Next(full),
            None => FcntCheck::Gap(None),
        };
    }
    match last.checked_sub(behind) {
        Some(full) if behind <= MAX_FCNT_GAP => FcntCheck::Replay(full),
        _ => FcntCheck::Gap(last.checked_add(ahead)),
    }
}

/// Runs a call into the `lorawan` crate, turning a panic into [`FrameError::CratePanic`].
fn shielded<T>(call: impl FnOnce() -> T + UnwindSafe) -> Result<T, FrameError> {
    catch_unwind(call).map_err(|_| FrameError::CratePanic)
}

fn from_crate(err: lorawan::parser::Error) -> FrameError {
    match err {
        lorawan::parser::Error::InvalidMic => FrameError::BadMic,
        // The checks before each call leave the crate nothing else to object to.
        _ => FrameError::Malformed {
            reason: "rejected by the lorawan parser",
        },
    }
}

fn data_mic_ok(phy: &[u8], key: &NwkSKey, fcnt: u32) -> Result<bool, FrameError> {
    let key = aes(key.as_bytes());
    shielded(|| EncryptedDataPayload::new(phy).map(|frame| frame.validate_mic(&key, fcnt)))?
        .map_err(from_crate)
}

/// Decodes a LoRaWAN 1.0.x data-up frame (`phy`, the PHYPayload) of `session`.
///
/// In order: MHDR, lengths and FOptsLen; the DevAddr against the session; the full 32-bit counter from the
/// frame's 16 bits (the smallest counter above the last accepted one with those low bits, at most
/// [`MAX_FCNT_GAP`] ahead; the first frame of a session is taken as is, in the counter's first 65536); the
/// MIC with that counter, so every later verdict — replay, gap, content — is about an authentic frame; then
/// decryption (AppSKey for FPort > 0, NwkSKey for FPort 0). The session is not changed: on success the caller
/// calls [`Session::accept`] with [`Uplink::fcnt`]. A frame heard by two gateways is a replay the second time,
/// so deduplicate before calling this.
pub fn decode_uplink(phy: &[u8], session: &Session) -> Result<Uplink, FrameError> {
    let header = parse_data_up(phy)?;
    if header.dev_addr != session.dev_addr {
        return Err(FrameError::UnknownDevAddr {
            got: header.dev_addr,
            expected: session.dev_addr,
        });
    }
    let check = check_fcnt(session.fcnt_up, header.fcnt16);
    let candidate = match check {
        FcntCheck::Next(full) | FcntCheck::Replay(full) | FcntCheck::Gap(Some(full)) => Some(full),
        FcntCheck::Gap(None) => None,
    };
    if let Some(full) = candidate
        && !data_mic_ok(phy, &session.nwk_s_key, full)?
    {
        return Err(FrameError::BadMic);
    }
    let last = session.fcnt_up.unwrap_or_default();
    let fcnt = match check {
        FcntCheck::Next(full) => full,
        FcntCheck::Replay(got) => return Err(FrameError::Replay { got, last }),
        FcntCheck::Gap(_) => {
            return Err(FrameError::FcntGap {
                fcnt16: header.fcnt16,
                last,
            });
        }
    };
    let fopts_len = header.fctrl & 0x0f;
    if header.fport == Some(0) && fopts_len > 0 {
        return Err(FrameError::Malformed {
            reason: "MAC commands in both FOpts and an FPort 0 payload",
        });
    }
    let (nwk, app) = (
        aes(session.nwk_s_key.as_bytes()),
        aes(session.app_s_key.as_bytes()),
    );
    let plain = shielded(|| {
        EncryptedDataPayload::new(phy.to_vec())
            .and_then(|frame| frame.decrypt(Some(&nwk), Some(&app), fcnt))
            .map(|frame| frame.to_inner())
    })?
    .map_err(from_crate)?;
    let payload = plain.get(header.payload).ok_or(FrameError::Malformed {
        reason: "payload out of range",
    })?;
    let fctrl = FCtrl::new(header.fctrl, true);
    Ok(Uplink {
        dev_addr: header.dev_addr,
        fcnt,
        fport: header.fport,
        payload: payload.to_vec(),
        confirmed: header.confirmed,
        adr: fctrl.adr(),
        adr_ack_req: fctrl.adr_ack_req(),
        ack: fctrl.ack(),
        fopts_len,
    })
}

/// FRMPayload bytes handed to the crate's creator as one "MAC command" (first byte as CID), which is how it
/// accepts an FPort 0 payload: it refuses application data on FPort 0.
struct RawMacCommands<'a>(&'a [u8]);

impl SerializableMacCommand for RawMacCommands<'_> {
    fn payload_bytes(&self) -> &[u8] {
        self.0.get(1..).unwrap_or_default()
    }
    fn cid(&self) -> u8 {
        self.0.first().copied().unwrap_or_default()
    }
    fn payload_len(&self) -> usize {
        self.0.len().saturating_sub(1)
    }
}

/// Builds an encrypted, MIC'd data-up PHYPayload of `session` with the full counter `fcnt`, as a device would
/// (used by tests and the firmware simulator). FPort 0 payloads are encrypted with the NwkSKey, others with
/// the AppSKey; no FOpts, no FCtrl flags.
pub fn build_uplink(
    session: &Session,
    fcnt: u32,
    fport: u8,
    payload: &[u8],
    confirmed: bool,
) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(FrameError::PayloadTooLong {
            got: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    let mut creator = DataPayloadCreator::new();
    creator
        .set_confirmed(confirmed)
        .set_uplink(true)
        .set_f_port(fport)
        .set_dev_addr(&session.dev_addr.to_wire())
        .set_fctrl(&FCtrl::new(0, true))
        .set_fcnt(fcnt);
    let raw = RawMacCommands(payload);
    let (data, cmds): (&[u8], Vec<&dyn SerializableMacCommand>) =
        if fport == 0 && !payload.is_empty() {
            (&[], vec![&raw as &dyn SerializableMacCommand])
        } else {
            (payload, Vec::new())
        };
    let nwk = lorawan::keys::NewSKey::from(*session.nwk_s_key.as_bytes());
    let app = lorawan::keys::AppSKey::from(*session.app_s_key.as_bytes());
    match creator.build(data, &cmds, &nwk, &app) {
        Ok(frame) => Ok(frame.to_vec()),
        // Unreachable with the checks above; kept as an error rather than a panic.
        Err(_) => Err(FrameError::Malformed {
            reason: "the lorawan creator refused the frame",
        }),
    }
}

/// A join-request whose MIC checked out under the device's AppKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinRequest {
    /// The JoinEUI (AppEUI) the device was provisioned with.
    pub join_eui: JoinEui,
    /// The device's EUI, identifying it.
    pub dev_eui: DevEui,
    /// As a number (the frame carries it least significant byte first; the crate's `u16::from` is reversed).
    pub dev_nonce: u16,
}

/// Verifies a LoRaWAN 1.0.x join-request (`phy`, 23 bytes) with the device's AppKey. DevNonce reuse is the
/// caller's to check (the registry keeps each device's used nonces: `Registry::complete_join`).
pub fn verify_join_request(phy: &[u8], app_key: &AppKey) -> Result<JoinRequest, FrameError> {
    let &mhdr = phy.first().ok_or(FrameError::TooShort {
        len: 0,
        min: JOIN_REQUEST_LEN,
    })?;
    check_major(mhdr)?;
    if mhdr >> 5 != MTYPE_JOIN_REQUEST {
        return Err(FrameError::NotJoinRequest { mtype: mhdr >> 5 });
    }
    let fields: &[u8; JOIN_REQUEST_LEN] = phy.try_into().map_err(|_| match phy.len() {
        len if len < JOIN_REQUEST_LEN => FrameError::TooShort {
            len,
            min: JOIN_REQUEST_LEN,
        },
        _ => FrameError::Malformed {
            reason: "a join-request is 23 bytes",
        },
    })?;
    let key = aes(app_key.as_bytes());
    let mic_ok =
        shielded(|| JoinRequestPayload::new(&fields[..]).map(|req| req.validate_mic(&key)))?;
    if !mic_ok.map_err(from_crate)? {
        return Err(FrameError::BadMic);
    }
    let [
        _,
        j0,
        j1,
        j2,
        j3,
        j4,
        j5,
        j6,
        j7,
        d0,
        d1,
        d2,
        d3,
        d4,
        d5,
        d6,
        d7,
        n0,
        n1,
        ..,
    ] = *fields;
    Ok(JoinRequest {
        join_eui: JoinEui::from_wire([j0, j1, j2, j3, j4, j5, j6, j7]),
        dev_eui: DevEui::from_wire([d0, d1, d2, d3, d4, d5, d6, d7]),
        dev_nonce: u16::from_le_bytes([n0, n1]),
    })
}

/// Builds the encrypted join-accept PHYPayload (17 bytes, no CFList) answering a join-request.
/// `app_nonce` and `net_id` are in frame order (least significant byte first); `dl_settings` and `rx_delay`
/// are the raw DLSettings and RxDelay bytes.
pub fn build_join_accept(
    app_key: &AppKey,
    app_nonce: [u8; 3],
    net_id: [u8; 3],
    dev_addr: DevAddr,
    dl_settings: u8,
    rx_delay: u8,
) -> Vec<u8> {
    let mut creator = JoinAcceptCreator::new();
    creator
        .set_app_nonce(&app_nonce)
        .set_net_id(&net_id)
        .set_dev_addr(&dev_addr.to_wire())
        .set_dl_settings(dl_settings)
        .set_rx_delay(rx_delay);
    match creator.build(&aes(app_key.as_bytes())) {
        // The creator returns its whole 33-byte buffer even without a CFList; the frame is the first 17.
        Ok(buffer) => buffer.get(..JOIN_ACCEPT_LEN).unwrap_or(buffer).to_vec(),
        Err(_) => unreachable!("JoinAcceptCreator::new() allocates 33 bytes and build() needs 17"),
    }
}

fn aes128_encrypt(key: &AppKey, block: [u8; 16]) -> [u8; 16] {
    let cipher = DefaultFactory.new_enc(&aes(key.as_bytes()));
    let mut block = block.into();
    Encrypter::encrypt_block(&cipher, &mut block);
    block.into()
}

/// Derives the session of a device that joined (LoRaWAN 1.0.x: `aes128_encrypt(AppKey, 0x01 | AppNonce |
/// NetID | DevNonce | pad16)` is the NwkSKey, with 0x02 the AppSKey). `app_nonce` and `net_id` in frame order,
/// as given to [`build_join_accept`]. Counters start fresh.
pub fn derive_session(
    app_key: &AppKey,
    app_nonce: [u8; 3],
    net_id: [u8; 3],
    dev_nonce: u16,
    dev_addr: DevAddr,
) -> Session {
    let [n0, n1] = dev_nonce.to_le_bytes();
    let [a0, a1, a2] = app_nonce;
    let [i0, i1, i2] = net_id;
    let block = |kind| [kind, a0, a1, a2, i0, i1, i2, n0, n1, 0, 0, 0, 0, 0, 0, 0];
    Session {
        dev_addr,
        nwk_s_key: NwkSKey::new(aes128_encrypt(app_key, block(0x01))),
        app_s_key: AppSKey::new(aes128_encrypt(app_key, block(0x02))),
        fcnt_up: None,
        fcnt_down: 0,
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
