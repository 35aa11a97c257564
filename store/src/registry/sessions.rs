//! Login sessions of people (OpenID Connect): a random id in the browser's cookie, only its SHA-256 here, so
//! a copy of the registry cannot be used to log in. Sessions survive a restart; expired ones are purged.
use super::Registry;
use crate::error::{corrupt, db};
use crate::{Result, secret};
use bydata_schemas::UnixNanos;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// SHA-256 (hex) of the session id → the session (JSON).
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// Alphanumeric characters of a session id: 43 × 5.95 bits ≥ 256 bits.
const SESSION_ID_LEN: usize = 43;

/// A person's login session as stored. What they may do is worked out at each request from `groups` and the
/// organisations' members, so a changed mapping or membership applies at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The identity provider's id of the person (`sub`).
    pub subject: String,
    pub name: String,
    /// Lower-case.
    pub email: Option<String>,
    /// The values of the groups claim at login.
    pub groups: Vec<String>,
    /// What a browser must echo in `X-CSRF-Token` to change anything.
    pub csrf: String,
    /// The ID token, only to hint the provider at logout who is leaving.
    pub id_token: String,
    pub created_at: UnixNanos,
    /// When it ends however active.
    pub expires_at: UnixNanos,
    /// When it was last used (written at most once a minute).
    pub last_seen: UnixNanos,
}

impl Registry {
    /// Stores `session` under a new random id, returned once (for the cookie).
    pub(crate) fn create_session(&self, session: &Session) -> Result<String> {
        let id = secret::generate(SESSION_ID_LEN);
        let json = serde_json::to_vec(session).map_err(corrupt("session"))?;
        let txn = self.db.begin_write().map_err(db("creating a session"))?;
        {
            let mut table = txn.open_table(SESSIONS).map_err(db("creating a session"))?;
            table
                .insert(secret::token_hash(&id).as_str(), json.as_slice())
                .map_err(db("creating a session"))?;
        }
        txn.commit().map_err(db("creating a session"))?;
        Ok(id)
    }

    /// The session whose id is `id`, if any.
    pub(crate) fn session(&self, id: &str) -> Result<Option<Session>> {
        let txn = self.db.begin_read().map_err(db("reading a session"))?;
        let table = txn.open_table(SESSIONS).map_err(db("reading a session"))?;
        let row = table
            .get(secret::token_hash(id).as_str())
            .map_err(db("reading a session"))?;
        row.map(|v| serde_json::from_slice(v.value()).map_err(corrupt("session")))
            .transpose()
    }

    /// Notes that session `id` was used at `now`.
    pub(crate) fn touch_session(&self, id: &str, now: UnixNanos) -> Result<()> {
        let txn = self.db.begin_write().map_err(db("touching a session"))?;
        {
            let mut table = txn.open_table(SESSIONS).map_err(db("touching a session"))?;
            let hash = secret::token_hash(id);
            let session = table
                .get(hash.as_str())
                .map_err(db("touching a session"))?
                .map(|v| serde_json::from_slice::<Session>(v.value()))
                .transpose()
                .map_err(corrupt("session"))?;
            if let Some(mut session) = session {
                session.last_seen = session.last_seen.max(now);
                let json = serde_json::to_vec(&session).map_err(corrupt("session"))?;
                table
                    .insert(hash.as_str(), json.as_slice())
                    .map_err(db("touching a session"))?;
            }
        }
        txn.commit().map_err(db("touching a session"))
    }

    /// Ends session `id`; answers what it was.
    pub(crate) fn delete_session(&self, id: &str) -> Result<Option<Session>> {
        let txn = self.db.begin_write().map_err(db("ending a session"))?;
        let removed = {
            let mut table = txn.open_table(SESSIONS).map_err(db("ending a session"))?;
            let row = table
                .remove(secret::token_hash(id).as_str())
                .map_err(db("ending a session"))?;
            row.map(|v| serde_json::from_slice(v.value()))
                .transpose()
                .map_err(corrupt("session"))?
        };
        txn.commit().map_err(db("ending a session"))?;
        Ok(removed)
    }

    /// Removes sessions past their end, or unused since `idle_before`; answers how many.
    pub(crate) fn purge_sessions(&self, now: UnixNanos, idle_before: UnixNanos) -> Result<usize> {
        let txn = self.db.begin_write().map_err(db("purging sessions"))?;
        let purged = {
            let mut table = txn.open_table(SESSIONS).map_err(db("purging sessions"))?;
            let mut ended = Vec::new();
            for row in table.iter().map_err(db("purging sessions"))? {
                let (k, v) = row.map_err(db("purging sessions"))?;
                // An unreadable row cannot be used either: it goes too.
                let over = serde_json::from_slice::<Session>(v.value())
                    .map_or(true, |s| s.expires_at <= now || s.last_seen < idle_before);
                if over {
                    ended.push(k.value().to_owned());
                }
            }
            for k in &ended {
                table.remove(k.as_str()).map_err(db("purging sessions"))?;
            }
            ended.len()
        };
        txn.commit().map_err(db("purging sessions"))?;
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: UnixNanos, last_seen: UnixNanos) -> Session {
        Session {
            subject: "s1".into(),
            name: "Alice".into(),
            email: Some("alice@example.test".into()),
            groups: vec!["g1".into()],
            csrf: "c".into(),
            id_token: "t".into(),
            created_at: 0,
            expires_at,
            last_seen,
        }
    }

    #[test]
    fn sessions_are_kept_by_hash_touched_ended_and_purged() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        let reg = Registry::open(&path).expect("open");
        let id = reg.create_session(&session(100, 10)).expect("create");
        assert_eq!(id.len(), SESSION_ID_LEN);
        assert_eq!(reg.session(&id).expect("read"), Some(session(100, 10)));
        assert_eq!(reg.session("other").expect("read"), None);
        reg.touch_session(&id, 50).expect("touch");
        assert_eq!(
            reg.session(&id).expect("read").map(|s| s.last_seen),
            Some(50)
        );
        let idle = reg.create_session(&session(100, 5)).expect("create");
        let old = reg.create_session(&session(60, 60)).expect("create");
        assert_eq!(reg.purge_sessions(60, 20).expect("purge"), 2);
        assert!(reg.session(&idle).expect("read").is_none());
        assert!(reg.session(&old).expect("read").is_none());
        drop(reg);
        let reg = Registry::open(&path).expect("reopen");
        assert!(
            reg.session(&id).expect("read").is_some(),
            "survives a restart"
        );
        assert!(reg.delete_session(&id).expect("end").is_some());
        assert!(reg.session(&id).expect("read").is_none());
        assert!(reg.delete_session(&id).expect("end").is_none());
        let raw = std::fs::read(&path).expect("file");
        assert!(
            !raw.windows(id.len()).any(|w| w == id.as_bytes()),
            "the id is not stored"
        );
    }
}
