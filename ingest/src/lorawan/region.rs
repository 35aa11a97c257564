//! EU863-870 (EU868), the band of Aarhus, as LoRaWAN Regional Parameters RP002-1.0.3 defines it for class A
//! downlinks: the data rates (§2.4.3, "EU863-870 TX Data rate table"), the largest application payload of
//! each (§2.4.6, "EU863-870 Maximum payload size", the table that is *not* repeater compatible, as
//! ChirpStack's default), and the receive windows (§2.4.7: RX1 on the uplink's frequency at its data rate
//! less RX1DROffset, 0 by default; RX2 on 869.525 MHz at DR0). Pure tables, no I/O.

/// RECEIVE_DELAY1 of a data uplink, in seconds (the default; the JoinAccept bydata sends says RxDelay 1 too).
pub const RECEIVE_DELAY1_SECS: u32 = 1;
/// RECEIVE_DELAY2 = RECEIVE_DELAY1 + 1 s.
pub const RECEIVE_DELAY2_SECS: u32 = 2;
/// RX2's default frequency, MHz.
pub const RX2_FREQ_MHZ: f64 = 869.525;
/// RX1's transmit power, dBm: EU868's default maximum EIRP is +16 dBm; gateways are commonly run at 14 dBm
/// with their antenna gain, as ChirpStack's EU868 default does.
pub const RX1_TX_POWER_DBM: u8 = 14;
/// RX2's transmit power, dBm: 869.525 MHz lies in the 869.4–869.65 MHz sub-band, which allows 500 mW ERP
/// (ETSI EN 300 220); ChirpStack sends RX2 at 27 dBm too.
pub const RX2_TX_POWER_DBM: u8 = 27;

/// One EU868 data rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eu868DataRate {
    /// DR0..DR7.
    pub index: u8,
    /// As a Semtech `datr`: `"SF12BW125"`…, or the FSK bit rate `"50000"`.
    pub datr: &'static str,
    /// N: the largest FRMPayload without FOpts (bydata sends none), bytes.
    pub max_payload: usize,
}

/// RP002-1.0.3 §2.4.3 and §2.4.6 (not repeater compatible): DR0–DR2 carry 51 bytes, DR3 115, DR4–DR7 242.
pub const EU868_DATA_RATES: [Eu868DataRate; 8] = [
    dr(0, "SF12BW125", 51),
    dr(1, "SF11BW125", 51),
    dr(2, "SF10BW125", 51),
    dr(3, "SF9BW125", 115),
    dr(4, "SF8BW125", 242),
    dr(5, "SF7BW125", 242),
    dr(6, "SF7BW250", 242),
    dr(7, "50000", 242),
];

const fn dr(index: u8, datr: &'static str, max_payload: usize) -> Eu868DataRate {
    Eu868DataRate {
        index,
        datr,
        max_payload,
    }
}

/// RX2's default data rate, DR0.
pub const RX2_DATA_RATE: Eu868DataRate = EU868_DATA_RATES[0];

/// The EU868 data rate a gateway's `datr` names (case and surrounding spaces ignored), if any.
pub fn eu868_data_rate(datr: &str) -> Option<Eu868DataRate> {
    let datr = datr.trim();
    EU868_DATA_RATES
        .into_iter()
        .find(|dr| dr.datr.eq_ignore_ascii_case(datr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rates_and_payload_limits_follow_rp002() {
        let limits: Vec<(u8, usize)> = ["SF12BW125", "SF9BW125", "sf7bw125", " SF7BW250", "50000"]
            .iter()
            .map(|d| {
                eu868_data_rate(d)
                    .map(|dr| (dr.index, dr.max_payload))
                    .unwrap()
            })
            .collect();
        assert_eq!(limits, [(0, 51), (3, 115), (5, 242), (6, 242), (7, 242)]);
        assert_eq!(eu868_data_rate("SF7BW500"), None, "a US915 data rate");
        assert_eq!(eu868_data_rate(""), None);
        assert_eq!(RX2_DATA_RATE.datr, "SF12BW125");
    }
}
