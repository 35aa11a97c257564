//! Notification channels: where an organisation wants to be told, and the secrets a webhook is sent with.
use super::Registry;
use crate::error::{corrupt, db};
use crate::registry::sealing::{open_json, seal_json};
use crate::{Error, Result, secret};
use bydata_schemas::{OrgId, UnixNanos};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_channels");
/// A webhook channel's [`WebhookSecrets`], sealed.
pub(in crate::registry) const CHANNEL_SECRETS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("notify_channel_secrets");

/// Part of opening: creates the tables, and refuses a secrets key that does not open a sealed webhook
/// secret.
pub(super) fn open_tables(txn: &WriteTransaction, key: &crate::SecretKey) -> Result<()> {
    let context = "creating tables";
    txn.open_table(CHANNELS).map_err(db(context))?;
    let secrets = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
    if let Some(row) = secrets.first().map_err(db(context))? {
        open_json::<WebhookSecrets>(
            key,
            CHANNEL_SECRETS,
            row.0.value(),
            row.1.value(),
            "channel",
        )
        .map_err(|_| Error::SecretsKey)?;
    }
    Ok(())
}

fn open_row(bytes: &[u8]) -> Result<Channel> {
    serde_json::from_slice(bytes).map_err(corrupt("channel"))
}

/// Length of a generated webhook signing secret (after its `whsec_` prefix): ~190 random bits.
const SECRET_LEN: usize = 32;

/// A channel's id: 1–64 characters of `a-z 0-9 - _ .`, starting with a letter or digit (alert rules name it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelId(String);

impl ChannelId {
    /// `Err` says what is wrong, in words.
    pub fn new(id: impl Into<String>) -> std::result::Result<Self, String> {
        let id = id.into();
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if id.is_empty() || id.len() > 64 {
            Err("a channel id must be 1 to 64 characters".into())
        } else if !id.starts_with(ok_char) {
            Err("a channel id must start with a lowercase letter or a digit".into())
        } else if !id
            .chars()
            .all(|c| ok_char(c) || matches!(c, '-' | '_' | '.'))
        {
            Err("a channel id may only contain a-z, 0-9, '-', '_' and '.'".into())
        } else {
            Ok(Self(id))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChannelId {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        Self::new(s)
    }
}

impl From<ChannelId> for String {
    fn from(id: ChannelId) -> String {
        id.0
    }
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an organisation is told (no secret in here, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub org: OrgId,
    pub target: ChannelTarget,
    pub created_at: UnixNanos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelTarget {
    /// POST of signed JSON. `headers` names the extra headers sent; their values are sealed.
    Webhook { url: String, headers: Vec<String> },
    /// A mail to these recipients through the `[smtp]` relay.
    Email { to: Vec<String> },
}

impl ChannelTarget {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelTarget::Webhook { .. } => ChannelKind::Webhook,
            ChannelTarget::Email { .. } => ChannelKind::Email,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 2] = [ChannelKind::Webhook, ChannelKind::Email];
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
        }
    }
}

/// What a webhook channel keeps sealed: the secret its requests are signed with and the extra headers'
/// values (an `Authorization` for the receiver, say). `Debug` redacts both.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    pub signing_secret: String,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("signing_secret", &"<redacted>")
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Registry {
    /// Registers a channel. A webhook gets a new signing secret, returned here once and kept sealed with
    /// `header_values` (in the order of the target's header names).
    pub(crate) fn create_channel(
        &self,
        channel: Channel,
        header_values: Vec<String>,
    ) -> Result<(Channel, Option<String>)> {
        let context = "creating a notification channel";
        let key = channel.id.as_str();
        let secret = match &channel.target {
            ChannelTarget::Webhook { headers, .. } => {
                let signing_secret = format!("whsec_{}", secret::generate(SECRET_LEN));
                let secrets = WebhookSecrets {
                    signing_secret: signing_secret.clone(),
                    headers: headers.iter().cloned().zip(header_values).collect(),
                };
                let sealed = seal_json(&self.secrets, CHANNEL_SECRETS, key, &secrets, "channel")?;
                Some((signing_secret, sealed))
            }
            ChannelTarget::Email { .. } => None,
        };
        let json = serde_json::to_vec(&channel).map_err(corrupt("channel"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(CHANNELS).map_err(db(context))?;
            if table.get(key).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what: "notification channel",
                    id: key.to_owned(),
                });
            }
            table.insert(key, json.as_slice()).map_err(db(context))?;
            if let Some((_, sealed)) = &secret {
                let mut secrets = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
                secrets
                    .insert(key, sealed.as_slice())
                    .map_err(db(context))?;
            }
        }
        self.commit(txn, context)?;
        Ok((channel, secret.map(|(s, _)| s)))
    }

    pub(crate) fn channel(&self, id: &str) -> Result<Option<Channel>> {
        let context = "reading a notification channel";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(CHANNELS).map_err(db(context))?;
        let row = table.get(id).map_err(db(context))?;
        row.map(|v| open_row(v.value())).transpose()
    }

    pub(crate) fn channels(&self) -> Result<Vec<Channel>> {
        let context = "listing notification channels";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(CHANNELS).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            out.push(open_row(row.map_err(db(context))?.1.value())?);
        }
        Ok(out)
    }

    /// Removes a channel and its secrets. Deliveries still due to it fail when attempted ("channel deleted").
    pub(crate) fn delete_channel(&self, id: &str) -> Result<bool> {
        let context = "deleting a notification channel";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(CHANNELS).map_err(db(context))?;
            let existed = table.remove(id).map_err(db(context))?.is_some();
            let mut secrets = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
            secrets.remove(id).map_err(db(context))?;
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    pub(crate) fn webhook_secrets(&self, id: &str) -> Result<Option<WebhookSecrets>> {
        let context = "reading a webhook's secret";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(CHANNEL_SECRETS).map_err(db(context))?;
        let row = table.get(id).map_err(db(context))?;
        row.map(|v| open_json(&self.secrets, CHANNEL_SECRETS, id, v.value(), "channel"))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_are_sealed_and_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(&dir.path().join("r.redb")).expect("open");
        let channel = Channel {
            id: ChannelId::new("ops").expect("id"),
            name: "Ops".into(),
            org: OrgId::default(),
            target: ChannelTarget::Webhook {
                url: "https://example.invalid/hook".into(),
                headers: vec!["Authorization".into()],
            },
            created_at: 1,
        };
        let (_, secret) = reg
            .create_channel(channel.clone(), vec!["Bearer x".into()])
            .expect("create");
        let secret = secret.expect("shown once");
        assert!(secret.starts_with("whsec_"));
        assert!(matches!(
            reg.create_channel(channel, Vec::new()),
            Err(Error::Conflict { .. })
        ));
        let secrets = reg.webhook_secrets("ops").expect("read").expect("some");
        assert_eq!(secrets.signing_secret, secret);
        assert_eq!(
            secrets.headers,
            vec![("Authorization".to_owned(), "Bearer x".to_owned())]
        );
        assert!(!format!("{secrets:?}").contains(&secret));
        assert!(reg.delete_channel("ops").expect("delete"));
        assert_eq!(reg.webhook_secrets("ops").expect("read"), None);
    }
}
