//! A device taking downlinks built by the `lorawan` crate's creator (independently of bydata's builder):
//! the crate's own data-down vector, counters, ACKs both ways, and properties (no panic on any bytes; a
//! damaged frame is refused).
use super::*;
use crate::lorawan::device::{AppSKey, DevAddr, NwkSKey};
use bydata_schemas::Eui64;
use lorawan::creator::DataPayloadCreator;
use lorawan::parser::FCtrl;
use proptest::prelude::*;

fn device(addr: u32) -> AbpDevice {
    AbpDevice::new(
        Eui64::from_bytes([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 1]),
        DevAddr::new(addr),
        NwkSKey::new([2; 16]),
        AppSKey::new([1; 16]),
    )
}

/// A data-down frame as the crate's creator builds it.
fn down(addr: u32, fcnt: u32, confirmed: bool, fctrl: u8, app: Option<(u8, &[u8])>) -> Vec<u8> {
    let mut c = DataPayloadCreator::new();
    c.set_confirmed(confirmed)
        .set_uplink(false)
        .set_dev_addr(&DevAddr::new(addr).to_wire())
        .set_fctrl(&FCtrl::new(fctrl, false))
        .set_fcnt(fcnt);
    let payload: &[u8] = match app {
        Some((port, p)) => {
            c.set_f_port(port);
            p
        }
        None => &[],
    };
    c.build(payload, &[], &[2; 16].into(), &[1; 16].into())
        .unwrap()
        .to_vec()
}

#[test]
fn the_crates_data_down_vector_is_taken() {
    // lorawan-0.9.0 tests/lorawan.rs `phy_datadown_payload`: confirmed, ADR, FCnt 76543, "hello lora" on 42.
    let phy = [
        0xa0, 0x04, 0x03, 0x02, 0x01, 0x80, 0xff, 0x2a, 0x2a, 0x0a, 0xf1, 0xa3, 0x6a, 0x05, 0xd0,
        0x12, 0x5f, 0x88, 0x5d, 0x88, 0x1d, 0x49, 0xe1,
    ];
    let mut d = device(0x0102_0304).with_fcnt_up(5);
    d.down.fcnt_down = Some(76_500);
    let got = d.receive_downlink(&phy).unwrap();
    assert_eq!(
        (got.fcnt, got.confirmed, got.fport, got.payload.as_slice()),
        (76_543, true, Some(42), &b"hello lora"[..])
    );
    assert!(
        d.ack_due(),
        "a confirmed downlink is acknowledged by the next uplink"
    );
    let up = d.uplink(1, b"x").unwrap();
    assert_eq!(up[5] & 0x20, 0x20, "FCtrl.ACK set");
    assert!(!d.ack_due());
    assert_eq!(d.uplink(1, b"x").unwrap()[5] & 0x20, 0, "only once");
}

#[test]
fn counters_replays_and_acks_of_confirmed_uplinks() {
    let mut d = device(0x2601_1bda);
    let first = down(0x2601_1bda, 0, false, 0, Some((10, b"on")));
    assert_eq!(d.receive_downlink(&first).unwrap().payload, b"on");
    assert_eq!(
        d.receive_downlink(&first),
        Err(FrameError::DownlinkReplay { got: 0, last: 0 })
    );
    // Another device's frame (same DevAddr, other keys) fails the MIC; another DevAddr is not looked at.
    let mut other = AbpDevice::new(
        Eui64::from_bytes([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 2]),
        DevAddr::new(0x2601_1bda),
        NwkSKey::new([9; 16]),
        AppSKey::new([1; 16]),
    );
    assert_eq!(
        other.receive_downlink(&down(0x2601_1bda, 1, false, 0, None)),
        Err(FrameError::DownlinkBadMic)
    );
    assert!(matches!(
        d.receive_downlink(&down(0x2601_1bdb, 1, false, 0, None)),
        Err(FrameError::NotForThisDevice { .. })
    ));
    // A confirmed uplink, answered by an empty frame with ACK.
    d.confirmed_uplink(2, b"alarm").unwrap();
    let ack = d
        .receive_downlink(&down(0x2601_1bda, 3, false, 0x20, None))
        .unwrap();
    assert_eq!((ack.ack, ack.fport, ack.fcnt), (true, None, 3));
    assert_eq!(d.acked_uplinks(), 1);
    assert_eq!(d.fcnt_down(), Some(3));
    assert_eq!(d.downlinks().len(), 2);
}

proptest! {
    #[test]
    fn any_bytes_are_refused_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut d = device(0x0102_0304);
        let result = d.receive_downlink(&bytes);
        prop_assert!(!matches!(result, Err(FrameError::CratePanic)));
    }

    /// Frames that pass the cheap checks and reach the crate, and any damage to a good frame.
    #[test]
    fn damaged_frames_are_refused(
        fctrl in any::<u8>(),
        rest in prop::collection::vec(any::<u8>(), 0..260),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut d = device(0x0102_0304);
        let mut phy = vec![0x60, 4, 3, 2, 1, fctrl];
        phy.extend(rest);
        let result = d.receive_downlink(&phy);
        prop_assert!(result.is_err() && !matches!(result, Err(FrameError::CratePanic)), "{:?}", result);
        let good = down(0x0102_0304, 0, true, 0, Some((7, &payload)));
        let mut bad = good.clone();
        bad[flip.index(good.len())] ^= 1 << bit;
        prop_assert!(d.receive_downlink(&bad).is_err());
        prop_assert_eq!(d.receive_downlink(&good).unwrap().payload, payload);
    }
}
