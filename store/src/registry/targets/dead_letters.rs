//! Dead letters: batches a receiver refused for good, kept with their readings until replayed or discarded.
use super::{Registry, TARGET_DEAD_LETTERS};
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{TargetId, UnixNanos};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// A batch the receiver refused for good, kept with its readings until replayed or discarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Given when stored; increases per target.
    #[serde(default)]
    pub id: u64,
    pub created_at: UnixNanos,
    pub batch: String,
    /// The forwarded readings, as sent (each with its idempotency key).
    pub readings: Vec<serde_json::Value>,
    /// The journal range they came from.
    pub first_position: u64,
    pub end_position: u64,
    /// Attempts so far (replays included).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was refused, in words.
    pub reason: String,
    /// Asked to be sent again.
    #[serde(default)]
    pub replay: bool,
}

impl Registry {
    /// How many dead letters the target holds, and the oldest `limit` of them.
    pub(crate) fn dead_letters(
        &self,
        id: &TargetId,
        limit: usize,
    ) -> Result<(usize, Vec<DeadLetter>)> {
        let context = "reading a target's dead letters";
        let key = id.as_str();
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
        let mut out = Vec::new();
        let mut total = 0;
        for row in table
            .range((key, 0)..=(key, u64::MAX))
            .map_err(db(context))?
        {
            let (_, v) = row.map_err(db(context))?;
            total += 1;
            if out.len() < limit {
                out.push(serde_json::from_slice(v.value()).map_err(corrupt("dead letter"))?);
            }
        }
        Ok((total, out))
    }

    /// Asks for the target's dead letters (`ids`, or all of them) to be sent again; answers how many.
    pub(crate) fn replay_dead_letters(
        &self,
        id: &TargetId,
        ids: Option<Vec<u64>>,
    ) -> Result<usize> {
        self.change_dead_letters(id, "replaying dead letters", |letter| {
            if ids.as_ref().is_none_or(|ids| ids.contains(&letter.id)) && !letter.replay {
                letter.replay = true;
                Some(true)
            } else {
                None
            }
        })
    }

    /// Removes the target's dead letters (their readings stay in the journal); answers how many.
    pub(crate) fn discard_dead_letters(&self, id: &TargetId) -> Result<usize> {
        self.change_dead_letters(id, "discarding dead letters", |_| Some(false))
    }

    /// Applies `change` to each dead letter: `Some(true)` rewrites it, `Some(false)` removes it, `None`
    /// leaves it. Answers how many changed.
    fn change_dead_letters(
        &self,
        id: &TargetId,
        context: &'static str,
        mut change: impl FnMut(&mut DeadLetter) -> Option<bool>,
    ) -> Result<usize> {
        let key = id.as_str();
        let txn = self.db.begin_write().map_err(db(context))?;
        let changed = {
            let mut table = txn.open_table(TARGET_DEAD_LETTERS).map_err(db(context))?;
            let mut rewrite = Vec::new();
            let mut remove = Vec::new();
            for row in table
                .range((key, 0)..=(key, u64::MAX))
                .map_err(db(context))?
            {
                let (k, v) = row.map_err(db(context))?;
                let mut letter: DeadLetter =
                    serde_json::from_slice(v.value()).map_err(corrupt("dead letter"))?;
                match change(&mut letter) {
                    Some(true) => rewrite.push((k.value().1, letter)),
                    Some(false) => remove.push(k.value().1),
                    None => {}
                }
            }
            for (seq, letter) in &rewrite {
                let json = serde_json::to_vec(letter).map_err(corrupt("dead letter"))?;
                table
                    .insert((key, *seq), json.as_slice())
                    .map_err(db(context))?;
            }
            for seq in &remove {
                table.remove((key, *seq)).map_err(db(context))?;
            }
            rewrite.len() + remove.len()
        };
        self.commit_if(txn, context, changed > 0)?;
        Ok(changed)
    }
}
