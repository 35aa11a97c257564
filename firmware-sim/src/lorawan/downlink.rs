//! A simulated device taking its downlinks (LoRaWAN 1.0.x data down, MType 011 and 101), as an end device's
//! MAC layer does: the frame's DevAddr, its MIC under the NwkSKey with the full 32-bit downlink counter
//! (the device tracks it), a replayed counter refused, the FRMPayload decrypted (AppSKey for FPort > 0,
//! NwkSKey for FPort 0). A confirmed downlink makes the next uplink carry FCtrl.ACK; a downlink with ACK set
//! acknowledges the device's confirmed uplink. Pure: bytes in, state changed; the radio is `class_a`.
//!
//! The frame is outside bytes: lengths and MHDR are checked before the `lorawan` crate sees it, and every
//! call into the crate runs under `catch_unwind`.
use super::device::{AbpDevice, FrameError};
use lorawan::keys::AES128;
use lorawan::parser::EncryptedDataPayload;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The largest forward jump of the downlink counter a device accepts (as the network does for uplinks).
const MAX_FCNT_GAP: u32 = 16_384;
/// Downlinks a device remembers for [`AbpDevice::downlinks`].
const KEPT: usize = 64;
/// MHDR, FHDR without FOpts, MIC.
const MIN_LEN: usize = 12;

/// A data-down frame the device took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedDownlink {
    /// The full 32-bit downlink counter.
    pub fcnt: u32,
    /// Confirmed data down: the device's next uplink carries ACK.
    pub confirmed: bool,
    /// FCtrl.ACK: the network acknowledges the device's confirmed uplink.
    pub ack: bool,
    /// FCtrl.FPending: more downlinks wait.
    pub fpending: bool,
    /// `None` for a frame without FPort (an ACK alone).
    pub fport: Option<u8>,
    /// The decrypted FRMPayload.
    pub payload: Vec<u8>,
}

/// What a device knows of its downlinks.
#[derive(Debug, Clone, Default)]
pub(crate) struct DownState {
    /// The last downlink counter taken.
    fcnt_down: Option<u32>,
    /// A confirmed downlink was taken: the next uplink sets ACK.
    pub(crate) ack_due: bool,
    /// The last uplink was confirmed and no ACK has come for it yet.
    awaiting_ack: bool,
    /// Confirmed uplinks the network acknowledged.
    acked_uplinks: u64,
    received: VecDeque<ReceivedDownlink>,
}

impl DownState {
    /// An uplink left: it carried the due ACK, and (if confirmed) waits for the network's.
    pub(crate) fn uplink_sent(&mut self, confirmed: bool) {
        self.ack_due = false;
        self.awaiting_ack = confirmed;
    }
}

/// The full counter a frame's 16 bits stand for, after `last`: `Ok` ahead, `Err` at or behind it.
fn full_fcnt(last: Option<u32>, fcnt16: u16) -> Result<u32, u32> {
    let Some(last) = last else {
        return Ok(u32::from(fcnt16));
    };
    let ahead = u32::from(fcnt16.wrapping_sub(last as u16));
    match last.checked_add(ahead) {
        Some(full) if (1..=MAX_FCNT_GAP).contains(&ahead) => Ok(full),
        _ => Err(last.wrapping_sub(u32::from((last as u16).wrapping_sub(fcnt16)))),
    }
}

impl AbpDevice {
    /// Takes a data-down frame (`phy`, the PHYPayload of a `txpk`) if it is this device's; on an error
    /// nothing changes, so a frame for another device can simply be offered and refused.
    pub fn receive_downlink(&mut self, phy: &[u8]) -> Result<ReceivedDownlink, FrameError> {
        let not = |reason| FrameError::NotForThisDevice { reason };
        let &[mhdr, a0, a1, a2, a3, fctrl, c0, c1, ..] = phy else {
            return Err(not("shorter than a data frame"));
        };
        if phy.len() < MIN_LEN {
            return Err(not("shorter than a data frame"));
        }
        let confirmed = match mhdr {
            0x60 => false,
            0xa0 => true,
            _ => return Err(not("not a LoRaWAN 1.0 data-down MHDR")),
        };
        if [a0, a1, a2, a3] != self.session().dev_addr.to_wire() {
            return Err(not("another DevAddr"));
        }
        let fopts_len = usize::from(fctrl & 0x0f);
        if phy.len() < MIN_LEN + fopts_len {
            return Err(not("FOptsLen runs past the frame"));
        }
        let counted = full_fcnt(self.down.fcnt_down, u16::from_le_bytes([c0, c1]));
        let fcnt = match counted {
            Ok(full) | Err(full) => full,
        };
        let nwk = AES128(*self.session().nwk_s_key.as_bytes());
        let app = AES128(*self.session().app_s_key.as_bytes());
        let data = phy.to_vec();
        let plain = catch_unwind(AssertUnwindSafe(|| {
            let frame = EncryptedDataPayload::new(data).ok()?;
            if !frame.validate_mic(&nwk, fcnt) {
                return Some(None);
            }
            let plain = frame.decrypt(Some(&nwk), Some(&app), fcnt).ok()?;
            Some(Some(plain.to_inner()))
        }))
        .map_err(|_| FrameError::CratePanic)?
        .ok_or(not("refused by the lorawan parser"))?
        .ok_or(FrameError::DownlinkBadMic)?;
        if let Err(got) = counted {
            return Err(FrameError::DownlinkReplay {
                got,
                last: self.down.fcnt_down.unwrap_or_default(),
            });
        }
        let fhdr_end = 8 + fopts_len;
        let body = plain.get(fhdr_end..plain.len() - 4).unwrap_or_default();
        let (fport, payload) = match body.split_first() {
            Some((&port, rest)) => (Some(port), rest.to_vec()),
            None => (None, Vec::new()),
        };
        let received = ReceivedDownlink {
            fcnt,
            confirmed,
            ack: fctrl & 0x20 != 0,
            fpending: fctrl & 0x10 != 0,
            fport,
            payload,
        };
        let down = &mut self.down;
        down.fcnt_down = Some(fcnt);
        down.ack_due |= confirmed;
        if received.ack && down.awaiting_ack {
            down.awaiting_ack = false;
            down.acked_uplinks += 1;
        }
        if down.received.len() >= KEPT {
            down.received.pop_front();
        }
        down.received.push_back(received.clone());
        Ok(received)
    }

    /// The downlinks taken so far (the last 64), oldest first.
    pub fn downlinks(&self) -> Vec<ReceivedDownlink> {
        self.down.received.iter().cloned().collect()
    }

    /// The last downlink counter taken.
    pub fn fcnt_down(&self) -> Option<u32> {
        self.down.fcnt_down
    }

    /// Whether the next uplink carries FCtrl.ACK (a confirmed downlink was taken since the last uplink).
    pub fn ack_due(&self) -> bool {
        self.down.ack_due
    }

    /// Confirmed uplinks the network has acknowledged.
    pub fn acked_uplinks(&self) -> u64 {
        self.down.acked_uplinks
    }

    /// Forgets that a confirmed downlink is to be acknowledged (a device that lost its state, or that
    /// misbehaves: its next uplink carries no ACK).
    pub fn forget_ack(&mut self) {
        self.down.ack_due = false;
    }
}

#[cfg(test)]
#[path = "downlink_tests.rs"]
mod tests;
