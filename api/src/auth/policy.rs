//! The one policy: each route's least role, declared in its OpenAPI operation (`x-bydata-policy`), enforced
//! here for every request before its handler runs.
use super::keys;
use super::{Actor, Principal};
use crate::{AppState, Error};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bydata_schemas::Role;
use std::collections::HashMap;
use std::sync::LazyLock;

/// The OpenAPI extension naming an operation's policy.
pub(crate) const EXTENSION: &str = "x-bydata-policy";

/// What a route asks of whoever calls it. Which organisation's objects it touches is the handler's check,
/// against the same [`Principal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Anyone, no credentials (open data, the API document, health, the dashboard's page).
    Public,
    /// At least this role in some organisation (or on the platform).
    Role(Role),
    /// A platform admin (organisations themselves).
    Platform,
    /// A device, by its own credentials, acting as itself (pushing its uplinks). API keys and people are
    /// not devices: an editor's key may not push on a device's behalf (identity comes from the login).
    Device,
}

impl Policy {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Policy::Public),
            "platform" => Some(Policy::Platform),
            "device" => Some(Policy::Device),
            role => role.parse().ok().map(Policy::Role),
        }
    }
}

/// (method, route path as in the document) → policy, read from the generated document once. An operation
/// whose extension is missing or unreadable is absent: its route then answers 500 (see [`authorize`]).
pub(crate) static POLICIES: LazyLock<HashMap<(Method, String), Policy>> = LazyLock::new(|| {
    let doc = crate::openapi::document();
    let mut out = HashMap::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PATCH, &item.patch),
            (Method::PUT, &item.put),
            (Method::DELETE, &item.delete),
        ] {
            let policy = op
                .as_ref()
                .and_then(|op| op.extensions.as_ref())
                .and_then(|ext| ext.get(EXTENSION))
                .and_then(|v| v.as_str())
                .and_then(Policy::parse);
            if let Some(policy) = policy {
                out.insert((method, path.clone()), policy);
            }
        }
    }
    out
});

/// The methods a route may have.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The policy of the route at `path`: its own operation's, or — for a literal route that stands for a
/// documented template (`GET /api/v1/codecs/test` is `GET /api/v1/codecs/{name}`) — the template's.
pub(crate) fn policy_of(method: &Method, path: &str) -> Option<Policy> {
    if let Some(policy) = POLICIES.get(&(method.clone(), path.to_owned())) {
        return Some(*policy);
    }
    let segments: Vec<&str> = path.split('/').collect();
    POLICIES.iter().find_map(|((m, template), policy)| {
        let parts: Vec<&str> = template.split('/').collect();
        (m == method
            && parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}'))))
        .then_some(*policy)
    })
}

/// The middleware in front of every route: finds the route's policy, authenticates, checks the least role,
/// and puts the [`Principal`] in the request for the handler.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // No matched route: the fallback answers 404/405 in the API's shape.
    let Some(path) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(policy) = policy_of(&method, path.as_str()) else {
        if METHODS
            .iter()
            .any(|m| policy_of(m, path.as_str()).is_some())
        {
            // The path takes other methods: the router answers 405 with `Allow`, touching nothing.
            return next.run(request).await;
        }
        return Error::Internal {
            message: format!(
                "route {} {} has no {EXTENSION} in its OpenAPI operation",
                request.method(),
                path.as_str()
            ),
        }
        .into_response();
    };
    let source = request.extensions().get::<keys::ClientAddr>().copied();
    let principal = if policy == Policy::Public {
        Principal::anonymous()
    } else if policy == Policy::Device {
        match super::device::authenticate(&state, request.method(), request.headers(), source).await
        {
            Ok(principal) => principal,
            Err(e) => return e.into_response(),
        }
    } else {
        match crate::login::session::authenticate(
            &state,
            request.method(),
            request.headers(),
            source,
        )
        .await
        {
            Ok(principal) => principal,
            Err(e) => return e.into_response(),
        }
    };
    if let Err(e) = check(policy, &principal) {
        if policy == Policy::Device {
            // A person's credentials on a device's route: counted with the pushes' other refusals.
            state
                .push
                .metrics
                .count(crate::devices::push::Outcome::NotADevice);
        }
        return e.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Whether `principal` may call a route with `policy` at all.
pub(crate) fn check(policy: Policy, principal: &Principal) -> Result<(), Error> {
    match policy {
        Policy::Public => Ok(()),
        _ if principal.actor == Actor::Anonymous => Err(Error::Unauthenticated),
        Policy::Device if principal.device().is_some() => Ok(()),
        Policy::Device => Err(Error::Forbidden {
            needs: "the device's own credentials: HTTP Basic with its id and MQTT password, or one of its \
                    device keys (bdk_…); an API key or a login cannot push for a device"
                .into(),
        }),
        // A device's credentials are good for its own pushes only.
        _ if principal.device().is_some() => Err(Error::Forbidden {
            needs: "an API key or a login; device credentials only push the device's uplinks".into(),
        }),
        Policy::Platform if principal.is_platform_admin() => Ok(()),
        Policy::Platform => Err(Error::Forbidden {
            needs: "a platform admin".into(),
        }),
        Policy::Role(role) if principal.highest() >= Some(role) => Ok(()),
        Policy::Role(role) => Err(Error::Forbidden {
            needs: format!(
                "the {role} role{}",
                principal
                    .highest()
                    .map(|held| format!(" (you are {held})"))
                    .unwrap_or_default()
            ),
        }),
    }
}
