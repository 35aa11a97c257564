//! The audit log's table: one row per change, keyed by an increasing `seq`, written in the transaction of the
//! change it records (see [`crate::audit`]); read newest first, filtered on read.
use super::Registry;
use crate::Result;
use crate::audit::{self, AuditEntry, AuditFilter};
use crate::error::{corrupt, db};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

impl Registry {
    /// Commits `txn` carrying the audit entry pending on this thread, if any: the change and its record are
    /// one transaction.
    pub(super) fn commit(&self, txn: WriteTransaction, context: &'static str) -> Result<()> {
        if let Some(entry) = audit::take() {
            Self::insert_audit(&txn, entry)?;
        }
        txn.commit().map_err(db(context))?;
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// How many changes [`Registry::commit`] has committed since the registry was opened.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// [`Registry::commit`] for a write that may have changed nothing (deleting what is already gone): the
    /// pending entry is then dropped, so no record stands without its change.
    pub(super) fn commit_if(
        &self,
        txn: WriteTransaction,
        context: &'static str,
        changed: bool,
    ) -> Result<()> {
        if !changed {
            audit::take();
        }
        self.commit(txn, context)
    }

    fn insert_audit(txn: &WriteTransaction, mut entry: AuditEntry) -> Result<u64> {
        let context = "writing the audit log";
        let mut table = txn.open_table(AUDIT).map_err(db(context))?;
        let last = table.last().map_err(db(context))?.map(|(k, _)| k.value());
        entry.seq = last.map_or(1, |k| k + 1);
        let json = serde_json::to_vec(&entry).map_err(corrupt("audit entry"))?;
        table
            .insert(entry.seq, json.as_slice())
            .map_err(db(context))?;
        Ok(entry.seq)
    }

    /// Appends an entry on its own, for a change made outside the registry (publishing a dataset's files).
    pub(crate) fn append_audit(&self, entry: AuditEntry) -> Result<u64> {
        let txn = self.db.begin_write().map_err(db("writing the audit log"))?;
        let seq = Self::insert_audit(&txn, entry)?;
        txn.commit().map_err(db("writing the audit log"))?;
        Ok(seq)
    }

    /// Entries matching `filter`, newest first, at most `filter.limit`.
    pub(crate) fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let context = "reading the audit log";
        let txn = self.db.begin_read().map_err(db(context))?;
        let table = txn.open_table(AUDIT).map_err(db(context))?;
        let rows = table
            .range(..filter.before.unwrap_or(u64::MAX))
            .map_err(db(context))?;
        let mut out = Vec::new();
        for row in rows.rev() {
            if out.len() >= filter.limit {
                break;
            }
            let (_, v) = row.map_err(db(context))?;
            let entry: AuditEntry =
                serde_json::from_slice(v.value()).map_err(corrupt("audit entry"))?;
            if filter.matches(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::device;
    use super::*;
    use crate::audit::Pending;

    fn entry(action: &str, object: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            time: 1,
            actor: "key:k1".into(),
            actor_name: "ops".into(),
            org: Some(bydata_schemas::OrgId::default()),
            action: action.into(),
            object: object.into(),
            source: Some("192.0.2.1".into()),
            before: serde_json::Value::Null,
            after: serde_json::json!({"id": object}),
        }
    }

    fn all() -> AuditFilter {
        AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        }
    }

    /// Runs `f` as a registry call inside an audit scope (what `RedbRegistry::run` does).
    fn in_scope<T>(e: AuditEntry, f: impl FnOnce() -> T) -> T {
        Pending::enter(Some(Pending::holding(e)), f)
    }

    #[test]
    fn a_change_in_a_scope_writes_one_entry_a_refused_one_none_and_they_survive_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        {
            let reg = Registry::open(&path).expect("open");
            in_scope(entry("device.create", "device:room-1"), || {
                reg.create_device(device("room-1")).expect("create");
                // A second commit in the same scope carries nothing.
                reg.create_device(device("room-2")).expect("create");
            });
            assert_eq!(reg.audit(&all()).expect("read").len(), 1);
            in_scope(entry("device.create", "device:room-1"), || {
                assert!(reg.create_device(device("room-1")).is_err());
            });
            // Outside a scope: no entry.
            reg.create_device(device("room-3")).expect("create");
            assert_eq!(reg.audit(&all()).expect("read").len(), 1);
            in_scope(entry("device.delete", "device:nope"), || {
                let id = bydata_schemas::DeviceId::new("nope").expect("id");
                assert!(!reg.delete_device(&id).expect("delete"));
            });
            assert_eq!(reg.audit(&all()).expect("read").len(), 1);
            in_scope(entry("device.delete", "device:room-2"), || {
                let id = bydata_schemas::DeviceId::new("room-2").expect("id");
                assert!(reg.delete_device(&id).expect("delete"));
            });
        }
        let reg = Registry::open(&path).expect("reopen");
        let got = reg.audit(&all()).expect("read");
        assert_eq!(
            got.iter()
                .map(|e| (e.seq, e.action.as_str(), e.object.as_str()))
                .collect::<Vec<_>>(),
            [
                (2, "device.delete", "device:room-2"),
                (1, "device.create", "device:room-1")
            ]
        );
        let page = reg
            .audit(&AuditFilter {
                before: Some(2),
                action: Some("device.".into()),
                ..all()
            })
            .expect("read");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].seq, 1);
        assert_eq!(
            reg.append_audit(entry("dataset.publish", "dataset:x"))
                .expect("append"),
            3
        );
    }
}
