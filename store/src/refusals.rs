//! What the edges refused, kept out of the raw journal.
//!
//! A refusal of something an *authenticated* source did (a device publishing outside its topic, a replayed
//! LoRaWAN frame, a network server's unreadable event about a device) is its owner's business: it is counted
//! on the device's status with the latest reason as a sample. Refusals are aggregated here per device and
//! written to the registry at most once per flush interval, all devices in one transaction, so a device that
//! repeats a mistake — or someone replaying its frames — costs one small status update per interval, and
//! nothing accumulates on disk.
//!
//! A refusal of an *unauthenticated* attempt (a wrong password, a LoRaWAN frame whose MIC does not verify) is written
//! nowhere: otherwise a stranger could fill the disk or a device's status. It is counted in `/metrics` by the
//! edge and, for registered devices only, in memory here (`Unverified`), so the owner still sees that
//! attempts with the device's id are failing — counters and a time, never the stranger's text.
use crate::{DeviceStatus, LastError, Result, SharedRegistry};
use bydata_schemas::{DeviceId, RejectReason, UnixNanos};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often aggregated refusals are written to the registry.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Longest reason kept (a reason quotes what the device sent, e.g. a topic).
const MAX_REASON_CHARS: usize = 300;

/// Unauthenticated attempts made with a registered device's identity since bydata started (memory only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Unverified {
    /// MQTT logins with the device's id and a wrong password.
    pub wrong_password: u64,
    /// LoRaWAN frames or join requests naming the device that could not be verified (a MIC that does not
    /// match, a frame counter too far ahead to check).
    pub unverified_frames: u64,
    /// When the last one arrived.
    pub last: Option<UnixNanos>,
}

/// Which kind of unauthenticated attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedKind {
    WrongPassword,
    UnverifiedFrame,
}

/// The refusal book shared by the edges (writers) and the API (reader of `unverified`).
#[derive(Debug)]
pub struct Refusals {
    registry: SharedRegistry,
    pending: Mutex<HashMap<DeviceId, DeviceStatus>>,
    unverified: Mutex<HashMap<DeviceId, Unverified>>,
    /// When counting began (the `unverified` counters start at zero with the process).
    since: UnixNanos,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

impl Refusals {
    pub fn new(registry: SharedRegistry, now: UnixNanos) -> Self {
        Self {
            registry,
            pending: Mutex::default(),
            unverified: Mutex::default(),
            since: now,
        }
    }

    /// Counts a refusal of something `device` sent after it authenticated. Returns `true` for the device's
    /// first refusal since the last flush, so a caller can log once per interval rather than per refusal.
    pub fn record(&self, device: &DeviceId, time: UnixNanos, reason: &RejectReason) -> bool {
        let mut pending = lock(&self.pending);
        let first = !pending.contains_key(device);
        let status = pending.entry(device.clone()).or_default();
        status.received += 1;
        status.rejected += 1;
        if status.last_error.as_ref().is_none_or(|e| e.time <= time) {
            status.last_error = Some(LastError {
                time,
                reason: truncate(&reason.to_string(), MAX_REASON_CHARS),
            });
        }
        first
    }

    /// Counts an unauthenticated attempt with a registered device's identity (the caller has looked it up).
    pub fn record_unverified(&self, device: &DeviceId, time: UnixNanos, kind: UnverifiedKind) {
        let mut all = lock(&self.unverified);
        let u = all.entry(device.clone()).or_default();
        match kind {
            UnverifiedKind::WrongPassword => u.wrong_password += 1,
            UnverifiedKind::UnverifiedFrame => u.unverified_frames += 1,
        }
        u.last = u.last.max(Some(time));
    }

    /// A device's unauthenticated attempts since bydata started, and when counting started.
    pub fn unverified(&self, device: &DeviceId) -> (Unverified, UnixNanos) {
        let u = lock(&self.unverified)
            .get(device)
            .copied()
            .unwrap_or_default();
        (u, self.since)
    }

    /// Forgets a deleted device's in-memory counters.
    pub fn forget(&self, device: &DeviceId) {
        lock(&self.unverified).remove(device);
        lock(&self.pending).remove(device);
    }

    /// Writes the aggregated refusals to the devices' status, in one transaction; returns how many devices
    /// it touched. On failure the refusals are kept for the next flush.
    pub async fn flush(&self) -> Result<usize> {
        let batch: Vec<_> = std::mem::take(&mut *lock(&self.pending))
            .into_iter()
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        match self.registry.add_statuses(batch.clone()).await {
            Ok(()) => Ok(n),
            Err(e) => {
                let mut pending = lock(&self.pending);
                for (device, delta) in batch {
                    let merged = pending.entry(device).or_default();
                    merged.received += delta.received;
                    merged.rejected += delta.rejected;
                    if merged.last_error.is_none() {
                        merged.last_error = delta.last_error;
                    }
                }
                Err(e)
            }
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown`, then once more.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = tick.tick() => false,
                () = shutdown.cancelled() => true,
            };
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "cannot record refusals on device status");
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;
    use bydata_schemas::{Codec, Domain, Transport};

    async fn registry_with(id: &str) -> (tempfile::TempDir, SharedRegistry) {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = crate::RedbRegistry::open(
            &dir.path().join("r.redb"),
            crate::SecretKey::from_bytes([1; 32]),
        )
        .expect("open")
        .shared();
        reg.create_device(Device {
            org: Default::default(),
            id: DeviceId::new(id).expect("id"),
            name: "x".into(),
            transport: Transport::Mqtt,
            domain: Domain::new("building").expect("domain"),
            location: None,
            tags: Default::default(),
            codec: Codec::Auto,
            created_at: 0,
        })
        .await
        .expect("create");
        (dir, reg)
    }

    #[tokio::test]
    async fn refusals_are_counted_exactly_and_written_once_per_flush() {
        let (_dir, reg) = registry_with("a").await;
        let book = Refusals::new(reg.clone(), 0);
        let a = DeviceId::new("a").expect("id");
        let ghost = DeviceId::new("ghost").expect("id");
        let topic = "x".repeat(70_000);
        let mut firsts = 0;
        for i in 0..500 {
            let reason = RejectReason::PublishDenied {
                topic: format!("{topic}{i}"),
            };
            firsts += u32::from(book.record(&a, i, &reason));
            book.record(&ghost, i, &reason);
        }
        assert_eq!(firsts, 1, "one log line per device and interval");
        assert_eq!(book.flush().await.expect("flush"), 2);
        let s = reg.status(&a).await.expect("status");
        assert_eq!((s.received, s.rejected), (500, 500));
        let reason = s.last_error.expect("sample").reason;
        assert!(
            reason.chars().count() <= MAX_REASON_CHARS + 1,
            "{}",
            reason.len()
        );
        assert!(reason.ends_with('…'));
        // Unknown devices leave nothing behind, and an empty flush writes nothing.
        assert_eq!(
            reg.status(&ghost).await.expect("status"),
            DeviceStatus::default()
        );
        assert_eq!(book.flush().await.expect("flush"), 0);
        assert!(book.record(&a, 501, &RejectReason::AuthenticationFailed));
    }

    #[tokio::test]
    async fn unverified_attempts_stay_in_memory() {
        let (_dir, reg) = registry_with("a").await;
        let book = Refusals::new(reg.clone(), 7);
        let a = DeviceId::new("a").expect("id");
        book.record_unverified(&a, 10, UnverifiedKind::WrongPassword);
        book.record_unverified(&a, 9, UnverifiedKind::UnverifiedFrame);
        assert_eq!(
            book.unverified(&a),
            (
                Unverified {
                    wrong_password: 1,
                    unverified_frames: 1,
                    last: Some(10)
                },
                7
            )
        );
        assert_eq!(book.flush().await.expect("flush"), 0);
        assert_eq!(
            reg.status(&a).await.expect("status"),
            DeviceStatus::default()
        );
    }
}
