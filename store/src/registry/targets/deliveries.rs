//! A target's cursor, its delivery log, and the forwarder's step committed in one transaction.
use super::{
    DeadLetter, Registry, TARGET_CURSORS, TARGET_DEAD_LETTERS, TARGET_DELIVERIES, TARGETS,
};
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{TargetId, UnixNanos};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// What an attempt was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// Readings from the journal.
    Batch,
    /// A dead letter sent again.
    Replay,
    /// The "send a test message" action.
    Test,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver accepted it (2xx, PUBACK).
    Delivered,
    /// It failed and will be tried again (the cursor waits).
    Failed,
    /// It failed for good and became a dead letter (the cursor moved on).
    DeadLettered,
}

/// One attempt in a target's delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDelivery {
    /// Position in the target's log, given when stored.
    #[serde(default)]
    pub seq: u64,
    pub time: UnixNanos,
    pub kind: DeliveryKind,
    pub outcome: DeliveryOutcome,
    /// The batch id (`X-Bydata-Batch`).
    pub batch: String,
    pub readings: u64,
    /// The attempt's number for this batch, from 1.
    pub attempt: u32,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The start of the receiver's answer (a few hundred characters), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why it failed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: u64,
}

/// What a target's worker is doing (not stored: the forwarder knows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not started yet (it starts within a second of being created or enabled).
    Starting,
    /// Caught up, or filling a batch.
    Idle,
    /// A batch is on its way.
    Sending,
    /// The last attempt failed; the next one is at `next_attempt_at` (the cursor waits).
    Retrying,
    /// The target is disabled.
    Disabled,
    /// Its settings cannot be used (the reason is `reason`), or forwarding is off in the configuration.
    Stopped,
}

/// A target's status: where its cursor is, how far behind the journal, and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub state: TargetState,
    /// The committed journal position.
    pub cursor: u64,
    /// Journal entries after the cursor (every organisation's; counted up to a million).
    pub lag_entries: u64,
    pub lag_bytes: u64,
    /// Age of the first entry after the cursor, in seconds (0 when caught up).
    pub lag_seconds: u64,
    /// Failed attempts of the batch being retried.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<UnixNanos>,
    pub dead_letters: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<TargetDelivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TargetDelivery>,
    /// Why the target is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One step of a forwarder, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct TargetCommit {
    /// The new cursor (`None`: unchanged).
    pub cursor: Option<u64>,
    pub deliveries: Vec<TargetDelivery>,
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters delivered by a replay.
    pub replayed: Vec<u64>,
    /// Dead letters whose replay failed: the attempt is counted, the error kept, the replay request cleared.
    pub failed_replays: Vec<(u64, Option<u16>, String)>,
    /// Delivery log entries kept per target (older ones are removed).
    pub keep_deliveries: usize,
}

impl Registry {
    pub(crate) fn target_cursor(&self, id: &TargetId) -> Result<Option<u64>> {
        let context = "reading a target's cursor";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_CURSORS).map_err(db(context))?;
        Ok(table
            .get(id.as_str())
            .map_err(db(context))?
            .map(|v| v.value()))
    }

    /// Commits one forwarder step; `false` (and nothing written) if the target was deleted meanwhile.
    pub(crate) fn commit_target(&self, id: &TargetId, step: TargetCommit) -> Result<bool> {
        let context = "committing a target's deliveries";
        let key = id.as_str();
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let targets = txn.open_table(TARGETS).map_err(db(context))?;
            if targets.get(key).map_err(db(context))?.is_none() {
                return Ok(false);
            }
        }
        if let Some(cursor) = step.cursor {
            let mut c = txn.open_table(TARGET_CURSORS).map_err(db(context))?;
            c.insert(key, cursor).map_err(db(context))?;
        }
        if !step.deliveries.is_empty() {
            let mut log = txn.open_table(TARGET_DELIVERIES).map_err(db(context))?;
            let mut seq = last_seq(&log, key, context)?;
            for mut d in step.deliveries {
                seq += 1;
                d.seq = seq;
                let json = serde_json::to_vec(&d).map_err(corrupt("delivery"))?;
                log.insert((key, seq), json.as_slice())
                    .map_err(db(context))?;
            }
            let keep = step.keep_deliveries.max(1) as u64;
            if seq > keep {
                log.retain_in((key, 0)..=(key, seq - keep), |_, _| false)
                    .map_err(db(context))?;
            }
        }
        if !(step.dead_letters.is_empty()
            && step.replayed.is_empty()
            && step.failed_replays.is_empty())
        {
            let mut dead = txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
            let mut seq = last_seq(&dead, key, context)?;
            for mut letter in step.dead_letters {
                seq += 1;
                letter.id = seq;
                let json = serde_json::to_vec(&letter).map_err(corrupt("dead letter"))?;
                dead.insert((key, seq), json.as_slice())
                    .map_err(db(context))?;
            }
            for id in step.replayed {
                dead.remove((key, id)).map_err(db(context))?;
            }
            for (id, status, error) in step.failed_replays {
                let current: Option<DeadLetter> = dead
                    .get((key, id))
                    .map_err(db(context))?
                    .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("dead letter")))
                    .transpose()?;
                if let Some(mut letter) = current {
                    letter.attempts += 1;
                    letter.status = status;
                    letter.reason = error;
                    letter.replay = false;
                    let json = serde_json::to_vec(&letter).map_err(corrupt("dead letter"))?;
                    dead.insert((key, id), json.as_slice())
                        .map_err(db(context))?;
                }
            }
        }
        txn.commit().map_err(db(context))?;
        Ok(true)
    }

    /// The last `limit` attempts, newest first.
    pub(crate) fn target_deliveries(
        &self,
        id: &TargetId,
        limit: usize,
    ) -> Result<Vec<TargetDelivery>> {
        let context = "reading a target's deliveries";
        let key = id.as_str();
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_DELIVERIES).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(db(context))?
            .rev()
            .take(limit)
        {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("delivery"))?);
        }
        Ok(out)
    }
}

/// The highest sequence number used for `key` in a per-target table (0 for none).
fn last_seq(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    key: &str,
    context: &'static str,
) -> Result<u64> {
    Ok(table
        .range((key, 0)..=(key, u64::MAX))
        .map_err(db(context))?
        .next_back()
        .transpose()
        .map_err(db(context))?
        .map_or(0, |(k, _)| k.value().1))
}
