//! The steps every create, read, update and delete of an organisation's object takes, in one place: look it
//! up (404 when there is none or it is another organisation's, 403 naming the role when the caller's is too
//! low — [`Principal::owned`]), record the change in the audit log in the registry transaction that makes it
//! ([`record`]), and answer (404 for an object gone meanwhile, 204 for a delete).
//!
//! An object type says once what it is called, how it is read and how the audit log shows it ([`Owned`]);
//! its handlers then keep only what is particular to them.
use crate::audit::{Change, Source, record};
use crate::auth::Principal;
use crate::{AppState, Error};
use axum::http::StatusCode;
use bydata_schemas::{OrgId, Role, UnixNanos};
use serde_json::Value;
use std::future::Future;

/// What an object type is called: in errors and logs (`what`), and in the audit log (`object` prefixes its id,
/// `create`/`update`/`delete` are the actions).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    pub(crate) what: &'static str,
    pub(crate) object: &'static str,
    pub(crate) create: &'static str,
    pub(crate) update: &'static str,
    pub(crate) delete: &'static str,
}

/// An object an organisation owns, as its handlers look it up, audit and answer it.
pub(crate) trait Owned: Sized {
    const NAMES: Names;
    fn org(&self) -> &OrgId;
    fn id(&self) -> &str;
    /// Its public shape at `now`, as the audit log keeps it before and after a change (never a secret).
    fn audit_view(&self, now: UnixNanos) -> Value;
    /// Reads the object named `id` (`None` when there is none, or `id` is not a valid id of its kind).
    fn read(state: &AppState, id: &str)
    -> impl Future<Output = Result<Option<Self>, Error>> + Send;
}

/// The object `id` if `by` may act on it with `role` (404 for another organisation's, so it does not leak).
pub(crate) async fn find<T: Owned>(
    state: &AppState,
    by: &Principal,
    id: &str,
    role: Role,
) -> Result<T, Error> {
    let found = T::read(state, id).await?;
    by.owned(found, T::org, role, T::NAMES.what, id)
}

/// The audit entry of `action` on `object`, in its organisation.
pub(crate) fn change<T: Owned>(action: &'static str, object: &T) -> Change {
    Change::new(action, format!("{}:{}", T::NAMES.object, object.id())).org(object.org())
}

/// Creates `new` with `make` (its registry call), audited with the object as created.
pub(crate) async fn create<T: Owned, F: Future>(
    state: &AppState,
    by: &Principal,
    source: Source,
    new: T,
    make: impl FnOnce(T) -> F,
) -> F::Output {
    let change = change(T::NAMES.create, &new).after(new.audit_view((state.clock)()));
    record(state, by, source, change, make(new)).await
}

/// Replaces `before` by `after` with `replace` (its registry call), audited with both; 404 if the object went
/// meanwhile.
pub(crate) async fn update<T: Owned, R, E, F>(
    state: &AppState,
    by: &Principal,
    source: Source,
    before: &T,
    after: T,
    replace: impl FnOnce(T) -> F,
) -> Result<R, Error>
where
    F: Future<Output = Result<Option<R>, E>>,
    Error: From<E>,
{
    let now = (state.clock)();
    let change = change(T::NAMES.update, before)
        .before(before.audit_view(now))
        .after(after.audit_view(now));
    record(state, by, source, change, replace(after))
        .await?
        .ok_or_else(|| Error::NotFound {
            what: T::NAMES.what,
            id: before.id().chars().take(64).collect(),
        })
}

/// Deletes `object` with `remove` (its registry call), audited with the object as it was; 204, or 404 if it
/// went meanwhile.
pub(crate) async fn delete<T: Owned, E, F>(
    state: &AppState,
    by: &Principal,
    source: Source,
    object: &T,
    remove: F,
) -> Result<StatusCode, Error>
where
    F: Future<Output = Result<bool, E>>,
    Error: From<E>,
{
    let change = change(T::NAMES.delete, object).before(object.audit_view((state.clock)()));
    let existed = record(state, by, source, change, remove).await?;
    crate::error::deleted(existed, T::NAMES.what, object.id(), &by.actor)
}
