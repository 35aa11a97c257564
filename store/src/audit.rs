//! The audit log's pending entry: who changed what, carried from an API handler to the registry transaction
//! that makes the change, so the record and the change commit together (or neither does).
//!
//! The handler wraps its mutating registry call in [`scope`]; the registry port hands the scope's slot to the
//! blocking thread that runs the call ([`Pending::enter`]); the first registry write transaction that commits
//! a change there takes the entry and inserts it in its own transaction (`Registry::commit`). A scope whose
//! call commits nothing (a refused create, an identical upload) writes nothing. Entries stored in the registry
//! are read back with [`RegistryPort::audit`](crate::RegistryPort::audit).
use bydata_schemas::{OrgId, UnixNanos};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// One change as the audit log keeps it. Summaries hold what the API shows, never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, given when stored (0 before); increases with every entry.
    #[serde(default)]
    pub seq: u64,
    pub time: UnixNanos,
    /// `key:ID`, `person:SUBJECT` or `system`.
    pub actor: String,
    pub actor_name: String,
    /// The organisation the object belongs to; `None` for platform objects (organisations, platform keys).
    pub org: Option<OrgId>,
    /// `device.create`, `token.revoke`, …
    pub action: String,
    /// `device:room-1`, `token:ab12…`, …
    pub object: String,
    /// The client's address, when known.
    pub source: Option<String>,
    /// The object before the change (`null` when created).
    pub before: serde_json::Value,
    /// The object after the change (`null` when deleted).
    pub after: serde_json::Value,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries older than this `seq` (the cursor of the previous page).
    pub before: Option<u64>,
    /// Only entries of these organisations (`None`: every entry, platform ones included).
    pub orgs: Option<Vec<OrgId>>,
    pub org: Option<OrgId>,
    pub actor: Option<String>,
    /// A prefix: `device.` matches every device action.
    pub action: Option<String>,
    pub object: Option<String>,
    pub from: Option<UnixNanos>,
    pub to: Option<UnixNanos>,
    pub limit: usize,
}

impl AuditFilter {
    pub(crate) fn matches(&self, e: &AuditEntry) -> bool {
        let org_ok = match (&self.orgs, &e.org) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(orgs), Some(org)) => orgs.contains(org),
        };
        org_ok
            && self.org.as_ref().is_none_or(|o| e.org.as_ref() == Some(o))
            && self.actor.as_ref().is_none_or(|a| *a == e.actor)
            && self
                .action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()))
            && self.object.as_ref().is_none_or(|o| *o == e.object)
            && self.from.is_none_or(|t| e.time >= t)
            && self.to.is_none_or(|t| e.time < t)
    }
}

/// The slot a [`scope`] shares with the registry call it wraps.
#[derive(Debug, Clone, Default)]
pub struct Pending(Arc<Mutex<Option<AuditEntry>>>);

impl Pending {
    #[cfg(test)]
    pub(crate) fn holding(entry: AuditEntry) -> Self {
        Self(Arc::new(Mutex::new(Some(entry))))
    }
}

tokio::task_local! {
    static SCOPE: Pending;
}

thread_local! {
    static ON_THIS_THREAD: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Runs `f` with `entry` pending: the first registry change `f` commits carries it.
pub async fn scope<F: std::future::Future>(entry: AuditEntry, f: F) -> F::Output {
    SCOPE
        .scope(Pending(Arc::new(Mutex::new(Some(entry)))), f)
        .await
}

impl Pending {
    /// The current task's slot, if it runs inside a [`scope`].
    pub(crate) fn current() -> Option<Pending> {
        SCOPE.try_with(Clone::clone).ok()
    }

    /// Runs the synchronous `f` with this slot visible to the registry's commits on this thread.
    pub(crate) fn enter<T>(slot: Option<Pending>, f: impl FnOnce() -> T) -> T {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                ON_THIS_THREAD.with(|s| s.borrow_mut().take());
            }
        }
        ON_THIS_THREAD.with(|s| *s.borrow_mut() = slot);
        let _reset = Reset;
        f()
    }
}

/// Takes the entry pending on this thread, if any (it is then gone for later commits of the same scope).
pub(crate) fn take() -> Option<AuditEntry> {
    ON_THIS_THREAD.with(|s| {
        s.borrow()
            .as_ref()
            .and_then(|p| p.0.lock().unwrap_or_else(|e| e.into_inner()).take())
    })
}

/// Completes the pending entry with what only the store knows (a generated id, a version number).
pub(crate) fn amend(f: impl FnOnce(&mut AuditEntry)) {
    ON_THIS_THREAD.with(|s| {
        if let Some(p) = s.borrow().as_ref()
            && let Some(e) = p.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
        {
            f(e);
        }
    });
}
