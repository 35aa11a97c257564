//! Tests of `device`. "crate vector" means a byte string from the `lorawan` crate's own tests,
//! lorawan-0.9.0 `tests/lorawan.rs` (github.com/ivajloip/rust-lorawan), named by its function there.
use super::*;
use lorawan::creator::JoinAcceptCreator;
use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::{AES128, CryptoFactory, Encrypter};
use lorawan::parser::{EncryptedDataPayload, JoinRequestPayload};
use proptest::prelude::*;
use std::collections::HashSet;

fn eui(hex: &str) -> Eui64 {
    Eui64::new(hex).expect("valid EUI")
}

/// crate vector `phy_dataup_payload`: NwkSKey [2;16], AppSKey [1;16], DevAddr 04 03 02 01 on air, FCtrl ADR,
/// FCnt 1, FPort 1, "hello" (built by the crate's `test_data_payload_uplink_creator`).
const VECTOR_DATA_UP: [u8; 18] = [
    0x40, 0x04, 0x03, 0x02, 0x01, 0x80, 0x01, 0x00, 0x01, 0xa6, 0x94, 0x64, 0x26, 0x15, 0xd6, 0xc3,
    0xb5, 0x82,
];

/// crate vector `phy_join_request_payload`: AppKey [1;16], AppEUI 04 03 02 01 04 03 02 01 and DevEUI
/// 05 04 03 02 05 04 03 02 on air, DevNonce 2d 10 on air (`test_join_request_creator`).
const VECTOR_JOIN_REQUEST: [u8; 23] = [
    0x00, 0x04, 0x03, 0x02, 0x01, 0x04, 0x03, 0x02, 0x01, 0x05, 0x04, 0x03, 0x02, 0x05, 0x04, 0x03,
    0x02, 0x2d, 0x10, 0x6a, 0x99, 0x0e, 0x12,
];

/// crate vector `phy_join_accept_payload`, under the crate's `app_key()` 00112233…ff: AppNonce c7 0b 57,
/// NetID 01 11 22, DevAddr 80 19 03 02 on air, no CFList.
const VECTOR_JOIN_ACCEPT: [u8; 17] = [
    0x20, 0x49, 0x3e, 0xeb, 0x51, 0xfb, 0xa2, 0x11, 0x6f, 0x81, 0x0e, 0xdb, 0x37, 0x42, 0x97, 0x51,
    0x42,
];
const VECTOR_APP_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

fn abp(fcnt: u32) -> AbpDevice {
    AbpDevice::new(
        eui("70b3d57ed0000001"),
        DevAddr::new(0x0102_0304),
        NwkSKey::new([2; 16]),
        AppSKey::new([1; 16]),
    )
    .with_fcnt_up(fcnt)
}

/// Decrypts an uplink the way a network server does: MIC with the full counter, then FRMPayload.
fn open(phy: &[u8], session: &Session, fcnt: u32) -> Option<Vec<u8>> {
    let nwk = AES128(*session.nwk_s_key.as_bytes());
    let app = AES128(*session.app_s_key.as_bytes());
    let frame = EncryptedDataPayload::new(phy.to_vec()).ok()?;
    if !frame.validate_mic(&nwk, fcnt) {
        return None;
    }
    let plain = frame.decrypt(Some(&nwk), Some(&app), fcnt).ok()?;
    match plain.frm_payload() {
        lorawan::parser::FRMPayload::Data(data) => Some(data.to_vec()),
        _ => None,
    }
}

#[test]
fn abp_uplink_matches_the_crate_vector() {
    let mut device = abp(1).with_adr(true);
    let phy = device.uplink(1, b"hello").expect("fits");
    assert_eq!(phy, VECTOR_DATA_UP);
    assert_eq!(device.fcnt_up(), Some(2), "FCnt advances");
}

#[test]
fn abp_uplinks_count_and_put_only_the_low_16_bits_on_air() {
    let mut device = abp(0x0001_fffe);
    let session = device.session().clone();
    for fcnt in [0x0001_fffe, 0x0001_ffff, 0x0002_0000] {
        let phy = device.uplink(2, &[0x01, 0x67, 0x00, 0xd7]).expect("fits");
        assert_eq!(phy[0], 0x40, "unconfirmed data up");
        assert_eq!(phy[1..5], [0x04, 0x03, 0x02, 0x01], "DevAddr on air");
        assert_eq!(phy[5], 0, "no ADR, no FOpts");
        assert_eq!(phy[6..8], (fcnt as u16).to_le_bytes(), "16-bit FCnt on air");
        assert_eq!(phy[8], 2, "FPort");
        assert_eq!(
            open(&phy, &session, fcnt).as_deref(),
            Some(&[0x01, 0x67, 0x00, 0xd7][..]),
            "MIC over the full counter {fcnt:#x}"
        );
        assert_eq!(
            open(&phy, &session, fcnt & 0xffff),
            None,
            "not the truncated one"
        );
    }
}

#[test]
fn abp_refusals_leave_the_counter() {
    let mut device = abp(7);
    assert_eq!(
        device.uplink(0, b"x"),
        Err(FrameError::InvalidFPort { fport: 0 })
    );
    assert_eq!(
        device.uplink(224, b"x"),
        Err(FrameError::InvalidFPort { fport: 224 })
    );
    assert_eq!(
        device.uplink(1, &[0; MAX_PAYLOAD_LEN + 1]),
        Err(FrameError::PayloadTooLong { got: 243, max: 242 })
    );
    assert_eq!(device.fcnt_up(), Some(7));
    let longest = device.uplink(1, &[0xab; MAX_PAYLOAD_LEN]).expect("fits");
    assert_eq!(longest.len(), 255);
    let mut last = abp(u32::MAX);
    assert!(last.uplink(1, b"x").is_ok(), "the last counter is usable");
    assert_eq!(last.uplink(1, b"x"), Err(FrameError::FcntExhausted));
}

#[test]
fn join_request_matches_the_crate_vector() {
    let mut device = OtaaDevice::new(
        eui("0203040502030405"),
        eui("0102030401020304"),
        AppKey::new([1; 16]),
        0,
    );
    assert_eq!(device.join_request_with_nonce(0x102d), VECTOR_JOIN_REQUEST);
    assert_eq!(device.pending_dev_nonce(), Some(0x102d));
}

#[test]
fn join_requests_verify_and_never_repeat_a_dev_nonce() {
    let mut device = OtaaDevice::new(
        eui("0004a30b001f2c3d"),
        eui("70b3d57ed0000001"),
        AppKey::new([0x5d; 16]),
        42,
    );
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let phy = device.join_request();
        let request = JoinRequestPayload::new(&phy[..]).expect("a join-request");
        assert!(
            request.validate_mic(&AES128([0x5d; 16])),
            "MIC under the AppKey"
        );
        assert!(!request.validate_mic(&AES128([0x5e; 16])));
        assert_eq!(
            phy[1..9],
            [1, 0, 0, 0xd0, 0x7e, 0xd5, 0xb3, 0x70],
            "JoinEUI on air"
        );
        assert_eq!(
            phy[9..17],
            [0x3d, 0x2c, 0x1f, 0, 0x0b, 0xa3, 4, 0],
            "DevEUI on air"
        );
        let nonce = u16::from_le_bytes([phy[17], phy[18]]);
        assert_eq!(device.pending_dev_nonce(), Some(nonce));
        assert!(seen.insert(nonce), "DevNonce {nonce} repeated");
    }
}

#[test]
fn dev_nonces_are_a_seeded_permutation() {
    let all: HashSet<u16> = {
        let mut nonces = DevNonces::new(7);
        (0..=u16::MAX).map(|_| nonces.next()).collect()
    };
    assert_eq!(all.len(), 65_536, "every value once before any repeats");
    let first = |seed| {
        let mut nonces = DevNonces::new(seed);
        (0..8).map(|_| nonces.next()).collect::<Vec<_>>()
    };
    assert_eq!(first(7), first(7), "replayable");
    assert_ne!(first(7), first(8));
}

#[test]
fn join_accept_vector_gives_the_crate_session_keys() {
    let mut device = OtaaDevice::new(
        eui("0203040502030405"),
        eui("0102030401020304"),
        AppKey::new(VECTOR_APP_KEY),
        0,
    );
    device.join_request_with_nonce(0x102d);
    device
        .accept_join(&VECTOR_JOIN_ACCEPT)
        .expect("the vector's MIC holds");
    let session = device.session().expect("joined");
    assert_eq!(
        session.dev_addr,
        DevAddr::from_wire([0x80, 0x19, 0x03, 0x02])
    );
    // crate tests `test_derive_newskey` and `test_derive_appskey` (DevNonce 2d 10).
    assert_eq!(
        session.nwk_s_key.to_hex(),
        "7bb25f89e0d1371e1fbf4d997e1468a3"
    );
    assert_eq!(
        session.app_s_key.to_hex(),
        "148820dfb1e0c9d6289cde16c1af249f"
    );
    assert_eq!(device.pending_dev_nonce(), None);
    assert_eq!(device.fcnt_up(), Some(0));
}

fn aes_encrypt(key: [u8; 16], block: [u8; 16]) -> [u8; 16] {
    let cipher = DefaultFactory.new_enc(&AES128(key));
    let mut block = block.into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// A join-accept as a network server builds it, with the crate's creator.
fn server_join_accept(
    app_key: [u8; 16],
    app_nonce: [u8; 3],
    net_id: [u8; 3],
    addr: [u8; 4],
) -> Vec<u8> {
    let mut creator = JoinAcceptCreator::new();
    creator
        .set_app_nonce(&app_nonce)
        .set_net_id(&net_id)
        .set_dev_addr(&addr)
        .set_dl_settings(0)
        .set_rx_delay(1);
    // The creator hands back its whole 33-byte buffer; without a CFList the frame is the first 17.
    creator.build(&AES128(app_key)).expect("buffer fits")[..17].to_vec()
}

#[test]
fn a_join_accept_built_by_a_server_is_taken_with_the_right_keys() {
    let app_key = [0x5d; 16];
    let mut device = OtaaDevice::new(
        eui("0004a30b001f2c3d"),
        eui("70b3d57ed0000001"),
        AppKey::new(app_key),
        3,
    );
    assert_eq!(
        device.accept_join(&VECTOR_JOIN_ACCEPT),
        Err(FrameError::NoJoinPending)
    );
    assert_eq!(device.uplink(1, b"x"), Err(FrameError::NotJoined));
    let request = device.join_request();
    let [n0, n1] = [request[17], request[18]];
    let (app_nonce, net_id, addr) = (
        [0xa1, 0xb2, 0xc3],
        [0x13, 0x00, 0x00],
        [0xda, 0x1b, 0x01, 0x00],
    );

    // Someone else's join-accept (another AppKey) is refused and changes nothing.
    let foreign = server_join_accept([0x11; 16], app_nonce, net_id, addr);
    assert_eq!(device.accept_join(&foreign), Err(FrameError::BadMic));
    assert!(!device.is_joined());
    assert_eq!(
        device.accept_join(&foreign[..16]),
        Err(FrameError::NotJoinAccept {
            len: 16,
            mhdr: Some(0x20)
        })
    );

    let accept = server_join_accept(app_key, app_nonce, net_id, addr);
    device.accept_join(&accept).expect("ours");
    let block = |kind| {
        let [a0, a1, a2] = app_nonce;
        let [i0, i1, i2] = net_id;
        [kind, a0, a1, a2, i0, i1, i2, n0, n1, 0, 0, 0, 0, 0, 0, 0]
    };
    let session = device.session().expect("joined").clone();
    assert_eq!(session.dev_addr, DevAddr::new(0x0001_1bda));
    assert_eq!(
        *session.nwk_s_key.as_bytes(),
        aes_encrypt(app_key, block(0x01))
    );
    assert_eq!(
        *session.app_s_key.as_bytes(),
        aes_encrypt(app_key, block(0x02))
    );

    let up = device.uplink(2, &[0x01, 0x67, 0x00, 0xd7]).expect("joined");
    assert_eq!(
        open(&up, &session, 0).as_deref(),
        Some(&[0x01, 0x67, 0x00, 0xd7][..])
    );
    assert_eq!(device.fcnt_up(), Some(1));
}

#[test]
fn keys_are_not_in_debug_output() {
    let key = AppKey::new([0xab; 16]);
    assert_eq!(format!("{key:?}"), "AppKey(<redacted>)");
    assert_eq!(key.to_hex(), "ab".repeat(16));
    let device = abp(0);
    assert!(!format!("{device:?}").contains("2, 2, 2"));
}

proptest! {
    #[test]
    fn accept_join_never_panics_and_refuses_garbage(
        body in prop::collection::vec(any::<u8>(), 0..40),
        mhdr in prop::sample::select(vec![0x20u8, 0x00, 0x40, 0x21]),
    ) {
        let mut device = OtaaDevice::new(
            eui("0004a30b001f2c3d"), eui("70b3d57ed0000001"), AppKey::new([0x5d; 16]), 1);
        device.join_request();
        let mut phy = vec![mhdr];
        phy.extend_from_slice(&body);
        // A random 4-byte MIC holds with probability 2^-32: any success here would be a bug.
        prop_assert!(device.accept_join(&phy).is_err());
        prop_assert!(!device.is_joined());
        prop_assert!(device.pending_dev_nonce().is_some());
    }
}
