//! Authenticating a request: an API key (`Authorization: Bearer <key>`, or InfluxDB's `Token <key>`), looked
//! up by its hash. Failures are slowed per source address; when a key was last used is written in batches.
use super::{Actor, Principal};
use crate::{AppState, Error};
use axum::http::HeaderMap;
use bydata_admission::SourceRate;
use bydata_schemas::{UnixNanos, format_rfc3339};
use bydata_store::TokenInfo;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The address a request came from, put in its extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Failed authentications allowed per source address: a burst, then this many per second. Enough for a
/// person mistyping and for a misconfigured collector's retries; far too few to guess a 40-character key.
const FAILURE_BURST: u32 = 20;
const FAILURES_PER_SEC: u32 = 1;
/// How often key use is written to the registry (a crash loses at most this much of "last used").
const USE_FLUSH: Duration = Duration::from_secs(30);

/// What authentication and authorization keep between requests: failures per address, when keys were last
/// used, and which organisation owns which device (for series scopes; reloaded when the registry changed).
#[derive(Debug)]
pub struct AuthCache {
    failures: Mutex<SourceRate>,
    pending: Mutex<(HashMap<String, UnixNanos>, Instant)>,
    pub(crate) owners: super::principal::Owners,
}

impl Default for AuthCache {
    fn default() -> Self {
        Self {
            failures: Mutex::new(SourceRate::new(FAILURES_PER_SEC, FAILURE_BURST, 65_536)),
            pending: Mutex::new((HashMap::new(), Instant::now())),
            owners: super::principal::Owners::default(),
        }
    }
}

impl AuthCache {
    /// Takes one failure from `source`'s allowance; `false` when it is spent.
    fn fail(&self, source: IpAddr) -> bool {
        self.failures
            .lock()
            .map(|mut rate| rate.allow(source, Instant::now()))
            .unwrap_or(true)
    }

    /// Whether `source` may try at all (its allowance is not spent).
    pub(crate) fn may_try(&self, source: IpAddr) -> bool {
        self.failures
            .lock()
            .map(|rate| rate.has_tokens(source, Instant::now()))
            .unwrap_or(true)
    }

    /// A failed authentication from `source`: `refusal`, or 429 once its allowance is spent.
    pub(crate) fn refuse(&self, source: IpAddr, refusal: Error) -> Error {
        if self.fail(source) {
            refusal
        } else {
            too_many()
        }
    }

    /// Notes that key `id` was used at `now`; every [`USE_FLUSH`] the batch goes to the registry.
    fn used(&self, state: &AppState, id: &str, now: UnixNanos) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        pending.0.insert(id.to_owned(), now);
        if pending.1.elapsed() < USE_FLUSH {
            return;
        }
        pending.1 = Instant::now();
        let batch: Vec<(String, UnixNanos)> = pending.0.drain().collect();
        let registry = state.registry.clone();
        tokio::spawn(async move {
            if let Err(e) = registry.record_token_use(batch).await {
                tracing::warn!(error = %e, "cannot record when keys were last used");
            }
        });
    }

    /// When `id` was last used, counting uses not yet written.
    pub(crate) fn last_used(&self, id: &str, stored: Option<UnixNanos>) -> Option<UnixNanos> {
        let pending = self.pending.lock().ok()?.0.get(id).copied();
        stored.max(pending)
    }
}

/// The principal behind `request`'s credentials; 401 with the reason when there are none or they are not
/// valid, 429 when its address has failed too often.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    source: Option<ClientAddr>,
) -> Result<Principal, Error> {
    let source = source.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    let guard = &state.auth_cache;
    if !guard.may_try(source) {
        return Err(too_many());
    }
    let Some(secret) = bearer(headers) else {
        return Err(Error::Unauthenticated);
    };
    let now = (state.clock)();
    let refused = |reason: String| {
        if !guard.fail(source) {
            return too_many();
        }
        tracing::info!(%source, reason, "API key refused");
        Error::BadCredentials { reason }
    };
    let Some(key) = state.registry.authenticate(secret).await? else {
        if secret.starts_with(bydata_store::DEVICE_KEY_PREFIX) {
            return Err(refused(
                "this is a device key: it only pushes its device's uplinks (POST /api/v1/devices/{id}/up); \
                 use an API key here"
                    .into(),
            ));
        }
        return Err(refused("this key is not valid".into()));
    };
    if let Some(at) = key.revoked_at {
        return Err(refused(format!(
            "this key ({}) was revoked at {}; ask an admin of its organisation for a new one",
            key.id,
            format_rfc3339(at)
        )));
    }
    if let Some(at) = key.expires_at.filter(|at| *at <= now) {
        return Err(refused(format!(
            "this key ({}) expired at {}; ask an admin of its organisation for a new one",
            key.id,
            format_rfc3339(at)
        )));
    }
    guard.used(state, &key.id, now);
    Ok(principal_of(key))
}

pub(crate) fn too_many() -> Error {
    Error::Unavailable {
        code: "too_many_failures",
        message: "too many failed authentications from your address; wait a few seconds and check \
                  the key"
            .into(),
        retry_after_secs: Some(u64::from(FAILURES_PER_SEC).max(1) * 5),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("Token "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn principal_of(key: TokenInfo) -> Principal {
    let (platform, orgs) = match key.org {
        None => (Some(key.role), BTreeMap::new()),
        Some(org) => (None, BTreeMap::from([(org, key.role)])),
    };
    Principal {
        actor: Actor::Key {
            id: key.id,
            name: key.name,
        },
        platform,
        orgs,
        restriction: key.restriction,
    }
}
