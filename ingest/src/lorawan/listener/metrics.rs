//! Counters of the UDP edge, a `Collector` for the one metrics registry; low-cardinality: per-gateway
//! numbers are in its status.
use bydata_admission::metrics::{Collector, DescriptorEncoder, counters, get};
use std::sync::atomic::AtomicU64;

/// Counters of the UDP edge.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(super) accepted: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) unknown_gateway: AtomicU64,
    pub(super) invalid: AtomicU64,
    pub(super) rxpk_received: AtomicU64,
    pub(super) rxpk_invalid: AtomicU64,
    pub(super) frames_accepted: AtomicU64,
    pub(super) frames_duplicate: AtomicU64,
    pub(super) frames_rejected: AtomicU64,
    pub(super) frames_unknown_device: AtomicU64,
    pub(super) frames_other: AtomicU64,
    pub(super) joins_accepted: AtomicU64,
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        counters(
            e,
            "bydata_lorawan_datagrams",
            "Semtech UDP datagrams received, by outcome",
            "outcome",
            &[
                ("accepted", get(&self.accepted)),
                ("rate_limited", get(&self.rate_limited)),
                ("unknown_gateway", get(&self.unknown_gateway)),
                ("invalid", get(&self.invalid)),
            ],
        )?;
        counters(
            e,
            "bydata_lorawan_frames",
            "LoRaWAN frames heard, by outcome",
            "outcome",
            &[
                ("accepted", get(&self.frames_accepted)),
                ("duplicate", get(&self.frames_duplicate)),
                ("rejected", get(&self.frames_rejected)),
                ("unknown_device", get(&self.frames_unknown_device)),
                ("not_data_up", get(&self.frames_other)),
                ("join_accepted", get(&self.joins_accepted)),
            ],
        )?;
        counters(
            e,
            "bydata_lorawan_rxpk",
            "Radio packets (rxpk) in gateways' datagrams, by outcome",
            "outcome",
            &[
                ("received", get(&self.rxpk_received)),
                ("invalid", get(&self.rxpk_invalid)),
            ],
        )
    }
}
