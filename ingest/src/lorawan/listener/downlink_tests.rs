//! The pure choices of the downlink task: which copy's gateway, which window, what the txpk says.
use super::*;

fn heard(eui: u8, snr: Option<f64>, rssi: Option<i32>) -> Heard {
    Heard {
        gateway: Eui64::from_bytes([0, 0, 0, 0, 0, 0, 0, eui]),
        tmst: Some(4_294_000_000),
        freq: Some(868.3),
        datr: Some("SF9BW125".to_owned()),
        codr: Some("4/5".to_owned()),
        rssi,
        snr,
        route: Some(SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(eui)))),
    }
}

#[test]
fn the_best_copy_is_the_highest_snr_then_rssi_among_those_a_downlink_can_follow() {
    let a = heard(1, Some(-3.0), Some(-110));
    let b = heard(2, Some(7.5), Some(-95));
    let c = heard(3, Some(7.5), Some(-60));
    assert_eq!(best(&[a.clone(), b.clone()]).unwrap().gateway, b.gateway);
    assert_eq!(
        best(&[a.clone(), b.clone(), c.clone()]).unwrap().gateway,
        c.gateway
    );
    // No route (no PULL_DATA yet) or no tmst (nothing to count RX1 from): not a candidate.
    let no_route = Heard {
        route: None,
        ..c.clone()
    };
    let no_tmst = Heard {
        tmst: None,
        ..b.clone()
    };
    assert_eq!(
        best(&[a.clone(), no_route.clone(), no_tmst])
            .unwrap()
            .gateway,
        a.gateway
    );
    assert_eq!(best(&[no_route]), None);
    // A copy without SNR ranks below any with one.
    let blind = heard(4, None, Some(-30));
    assert_eq!(best(&[blind, a.clone()]).unwrap().gateway, a.gateway);
}

#[test]
fn rx1_follows_the_uplink_and_rx2_is_the_eu868_default() {
    let h = heard(1, Some(5.0), Some(-80));
    let rx1 = window(&h, Duration::from_millis(300)).unwrap();
    assert!(!rx1.rx2);
    assert_eq!(
        rx1.txpk.tmst,
        Some(4_294_000_000u32.wrapping_add(1_000_000)),
        "wraps"
    );
    assert_eq!((rx1.txpk.freq, rx1.txpk.datr.as_str()), (868.3, "SF9BW125"));
    assert_eq!(
        (rx1.txpk.powe, rx1.txpk.ipol, rx1.txpk.imme),
        (14, true, false)
    );
    assert_eq!(rx1.max_payload, 115);

    // Too late for RX1 (the PULL_RESP could not leave MARGIN ahead of it): RX2.
    let rx2 = window(&h, Duration::from_millis(850)).unwrap();
    assert!(rx2.rx2);
    assert_eq!(
        rx2.txpk.tmst,
        Some(4_294_000_000u32.wrapping_add(2_000_000))
    );
    assert_eq!(
        (rx2.txpk.freq, rx2.txpk.datr.as_str()),
        (869.525, "SF12BW125")
    );
    assert_eq!((rx2.txpk.powe, rx2.max_payload), (27, 51));

    // An uplink at a data rate EU868 does not have: only RX2.
    let odd = Heard {
        datr: Some("SF7BW500".to_owned()),
        ..h.clone()
    };
    assert!(window(&odd, Duration::ZERO).unwrap().rx2);
    assert_eq!(window(&h, Duration::from_millis(1850)), None, "both missed");
    assert_eq!(window(&Heard { tmst: None, ..h }, Duration::ZERO), None);
}

#[test]
fn tx_ack_errors_are_explained() {
    for e in ["TOO_LATE", "TOO_EARLY", "COLLISION_PACKET", "TX_FREQ"] {
        assert_ne!(
            tx_error_meaning(e),
            tx_error_meaning("SOMETHING_ELSE"),
            "{e}"
        );
    }
}
