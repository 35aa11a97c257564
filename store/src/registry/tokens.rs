//! API tokens: random secrets shown once; only their SHA-256 is stored, keyed for O(1) lookup per request.
use super::{Registry, TOKENS};
use crate::error::{corrupt, db};
use crate::{Result, secret};
use bydata_schemas::UnixNanos;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// Series each token has added by writing line protocol (token id → count), for its series limit.
pub(super) const TOKEN_SERIES: TableDefinition<&str, u64> = TableDefinition::new("token_series");

const TOKEN_LEN: usize = 40;
const TOKEN_PREFIX: &str = "bdt_";

/// What a token may do: `admin` onboards and manages everything; `write` writes line protocol (Telegraf,
/// Node-RED, a network server's InfluxDB integration) and queries; `read` only queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Write,
    Read,
}

/// A token's public description; the secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: UnixNanos,
}

impl Registry {
    /// Creates an API token; the secret is returned once and only its hash is kept.
    pub(crate) fn create_token(
        &self,
        name: &str,
        role: Role,
        now: UnixNanos,
    ) -> Result<(TokenInfo, String)> {
        let token = format!("{TOKEN_PREFIX}{}", secret::generate(TOKEN_LEN));
        let info = TokenInfo {
            id: secret::generate(12).to_lowercase(),
            name: name.to_owned(),
            role,
            created_at: now,
        };
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
                role: Role::Admin,
                created_at: now,
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
        txn.commit().map_err(db("creating a token"))
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

    pub(crate) fn tokens(&self) -> Result<Vec<TokenInfo>> {
        Ok(self.token_rows()?.into_iter().map(|(_, i)| i).collect())
    }

    pub(crate) fn has_admin_token(&self) -> Result<bool> {
        Ok(self.tokens()?.iter().any(|t| t.role == Role::Admin))
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

    pub(crate) fn delete_token(&self, id: &str) -> Result<bool> {
        let hashes: Vec<String> = self
            .token_rows()?
            .into_iter()
            .filter(|(_, info)| info.id == id)
            .map(|(h, _)| h)
            .collect();
        let txn = self.db.begin_write().map_err(db("deleting a token"))?;
        {
            let mut tokens = txn.open_table(TOKENS).map_err(db("deleting a token"))?;
            for h in &hashes {
                tokens.remove(h.as_str()).map_err(db("deleting a token"))?;
            }
            let mut series = txn
                .open_table(TOKEN_SERIES)
                .map_err(db("deleting a token"))?;
            series.remove(id).map_err(db("deleting a token"))?;
        }
        txn.commit().map_err(db("deleting a token"))?;
        Ok(!hashes.is_empty())
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
        let (info, secret) = reg.create_token("grafana", Role::Read, 1).expect("token");
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
        assert!(reg.delete_token(&info.id).expect("delete"));
        assert_eq!(reg.authenticate(&secret).expect("auth"), None);
    }
}
