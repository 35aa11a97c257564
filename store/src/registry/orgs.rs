//! Organisations and their members. Every object of the registry names its organisation (`org`, which
//! objects stored before organisations lack: they read as [`OrgId::DEFAULT`], and `open` makes sure that
//! organisation exists, so an old data dir upgrades in place without rewriting a row). Members are people
//! (an OpenID Connect subject or e-mail) with a role in one organisation; keys live in `tokens`.
use super::Registry;
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{OrgId, Role, UnixNanos};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

pub(super) const ORGS: TableDefinition<&str, &[u8]> = TableDefinition::new("orgs");
/// (org, member) → `Member` as JSON.
pub(super) const MEMBERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("members");

/// An organisation: a department, a utility, a university partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: OrgId,
    pub name: String,
    pub created_at: UnixNanos,
}

/// A person's role in an organisation. `member` is what the identity provider calls them: their e-mail
/// (lower case) or their subject (`sub`); a login matches either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub org: OrgId,
    pub member: String,
    pub role: Role,
    pub added_at: UnixNanos,
}

/// What an organisation still holds, when deleting it is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgContents {
    pub devices: usize,
    pub gateways: usize,
    pub codecs: usize,
    pub buildings: usize,
    pub datasets: usize,
    pub integrations: usize,
    pub keys: usize,
}

impl OrgContents {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Registry {
    /// Creates the default organisation if it is missing (a new data dir, or one from before organisations).
    pub(super) fn ensure_default_org(txn: &WriteTransaction) -> Result<()> {
        let mut orgs = txn.open_table(ORGS).map_err(db("creating tables"))?;
        if orgs
            .get(OrgId::DEFAULT)
            .map_err(db("creating tables"))?
            .is_none()
        {
            let org = Organisation {
                id: OrgId::default_org(),
                name: "Default organisation".into(),
                created_at: 0,
            };
            let json = serde_json::to_vec(&org).map_err(corrupt("organisation"))?;
            orgs.insert(OrgId::DEFAULT, json.as_slice())
                .map_err(db("creating tables"))?;
        }
        Ok(())
    }

    pub(crate) fn create_org(&self, org: Organisation) -> Result<Organisation> {
        let context = "creating an organisation";
        let json = serde_json::to_vec(&org).map_err(corrupt("organisation"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut table = txn.open_table(ORGS).map_err(db(context))?;
            if table.get(org.id.as_str()).map_err(db(context))?.is_some() {
                return Err(Error::Conflict {
                    what: "organisation",
                    id: org.id.to_string(),
                });
            }
            table
                .insert(org.id.as_str(), json.as_slice())
                .map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok(org)
    }

    pub(crate) fn org(&self, id: &OrgId) -> Result<Option<Organisation>> {
        let txn = self
            .db
            .begin_read()
            .map_err(db("reading an organisation"))?;
        let table = txn
            .open_table(ORGS)
            .map_err(db("reading an organisation"))?;
        table
            .get(id.as_str())
            .map_err(db("reading an organisation"))?
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("organisation")))
            .transpose()
    }

    pub(crate) fn orgs(&self) -> Result<Vec<Organisation>> {
        let context = "listing organisations";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(ORGS).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("organisation"))?);
        }
        Ok(out)
    }

    /// What the organisation holds (deleting it is refused while it holds anything).
    pub(crate) fn org_contents(&self, id: &OrgId) -> Result<OrgContents> {
        let count = |orgs: Vec<OrgId>| orgs.iter().filter(|o| *o == id).count();
        Ok(OrgContents {
            devices: count(self.devices()?.into_iter().map(|d| d.org).collect()),
            gateways: count(self.gateways()?.into_iter().map(|g| g.org).collect()),
            codecs: count(self.codecs()?.into_iter().map(|c| c.org).collect()),
            buildings: count(self.buildings()?.into_iter().map(|b| b.org).collect()),
            datasets: count(self.datasets()?.into_iter().map(|d| d.org).collect()),
            integrations: count(self.integrations()?.into_iter().map(|i| i.org).collect()),
            keys: count(self.tokens()?.into_iter().filter_map(|t| t.org).collect()),
        })
    }

    /// Deletes an empty organisation and its memberships; `false` if it does not exist. The caller has
    /// checked [`Registry::org_contents`]; the default organisation is never deleted.
    pub(crate) fn delete_org(&self, id: &OrgId) -> Result<bool> {
        let context = "deleting an organisation";
        if id.is_default() {
            return Err(Error::InvalidQuery {
                reason: "the default organisation cannot be deleted".into(),
            });
        }
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(ORGS).map_err(db(context))?;
            let existed = table.remove(id.as_str()).map_err(db(context))?.is_some();
            let mut members = txn.open_table(MEMBERS).map_err(db(context))?;
            let keys: Vec<String> = members
                .range((id.as_str(), "")..)
                .map_err(db(context))?
                .map_while(|row| {
                    let (k, _) = row.ok()?;
                    let (org, member) = k.value();
                    (org == id.as_str()).then(|| member.to_owned())
                })
                .collect();
            for member in keys {
                members
                    .remove((id.as_str(), member.as_str()))
                    .map_err(db(context))?;
            }
            existed
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    /// Adds a member or changes their role.
    pub(crate) fn put_member(&self, member: Member) -> Result<Member> {
        let context = "adding a member";
        let json = serde_json::to_vec(&member).map_err(corrupt("member"))?;
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            if txn
                .open_table(ORGS)
                .map_err(db(context))?
                .get(member.org.as_str())
                .map_err(db(context))?
                .is_none()
            {
                return Err(Error::NotFound {
                    what: "organisation",
                    id: member.org.to_string(),
                });
            }
            let mut table = txn.open_table(MEMBERS).map_err(db(context))?;
            table
                .insert(
                    (member.org.as_str(), member.member.as_str()),
                    json.as_slice(),
                )
                .map_err(db(context))?;
        }
        self.commit(txn, context)?;
        Ok(member)
    }

    pub(crate) fn remove_member(&self, org: &OrgId, member: &str) -> Result<bool> {
        let context = "removing a member";
        let txn = self.db.begin_write().map_err(db(context))?;
        let existed = {
            let mut table = txn.open_table(MEMBERS).map_err(db(context))?;
            table
                .remove((org.as_str(), member))
                .map_err(db(context))?
                .is_some()
        };
        self.commit_if(txn, context, existed)?;
        Ok(existed)
    }

    /// Every membership (of every organisation; callers filter).
    pub(crate) fn members(&self) -> Result<Vec<Member>> {
        let context = "listing members";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(MEMBERS).map_err(db(context))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db(context))? {
            let (_, v) = row.map_err(db(context))?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt("member"))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_from_before_organisations_opens_with_everything_in_the_default_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        {
            // A device row as bydata wrote it before organisations: no `org`.
            let db = redb::Database::create(&path).expect("db");
            let txn = db.begin_write().expect("txn");
            {
                let mut devices = txn.open_table(super::super::DEVICES).expect("table");
                let old = br#"{"id":"old-1","name":"Old","transport":"mqtt","domain":"building","location":null,"created_at":1}"#;
                devices.insert("old-1", old.as_slice()).expect("insert");
            }
            txn.commit().expect("commit");
        }
        let reg = Registry::open(&path).expect("open");
        let devices = reg.devices().expect("devices");
        assert_eq!(devices.len(), 1);
        assert!(devices[0].org.is_default());
        assert!(reg.org(&OrgId::default()).expect("org").is_some());
        assert_eq!(
            reg.org_contents(&OrgId::default())
                .expect("contents")
                .devices,
            1
        );
        assert!(matches!(
            reg.delete_org(&OrgId::default()),
            Err(Error::InvalidQuery { .. })
        ));
    }
}
