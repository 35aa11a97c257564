//! Counters of the UDP edge, a `Collector` for the one metrics registry; low-cardinality: per-gateway
//! numbers are in its status.
use bydata_admission::metrics::{Collector, DescriptorEncoder, counter, counters, get};
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
    // Class A downlinks (`downlink`).
    pub(super) downlinks_rx1: AtomicU64,
    pub(super) downlinks_rx2: AtomicU64,
    pub(super) downlinks_missed_window: AtomicU64,
    pub(super) downlinks_no_gateway: AtomicU64,
    pub(super) downlinks_dropped: AtomicU64,
    pub(super) downlinks_acknowledged: AtomicU64,
    pub(super) downlinks_retried: AtomicU64,
    pub(super) downlinks_failed: AtomicU64,
    pub(super) downlink_acks: AtomicU64,
    pub(super) tx_ack_ok: AtomicU64,
    pub(super) tx_ack_error: AtomicU64,
    pub(super) tx_ack_unmatched: AtomicU64,
    pub(super) tx_ack_missing: AtomicU64,
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
            "bydata_lorawan_downlinks",
            "Class A downlinks: frames sent by receive window, answers that missed both windows or found no \
             gateway, events dropped at a full queue, and queued downlinks acknowledged, retried or failed",
            "outcome",
            &[
                ("sent_rx1", get(&self.downlinks_rx1)),
                ("sent_rx2", get(&self.downlinks_rx2)),
                ("missed_window", get(&self.downlinks_missed_window)),
                ("no_gateway", get(&self.downlinks_no_gateway)),
                ("dropped", get(&self.downlinks_dropped)),
                ("acknowledged", get(&self.downlinks_acknowledged)),
                ("retried", get(&self.downlinks_retried)),
                ("failed", get(&self.downlinks_failed)),
            ],
        )?;
        counter(
            e,
            "bydata_lorawan_downlink_acks",
            "Downlink frames with the ACK bit set, answering a confirmed uplink",
            get(&self.downlink_acks),
        )?;
        counters(
            e,
            "bydata_lorawan_tx_acks",
            "Gateways' TX_ACKs of downlinks: transmitted, refused (TOO_LATE, COLLISION_PACKET, ...), matching \
             no PULL_RESP, or never received within 30 s",
            "outcome",
            &[
                ("ok", get(&self.tx_ack_ok)),
                ("error", get(&self.tx_ack_error)),
                ("unmatched", get(&self.tx_ack_unmatched)),
                ("missing", get(&self.tx_ack_missing)),
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
