//! An authenticated device's uplink into the journal: the one append the MQTT edge (before its PUBACK) and the
//! HTTP push (before its 202) share, so both acknowledge exactly the same thing.
//!
//! identity (the caller's: the device its login or key proved) → [`JournalEntry::Uplink`] → the intake gate
//! (`health`, asked by [`Journal::append`]) → the append → the edge's counters, and, when the gate refuses, the
//! reason on the device's status. What the append guarantees is the journal's: written to the OS in one piece,
//! so it survives `kill -9` at once and power loss after the next group fsync.
use crate::journal::{self, Journal};
use crate::refusals::Refusals;
use bydata_schemas::{JournalEntry, RejectReason, Uplink};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where an edge counts what became of its uplinks.
#[derive(Debug, Clone, Copy)]
pub struct UplinkCounters<'a> {
    /// In the journal (acknowledged).
    pub journaled: &'a AtomicU64,
    /// Not taken: the gate refused, or the journal failed (not acknowledged).
    pub not_journaled: &'a AtomicU64,
}

/// Why an uplink is not in the journal: the sender keeps it and sends it again.
#[derive(Debug, thiserror::Error)]
pub enum NotJournaled {
    /// New data is refused for now (disk full, or bydata stopping); already on the device's status.
    #[error("{reason}")]
    Refused { reason: crate::health::Refusal },
    /// The journal could not take it (logged once here).
    #[error(transparent)]
    Failed(journal::Error),
}

/// Appends `uplink` — its `device` the identity the edge established, never anything from the payload — and
/// answers its journal position. Synchronous and quick: one `write(2)` under the journal's lock, no fsync.
pub fn append_uplink(
    journal: &Journal,
    refusals: &Refusals,
    uplink: Uplink,
    counters: UplinkCounters<'_>,
) -> Result<u64, NotJournaled> {
    let (device, received_at, source) = (uplink.device.clone(), uplink.received_at, uplink.source);
    match journal.append(&JournalEntry::Uplink(uplink)) {
        Ok(position) => {
            counters.journaled.fetch_add(1, Ordering::Relaxed);
            Ok(position)
        }
        Err(journal::Error::Refused { reason }) => {
            // Not accepting now (disk full, or stopping): said once in the log by whoever decided it, and on
            // the device's status here; no acknowledgement, the device retries.
            counters.not_journaled.fetch_add(1, Ordering::Relaxed);
            refusals.record(
                &device,
                received_at,
                &RejectReason::NotAccepting {
                    reason: reason.to_string(),
                },
            );
            Err(NotJournaled::Refused { reason })
        }
        Err(e) => {
            // Not journaled means not acknowledged: the device keeps the message and retries.
            counters.not_journaled.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%device, ?source, error = %e, "cannot journal an uplink; not acknowledged");
            Err(NotJournaled::Failed(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use bydata_schemas::{DeviceId, Source};
    use std::sync::Arc;

    fn uplink() -> Uplink {
        Uplink {
            received_at: 7,
            device: DeviceId::new("room-1").expect("id"),
            source: Source::Http,
            topic: "devices/room-1/up".into(),
            fport: Some(2),
            payload: b"{\"t\": 1}".to_vec(),
            radio: Vec::new(),
        }
    }

    #[tokio::test]
    async fn appended_uplinks_are_counted_and_refused_ones_are_on_the_status() {
        let dir = tempfile::tempdir().expect("tmp");
        let journal = Journal::open(&dir.path().join("j"), Default::default()).expect("journal");
        let registry = crate::RedbRegistry::open(
            &dir.path().join("r.redb"),
            crate::SecretKey::from_bytes([1; 32]),
        )
        .expect("registry")
        .shared();
        let refusals = Refusals::new(registry, 0);
        let (journaled, not_journaled) = (AtomicU64::new(0), AtomicU64::new(0));
        let counters = UplinkCounters {
            journaled: &journaled,
            not_journaled: &not_journaled,
        };
        let at = append_uplink(&journal, &refusals, uplink(), counters).expect("appended");
        let health = Arc::new(Health::default());
        journal.guard_intake(health.clone());
        health.stop_intake("store writer");
        let refused = append_uplink(&journal, &refusals, uplink(), counters);
        assert!(
            matches!(refused, Err(NotJournaled::Refused { .. })),
            "{refused:?}"
        );
        assert_eq!(
            (
                journaled.load(Ordering::Relaxed),
                not_journaled.load(Ordering::Relaxed)
            ),
            (1, 1)
        );
        journal.close().expect("close");
        let (entries, _) = journal.read(at, 10).expect("read");
        assert_eq!(entries, vec![(at, JournalEntry::Uplink(uplink()))]);
    }
}
