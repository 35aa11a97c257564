//! `/auth/login`, `/auth/callback`, `/auth/logout` and `/auth/me`. Every refusal is logged at INFO with the
//! reason and the source address only — never a code, a token or a cookie.
use super::session::{self, COOKIE};
use super::{Login, new_session};
use crate::oidc::OidcError;
use crate::{AppState, Error};
use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bydata_schemas::format_rfc3339;
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;

fn login_of(state: &AppState) -> Result<&Arc<Login>, Error> {
    state.login.as_ref().ok_or_else(|| Error::NoRoute {
        path: "/auth (login is not configured: no [oidc] section)".into(),
    })
}

/// A redirect that no cache keeps.
fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `next` if it is a path on this site (`/…`, not `//…` nor `/\…`), else `/`: never an open redirect.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 2000
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct LoginParams {
    /// Where to go after logging in: a path on this site (default `/`).
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/auth/login",
    operation_id = "login",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "login",
    summary = "Log in with the identity provider (OpenID Connect): redirects to it",
    params(LoginParams),
    responses(
        (status = 302, description = "To the identity provider's login"),
        (status = 404, description = "Login is not configured ([oidc])", body = crate::openapi::ErrorBody),
        (status = 503, description = "The identity provider cannot be reached, or too many logins are under way", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    Query(params): Query<LoginParams>,
) -> Result<Response, Error> {
    let login = login_of(&state)?;
    let start = login.client.begin().await.map_err(provider_error)?;
    let next = local_path(params.next.as_deref());
    if !login
        .pending
        .insert(start.state, start.nonce, start.verifier, next)
    {
        return Err(Error::Unavailable {
            code: "too_many_logins",
            message: "too many logins are under way; try again in a minute".into(),
            retry_after_secs: Some(60),
        });
    }
    Ok(redirect(StatusCode::FOUND, &start.url))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    /// The provider's refusal (`access_denied`, …).
    error: Option<String>,
    error_description: Option<String>,
}

#[utoipa::path(
    get,
    path = "/auth/callback",
    operation_id = "login_callback",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "login",
    summary = "Where the identity provider sends the browser back: starts the session (cookie) and redirects on",
    params(CallbackParams),
    responses(
        (status = 302, description = "Logged in: the session cookie is set; on to `next`"),
        (status = 400, description = "Unknown, expired or already used login (state), or no code", body = crate::openapi::ErrorBody),
        (status = 401, description = "The provider refused, or its answer did not verify", body = crate::openapi::ErrorBody),
        (status = 503, description = "The identity provider cannot be reached", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn callback(
    State(state): State<AppState>,
    Query(params): Query<CallbackParams>,
    request: Request,
) -> Result<Response, Error> {
    let login = login_of(&state)?;
    let source = session::source(&request);
    let pending = params.state.as_deref().and_then(|s| login.pending.take(s));
    if let Some(error) = params.error {
        let error: String = error.chars().take(64).collect();
        info(source, &format!("the provider answered {error}"));
        return Err(Error::LoginRefused {
            message: format!(
                "the identity provider refused the login: {error}{}; try again at /auth/login",
                params
                    .error_description
                    .map(|d| format!(" ({})", d.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            ),
        });
    }
    let Some(pending) = pending else {
        info(source, "unknown, expired or used state");
        return Err(Error::bad(
            "invalid_login",
            "this login is unknown, expired or was already used; start again at /auth/login",
        ));
    };
    let Some(code) = params.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
        info(source, "no code");
        return Err(Error::bad(
            "invalid_login",
            "the identity provider sent no code; start again at /auth/login",
        ));
    };
    let now = (state.clock)();
    let done = login
        .client
        .finish(
            &code,
            &pending.verifier,
            &pending.nonce,
            now / 1_000_000_000,
        )
        .await
        .map_err(|e| {
            info(source, &e.to_string());
            provider_error(e)
        })?;
    let subject = done.identity.subject.clone();
    let session = new_session(login, done.identity, done.id_token, now);
    let lifetime = login.lifetime.as_secs();
    let id = state.registry.create_session(session).await?;
    let idle_before = now.saturating_sub(i64::try_from(login.idle.as_nanos()).unwrap_or(i64::MAX));
    if let Err(e) = state.registry.purge_sessions(now, idle_before).await {
        tracing::warn!(error = %e, "cannot purge ended sessions");
    }
    tracing::info!(%source, subject, "logged in");
    let mut response = redirect(StatusCode::FOUND, &pending.next);
    let cookie =
        format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={lifetime}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

fn info(source: IpAddr, reason: &str) {
    tracing::info!(%source, reason, "login refused");
}

/// A login's failure as the API answers it.
fn provider_error(e: OidcError) -> Error {
    match e {
        OidcError::TokenRefused { .. } | OidcError::IdToken(_) => Error::LoginRefused {
            message: format!("{e}; try again at /auth/login"),
        },
        OidcError::Provider { .. } => Error::Unavailable {
            code: "identity_provider_unavailable",
            message: e.to_string(),
            retry_after_secs: Some(30),
        },
        OidcError::Config { .. } => Error::Internal {
            message: e.to_string(),
        },
    }
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "logout",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "login",
    summary = "End the session, then on to the identity provider's logout (send X-CSRF-Token)",
    responses(
        (status = 303, description = "Logged out: the cookie is cleared; on to the provider's end-session page (or `/`)"),
        (status = 401, description = "No live session", body = crate::openapi::ErrorBody),
        (status = 403, description = "No or wrong X-CSRF-Token", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Error> {
    let login = login_of(&state)?;
    let source = session::source(&request);
    let Some((id, session)) = session::current(&state, request.headers(), source).await? else {
        return Err(Error::Unauthenticated);
    };
    session::check_csrf(request.method(), request.headers(), &session, source)?;
    state.registry.delete_session(&id).await?;
    tracing::info!(%source, subject = session.subject, "logged out");
    let to = login
        .client
        .end_session_url(Some(&session.id_token))
        .await
        .unwrap_or_else(|| "/".to_owned());
    let mut response = redirect(StatusCode::SEE_OTHER, &to);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-bydata_session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        ),
    );
    Ok(response)
}

/// Who is logged in (`GET /auth/me`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Me {
    subject: String,
    name: String,
    email: Option<String>,
    /// The values of the groups claim the provider sent at login.
    groups: Vec<String>,
    /// Role per organisation (from the groups and from memberships).
    orgs: std::collections::BTreeMap<String, String>,
    /// `admin` for a platform admin.
    platform: Option<String>,
    /// Send it as `X-CSRF-Token` with every request that changes something.
    csrf_token: String,
    /// When the session ends however active (RFC 3339).
    expires_at: String,
}

#[utoipa::path(
    get,
    path = "/auth/me",
    operation_id = "me",
    extensions(("x-bydata-policy" = json!("public"))),
    tag = "login",
    summary = "Who is logged in: roles per organisation, the CSRF token, when the session ends",
    responses(
        (status = 200, description = "The session's person", body = Me),
        (status = 401, description = "No live session", body = crate::openapi::ErrorBody),
    ),
)]
pub(crate) async fn me(State(state): State<AppState>, request: Request) -> Result<Json<Me>, Error> {
    let login = login_of(&state)?;
    let source = session::source(&request);
    let Some((_, session)) = session::current(&state, request.headers(), source).await? else {
        return Err(Error::Unauthenticated);
    };
    let (platform, orgs) = session::roles(&state, login, &session).await?;
    Ok(Json(Me {
        orgs: orgs
            .into_iter()
            .map(|(org, role)| (org.to_string(), role.to_string()))
            .collect(),
        platform: platform.map(|r| r.to_string()),
        expires_at: format_rfc3339(session.expires_at),
        subject: session.subject,
        name: session.name,
        email: session.email,
        groups: session.groups,
        csrf_token: session.csrf,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_or_the_front_page() {
        for (next, to) in [
            (Some("/api/v1/devices?x=1"), "/api/v1/devices?x=1"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/a\nb"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local_path(next), to, "{next:?}");
        }
    }
}
