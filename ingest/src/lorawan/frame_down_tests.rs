//! Tests of `build_downlink`: the `lorawan` crate's data-down vector, an outside vector (a downlink The Things
//! Stack sent, published in Strooom/MuMo-v2-Node-SW `test/test_generic_lorawan_4_mac/test.md`) checked by a
//! MIC and keystream written here from the specification's formulas (LoRaWAN 1.0.3 §4.3.3.1 and §4.4), and
//! properties: no input panics, and every frame built verifies and decrypts under the crate's parser.
use super::*;
use crate::lorawan::frame::{AppSKey, DevAddr, NwkSKey, Session};
use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::{AES128, CryptoFactory, Encrypter, Mac};
use lorawan::parser::{DataHeader, EncryptedDataPayload, FRMPayload};
use proptest::prelude::*;

fn session(dev_addr: u32, nwk: [u8; 16], app: [u8; 16]) -> Session {
    Session {
        dev_addr: DevAddr::new(dev_addr),
        nwk_s_key: NwkSKey::new(nwk),
        app_s_key: AppSKey::new(app),
        fcnt_up: None,
        fcnt_down: 0,
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// B0 / A_i (§4.3.3.1, §4.4): `first`, four zero bytes, Dir, DevAddr and the full FCnt (both least significant
/// byte first), a zero, and `last`.
fn block(first: u8, downlink: bool, dev_addr: &[u8], fcnt: u32, last: u8) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = first;
    b[5] = u8::from(downlink);
    b[6..10].copy_from_slice(dev_addr);
    b[10..14].copy_from_slice(&fcnt.to_le_bytes());
    b[15] = last;
    b
}

/// MIC = aes128_cmac(NwkSKey, B0 | MHDR | FHDR | FPort | FRMPayload)[0..4], written from §4.4.
fn spec_mic(nwk: [u8; 16], msg: &[u8], fcnt: u32) -> [u8; 4] {
    let downlink = msg[0] & 0x20 != 0;
    let b0 = block(0x49, downlink, &msg[1..5], fcnt, msg.len() as u8);
    let mut mac = DefaultFactory.new_mac(&AES128(nwk));
    mac.input(&b0);
    mac.input(msg);
    let out = mac.result();
    [out[0], out[1], out[2], out[3]]
}

/// FRMPayload xor S, S = aes128_encrypt(K, A_1) | aes128_encrypt(K, A_2) | …, written from §4.3.3.1.
fn spec_crypt(key: [u8; 16], downlink: bool, dev_addr: &[u8], fcnt: u32, data: &[u8]) -> Vec<u8> {
    let cipher = DefaultFactory.new_enc(&AES128(key));
    data.chunks(16)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let mut s = block(0x01, downlink, dev_addr, fcnt, i as u8 + 1).into();
            cipher.encrypt_block(&mut s);
            chunk.iter().zip(s).map(|(b, k)| b ^ k).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn crate_vector_confirmed_data_down() {
    // lorawan-0.9.0 tests/lorawan.rs `phy_datadown_payload`: confirmed, ADR, FCnt 76543, "hello lora" on 42.
    let s = session(0x0102_0304, [2; 16], [1; 16]);
    let frame = DataDown {
        fcnt: 76_543,
        confirmed: true,
        ack: false,
        adr: true,
        fpending: false,
        application: Some((42, b"hello lora")),
    };
    assert_eq!(
        build_downlink(&s, &frame).unwrap(),
        hex("a00403020180ff2a2a0af1a36a05d0125f885d881d49e1")
    );
}

#[test]
fn an_outside_downlink_verifies_under_the_formulas_written_here() {
    // The Things Stack v3 sent this unconfirmed downlink (FCnt 176, MAC commands on FPort 0 under the
    // NwkSKey) to DevAddr 260b9911.
    let phy = hex(
        "6011990b2600b000002261d02e6dc32e0495279335d16b41e109c11cb7d5df80232fd81280de42be47c964b382879a3f",
    );
    let nwk: [u8; 16] = hex("8DD6FEB76D7754A78538BA5089A834AA").try_into().unwrap();
    let (msg, mic) = phy.split_at(phy.len() - 4);
    assert_eq!(spec_mic(nwk, msg, 176), mic);
    // The same key and formulas, with the up direction, do not verify it: Dir is in B0.
    let mut up = msg.to_vec();
    up[0] = 0x40;
    assert_ne!(spec_mic(nwk, &up, 176)[..], *mic);
}

#[test]
fn a_built_frame_is_what_the_specification_says() {
    let nwk = [0x2b; 16];
    let app = [0x7e; 16];
    let s = session(0x2601_1bda, nwk, app);
    let payload = b"open the valve, then report the flow (two blocks)";
    let fcnt = 0x0001_0005; // the frame carries 0x0005; B0 and A_i the full counter
    let phy = build_downlink(
        &s,
        &DataDown {
            fcnt,
            confirmed: false,
            ack: true,
            adr: false,
            fpending: true,
            application: Some((10, payload)),
        },
    )
    .unwrap();
    let addr = [0xda, 0x1b, 0x01, 0x26];
    let mut expected = vec![0x60];
    expected.extend(addr);
    expected.extend([0x30, 0x05, 0x00, 10]);
    expected.extend(spec_crypt(app, true, &addr, fcnt, payload));
    let mic = spec_mic(nwk, &expected, fcnt);
    expected.extend(mic);
    assert_eq!(phy, expected);
}

#[test]
fn an_ack_alone_is_an_empty_frame() {
    let s = session(0x0102_0304, [2; 16], [1; 16]);
    let frame = DataDown {
        fcnt: 3,
        confirmed: false,
        ack: true,
        adr: false,
        fpending: false,
        application: None,
    };
    let phy = build_downlink(&s, &frame).unwrap();
    assert_eq!(phy.len(), 12, "MHDR, FHDR and MIC only: {phy:02x?}");
    assert_eq!(&phy[..8], &[0x60, 4, 3, 2, 1, 0x20, 3, 0]);
    assert_eq!(&phy[8..], &spec_mic([2; 16], &phy[..8], 3));
}

#[test]
fn ports_and_lengths_no_frame_carries_are_refused() {
    let s = session(1, [2; 16], [1; 16]);
    let frame = |fport, payload: &'static [u8]| DataDown {
        fcnt: 0,
        confirmed: false,
        ack: false,
        adr: false,
        fpending: false,
        application: Some((fport, payload)),
    };
    for fport in [0, 224, 255] {
        assert_eq!(
            build_downlink(&s, &frame(fport, b"x")),
            Err(FrameError::InvalidFPort { fport })
        );
    }
    assert_eq!(
        build_downlink(&s, &frame(1, &[0; 243])),
        Err(FrameError::PayloadTooLong { got: 243, max: 242 })
    );
    assert_eq!(
        build_downlink(&s, &frame(223, &[0; 242])).unwrap().len(),
        255
    );
}

proptest! {
    /// Whatever the input, no panic; and what is built verifies (MIC with the full counter) and decrypts
    /// under the crate's parser, as a device would read it.
    #[test]
    fn every_downlink_built_verifies_and_decrypts(
        dev_addr in any::<u32>(),
        nwk in any::<[u8; 16]>(),
        app in any::<[u8; 16]>(),
        fcnt in any::<u32>(),
        confirmed in any::<bool>(),
        ack in any::<bool>(),
        fport in any::<u8>(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        with_port in any::<bool>(),
    ) {
        let s = session(dev_addr, nwk, app);
        let frame = DataDown {
            fcnt,
            confirmed,
            ack,
            adr: false,
            fpending: false,
            application: with_port.then_some((fport, payload.as_slice())),
        };
        let built = build_downlink(&s, &frame);
        if with_port && (!(1..=223).contains(&fport) || payload.len() > 242) {
            prop_assert!(built.is_err());
            return Ok(());
        }
        let phy = built.expect("a valid downlink builds");
        let parsed = EncryptedDataPayload::new(phy.clone()).expect("the crate parses it");
        prop_assert!(parsed.validate_mic(&AES128(nwk), fcnt));
        prop_assert_eq!(parsed.fhdr().fcnt(), fcnt as u16);
        prop_assert_eq!(parsed.fhdr().fctrl().ack(), ack);
        let plain = parsed
            .decrypt(Some(&AES128(nwk)), Some(&AES128(app)), fcnt)
            .expect("keys given");
        match (with_port, plain.frm_payload()) {
            (true, FRMPayload::Data(data)) => prop_assert_eq!(data, payload.as_slice()),
            (true, FRMPayload::None) => prop_assert!(payload.is_empty()),
            (false, FRMPayload::None) => {}
            (_, other) => prop_assert!(false, "unexpected {:?}", other),
        }
        prop_assert_eq!(phy[0] >> 5, if confirmed { 0b101 } else { 0b011 });
    }
}
