//! Organisations: who owns a device, gateway, codec, building, integration, dataset or key.
use crate::device::string_newtype;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An organisation's id: a slug like a device id (`buildings`, `traffic`, `au-campus`). Every object of the
/// registry names one; objects stored before organisations existed belong to [`OrgId::DEFAULT`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);
string_newtype!(OrgId, "organisation id", crate::device::check_slug);

impl OrgId {
    /// The organisation an upgraded data dir puts everything in, and the demo's.
    pub const DEFAULT: &'static str = "default";

    pub fn default_org() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl Default for OrgId {
    fn default() -> Self {
        Self::default_org()
    }
}

/// What a member or an API key may do in an organisation (or, for platform keys, in every organisation),
/// from least to most: read; also change devices, gateways, codecs, buildings, datasets and integrations;
/// also manage members and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and queries. Stored keys made before organisations as `read` are viewers.
    #[serde(alias = "read")]
    Viewer,
    /// Also onboards and changes devices, gateways, codecs, buildings, datasets and integrations, and
    /// writes line protocol. Stored `write` keys are editors.
    #[serde(alias = "write")]
    Editor,
    /// Also manages the organisation's members and keys.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::Invalid {
                kind: "role",
                value: s.to_owned(),
                reason: "use viewer, editor or admin",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_read_the_old_names() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        let old: Vec<Role> = serde_json::from_str(r#"["read","write","admin"]"#).expect("roles");
        assert_eq!(old, Role::ALL);
        assert_eq!("editor".parse::<Role>().expect("role"), Role::Editor);
        assert!("owner".parse::<Role>().is_err());
        assert!(OrgId::new("Buildings Dept").is_err());
        assert!(OrgId::default().is_default());
    }
}
