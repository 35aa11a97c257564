//! API tokens: random secrets shown once; only their SHA-256 is stored, keyed for O(1) lookup per request.
use super::{Registry, TOKENS};
use crate::error::{corrupt, db};
use crate::{Result, secret};
use bydata_schemas::{DeviceId, MeasurementName, OrgId, Role, UnixNanos};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// Series each token has added by writing line protocol (token id → count), for its series limit.
pub(super) const TOKEN_SERIES: TableDefinition<&str, u64> = TableDefinition::new("token_series");
/// When each token was last used (token id → time).
pub(super) const TOKEN_USED: TableDefinition<&str, i64> = TableDefinition::new("token_used");

const TOKEN_LEN: usize = 40;
const TOKEN_PREFIX: &str = "bdt_";

/// An API key's description; the secret itself is never stored. A key belongs to one organisation with one
/// role, or (`org: None`) to the platform: a platform admin key (the bootstrap key, `BYDATA_ADMIN_TOKEN`)
/// may do everything, a platform viewer reads every organisation. Keys made before organisations have no
/// `org`, so they keep the reach they had (`admin` everything, `read` reading everything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgId>,
    pub role: Role,
    pub created_at: UnixNanos,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<UnixNanos>,
    /// Only these devices and measurements (an empty list: no restriction on that axis).
    #[serde(default, skip_serializing_if = "Restriction::is_none")]
    pub restriction: Restriction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixNanos>,
    /// When it was last used (kept in its own table, written in batches; filled in by `tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<UnixNanos>,
}

/// What a key is confined to, besides its organisation and role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<MeasurementName>,
}

impl Restriction {
    pub fn is_none(&self) -> bool {
        self.devices.is_empty() && self.measurements.is_empty()
    }

    pub fn allows_device(&self, id: &str) -> bool {
        self.devices.is_empty() || self.devices.iter().any(|d| d.as_str() == id)
    }

    pub fn allows_measurement(&self, name: &str) -> bool {
        self.measurements.is_empty() || self.measurements.iter().any(|m| m.as_str() == name)
    }
}

/// A new key's scope: what `create_token` is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub org: Option<OrgId>,
    pub role: Role,
    pub expires_at: Option<UnixNanos>,
    pub restriction: Restriction,
}

impl NewToken {
    /// A key of `org` (or of the platform) with `role`, no expiry and no restriction.
    pub fn new(name: &str, org: Option<OrgId>, role: Role) -> Self {
        Self {
            name: name.to_owned(),
            org,
            role,
            expires_at: None,
            restriction: Restriction::default(),
        }
    }
}

impl Registry {
    /// Creates an API token; the secret is returned once and only its hash is kept.
    pub(crate) fn create_token(
        &self,
        new: NewToken,
        now: UnixNanos,
    ) -> Result<(TokenInfo, String)> {
        let token = format!("{TOKEN_PREFIX}{}", secret::generate(TOKEN_LEN));
        let info = TokenInfo {
            id: secret::generate(12).to_lowercase(),
            name: new.name,
            org: new.org,
            role: new.role,
            created_at: now,
            expires_at: new.expires_at,
            restriction: new.restriction,
            revoked_at: None,
            last_used_at: None,
        };
        crate::audit::amend(|e| {
            e.object = format!("token:{}", info.id);
            e.after["id"] = serde_json::json!(info.id);
        });
        self.put_token(&token, &info)?;
        Ok((info, token))
    }

    /// Makes `token` (from `BYDATA_ADMIN_TOKEN`) the bootstrap admin token, replacing an earlier bootstrap token.
    pub(crate) fn set_bootstrap_token(&self, token: &str, now: UnixNanos) -> Result<()> {
        let old: Vec<String> = self
            .token_rows()?
            .into_iter()
            .filter(|(_, info)| info.id == "bootstrap")
            .map(|(hash, _)| hash)
            .collect();
        let txn = self
            .db
            .begin_write()
            .map_err(db("setting the admin token"))?;
        {
            let mut tokens = txn
                .open_table(TOKENS)
                .map_err(db("setting the admin token"))?;
            for hash in old {
                tokens
                    .remove(hash.as_str())
                    .map_err(db("setting the admin token"))?;
            }
            let info = TokenInfo {
                id: "bootstrap".to_owned(),
                name: "bootstrap admin (BYDATA_ADMIN_TOKEN)".to_owned(),
                org: None,
                role: Role::Admin,
                created_at: now,
                expires_at: None,
                restriction: Restriction::default(),
                revoked_at: None,
                last_used_at: None,
            };
            let json = serde_json::to_vec(&info).map_err(corrupt("token"))?;
            tokens
                .insert(secret::token_hash(token).as_str(), json.as_slice())
                .map_err(db("setting the admin token"))?;
        }
        txn.commit().map_err(db("setting the admin token"))
    }

    fn put_token(&self, token: &str, info: &TokenInfo) -> Result<()> {
        let txn = self.db.begin_write().map_err(db("creating a token"))?;
        {
            let mut tokens = txn.open_table(TOKENS).map_err(db("creating a token"))?;
            let json = serde_json::to_vec(info).map_err(corrupt("token"))?;
            tokens
                .insert(secret::token_hash(token).as_str(), json.as_slice())
                .map_err(db("creating a token"))?;
        }
        self.commit(txn, "creating a token")
    }

    /// The token's description if the secret is a valid token.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        let txn = self.db.begin_read().map_err(db("checking a token"))?;
        let tokens = txn.open_table(TOKENS).map_err(db("checking a token"))?;
        let row = tokens
            .get(secret::token_hash(token).as_str())
            .map_err(db("checking a token"))?;
        row.map(|v| serde_json::from_slice(v.value()).map_err(corrupt("token")))
            .transpose()
    }

    fn token_rows(&self) -> Result<Vec<(String, TokenInfo)>> {
        let txn = self.db.begin_read().map_err(db("listing tokens"))?;
        let tokens = txn.open_table(TOKENS).map_err(db("listing tokens"))?;
        let mut out = Vec::new();
        for row in tokens.iter().map_err(db("listing tokens"))? {
            let (k, v) = row.map_err(db("listing tokens"))?;
            let info = serde_json::from_slice(v.value()).map_err(corrupt("token"))?;
            out.push((k.value().to_owned(), info));
        }
        Ok(out)
    }

    /// Every key, with when it was last used.
    pub(crate) fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let context = "listing tokens";
        let txn = self.db.begin_read().map_err(db(context))?;
        let used = txn.open_table(TOKEN_USED).map_err(db(context))?;
        let mut out: Vec<TokenInfo> = self.token_rows()?.into_iter().map(|(_, i)| i).collect();
        for t in &mut out {
            t.last_used_at = used
                .get(t.id.as_str())
                .map_err(db(context))?
                .map(|v| v.value());
        }
        Ok(out)
    }

    /// Whether a usable platform admin key exists (if not, `serve` makes one).
    pub(crate) fn has_admin_token(&self) -> Result<bool> {
        Ok(self
            .token_rows()?
            .iter()
            .any(|(_, t)| t.org.is_none() && t.role == Role::Admin && t.revoked_at.is_none()))
    }

    /// Records when keys were last used (batched by the caller; a later time wins).
    pub(crate) fn record_token_use(&self, uses: &[(String, UnixNanos)]) -> Result<()> {
        let context = "recording key use";
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut used = txn.open_table(TOKEN_USED).map_err(db(context))?;
            for (id, at) in uses {
                let before = used
                    .get(id.as_str())
                    .map_err(db(context))?
                    .map(|v| v.value());
                if before.is_none_or(|b| b < *at) {
                    used.insert(id.as_str(), *at).map_err(db(context))?;
                }
            }
        }
        txn.commit().map_err(db(context))
    }

    /// How many series the token has added by writing.
    pub(crate) fn token_series(&self, id: &str) -> Result<u64> {
        let txn = self
            .db
            .begin_read()
            .map_err(db("reading a token's series"))?;
        let table = txn
            .open_table(TOKEN_SERIES)
            .map_err(db("reading a token's series"))?;
        Ok(table
            .get(id)
            .map_err(db("reading a token's series"))?
            .map_or(0, |v| v.value()))
    }

    /// Records that the token's write added `n` series.
    pub(crate) fn add_token_series(&self, id: &str, n: u64) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(db("counting a token's series"))?;
        {
            let mut table = txn
                .open_table(TOKEN_SERIES)
                .map_err(db("counting a token's series"))?;
            let now = table
                .get(id)
                .map_err(db("counting a token's series"))?
                .map_or(0, |v| v.value());
            table
                .insert(id, now.saturating_add(n))
                .map_err(db("counting a token's series"))?;
        }
        txn.commit().map_err(db("counting a token's series"))
    }

    /// Revokes a key: it stops working at once, and stays listed (with `revoked_at`) so a client using it is
    /// told it was revoked. `None` if there is no such key; the key as revoked otherwise (revoking twice keeps
    /// the first time).
    pub(crate) fn revoke_token(&self, id: &str, now: UnixNanos) -> Result<Option<TokenInfo>> {
        let context = "revoking a token";
        let rows: Vec<(String, TokenInfo)> = self
            .token_rows()?
            .into_iter()
            .filter(|(_, info)| info.id == id)
            .collect();
        let txn = self.db.begin_write().map_err(db(context))?;
        let mut revoked = None;
        {
            let mut tokens = txn.open_table(TOKENS).map_err(db(context))?;
            for (hash, mut info) in rows {
                info.revoked_at = info.revoked_at.or(Some(now));
                let json = serde_json::to_vec(&info).map_err(corrupt("token"))?;
                tokens
                    .insert(hash.as_str(), json.as_slice())
                    .map_err(db(context))?;
                revoked = Some(info);
            }
        }
        self.commit_if(txn, context, revoked.is_some())?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        let reg = Registry::open(&path).expect("open");
        let (info, secret) = reg
            .create_token(NewToken::new("grafana", None, Role::Viewer), 1)
            .expect("token");
        assert_eq!(reg.authenticate(&secret).expect("auth"), Some(info.clone()));
        assert_eq!(reg.authenticate("bdt_guess").expect("auth"), None);
        reg.set_bootstrap_token("admin-secret", 2)
            .expect("bootstrap");
        reg.set_bootstrap_token("admin-secret-2", 3)
            .expect("bootstrap");
        assert_eq!(reg.authenticate("admin-secret").expect("auth"), None);
        assert_eq!(
            reg.authenticate("admin-secret-2")
                .expect("auth")
                .map(|t| t.role),
            Some(Role::Admin)
        );
        drop(reg);
        let raw = std::fs::read(&path).expect("read file");
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains(&secret) && !text.contains("admin-secret-2"));
        let reg = Registry::open(&path).expect("reopen");
        let revoked = reg
            .revoke_token(&info.id, 9)
            .expect("revoke")
            .expect("exists");
        assert_eq!(revoked.revoked_at, Some(9));
        assert_eq!(
            reg.authenticate(&secret)
                .expect("auth")
                .and_then(|t| t.revoked_at),
            Some(9)
        );
        reg.record_token_use(&[(info.id.clone(), 5), (info.id.clone(), 4)])
            .expect("use");
        let listed = reg.tokens().expect("list");
        assert_eq!(
            listed
                .iter()
                .find(|t| t.id == info.id)
                .and_then(|t| t.last_used_at),
            Some(5)
        );
    }
}
