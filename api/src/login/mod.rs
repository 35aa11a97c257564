//! People logging in through the city's identity provider (OpenID Connect): the login records a browser's
//! round trip to the provider needs (`pending`), its routes (`routes`: `/auth/login`, `/auth/callback`,
//! `/auth/logout`, `/auth/me`), and the session behind a request's cookie (`session`), which
//! `auth::keys::authenticate` asks when a request carries no API key.
mod pending;
pub(crate) mod routes;
pub(crate) mod session;

use crate::oidc::{Client, Identity, OidcConfig, OidcError};
use bydata_schemas::{OrgId, Role};
use bydata_store::Session;
use pending::Pending;
use std::collections::BTreeMap;
use std::time::Duration;

/// What login needs at run time: the provider's client, the role mapping, the session lifetimes and the
/// logins under way. Made by the binary from `[oidc]` (`Login::new`).
#[derive(Debug)]
pub struct Login {
    client: Client,
    mapping: Vec<(String, OrgId, Role)>,
    platform_admins: Vec<String>,
    lifetime: Duration,
    idle: Duration,
    pending: Pending,
}

impl Login {
    /// Checks `[oidc]` and reads its secret file; the provider is asked nothing until the first login.
    pub fn new(config: &OidcConfig) -> Result<Self, OidcError> {
        let settings = config.settings()?;
        let bad = |reason: String| OidcError::Config { reason };
        let mapping = config
            .roles
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let org = OrgId::new(&m.org)
                    .map_err(|e| bad(format!("roles[{i}].org {:?}: {e}", m.org)))?;
                let role = m
                    .role
                    .parse::<Role>()
                    .map_err(|e| bad(format!("roles[{i}].role: {e}")))?;
                Ok((m.claim_value.clone(), org, role))
            })
            .collect::<Result<_, OidcError>>()?;
        Ok(Self {
            client: Client::new(settings)?,
            mapping,
            platform_admins: config.platform_admins.clone(),
            lifetime: Duration::from_secs(config.session_minutes.saturating_mul(60)),
            idle: Duration::from_secs(config.idle_minutes.saturating_mul(60)),
            pending: Pending::default(),
        })
    }

    /// The roles `groups` give through `[[oidc.roles]]` and `platform_admins`: (platform role, per org).
    pub(crate) fn mapped_roles(&self, groups: &[String]) -> (Option<Role>, BTreeMap<OrgId, Role>) {
        let platform = groups
            .iter()
            .any(|g| self.platform_admins.contains(g))
            .then_some(Role::Admin);
        let mut orgs = BTreeMap::new();
        for (value, org, role) in &self.mapping {
            if groups.contains(value) {
                let held: &mut Role = orgs.entry(org.clone()).or_insert(*role);
                *held = (*held).max(*role);
            }
        }
        (platform, orgs)
    }
}

/// A session for `identity`, made at `now` (Unix nanoseconds).
fn new_session(login: &Login, identity: Identity, id_token: String, now: i64) -> Session {
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    Session {
        subject: identity.subject,
        name: identity.name,
        email: identity.email,
        groups: identity.groups,
        csrf: crate::oidc::random(),
        id_token,
        created_at: now,
        expires_at: now.saturating_add(nanos(login.lifetime)),
        last_seen: now,
    }
}
