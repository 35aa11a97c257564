//! The principal: the person or key behind a request and the roles it holds.
use crate::Error;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bydata_schemas::{DeviceId, OrgId, Role};
use bydata_store::{Restriction, Scope, SharedRegistry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Who made a request, as the audit log and the logs name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    Anonymous,
    /// An API key: its id and name (never its secret).
    Key {
        id: String,
        name: String,
    },
    /// A person logged in through OpenID Connect: their subject and the name or e-mail they gave.
    #[allow(dead_code)] // made by the login sessions of OpenID Connect, which land next
    Person {
        subject: String,
        name: String,
    },
    /// A device, by its own credentials (routes with policy `device`): its MQTT password, or one of its keys.
    Device {
        id: DeviceId,
        /// The device key's id, if it came with a key.
        key: Option<String>,
    },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Key { id, .. } => write!(f, "key:{id}"),
            Actor::Person { subject, .. } => write!(f, "person:{subject}"),
            Actor::Device { id, key: None } => write!(f, "device:{id}"),
            Actor::Device { id, key: Some(key) } => write!(f, "device:{id}/key:{key}"),
        }
    }
}

/// A request's principal: its actor, its role on the whole platform (platform keys and platform admins),
/// its role per organisation, and what a key is restricted to.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) actor: Actor,
    pub(crate) platform: Option<Role>,
    pub(crate) orgs: BTreeMap<OrgId, Role>,
    pub(crate) restriction: Restriction,
}

impl Principal {
    pub(crate) fn anonymous() -> Self {
        Self {
            actor: Actor::Anonymous,
            platform: None,
            orgs: BTreeMap::new(),
            restriction: Restriction::default(),
        }
    }

    /// The key's id when the principal is a key (its series quota is counted per key).
    pub(crate) fn key_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::Key { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The device it is, when a device's own credentials authenticated it.
    pub(crate) fn device(&self) -> Option<&DeviceId> {
        match &self.actor {
            Actor::Device { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Its role in `org`: the higher of its platform role and its role there.
    pub(crate) fn role_in(&self, org: &OrgId) -> Option<Role> {
        self.platform.max(self.orgs.get(org).copied())
    }

    /// Its highest role anywhere.
    pub(crate) fn highest(&self) -> Option<Role> {
        self.platform.max(self.orgs.values().copied().max())
    }

    pub(crate) fn is_platform_admin(&self) -> bool {
        self.platform == Some(Role::Admin)
    }

    /// Whether it may see objects of `org` at all.
    pub(crate) fn sees(&self, org: &OrgId) -> bool {
        self.role_in(org).is_some()
    }

    /// Whether it may see `device` (its organisation, and the key's device restriction).
    pub(crate) fn sees_device(&self, id: &DeviceId, org: &OrgId) -> bool {
        self.sees(org) && self.restriction.allows_device(id.as_str())
    }

    /// Checks it holds `role` in `org` for an object (`what` `id`): 404 when it cannot see the organisation at
    /// all (so another organisation's objects look like no objects), 403 naming the role when it can.
    pub(crate) fn require(
        &self,
        org: &OrgId,
        role: Role,
        what: &'static str,
        id: impl std::fmt::Display,
    ) -> Result<(), Error> {
        match self.role_in(org) {
            None => Err(Error::NotFound {
                what,
                id: id.to_string().chars().take(64).collect(),
            }),
            Some(held) if held < role => Err(Error::Forbidden {
                needs: format!("the {role} role in organisation {org} (you are {held})"),
            }),
            Some(_) => Ok(()),
        }
    }

    /// `found`, read by the `what` named `id`, if the principal may act on it with `role`: 404 when there is
    /// none or it is another organisation's, 403 naming the role when the principal's is too low.
    pub(crate) fn owned<T>(
        &self,
        found: Option<T>,
        org: impl FnOnce(&T) -> &OrgId,
        role: Role,
        what: &'static str,
        id: &str,
    ) -> Result<T, Error> {
        let object = found.ok_or_else(|| Error::NotFound {
            what,
            id: id.chars().take(64).collect(),
        })?;
        self.require(org(&object), role, what, id)?;
        Ok(object)
    }

    /// The organisation a new object goes to: `asked`, or the only one the principal is a member of (the
    /// default organisation for platform keys). It must hold `role` there.
    pub(crate) fn target_org(&self, asked: Option<OrgId>, role: Role) -> Result<OrgId, Error> {
        let org = match asked {
            Some(org) => org,
            None if self.platform.is_some() => OrgId::default_org(),
            None => {
                let mut mine = self.orgs.iter().filter(|(_, r)| **r >= role);
                match (mine.next(), mine.next()) {
                    (Some((org, _)), None) => org.clone(),
                    (None, _) => {
                        return Err(Error::Forbidden {
                            needs: format!("the {role} role in an organisation"),
                        });
                    }
                    (Some(_), Some(_)) => {
                        return Err(Error::bad(
                            "org_required",
                            format!(
                                "org is required: you may do this in {}",
                                self.orgs
                                    .iter()
                                    .filter(|(_, r)| **r >= role)
                                    .map(|(o, _)| o.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        self.require(&org, role, "organisation", &org)?;
        Ok(org)
    }

    /// The series it may read: `None` (everything) for a platform principal without restrictions; otherwise
    /// its organisations' series and its devices'.
    pub(crate) async fn scope(
        &self,
        registry: &SharedRegistry,
        owners: &Owners,
    ) -> Result<Option<Arc<Scope>>, Error> {
        if self.platform.is_some() && self.restriction.is_none() {
            return Ok(None);
        }
        let owned = owners.get(registry).await?;
        let orgs: BTreeSet<String> = if self.platform.is_some() {
            owned.orgs.iter().map(ToString::to_string).collect()
        } else {
            self.orgs.keys().map(ToString::to_string).collect()
        };
        let devices = owned
            .devices
            .iter()
            .filter(|(_, org)| self.platform.is_some() || self.sees(org))
            .map(|(device, _)| device.clone())
            .collect();
        let set = |v: &[String]| (!v.is_empty()).then(|| v.iter().cloned().collect());
        let r = &self.restriction;
        Ok(Some(Arc::new(Scope {
            orgs,
            devices,
            only_devices: set(&r
                .devices
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()),
            only_measurements: set(&r
                .measurements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()),
        })))
    }
}

/// Which organisation owns each device, and which organisations exist: read from the registry when it has
/// changed since the last read (`RegistryPort::changes`), so a series scope costs no registry scan per request.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    cached: tokio::sync::Mutex<Option<(u64, Arc<Owned>)>>,
}

#[derive(Debug, Default)]
pub(crate) struct Owned {
    devices: Vec<(String, OrgId)>,
    orgs: Vec<OrgId>,
}

impl Owners {
    async fn get(&self, registry: &SharedRegistry) -> Result<Arc<Owned>, Error> {
        let mut cached = self.cached.lock().await;
        // Read the counter before the registry, so a change made during the read makes the next call reload.
        let now = registry.changes();
        if let Some((at, owned)) = cached.as_ref()
            && *at == now
        {
            return Ok(owned.clone());
        }
        let owned = Arc::new(Owned {
            devices: registry
                .devices()
                .await?
                .into_iter()
                .map(|d| (d.id.to_string(), d.org))
                .collect(),
            orgs: registry.orgs().await?.into_iter().map(|o| o.id).collect(),
        });
        *cached = Some((now, owned.clone()));
        Ok(owned)
    }
}

/// Handlers take the principal the policy middleware put in the request.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Error::Internal {
                message: "the request reached a handler without passing the policy".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(orgs: &[(&str, Role)]) -> Principal {
        Principal {
            orgs: orgs
                .iter()
                .map(|(o, r)| (OrgId::new(*o).expect("org"), *r))
                .collect(),
            ..Principal::anonymous()
        }
    }

    #[test]
    fn another_organisations_objects_are_not_found_and_a_low_role_is_forbidden() {
        let a = OrgId::new("a").expect("org");
        let b = OrgId::new("b").expect("org");
        let viewer = member(&[("a", Role::Viewer)]);
        assert!(matches!(
            viewer.require(&b, Role::Viewer, "device", "x"),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            viewer.require(&a, Role::Editor, "device", "x"),
            Err(Error::Forbidden { .. })
        ));
        assert!(viewer.require(&a, Role::Viewer, "device", "x").is_ok());
        let both = member(&[("a", Role::Editor), ("b", Role::Editor)]);
        assert!(matches!(
            both.target_org(None, Role::Editor),
            Err(Error::BadRequest {
                code: "org_required",
                ..
            })
        ));
        assert_eq!(
            member(&[("a", Role::Editor), ("b", Role::Viewer)])
                .target_org(None, Role::Editor)
                .expect("one"),
            a
        );
    }
}
