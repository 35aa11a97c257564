//! LoRaWAN 1.0.x data-up frames: `decode_uplink` against a fixed session whose last frame counter the fuzzer
//! picks. In `valid_mic` mode the target writes the session's DevAddr into the frame and signs it with the
//! NwkSKey under the counter `decode_uplink` will try, so the fuzzer reaches the counter rules, the FOpts and
//! FPort checks and decryption, not just the MIC check. An accepted frame without FOpts or FCtrl flags must be
//! exactly what `build_uplink` makes of the decoded uplink.
#![no_main]

use arbitrary::Arbitrary;
use bydata_ingest::lorawan::frame::{
    AppSKey, DevAddr, MAX_FCNT_GAP, MAX_PAYLOAD_LEN, NwkSKey, Session, build_uplink, decode_uplink,
};
use libfuzzer_sys::fuzz_target;
use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::{AES128, CryptoFactory, Mac};

const NWK_S_KEY: [u8; 16] = [0x2b; 16];
const APP_S_KEY: [u8; 16] = [0x7e; 16];
const DEV_ADDR: DevAddr = DevAddr::new(0x0102_0304);
const MIC_LEN: usize = 4;
/// MHDR, DevAddr, FCtrl, FCnt and MIC.
const DATA_MIN_LEN: usize = 12;

#[derive(Debug, Arbitrary)]
struct Input {
    /// The session's last accepted counter.
    fcnt_up: Option<u32>,
    valid_mic: bool,
    frame: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let session = Session {
        dev_addr: DEV_ADDR,
        nwk_s_key: NwkSKey::new(NWK_S_KEY),
        app_s_key: AppSKey::new(APP_S_KEY),
        fcnt_up: input.fcnt_up,
        fcnt_down: 0,
    };
    let mut frame = input.frame;
    if input.valid_mic && frame.len() >= DATA_MIN_LEN {
        frame[1..5].copy_from_slice(&DEV_ADDR.to_wire());
        let fcnt16 = u16::from_le_bytes([frame[6], frame[7]]);
        if let Some(fcnt) = mic_counter(input.fcnt_up, fcnt16) {
            sign(&mut frame, fcnt);
        }
    }
    let Ok(up) = decode_uplink(&frame, &session) else {
        return;
    };
    assert_eq!(up.dev_addr, DEV_ADDR);
    assert_eq!(up.fcnt as u16, u16::from_le_bytes([frame[6], frame[7]]));
    assert!(
        input
            .fcnt_up
            .is_none_or(|last| up.fcnt > last && up.fcnt - last <= MAX_FCNT_GAP)
    );
    assert!(up.payload.len() + DATA_MIN_LEN <= frame.len());
    let plain_header = matches!(frame[0], 0x40 | 0x80) && frame[5] == 0;
    if let Some(fport) = up.fport
        && plain_header
        && up.payload.len() <= MAX_PAYLOAD_LEN
    {
        let rebuilt = build_uplink(&session, up.fcnt, fport, &up.payload, up.confirmed);
        assert_eq!(rebuilt.as_deref(), Ok(&frame[..]));
    }
});

/// The full counter `decode_uplink` checks the MIC with: the frame's 16 bits taken as is for a new session,
/// else the nearest counter ahead of the last one (within the gap) or behind it (a replay).
fn mic_counter(last: Option<u32>, fcnt16: u16) -> Option<u32> {
    let Some(last) = last else {
        return Some(u32::from(fcnt16));
    };
    let ahead = u32::from(fcnt16.wrapping_sub(last as u16));
    let behind = u32::from((last as u16).wrapping_sub(fcnt16));
    if (1..=MAX_FCNT_GAP).contains(&ahead) {
        return last.checked_add(ahead);
    }
    match last.checked_sub(behind) {
        Some(full) if behind <= MAX_FCNT_GAP => Some(full),
        _ => last.checked_add(ahead),
    }
}

/// Writes the data-up MIC (LoRaWAN 1.0.x §4.4: CMAC over block B0 and the frame) into the last four bytes.
fn sign(frame: &mut [u8], fcnt: u32) {
    let (signed, mic) = frame.split_at_mut(frame.len() - MIC_LEN);
    let mut b0 = [0u8; 16];
    b0[0] = 0x49;
    b0[6..10].copy_from_slice(&signed[1..5]);
    b0[10..14].copy_from_slice(&fcnt.to_le_bytes());
    b0[15] = signed.len() as u8; // as the lorawan crate writes it, which is what decode_uplink checks against
    let mut cmac = DefaultFactory.new_mac(&AES128(NWK_S_KEY));
    cmac.input(&b0);
    cmac.input(signed);
    mic.copy_from_slice(&cmac.result()[..MIC_LEN]);
}
