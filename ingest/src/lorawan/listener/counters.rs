//! Accepted frames' counters, committed to the registry in groups: every counter accepted while a commit
//! runs goes into the next one — one redb transaction, one fsync — on the blocking pool. A frame is marked
//! durable (and may be journaled, `dedup`) only when the registry has taken its counter; one the registry
//! refuses (a replay the cache could not see, a session deleted or replaced meanwhile) or cannot commit is
//! dropped, never journaled.
use super::dedup::FrameKey;
use super::{Job, Listener, inc};
use crate::lorawan::frame::FrameError;
use bydata_schemas::{Eui64, UnixNanos};
use bydata_store::{Advanced, CounterAdvance, GatewayStatus, LastError, SharedRegistry};
use tokio::task::JoinError;

fn key(a: &CounterAdvance) -> FrameKey {
    FrameKey {
        dev_addr: a.dev_addr,
        fcnt: a.fcnt,
        nwk_s_key: a.nwk_s_key,
    }
}

/// Most counters waiting for the next commit; at this many the listener stops reading datagrams until the
/// running commit ends.
const MAX_PENDING: usize = 20_000;

/// The advances of a commit, and its outcome (`Err`: why nothing was committed).
type Commit = (Vec<CounterAdvance>, Result<Vec<Advanced>, String>);

pub(super) struct Counters {
    registry: SharedRegistry,
    pending: Vec<CounterAdvance>,
    commit: Job<Commit>,
}

impl Counters {
    pub(super) fn new(registry: SharedRegistry) -> Self {
        Self {
            registry,
            pending: Vec::new(),
            commit: Job::idle(),
        }
    }

    pub(super) fn push(&mut self, advance: CounterAdvance) {
        self.pending.push(advance);
    }

    pub(super) fn full(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    /// Commits everything pending, unless a commit is running (its end starts the next).
    pub(super) fn start(&mut self) {
        if self.commit.busy() || self.pending.is_empty() {
            return;
        }
        let advances = std::mem::take(&mut self.pending);
        let registry = self.registry.clone();
        self.commit.start_async(async move {
            // The advances come back whatever happens (a panicked commit is an error of the port's), so
            // their frames never wait for ever.
            let outcome = registry
                .advance_uplink_counters(advances.clone())
                .await
                .map_err(|e| e.to_string());
            (advances, outcome)
        });
    }

    /// The running commit's outcome (pending forever while none runs; cancel-safe).
    pub(super) async fn finished(&mut self) -> Result<Commit, JoinError> {
        self.commit.finished().await
    }
}

impl Listener {
    /// Applies a commit's outcome to the held frames.
    pub(super) fn committed(&mut self, done: Result<Commit, JoinError>) {
        let (advances, outcome) = match done {
            Ok(done) => done,
            Err(e) => {
                // Cancelled (the runtime is stopping): its frames are never journaled.
                tracing::error!(error = %e, "the LoRaWAN frame counter commit failed; its frames are lost");
                return;
            }
        };
        let outcomes = match outcome {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::error!(error = %e, frames = advances.len(),
                    "cannot commit LoRaWAN frame counters; the frames are not journaled");
                let reason = format!("cannot commit the frame counter: {e}");
                for a in &advances {
                    self.drop_frame(a, &reason);
                }
                return;
            }
        };
        for (a, outcome) in advances.iter().zip(outcomes) {
            match outcome {
                Advanced::Committed => {
                    inc(&self.deps.metrics.frames_accepted);
                    self.dedup.durable(&key(a));
                }
                Advanced::Stale { last } => {
                    let replay = FrameError::Replay { got: a.fcnt, last };
                    if let Some((gateway, at)) = self.drop_frame(a, "") {
                        let reason =
                            self.refuse(a.device.clone(), at, replay.code(), &replay.to_string());
                        self.gateway_refused(gateway, at, reason);
                    }
                }
                Advanced::NoSession => {
                    inc(&self.deps.metrics.frames_unknown_device);
                    let reason = format!(
                        "frame of {} dropped: DevAddr {:08x} no longer has the session it was checked against (device deleted or rejoined)",
                        a.device, a.dev_addr
                    );
                    self.drop_frame(a, &reason);
                }
            }
        }
    }

    /// Drops a held frame whose counter was not committed; tells its gateway's status why, unless `reason`
    /// is empty (the caller does). Returns the frame's gateway and receive time.
    fn drop_frame(&mut self, a: &CounterAdvance, reason: &str) -> Option<(Eui64, UnixNanos)> {
        // The cache accepted a counter the registry did not take: read the session again.
        self.sessions.forget(a.dev_addr);
        let held = self.dedup.drop_frame(&key(a))?;
        if !reason.is_empty() {
            self.gateway_refused(held.gateway, held.uplink.received_at, reason.to_owned());
        }
        Some((held.gateway, held.uplink.received_at))
    }

    /// Counts a frame refused after its datagram was handled on its gateway's status.
    fn gateway_refused(&mut self, gateway: Eui64, time: UnixNanos, reason: String) {
        let delta = GatewayStatus {
            rx_rejected: 1,
            last_error: Some(LastError { time, reason }),
            ..GatewayStatus::default()
        };
        self.pending.entry(gateway).or_default().merge(&delta);
    }

    /// Commits every pending counter and waits for the last commit (at shutdown).
    pub(super) async fn flush_counters(&mut self) {
        loop {
            self.counters.start();
            if !self.counters.commit.busy() {
                return;
            }
            let done = self.counters.finished().await;
            self.committed(done);
        }
    }
}
