//! Copies of a frame heard by several gateways, and the journal append.
//!
//! An accepted frame is held for `COLLECT_WINDOW` after its first copy: every gateway's RSSI and SNR heard
//! in that time joins it (the uplink's `radio`). It is journaled once the window has passed *and* its
//! counter is durable (`counters`), in arrival order, in batches on the blocking pool (one batch at a time).
//! A copy arriving later, within `DEDUP_WINDOW`, is counted as a duplicate, not as a replay.
//!
//! Each copy's radio metadata (`Heard`: its gateway's concentrator time, frequency, data rate, signal) is
//! kept with the frame, and a released frame goes to `downlink` too, which answers it in a class A receive
//! window through the gateway with the best copy.
use super::downlink::{ClassA, Heard};
use super::{Job, Listener, MAX_RECENT};
use bydata_schemas::{Eui64, JournalEntry, Reception, Uplink};
use bydata_store::journal::Journal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinError;

/// How long after a frame a copy of it (heard by another gateway) counts as a duplicate.
const DEDUP_WINDOW: Duration = Duration::from_secs(30);
/// Most frames held (in their collection window or waiting for their counter); at this many the listener
/// journals the durable ones early and reads no datagram until there is room.
const MAX_HELD: usize = 50_000;

/// A frame: its DevAddr and counter, and the session it belongs to (its NwkSKey), so that a DevAddr given
/// to another session (a new device, a rejoin) starts afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct FrameKey {
    pub(super) dev_addr: u32,
    pub(super) fcnt: u32,
    pub(super) nwk_s_key: [u8; 16],
}

/// An accepted frame waiting for its window and its counter.
pub(super) struct Held {
    pub(super) uplink: Uplink,
    /// The gateway whose copy came first (whose status a late refusal goes to).
    pub(super) gateway: Eui64,
    /// What a downlink answering the frame needs: the session, the frame's flags, every copy's radio.
    class_a: Option<ClassA>,
    at: Instant,
    durable: bool,
}

/// Appends that failed, and the first error.
type Appended = (usize, Option<String>);

pub(super) struct Dedup {
    journal: Arc<Journal>,
    /// Recent accepted frames → when.
    recent: HashMap<FrameKey, Instant>,
    /// Accepted frames not yet journaled.
    held: HashMap<FrameKey, Held>,
    append: Job<Appended>,
}

impl Dedup {
    pub(super) fn new(journal: Arc<Journal>) -> Self {
        Self {
            journal,
            recent: HashMap::new(),
            held: HashMap::new(),
            append: Job::idle(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub(super) fn full(&self) -> bool {
        self.held.len() >= MAX_HELD
    }

    /// Whether `frame` was accepted within `DEDUP_WINDOW`.
    pub(super) fn is_recent(&self, frame: &FrameKey) -> bool {
        self.recent
            .get(frame)
            .is_some_and(|at| at.elapsed() < DEDUP_WINDOW)
    }

    /// Holds a frame just accepted (its counter not yet committed).
    pub(super) fn hold(
        &mut self,
        frame: FrameKey,
        uplink: Uplink,
        gateway: Eui64,
        class_a: ClassA,
    ) {
        // Full (more than MAX_RECENT frames in DEDUP_WINDOW): keep the last second's, where nearly all
        // copies fall, before giving up on all.
        for keep in [DEDUP_WINDOW, Duration::from_secs(1), Duration::ZERO] {
            if self.recent.len() < MAX_RECENT {
                break;
            }
            self.recent.retain(|_, at| at.elapsed() < keep);
        }
        let now = Instant::now();
        self.recent.insert(frame, now);
        let held = Held {
            uplink,
            gateway,
            class_a: Some(class_a),
            at: now,
            durable: false,
        };
        self.held.insert(frame, held);
    }

    /// Adds another gateway's reception to a held frame (a copy after the window only counts).
    pub(super) fn add_reception(&mut self, frame: &FrameKey, reception: Reception, heard: Heard) {
        if let Some(held) = self.held.get_mut(frame)
            && !held
                .uplink
                .radio
                .iter()
                .any(|r| r.gateway == reception.gateway)
        {
            held.uplink.radio.push(reception);
            if let Some(class_a) = held.class_a.as_mut() {
                class_a.heard.push(heard);
            }
        }
    }

    /// The frame's counter is committed: it may be journaled once its window has passed.
    pub(super) fn durable(&mut self, frame: &FrameKey) {
        if let Some(held) = self.held.get_mut(frame) {
            held.durable = true;
        }
    }

    /// Removes a frame whose counter was not committed (its copies are no duplicates of anything).
    pub(super) fn drop_frame(&mut self, frame: &FrameKey) -> Option<Held> {
        self.recent.remove(frame);
        self.held.remove(frame)
    }

    /// The running append's outcome (pending forever while none runs; cancel-safe).
    pub(super) async fn appended(&mut self) -> Result<Appended, JoinError> {
        self.append.finished().await
    }

    /// Waits for the running append, if any.
    pub(super) async fn drain(&mut self) {
        if self.append.busy() {
            log_failed_append(self.appended().await);
        }
    }
}

impl Listener {
    /// Journals the held frames whose counter is durable and whose window (`older_than`) has passed, in
    /// arrival order — unless an append is still running (the next tick takes them). With the held frames
    /// at their bound, durable frames go early (their later copies count as duplicates without their signal).
    pub(super) fn release(&mut self, older_than: Duration) {
        let dedup = &mut self.dedup;
        if dedup.append.busy() {
            return;
        }
        let older_than = if dedup.full() {
            Duration::ZERO
        } else {
            older_than
        };
        let mut due: Vec<Held> = dedup
            .held
            .extract_if(|_, h| h.durable && h.at.elapsed() >= older_than)
            .map(|(_, h)| h)
            .collect();
        if due.is_empty() {
            return;
        }
        due.sort_by_key(|h| h.at);
        for held in &mut due {
            if let Some(class_a) = held.class_a.take() {
                self.class_a(held.uplink.device.clone(), class_a, held.at);
            }
        }
        let dedup = &mut self.dedup;
        let journal = dedup.journal.clone();
        dedup.append.start(move || {
            let (mut failed, mut first) = (0, None);
            for held in due {
                if let Err(e) = journal.append(&JournalEntry::Uplink(held.uplink)) {
                    failed += 1;
                    first.get_or_insert_with(|| e.to_string());
                }
            }
            (failed, first)
        });
    }
}

/// Logs a batch's failed appends once (ERROR: those frames are lost; their counters are spent).
pub(super) fn log_failed_append(appended: Result<Appended, JoinError>) {
    match appended {
        Ok((0, _)) => {}
        Ok((failed, error)) => {
            tracing::error!(
                failed,
                error = error.unwrap_or_default(),
                "cannot journal LoRaWAN frames; they are lost"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the LoRaWAN journal task failed; its frames are lost")
        }
    }
}
