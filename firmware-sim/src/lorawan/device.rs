//! Simulated LoRaWAN 1.0.x end devices, pure: state in, PHYPayload bytes out. No I/O and no clock; the only
//! randomness, the DevNonce, comes from a seed.
//!
//! Frames are built by the `lorawan` crate (=0.9.0); its traps are stepped around here:
//! - identifiers are held as written (most significant byte first) and reversed for the wire by hand, never
//!   through the crate's `u32::from(DevAddr)` or `u16::from(DevNonce)`, which read the bytes big-endian;
//! - `DataPayloadCreator::set_fcnt` writes only the low 16 bits but MICs the full 32: it gets the full counter;
//! - the creator refuses application data on FPort 0 and panics on an overlong payload: both are checked
//!   before it is called;
//! - a device *decrypts* a JoinAccept with AES *encrypt* (the server encrypted it with AES decrypt), which
//!   `DecryptedJoinAcceptPayload::new` does, checking the MIC too; as the JoinAccept is outside bytes, its
//!   length and MHDR are checked first and the call runs under `catch_unwind`.
use bydata_schemas::Eui64;
pub use bydata_schemas::lorawan::{AppKey, AppSKey, DevAddr, NwkSKey};
use lorawan::creator::{DataPayloadCreator, JoinRequestCreator};
use lorawan::parser::{DecryptedJoinAcceptPayload, DevNonce, FCtrl};

use std::panic::{AssertUnwindSafe, catch_unwind};

/// The largest FRMPayload of an uplink: a PHYPayload is at most 255 bytes, and MHDR, FHDR (no FOpts), FPort
/// and MIC take 13 of them.
pub const MAX_PAYLOAD_LEN: usize = 242;

const JOIN_ACCEPT_LEN: usize = 17;
const JOIN_ACCEPT_WITH_CFLIST_LEN: usize = 33;
/// MType 001 (join-accept), major 0 (LoRaWAN R1).
const MHDR_JOIN_ACCEPT: u8 = 0x20;
/// FCtrl bits of an uplink: ADR, and ACK (the last confirmed downlink was received).
const FCTRL_ADR: u8 = 0x80;
const FCTRL_ACK: u8 = 0x20;

/// Why a device could not build a frame or take a join-accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("FPort {fport} cannot carry application data (1 to 223 can)")]
    InvalidFPort { fport: u8 },
    #[error("payload of {got} bytes does not fit a frame (at most {max})")]
    PayloadTooLong { got: usize, max: usize },
    #[error(
        "the 32-bit uplink frame counter is used up; the device must rejoin or be re-provisioned"
    )]
    FcntExhausted,
    #[error("the device has not joined yet")]
    NotJoined,
    #[error("no join-request of this device is waiting for an answer")]
    NoJoinPending,
    #[error(
        "not a LoRaWAN 1.0 join-accept: {len} bytes, MHDR {mhdr:?} (expected 17 or 33 bytes, MHDR 0x20)"
    )]
    NotJoinAccept { len: usize, mhdr: Option<u8> },
    #[error("join-accept MIC check failed (it is for another device, or was altered)")]
    BadMic,
    #[error("the lorawan crate panicked on a join-accept")]
    CratePanic,
    #[error("not a data-down frame for this device: {reason}")]
    NotForThisDevice { reason: &'static str },
    #[error("downlink MIC check failed (another device's frame with the same DevAddr, or altered)")]
    DownlinkBadMic,
    #[error("replayed downlink frame counter {got} (last received {last})")]
    DownlinkReplay { got: u32, last: u32 },
}

/// A device's LoRaWAN 1.0.x session: its address and session keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub dev_addr: DevAddr,
    pub nwk_s_key: NwkSKey,
    pub app_s_key: AppSKey,
}

/// An EUI as it appears in a frame (least significant byte first).
fn eui_wire(eui: Eui64) -> [u8; 8] {
    let mut bytes = eui.to_bytes();
    bytes.reverse();
    bytes
}

/// An activated device (ABP, or OTAA after its join): builds data-up frames (unconfirmed or confirmed),
/// counting FCnt, and takes the data-down frames meant for it (`downlink.rs`).
#[derive(Debug, Clone)]
pub struct AbpDevice {
    dev_eui: Eui64,
    session: Session,
    /// The counter of the next uplink.
    fcnt_up: Option<u32>,
    adr: bool,
    /// What the device knows of its downlinks.
    pub(super) down: super::downlink::DownState,
}

impl AbpDevice {
    /// A device with its session; its first uplink has FCnt 0. ADR is off.
    pub fn new(dev_eui: Eui64, dev_addr: DevAddr, nwk_s_key: NwkSKey, app_s_key: AppSKey) -> Self {
        Self {
            dev_eui,
            session: Session {
                dev_addr,
                nwk_s_key,
                app_s_key,
            },
            fcnt_up: Some(0),
            adr: false,
            down: Default::default(),
        }
    }

    /// Sets the ADR bit in the FCtrl of every uplink (the device says it runs adaptive data rate).
    pub fn with_adr(mut self, adr: bool) -> Self {
        self.adr = adr;
        self
    }

    /// Continues from a known counter (e.g. after a restart of a device that keeps it in flash).
    pub fn with_fcnt_up(mut self, next: u32) -> Self {
        self.fcnt_up = Some(next);
        self
    }

    pub fn dev_eui(&self) -> Eui64 {
        self.dev_eui
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The full 32-bit counter the next uplink will carry (`None` once all 2³² are used).
    pub fn fcnt_up(&self) -> Option<u32> {
        self.fcnt_up
    }

    /// The next unconfirmed data-up PHYPayload: `payload` on `fport` (1..=223), encrypted with the AppSKey,
    /// MIC'd with the NwkSKey and the full counter; FCnt advances only when a frame is built. FCtrl.ACK is set
    /// when a confirmed downlink was received since the last uplink.
    pub fn uplink(&mut self, fport: u8, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        self.data_up(fport, payload, false)
    }

    /// [`AbpDevice::uplink`] as confirmed data up (MType 100): the network answers with ACK set.
    pub fn confirmed_uplink(&mut self, fport: u8, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        self.data_up(fport, payload, true)
    }

    fn data_up(
        &mut self,
        fport: u8,
        payload: &[u8],
        confirmed: bool,
    ) -> Result<Vec<u8>, FrameError> {
        let fcnt = self.fcnt_up.ok_or(FrameError::FcntExhausted)?;
        let flags = Flags {
            adr: self.adr,
            ack: self.down.ack_due,
            confirmed,
        };
        let phy = build_data_up(&self.session, fcnt, fport, payload, flags)?;
        self.fcnt_up = fcnt.checked_add(1);
        self.down.uplink_sent(confirmed);
        Ok(phy)
    }
}

/// The MHDR and FCtrl flags of a data-up frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) adr: bool,
    pub(crate) ack: bool,
    pub(crate) confirmed: bool,
}

/// A data-up frame of `session` with the full counter `fcnt`; no FOpts.
pub(crate) fn build_data_up(
    session: &Session,
    fcnt: u32,
    fport: u8,
    payload: &[u8],
    flags: Flags,
) -> Result<Vec<u8>, FrameError> {
    // 0 is MAC commands only, 224 the certification protocol, 225.. reserved.
    if !(1..=223).contains(&fport) {
        return Err(FrameError::InvalidFPort { fport });
    }
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(FrameError::PayloadTooLong {
            got: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    let mut fctrl = 0;
    if flags.adr {
        fctrl |= FCTRL_ADR;
    }
    if flags.ack {
        fctrl |= FCTRL_ACK;
    }
    let mut creator = DataPayloadCreator::new();
    creator
        .set_confirmed(flags.confirmed)
        .set_uplink(true)
        .set_f_port(fport)
        .set_dev_addr(&session.dev_addr.to_wire())
        .set_fctrl(&FCtrl::new(fctrl, true))
        .set_fcnt(fcnt);
    let nwk = lorawan::keys::NewSKey::from(*session.nwk_s_key.as_bytes());
    let app = lorawan::keys::AppSKey::from(*session.app_s_key.as_bytes());
    match creator.build(payload, &[], &nwk, &app) {
        Ok(phy) => Ok(phy.to_vec()),
        // The checks above leave the creator nothing to refuse: FPort is set and not 0, no MAC commands, and
        // the payload fits its 256-byte buffer.
        Err(_) => Err(FrameError::PayloadTooLong {
            got: payload.len(),
            max: MAX_PAYLOAD_LEN,
        }),
    }
}

/// Where a device's DevNonces come from: a seeded permutation of the 65536 values, so a device never repeats
/// one (until it has used them all, the limit of LoRaWAN 1.0.x itself) and a replay gives the same sequence.
#[derive(Debug, Clone)]
struct DevNonces {
    keys: [u16; 4],
    issued: u16,
}

impl DevNonces {
    fn new(seed: u64) -> Self {
        let mixed = crate::plan::mix(seed);
        Self {
            keys: [
                mixed as u16,
                (mixed >> 16) as u16 | 1,
                (mixed >> 32) as u16,
                (mixed >> 48) as u16 | 1,
            ],
            issued: 0,
        }
    }

    /// The `i`-th nonce: xor, multiply by an odd number, xor-shift and add are each a bijection of u16, so their
    /// composition is too.
    fn permute(&self, i: u16) -> u16 {
        let [k0, k1, k2, k3] = self.keys;
        let mut x = i ^ k0;
        x = x.wrapping_mul(k1);
        x ^= x >> 7;
        x = x.wrapping_add(k2);
        x = x.wrapping_mul(k3);
        x ^ (x >> 9)
    }

    fn next(&mut self) -> u16 {
        let nonce = self.permute(self.issued);
        self.issued = self.issued.wrapping_add(1);
        nonce
    }
}

/// An over-the-air-activated device (LoRaWAN 1.0.x): joins with its DevEUI, JoinEUI and AppKey, then sends
/// like an [`AbpDevice`] with the session the join gave it. A new join replaces the session (FCnt from 0).
#[derive(Debug, Clone)]
pub struct OtaaDevice {
    dev_eui: Eui64,
    join_eui: Eui64,
    app_key: AppKey,
    nonces: DevNonces,
    /// The DevNonce of the last join-request, until a join-accept answers it.
    pending: Option<u16>,
    joined: Option<AbpDevice>,
    adr: bool,
}

impl OtaaDevice {
    /// A device that has not joined; `seed` fixes its DevNonce sequence.
    pub fn new(dev_eui: Eui64, join_eui: Eui64, app_key: AppKey, seed: u64) -> Self {
        Self {
            dev_eui,
            join_eui,
            app_key,
            nonces: DevNonces::new(seed),
            pending: None,
            joined: None,
            adr: false,
        }
    }

    /// Sets the ADR bit in the uplinks of every session.
    pub fn with_adr(mut self, adr: bool) -> Self {
        self.adr = adr;
        self
    }

    pub fn dev_eui(&self) -> Eui64 {
        self.dev_eui
    }

    pub fn join_eui(&self) -> Eui64 {
        self.join_eui
    }

    pub fn app_key(&self) -> &AppKey {
        &self.app_key
    }

    /// The DevNonce of the join-request waiting for its join-accept, if any.
    pub fn pending_dev_nonce(&self) -> Option<u16> {
        self.pending
    }

    pub fn is_joined(&self) -> bool {
        self.joined.is_some()
    }

    /// The session of the last join.
    pub fn session(&self) -> Option<&Session> {
        self.joined.as_ref().map(AbpDevice::session)
    }

    /// The counter the next uplink will carry, once joined.
    pub fn fcnt_up(&self) -> Option<u32> {
        self.joined.as_ref().and_then(AbpDevice::fcnt_up)
    }

    /// A join-request (23 bytes) with a fresh DevNonce; a join-accept is then expected for it (an earlier
    /// request's answer no longer counts). The current session, if any, is kept until a join-accept arrives.
    pub fn join_request(&mut self) -> Vec<u8> {
        let nonce = self.nonces.next();
        self.join_request_with_nonce(nonce)
    }

    /// A join-request with a chosen DevNonce (for published test vectors).
    pub(crate) fn join_request_with_nonce(&mut self, dev_nonce: u16) -> Vec<u8> {
        self.pending = Some(dev_nonce);
        let mut creator = JoinRequestCreator::new();
        creator
            .set_app_eui(&eui_wire(self.join_eui))
            .set_dev_eui(&eui_wire(self.dev_eui))
            // On air least significant byte first; the crate's `From<u16>` would write it big-endian.
            .set_dev_nonce(&dev_nonce.to_le_bytes());
        creator
            .build(&lorawan::keys::AppKey::from(*self.app_key.as_bytes()))
            .to_vec()
    }

    /// Takes a join-accept for the pending join-request: decrypts it with the AppKey, checks its MIC, derives
    /// the session keys (LoRaWAN 1.0.x: AES-encrypt of 0x01 / 0x02 | AppNonce | NetID | DevNonce | padding
    /// under the AppKey) and takes the DevAddr; FCnt starts at 0. On an error nothing changes, so a
    /// join-accept meant for another device can simply be offered and refused.
    pub fn accept_join(&mut self, phy: &[u8]) -> Result<(), FrameError> {
        let dev_nonce = self.pending.ok_or(FrameError::NoJoinPending)?;
        if !(phy.len() == JOIN_ACCEPT_LEN || phy.len() == JOIN_ACCEPT_WITH_CFLIST_LEN)
            || phy.first() != Some(&MHDR_JOIN_ACCEPT)
        {
            return Err(FrameError::NotJoinAccept {
                len: phy.len(),
                mhdr: phy.first().copied(),
            });
        }
        let key = lorawan::keys::AppKey::from(*self.app_key.as_bytes());
        let data = phy.to_vec();
        let derived = catch_unwind(AssertUnwindSafe(|| {
            DecryptedJoinAcceptPayload::new(data, &key).map(|accept| {
                let nonce = DevNonce::from(dev_nonce.to_le_bytes());
                let nwk = accept.derive_newskey(&nonce, &key);
                let app = accept.derive_appskey(&nonce, &key);
                let mut addr = [0u8; 4];
                addr.copy_from_slice(accept.dev_addr().as_ref());
                Session {
                    dev_addr: DevAddr::from_wire(addr),
                    nwk_s_key: NwkSKey::new(nwk.inner().0),
                    app_s_key: AppSKey::new(app.inner().0),
                }
            })
        }))
        .map_err(|_| FrameError::CratePanic)?;
        let session = derived.map_err(|e| match e {
            lorawan::parser::Error::InvalidMic => FrameError::BadMic,
            _ => FrameError::NotJoinAccept {
                len: phy.len(),
                mhdr: phy.first().copied(),
            },
        })?;
        self.pending = None;
        self.joined = Some(AbpDevice {
            dev_eui: self.dev_eui,
            session,
            fcnt_up: Some(0),
            adr: self.adr,
            down: Default::default(),
        });
        Ok(())
    }

    /// The next unconfirmed data-up frame of the joined session; see [`AbpDevice::uplink`].
    pub fn uplink(&mut self, fport: u8, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        self.joined_mut()?.uplink(fport, payload)
    }

    /// The joined session as an activated device (to send confirmed uplinks and take downlinks).
    pub fn joined_mut(&mut self) -> Result<&mut AbpDevice, FrameError> {
        self.joined.as_mut().ok_or(FrameError::NotJoined)
    }
}

#[cfg(test)]
#[path = "device_tests.rs"]
mod tests;
