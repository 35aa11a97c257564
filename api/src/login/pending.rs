//! Logins under way: what a browser's round trip to the provider must find when it comes back (the PKCE
//! verifier, the nonce, where to go next), keyed by `state`, held in memory for ten minutes and usable once.
//! A restart forgets them: whoever was at the provider's login page starts again.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login may take at the provider.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Most logins under way at once. Over it a new login is refused (503) until older ones expire: the memory
/// an anonymous caller can make bydata hold stays bounded.
const MAX_PENDING: usize = 10_000;

/// One login under way.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) nonce: String,
    pub(crate) verifier: String,
    pub(crate) next: String,
    started: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Pending {
    records: Mutex<HashMap<String, Record>>,
}

impl Pending {
    /// Keeps a login under `state`; `false` when too many are under way.
    pub(crate) fn insert(
        &self,
        state: String,
        nonce: String,
        verifier: String,
        next: String,
    ) -> bool {
        let Ok(mut records) = self.records.lock() else {
            return false;
        };
        if records.len() >= MAX_PENDING {
            records.retain(|_, r| r.started.elapsed() < LOGIN_TTL);
            if records.len() >= MAX_PENDING {
                return false;
            }
        }
        records.insert(
            state,
            Record {
                nonce,
                verifier,
                next,
                started: Instant::now(),
            },
        );
        true
    }

    /// Takes the login kept under `state` (once: a second callback with it finds nothing), unless expired.
    pub(crate) fn take(&self, state: &str) -> Option<Record> {
        let record = self.records.lock().ok()?.remove(state)?;
        (record.started.elapsed() < LOGIN_TTL).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_taken_once() {
        let pending = Pending::default();
        assert!(pending.insert("s".into(), "n".into(), "v".into(), "/".into()));
        assert_eq!(pending.take("s").map(|r| r.nonce), Some("n".to_owned()));
        assert!(pending.take("s").is_none());
        assert!(pending.take("other").is_none());
    }
}
