//! LoRaWAN 1.0.x join-requests: `verify_join_request` with a fixed AppKey, on raw bytes and on 23-byte frames
//! whose MIC the target makes valid, so the fuzzer also reaches what follows the MIC check.
#![no_main]

use arbitrary::Arbitrary;
use bydata_ingest::lorawan::frame::{AppKey, verify_join_request};
use libfuzzer_sys::fuzz_target;
use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::{AES128, CryptoFactory, Mac};

const APP_KEY: [u8; 16] = [0x5a; 16];
const JOIN_REQUEST_LEN: usize = 23;
const MIC_LEN: usize = 4;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Cut or pad the frame to 23 bytes and give it the MIC the AppKey makes.
    valid_mic: bool,
    frame: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut frame = input.frame;
    if input.valid_mic {
        frame.resize(JOIN_REQUEST_LEN, 0);
        let (signed, mic) = frame.split_at_mut(JOIN_REQUEST_LEN - MIC_LEN);
        let mut cmac = DefaultFactory.new_mac(&AES128(APP_KEY));
        cmac.input(signed);
        mic.copy_from_slice(&cmac.result()[..MIC_LEN]);
    }
    let Ok(join) = verify_join_request(&frame, &AppKey::new(APP_KEY)) else {
        return;
    };
    // The identifiers come from the frame, least significant byte first.
    assert_eq!(join.join_eui.to_wire(), frame[1..9]);
    assert_eq!(join.dev_eui.to_wire(), frame[9..17]);
    assert_eq!(join.dev_nonce.to_le_bytes(), frame[17..19]);
});
