//! What the forwarder and its workers share: their dependencies, and each worker's live state.
use crate::Metrics;
use bydata_schemas::UnixNanos;
use bydata_store::journal::Journal;
use bydata_store::{SharedRegistry, TargetDelivery, TargetState, TargetStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What the forwarder needs.
#[derive(Clone)]
pub struct Deps {
    pub journal: Arc<Journal>,
    pub registry: SharedRegistry,
    /// The pipeline's settings: codec limits and time rules, so readings decode as they are stored.
    pub ingest: bydata_ingest::Config,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// A target's status (re-exported from the store, where the API finds it too).
pub type LiveStatus = TargetStatus;

/// What a worker shares with the forwarder.
#[derive(Debug, Default)]
pub(crate) struct Live {
    inner: Mutex<LiveInner>,
    replay: AtomicBool,
}

pub(crate) type LiveState = TargetState;

#[derive(Debug)]
pub(crate) struct LiveInner {
    pub(crate) state: LiveState,
    pub(crate) cursor: u64,
    /// Receive time of the oldest entry read but not delivered.
    pub(crate) oldest_pending: Option<UnixNanos>,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Option<UnixNanos>,
    pub(crate) last_success: Option<TargetDelivery>,
    pub(crate) last_error: Option<TargetDelivery>,
}

impl Default for LiveInner {
    fn default() -> Self {
        Self {
            state: LiveState::Starting,
            cursor: 0,
            oldest_pending: None,
            attempts: 0,
            next_attempt_at: None,
            last_success: None,
            last_error: None,
        }
    }
}

impl Live {
    pub(crate) fn lock(&self) -> MutexGuard<'_, LiveInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
    pub(crate) fn set(&self, f: impl FnOnce(&mut LiveInner)) {
        f(&mut self.lock());
    }
    pub(crate) fn request_replay(&self) {
        self.replay.store(true, Ordering::Release);
    }
    pub(crate) fn take_replay(&self) -> bool {
        self.replay.swap(false, Ordering::AcqRel)
    }
    pub(crate) fn oldest_age_secs(&self, now: UnixNanos) -> u64 {
        self.lock()
            .oldest_pending
            .map_or(0, |t| (now.saturating_sub(t).max(0) / 1_000_000_000) as u64)
    }
}
