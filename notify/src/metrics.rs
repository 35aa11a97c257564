//! Notification counters by channel kind: messages sent and given up (counters), attempts that failed, and
//! how many wait (queued) or wait to be tried again (retrying), as the last pass over the outbox saw them.
use bydata_admission::metrics::{Collector, DescriptorEncoder, counters, gauges};
use bydata_store::{ChannelKind, DeliveryStatus};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    sent: [AtomicU64; 2],
    failed: [AtomicU64; 2],
    failed_attempts: [AtomicU64; 2],
    queued: [AtomicI64; 2],
    retrying: [AtomicI64; 2],
}

fn index(kind: ChannelKind) -> usize {
    match kind {
        ChannelKind::Webhook => 0,
        ChannelKind::Email => 1,
    }
}

impl Metrics {
    /// Counts how an attempt ended (a delivery whose channel was gone counts as a webhook's).
    pub(crate) fn attempt(&self, kind: Option<ChannelKind>, status: DeliveryStatus) {
        let i = index(kind.unwrap_or(ChannelKind::Webhook));
        match status {
            DeliveryStatus::Delivered => {
                self.sent[i].fetch_add(1, Ordering::Relaxed);
            }
            DeliveryStatus::Failed => {
                self.failed[i].fetch_add(1, Ordering::Relaxed);
                self.failed_attempts[i].fetch_add(1, Ordering::Relaxed);
            }
            DeliveryStatus::Retrying => {
                self.failed_attempts[i].fetch_add(1, Ordering::Relaxed);
            }
            DeliveryStatus::Queued => {}
        }
    }

    /// Sets the gauges from what waits in the outbox.
    pub(crate) fn waiting(
        &self,
        rows: impl Iterator<Item = (Option<ChannelKind>, DeliveryStatus)>,
    ) {
        let mut queued = [0i64; 2];
        let mut retrying = [0i64; 2];
        for (kind, status) in rows {
            let i = index(kind.unwrap_or(ChannelKind::Webhook));
            match status {
                DeliveryStatus::Queued => queued[i] += 1,
                DeliveryStatus::Retrying => retrying[i] += 1,
                _ => {}
            }
        }
        for (gauge, value) in self.queued.iter().zip(queued) {
            gauge.store(value, Ordering::Relaxed);
        }
        for (gauge, value) in self.retrying.iter().zip(retrying) {
            gauge.store(value, Ordering::Relaxed);
        }
    }
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let u = |a: &[AtomicU64; 2]| {
            ChannelKind::ALL.map(|k| (k.as_str(), a[index(k)].load(Ordering::Relaxed)))
        };
        let g = |a: &[AtomicI64; 2]| {
            ChannelKind::ALL.map(|k| (k.as_str(), a[index(k)].load(Ordering::Relaxed)))
        };
        let e = &mut enc;
        counters(
            e,
            "bydata_notifications_sent",
            "Notification messages delivered (a digest counts once), by channel kind",
            "kind",
            &u(&self.sent),
        )?;
        counters(
            e,
            "bydata_notifications_failed",
            "Notification messages given up (out of attempts, refused for good, channel gone), by channel kind",
            "kind",
            &u(&self.failed),
        )?;
        counters(
            e,
            "bydata_notification_attempts_failed",
            "Delivery attempts that failed (each retry counts), by channel kind",
            "kind",
            &u(&self.failed_attempts),
        )?;
        gauges(
            e,
            "bydata_notifications_queued",
            "Notification messages waiting for their first attempt, by channel kind",
            "kind",
            &g(&self.queued),
        )?;
        gauges(
            e,
            "bydata_notifications_retrying",
            "Notification messages waiting to be tried again, by channel kind",
            "kind",
            &g(&self.retrying),
        )
    }
}
