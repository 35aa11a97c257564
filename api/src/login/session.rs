//! The session behind a request's cookie: found by its id's hash, refused when expired, idle, unknown or
//! malformed (401, logged with the source address, never the cookie), its CSRF token required for anything
//! but reads, and its roles worked out now from the groups it logged in with and the organisations' members.
use super::Login;
use crate::ClientAddr;
use crate::auth::{Actor, Principal};
use crate::{AppState, Error};
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use bydata_schemas::{OrgId, Role, UnixNanos};
use bydata_store::{Restriction, Session};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// The session cookie. `__Host-`: browsers keep it only if Secure, for this host alone, on path `/`.
pub(crate) const COOKIE: &str = "__Host-bydata_session";
/// The header a browser echoes the session's CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// A session's last use is written at most this often (each write is a registry transaction).
const TOUCH_EVERY_NANOS: i64 = 60_000_000_000;

/// The value of the session cookie, if the request has one.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

pub(crate) fn source(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0)
}

/// The session the cookie names: `None` without a cookie (or without `[oidc]`); 401 with the reason when
/// it names no live session.
pub(crate) async fn current(
    state: &AppState,
    headers: &HeaderMap,
    source: IpAddr,
) -> Result<Option<(String, Session)>, Error> {
    let (Some(login), Some(id)) = (state.login.as_deref(), cookie(headers)) else {
        return Ok(None);
    };
    let refuse = |reason: &str, message: String| {
        tracing::info!(%source, reason, "session refused");
        Err(Error::Session { message })
    };
    if id.len() != 43 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return refuse(
            "malformed cookie",
            "your session cookie is not valid; log in again at /auth/login".into(),
        );
    }
    let Some(session) = state.registry.session(id).await? else {
        return refuse(
            "unknown session",
            "your session is not known (it ended, or the cookie was changed); log in again at \
             /auth/login"
                .into(),
        );
    };
    let now: UnixNanos = (state.clock)();
    let idle = i64::try_from(login.idle.as_nanos()).unwrap_or(i64::MAX);
    if session.expires_at <= now {
        state.registry.delete_session(id).await?;
        return refuse(
            "expired",
            "your session expired; log in again at /auth/login".into(),
        );
    }
    if session.last_seen.saturating_add(idle) <= now {
        state.registry.delete_session(id).await?;
        return refuse(
            "idle",
            format!(
                "your session ended after {} minutes unused; log in again at /auth/login",
                login.idle.as_secs() / 60
            ),
        );
    }
    if now.saturating_sub(session.last_seen) >= TOUCH_EVERY_NANOS {
        state.registry.touch_session(id, now).await?;
    }
    Ok(Some((id.to_owned(), session)))
}

/// Refuses (403 `csrf`) a request that may change something without the session's CSRF token.
pub(crate) fn check_csrf(
    method: &Method,
    headers: &HeaderMap,
    session: &Session,
    source: IpAddr,
) -> Result<(), Error> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if same(sent, session.csrf.as_bytes()) {
        return Ok(());
    }
    tracing::info!(%source, "request with a session but without its CSRF token refused");
    Err(Error::Csrf)
}

/// Whether `a` equals `b`, in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The roles of a session now: its groups mapped by `[oidc]`, and its memberships (by e-mail or subject).
pub(crate) async fn roles(
    state: &AppState,
    login: &Login,
    session: &Session,
) -> Result<(Option<Role>, BTreeMap<OrgId, Role>), Error> {
    let (platform, mut orgs) = login.mapped_roles(&session.groups);
    for member in state.registry.members().await? {
        let me = member.member == session.subject
            || session.email.as_deref() == Some(member.member.as_str());
        if me {
            let held = orgs.entry(member.org).or_insert(member.role);
            *held = (*held).max(member.role);
        }
    }
    Ok((platform, orgs))
}

/// The principal of a request: its API key (`auth::keys`) when it sends `Authorization`, else the login
/// session its cookie names. A person whose groups map to no organisation is refused with the groups named;
/// a session's request that may change something needs its CSRF token.
pub(crate) async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    source: Option<ClientAddr>,
) -> Result<Principal, Error> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) || cookie(headers).is_none() {
        return crate::auth::keys::authenticate(state, headers, source).await;
    }
    let source = source.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    let (Some(login), Some((_, session))) = (
        state.login.as_deref(),
        current(state, headers, source).await?,
    ) else {
        return Err(Error::Unauthenticated);
    };
    check_csrf(method, headers, &session, source)?;
    let (platform, orgs) = roles(state, login, &session).await?;
    if platform.is_none() && orgs.is_empty() {
        return Err(Error::NoRole {
            groups: session.groups,
        });
    }
    Ok(Principal {
        actor: Actor::Person {
            subject: session.subject,
            name: session.name,
        },
        platform,
        orgs,
        restriction: Restriction::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            "cookie",
            HeaderValue::from_static("a=1; __Host-bydata_session=abc ; b=2"),
        );
        assert_eq!(cookie(&headers), Some("abc"));
        let mut other = HeaderMap::new();
        other.append("cookie", HeaderValue::from_static("bydata_session=abc"));
        assert_eq!(cookie(&other), None);
    }
}
