//! LoRaWAN 1.0.x data-down frames (LoRaWAN 1.0.3 specification, §4 "MAC message formats"), built with the
//! `lorawan` crate's `DataPayloadCreator` (=0.9.0), which handles the downlink direction correctly:
//!
//! - MHDR MType 011 (unconfirmed data down) or 101 (confirmed data down), §4.2.1;
//! - FHDR: DevAddr, FCtrl with the downlink bits ADR, ACK (§4.3.1.2: the answer to a confirmed uplink) and
//!   FPending (§4.3.1.4), FOptsLen 0 (bydata sends no MAC commands), the low 16 bits of NFCntDown, §4.3.1;
//! - FPort 1..=223 and the FRMPayload encrypted with the AppSKey in the downlink direction (Dir = 1 in the
//!   A_i blocks, §4.3.3.1), keyed by the full 32-bit counter;
//! - MIC = aes128_cmac(NwkSKey, B0 | msg)[0..4] with Dir = 1 and the full counter in B0, §4.4.
//!
//! A frame with neither FPort nor payload is valid (§4.3.2: "an empty frame"): that is the ACK-only
//! answer to a confirmed uplink. The crate's creator is only ever given inputs checked here first, and runs
//! under `catch_unwind` like every other call into it.
use super::{FrameError, MAX_PAYLOAD_LEN, Session, shielded};
use lorawan::creator::DataPayloadCreator;
use lorawan::parser::FCtrl;

/// FCtrl bits of a downlink (§4.3.1): ADR, ACK, FPending.
const FCTRL_ADR: u8 = 0x80;
const FCTRL_ACK: u8 = 0x20;
const FCTRL_FPENDING: u8 = 0x10;

/// A data-down frame for [`build_downlink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDown<'a> {
    /// The session's NFCntDown for this frame (all 32 bits; the frame carries the low 16). Never reuse one:
    /// a device drops a frame whose counter it has seen.
    pub fcnt: u32,
    /// Confirmed data down (MType 101): the device answers with ACK set in its next uplink.
    pub confirmed: bool,
    /// FCtrl.ACK: acknowledges the device's last confirmed uplink.
    pub ack: bool,
    /// FCtrl.ADR: the network controls the device's data rate.
    pub adr: bool,
    /// FCtrl.FPending: more downlinks wait; the device should send an uplink soon to open a window.
    pub fpending: bool,
    /// FPort (1..=223) and application payload, or `None` for a frame without FPort (an ACK only).
    pub application: Option<(u8, &'a [u8])>,
}

/// Builds the PHYPayload of a data-down frame of `session` (see the module docs for the layout). Refused:
/// FPort 0 (MAC commands, which bydata does not send) or 224..=255 (certification and reserved), and a payload
/// longer than any frame carries; the data rate's own, smaller limit is the caller's to check
/// (`region::Eu868DataRate::max_payload`).
pub fn build_downlink(session: &Session, frame: &DataDown<'_>) -> Result<Vec<u8>, FrameError> {
    if let Some((fport, payload)) = frame.application {
        if !(1..=223).contains(&fport) {
            return Err(FrameError::InvalidFPort { fport });
        }
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(FrameError::PayloadTooLong {
                got: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
    }
    let mut fctrl = 0;
    for (set, bit) in [
        (frame.adr, FCTRL_ADR),
        (frame.ack, FCTRL_ACK),
        (frame.fpending, FCTRL_FPENDING),
    ] {
        if set {
            fctrl |= bit;
        }
    }
    let dev_addr = session.dev_addr.to_wire();
    let nwk = lorawan::keys::NewSKey::from(*session.nwk_s_key.as_bytes());
    let app = lorawan::keys::AppSKey::from(*session.app_s_key.as_bytes());
    let (fcnt, confirmed, application) = (frame.fcnt, frame.confirmed, frame.application);
    let built = shielded(move || {
        let mut creator = DataPayloadCreator::new();
        // set_confirmed before set_uplink: the first rewrites the MType's top bits, the second the direction.
        creator
            .set_confirmed(confirmed)
            .set_uplink(false)
            .set_dev_addr(&dev_addr)
            .set_fctrl(&FCtrl::new(fctrl, false))
            .set_fcnt(fcnt);
        let payload: &[u8] = match application {
            Some((fport, payload)) => {
                creator.set_f_port(fport);
                payload
            }
            None => &[],
        };
        creator.build(payload, &[], &nwk, &app).map(<[u8]>::to_vec)
    })?;
    // Unreachable with the checks above; kept as an error rather than a panic.
    built.map_err(|_| FrameError::Malformed {
        reason: "the lorawan creator refused the downlink",
    })
}

#[cfg(test)]
#[path = "frame_down_tests.rs"]
mod tests;
