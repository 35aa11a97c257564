//! Network-server integrations. An *inbound* integration is an MQTT identity of its own
//! (`integration:{id}`, password shown once and stored as an Argon2id hash) that ChirpStack or The Things
//! Stack publishes into bydata's broker with; a *subscribe* integration is bydata connecting to the network
//! server's broker, so bydata must keep that broker's password to log in — it is stored sealed under the
//! secrets key (`sealing`), never returned by the API nor logged (`Debug` redacts it).
use super::sealing::{open_text, seal_text};
use super::{PasswordCheck, Registry};
use crate::error::{corrupt, db};
use crate::{Error, Result, secret};
use bydata_schemas::{IntegrationId, NetworkServer, OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

pub(super) const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("integrations");
/// Inbound: the password hash. (Subscribe: the remote broker's password, in clear, before sealing.)
pub(super) const INTEGRATION_SECRETS: TableDefinition<&str, &str> =
    TableDefinition::new("integration_secrets");
/// Subscribe: the remote broker's password (if any), sealed.
pub(super) const INTEGRATION_REMOTE_PASSWORDS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("integration_remote_passwords");

const PASSWORD_LEN: usize = 32;

/// A registered integration (no secret in here, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub id: IntegrationId,
    pub name: String,
    pub network_server: NetworkServer,
    pub mode: IntegrationMode,
    pub created_at: UnixNanos,
    #[serde(default)]
    pub org: OrgId,
}

/// How the events reach bydata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum IntegrationMode {
    /// The network server publishes into bydata's broker under `integrations/{id}/`.
    Inbound,
    /// bydata subscribes to the network server's broker.
    Subscribe {
        host: String,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// The topic filter; the network server's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// The MQTT client id bydata connects with; `bydata-{id}` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl Registry {
    /// Registers an integration. Inbound: returns the generated MQTT password (shown once). Subscribe:
    /// keeps `remote_password` to log in to the remote broker.
    pub(crate) fn create_integration(
        &self,
        integration: Integration,
        remote_password: Option<String>,
    ) -> Result<(Integration, Option<String>)> {
        let key = integration.id.as_str();
        let (hash, sealed, shown) = match &integration.mode {
            IntegrationMode::Inbound => {
                let password = secret::generate(PASSWORD_LEN);
                (
                    Some(secret::hash_password(&password)?),
                    None,
                    Some(password),
                )
            }
            IntegrationMode::Subscribe { .. } => {
                let sealed = remote_password
                    .map(|p| seal_text(&self.secrets, INTEGRATION_REMOTE_PASSWORDS, key, &p))
                    .transpose()?;
                (None, sealed, None)
            }
        };
        let context = "creating an integration";
        let json = serde_json::to_vec(&integration).map_err(corrupt("integration"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(INTEGRATIONS).map_err(db(context))?;
            if table.get(key).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what: "integration",
                    id: key.to_owned(),
                });
            }
            table.insert(key, json.as_slice()).map_err(db(context))?;
            if let Some(hash) = &hash {
                let mut secrets = txn.open_table(INTEGRATION_SECRETS).map_err(db(context))?;
                secrets.insert(key, hash.as_str()).map_err(db(context))?;
            }
            if let Some(sealed) = &sealed {
                let mut passwords = txn
                    .open_table(INTEGRATION_REMOTE_PASSWORDS)
                    .map_err(db(context))?;
                passwords
                    .insert(key, sealed.as_slice())
                    .map_err(db(context))?;
            }
        }
        self.commit(txn, context)?;
        Ok((integration, shown))
    }

    pub(crate) fn integration(&self, id: &IntegrationId) -> Result<Option<Integration>> {
        let txn = self.db.begin_read().map_err(db("reading an integration"))?;
        let table = txn
            .open_table(INTEGRATIONS)
            .map_err(db("reading an integration"))?;
        table
            .get(id.as_str())
            .map_err(db("reading an integration"))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("integration")))
            .transpose()
    }

    pub(crate) fn integrations(&self) -> Result<Vec<Integration>> {
        let txn = self.db.begin_read().map_err(db("listing integrations"))?;
        let table = txn
            .open_table(INTEGRATIONS)
            .map_err(db("listing integrations"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db("listing integrations"))? {
            let (_, v) = row.map_err(db("listing integrations"))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("integration"))?);
        }
        Ok(out)
    }

    pub(crate) fn delete_integration(&self, id: &IntegrationId) -> Result<bool> {
        let context = "deleting an integration";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(INTEGRATIONS).map_err(db(context))?;
            let existed = table.remove(id.as_str()).map_err(db(context))?.is_some();
            let mut secrets = txn.open_table(INTEGRATION_SECRETS).map_err(db(context))?;
            secrets.remove(id.as_str()).map_err(db(context))?;
            let mut passwords = txn
                .open_table(INTEGRATION_REMOTE_PASSWORDS)
                .map_err(db(context))?;
            passwords.remove(id.as_str()).map_err(db(context))?;
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    /// Checks an inbound integration's MQTT password.
    pub(crate) fn check_integration_password(
        &self,
        id: &IntegrationId,
        password: &str,
    ) -> Result<PasswordCheck> {
        if self.integration(id)?.is_none() {
            return Ok(PasswordCheck::UnknownDevice);
        }
        match self.inbound_integration_password_hash(id)? {
            Some(hash) if secret::verify_password(password, &hash)? => Ok(PasswordCheck::Valid),
            _ => Ok(PasswordCheck::Wrong),
        }
    }

    /// The stored Argon2id hash of an inbound integration's MQTT password; `None` for an unknown integration
    /// or one bydata subscribes to (it never logs in to bydata).
    pub(crate) fn inbound_integration_password_hash(
        &self,
        id: &IntegrationId,
    ) -> Result<Option<String>> {
        match self.integration(id)? {
            Some(i) if i.mode == IntegrationMode::Inbound => self.integration_secret(id),
            _ => Ok(None),
        }
    }

    /// A subscribe integration's password for the remote broker.
    pub(crate) fn integration_remote_password(&self, id: &IntegrationId) -> Result<Option<String>> {
        let context = "reading an integration";
        let txn = self.db.begin_read().map_err(db(context))?;
        let passwords = txn
            .open_table(INTEGRATION_REMOTE_PASSWORDS)
            .map_err(db(context))?;
        let value = passwords.get(id.as_str()).map_err(db(context))?;
        value
            .map(|v| {
                open_text(
                    &self.secrets,
                    INTEGRATION_REMOTE_PASSWORDS,
                    id.as_str(),
                    v.value(),
                    "integration password",
                )
            })
            .transpose()
    }

    fn integration_secret(&self, id: &IntegrationId) -> Result<Option<String>> {
        let txn = self.db.begin_read().map_err(db("reading an integration"))?;
        let secrets = txn
            .open_table(INTEGRATION_SECRETS)
            .map_err(db("reading an integration"))?;
        Ok(secrets
            .get(id.as_str())
            .map_err(db("reading an integration"))?
            .map(|v| v.value().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_passwords_are_hashed_and_remote_ones_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(&dir.path().join("r.redb")).expect("open");
        let id = IntegrationId::new("cs").expect("id");
        let (_, password) = reg
            .create_integration(
                Integration {
                    org: Default::default(),
                    id: id.clone(),
                    name: "ChirpStack".into(),
                    network_server: NetworkServer::Chirpstack,
                    mode: IntegrationMode::Inbound,
                    created_at: 1,
                },
                None,
            )
            .expect("create");
        let password = password.expect("shown once");
        assert_eq!(
            reg.check_integration_password(&id, &password)
                .expect("check"),
            PasswordCheck::Valid
        );
        assert_eq!(
            reg.check_integration_password(&id, "nope").expect("check"),
            PasswordCheck::Wrong
        );
        assert_eq!(reg.integration_remote_password(&id).expect("read"), None);
        let remote = IntegrationId::new("tts").expect("id");
        reg.create_integration(
            Integration {
                org: Default::default(),
                id: remote.clone(),
                name: "TTS".into(),
                network_server: NetworkServer::Tts,
                mode: IntegrationMode::Subscribe {
                    host: "127.0.0.1".into(),
                    port: 1883,
                    username: Some("app@ttn".into()),
                    topic: None,
                    client_id: None,
                },
                created_at: 2,
            },
            Some("NNSXS.secret".into()),
        )
        .expect("create");
        assert_eq!(
            reg.check_integration_password(&remote, "NNSXS.secret")
                .expect("check"),
            PasswordCheck::Wrong
        );
        assert_eq!(
            reg.integration_remote_password(&remote)
                .expect("read")
                .as_deref(),
            Some("NNSXS.secret")
        );
        assert_eq!(reg.integrations().expect("list").len(), 2);
        assert!(reg.delete_integration(&id).expect("delete"));
        assert_eq!(
            reg.check_integration_password(&id, &password)
                .expect("check"),
            PasswordCheck::UnknownDevice
        );
    }
}
