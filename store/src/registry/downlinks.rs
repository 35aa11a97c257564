//! The per-device downlink queue: a FIFO of open downlinks (at most [`MAX_OPEN_DOWNLINKS`] per device, the
//! next one refused with [`Error::QueueFull`]) and a history of finished ones (the newest
//! [`DOWNLINK_HISTORY`] per device kept; older ones dropped when a newer one finishes). Rows are keyed by
//! (device, id), so one device's downlinks are one range read in id — that is FIFO — order. Ids come from one
//! counter for every device, committed with the row, so an id is never reused, even after a restart.
use super::{DEVICES, Registry};
use crate::error::{corrupt, db};
use crate::{Error, Result};
use bydata_schemas::{DeviceId, Downlink, DownlinkState, DownlinkUpdate, NewDownlink};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

pub(super) const DOWNLINKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("downlinks");
/// One row, `next`: the id the next enqueued downlink gets.
pub(super) const DOWNLINK_IDS: TableDefinition<&str, u64> = TableDefinition::new("downlink_ids");

/// Most open (queued, or sent and awaiting acknowledgement) downlinks one device may have.
pub const MAX_OPEN_DOWNLINKS: usize = 64;
/// Most finished downlinks kept per device, newest first.
pub const DOWNLINK_HISTORY: usize = 32;

type Rows<'t> = Table<'t, (&'static str, u64), &'static [u8]>;

impl Registry {
    /// Queues a downlink (state Queued, the next id). `NotFound` if the device does not exist,
    /// [`Error::QueueFull`] if it has [`MAX_OPEN_DOWNLINKS`] open already.
    pub(crate) fn enqueue_downlink(&self, new: NewDownlink) -> Result<Downlink> {
        let context = "queueing a downlink";
        let txn = self.db.begin_write().map_err(db(context))?;
        let downlink = {
            let devices = txn.open_table(DEVICES).map_err(db(context))?;
            if devices
                .get(new.device.as_str())
                .map_err(db(context))?
                .is_none()
            {
                return Err(Error::NotFound {
                    what: "device",
                    id: new.device.to_string(),
                });
            }
            let mut rows = txn.open_table(DOWNLINKS).map_err(db(context))?;
            let open = of_device(&rows, &new.device)?
                .iter()
                .filter(|d| d.is_open())
                .count();
            if open >= MAX_OPEN_DOWNLINKS {
                return Err(Error::QueueFull {
                    device: new.device.to_string(),
                    limit: MAX_OPEN_DOWNLINKS,
                });
            }
            let id = next_id(&txn)?;
            let downlink = Downlink {
                id,
                device: new.device,
                org: new.org,
                fport: new.fport,
                bytes: new.bytes,
                confirmed: new.confirmed,
                state: DownlinkState::Queued,
                attempts: 0,
                created_at: new.at,
                updated_at: new.at,
                error: None,
                via: None,
                fcnt: None,
                tx_ack: None,
            };
            put(&mut rows, &downlink)?;
            downlink
        };
        self.commit(txn, context)?;
        Ok(downlink)
    }

    /// A device's downlinks, newest first: its open ones and its kept history.
    pub(crate) fn downlinks(&self, device: &DeviceId) -> Result<Vec<Downlink>> {
        let context = "listing downlinks";
        let txn = self.db.begin_read().map_err(db(context))?;
        let rows = txn.open_table(DOWNLINKS).map_err(db(context))?;
        let mut all = of_device(&rows, device)?;
        all.reverse();
        Ok(all)
    }

    /// The device's oldest open downlink: what goes out next.
    pub(crate) fn next_downlink(&self, device: &DeviceId) -> Result<Option<Downlink>> {
        let context = "reading the next downlink";
        let txn = self.db.begin_read().map_err(db(context))?;
        let rows = txn.open_table(DOWNLINKS).map_err(db(context))?;
        Ok(of_device(&rows, device)?
            .into_iter()
            .find(Downlink::is_open))
    }

    /// Applies `update` to one downlink of `device` and answers it as it now is (unchanged if the update's
    /// `expect` did not hold); `None` if the device has no downlink `id`.
    pub(crate) fn update_downlink(
        &self,
        device: &DeviceId,
        id: u64,
        update: DownlinkUpdate,
    ) -> Result<Option<Downlink>> {
        let context = "updating a downlink";
        let txn = self.db.begin_write().map_err(db(context))?;
        let (answer, changed) = {
            let mut rows = txn.open_table(DOWNLINKS).map_err(db(context))?;
            let current = rows
                .get((device.as_str(), id))
                .map_err(db(context))?
                .map(|v| decode(v.value()))
                .transpose()?;
            match current {
                None => (None, false),
                Some(mut d) => {
                    let changed = update.apply(&mut d);
                    if changed {
                        put(&mut rows, &d)?;
                        trim_history(&mut rows, device)?;
                    }
                    (Some(d), changed)
                }
            }
        };
        self.commit_if(txn, context, changed)?;
        Ok(answer)
    }

    /// Removes every downlink of a device (it is being deleted), in the caller's transaction.
    pub(super) fn remove_downlinks(txn: &WriteTransaction, device: &DeviceId) -> Result<()> {
        let context = "removing a device's downlinks";
        let mut rows = txn.open_table(DOWNLINKS).map_err(db(context))?;
        rows.retain_in(range(device), |_, _| false)
            .map_err(db(context))?;
        Ok(())
    }
}

fn range(device: &DeviceId) -> std::ops::RangeInclusive<(&str, u64)> {
    (device.as_str(), 0)..=(device.as_str(), u64::MAX)
}

fn decode(bytes: &[u8]) -> Result<Downlink> {
    serde_json::from_slice(bytes).map_err(corrupt("downlink"))
}

fn put(rows: &mut Rows<'_>, d: &Downlink) -> Result<()> {
    let json = serde_json::to_vec(d).map_err(corrupt("downlink"))?;
    rows.insert((d.device.as_str(), d.id), json.as_slice())
        .map_err(db("storing a downlink"))?;
    Ok(())
}

/// A device's downlinks, oldest first.
fn of_device(
    rows: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    device: &DeviceId,
) -> Result<Vec<Downlink>> {
    let context = "reading downlinks";
    let mut out = Vec::new();
    for row in rows.range(range(device)).map_err(db(context))? {
        let (_, v) = row.map_err(db(context))?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

/// Drops the device's oldest finished downlinks beyond [`DOWNLINK_HISTORY`].
fn trim_history(rows: &mut Rows<'_>, device: &DeviceId) -> Result<()> {
    let finished: Vec<u64> = of_device(rows, device)?
        .iter()
        .filter(|d| !d.is_open())
        .map(|d| d.id)
        .collect();
    let excess = finished.len().saturating_sub(DOWNLINK_HISTORY);
    for id in &finished[..excess] {
        rows.remove((device.as_str(), *id))
            .map_err(db("trimming downlink history"))?;
    }
    Ok(())
}

fn next_id(txn: &WriteTransaction) -> Result<u64> {
    let context = "numbering a downlink";
    let mut ids = txn.open_table(DOWNLINK_IDS).map_err(db(context))?;
    let id = ids
        .get("next")
        .map_err(db(context))?
        .map_or(1, |v| v.value());
    ids.insert("next", id + 1).map_err(db(context))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::device;
    use bydata_schemas::OrgId;

    fn new(id: &str, fport: u8) -> NewDownlink {
        NewDownlink {
            device: DeviceId::new(id).expect("id"),
            org: OrgId::default(),
            fport,
            bytes: vec![fport],
            confirmed: true,
            at: i64::from(fport),
        }
    }

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Registry::open(&dir.path().join("r.redb")).expect("open");
        r.create_device(device("valve-1")).expect("device");
        r.create_device(device("valve-2")).expect("device");
        (dir, r)
    }

    #[test]
    fn fifo_per_device_and_ids_never_reused_across_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("r.redb");
        let v1 = DeviceId::new("valve-1").expect("id");
        {
            let r = Registry::open(&path).expect("open");
            r.create_device(device("valve-1")).expect("device");
            r.create_device(device("valve-2")).expect("device");
            let a = r.enqueue_downlink(new("valve-1", 1)).expect("a");
            let b = r.enqueue_downlink(new("valve-2", 2)).expect("b");
            let c = r.enqueue_downlink(new("valve-1", 3)).expect("c");
            assert_eq!((a.id, b.id, c.id), (1, 2, 3));
            assert_eq!(a.state, DownlinkState::Queued);
            assert_eq!(r.next_downlink(&v1).expect("next").map(|d| d.id), Some(1));
            let listed: Vec<u64> = r
                .downlinks(&v1)
                .expect("list")
                .iter()
                .map(|d| d.id)
                .collect();
            assert_eq!(listed, vec![3, 1], "newest first, only this device's");
        }
        let r = Registry::open(&path).expect("reopen");
        assert_eq!(r.next_downlink(&v1).expect("next").map(|d| d.id), Some(1));
        assert_eq!(r.enqueue_downlink(new("valve-1", 4)).expect("d").id, 4);
    }

    #[test]
    fn the_queue_moves_on_as_downlinks_finish() {
        let (_dir, r) = registry();
        let v1 = DeviceId::new("valve-1").expect("id");
        let mut unconfirmed = new("valve-1", 1);
        unconfirmed.confirmed = false;
        let a = r.enqueue_downlink(unconfirmed).expect("a");
        let b = r.enqueue_downlink(new("valve-1", 2)).expect("b");
        let sent = r
            .update_downlink(&v1, a.id, DownlinkUpdate::sent("mqtt", 10))
            .expect("update")
            .expect("exists");
        assert_eq!((sent.state, sent.attempts), (DownlinkState::Sent, 1));
        // Unconfirmed and sent: nothing more goes out, so the next one is b.
        assert_eq!(
            r.next_downlink(&v1).expect("next").map(|d| d.id),
            Some(b.id)
        );
        r.update_downlink(&v1, b.id, DownlinkUpdate::sent("mqtt", 11))
            .expect("update");
        assert_eq!(
            r.next_downlink(&v1).expect("next").map(|d| d.id),
            Some(b.id),
            "confirmed and sent: awaits its acknowledgement or a retry"
        );
        r.update_downlink(&v1, b.id, DownlinkUpdate::acknowledged(12))
            .expect("update");
        assert_eq!(r.next_downlink(&v1).expect("next"), None);
        // Late acknowledgement of the unconfirmed one is still recorded.
        let a = r
            .update_downlink(&v1, a.id, DownlinkUpdate::acknowledged(13))
            .expect("update")
            .expect("exists");
        assert_eq!(a.state, DownlinkState::Acknowledged);
    }

    #[test]
    fn unknown_ids_devices_and_other_devices_downlinks_are_none() {
        let (_dir, r) = registry();
        let v2 = DeviceId::new("valve-2").expect("id");
        let a = r.enqueue_downlink(new("valve-1", 1)).expect("a");
        assert_eq!(
            r.update_downlink(&v2, a.id, DownlinkUpdate::acknowledged(1))
                .expect("update"),
            None,
            "an id is found only under its own device"
        );
        assert!(matches!(
            r.enqueue_downlink(new("nobody", 1)),
            Err(Error::NotFound { what: "device", .. })
        ));
    }

    #[test]
    fn a_cancel_does_not_overwrite_a_send() {
        let (_dir, r) = registry();
        let v1 = DeviceId::new("valve-1").expect("id");
        let a = r.enqueue_downlink(new("valve-1", 1)).expect("a");
        r.update_downlink(&v1, a.id, DownlinkUpdate::sent("mqtt", 5))
            .expect("sent");
        let after = r
            .update_downlink(
                &v1,
                a.id,
                DownlinkUpdate::failed("cancelled", 6).expecting(DownlinkState::Queued),
            )
            .expect("cancel")
            .expect("exists");
        assert_eq!(after.state, DownlinkState::Sent);
    }

    #[test]
    fn the_queue_is_bounded_and_refuses_clearly() {
        let (_dir, r) = registry();
        let v1 = DeviceId::new("valve-1").expect("id");
        for i in 0..MAX_OPEN_DOWNLINKS {
            r.enqueue_downlink(new("valve-1", (i % 200 + 1) as u8))
                .expect("fits");
        }
        let err = r.enqueue_downlink(new("valve-1", 1)).expect_err("full");
        assert!(matches!(
            err,
            Error::QueueFull {
                limit: MAX_OPEN_DOWNLINKS,
                ..
            }
        ));
        assert!(err.to_string().contains("cancel one"), "{err}");
        // Another device's queue is its own.
        r.enqueue_downlink(new("valve-2", 1)).expect("other device");
        // Finishing one makes room.
        let first = r.next_downlink(&v1).expect("next").expect("some");
        r.update_downlink(&v1, first.id, DownlinkUpdate::failed("cancelled", 1))
            .expect("cancel");
        r.enqueue_downlink(new("valve-1", 1)).expect("room again");
    }

    #[test]
    fn history_keeps_the_newest_finished_and_every_open_one() {
        let (_dir, r) = registry();
        let v1 = DeviceId::new("valve-1").expect("id");
        let open = r.enqueue_downlink(new("valve-1", 1)).expect("open");
        let total = DOWNLINK_HISTORY + 5;
        for i in 0..total {
            let d = r.enqueue_downlink(new("valve-1", 2)).expect("enqueue");
            r.update_downlink(&v1, d.id, DownlinkUpdate::failed(format!("#{i}"), 1))
                .expect("fail");
        }
        let all = r.downlinks(&v1).expect("list");
        assert_eq!(all.len(), DOWNLINK_HISTORY + 1);
        assert_eq!(
            all.last().map(|d| d.id),
            Some(open.id),
            "open ones are never trimmed"
        );
        assert_eq!(
            all[0].error.as_deref(),
            Some(format!("#{}", total - 1).as_str())
        );
    }

    #[test]
    fn deleting_the_device_deletes_its_downlinks() {
        let (_dir, r) = registry();
        let v1 = DeviceId::new("valve-1").expect("id");
        r.enqueue_downlink(new("valve-1", 1)).expect("a");
        r.enqueue_downlink(new("valve-2", 1)).expect("b");
        assert!(r.delete_device(&v1).expect("delete"));
        r.create_device(device("valve-1")).expect("again");
        assert!(r.downlinks(&v1).expect("list").is_empty());
        let v2 = DeviceId::new("valve-2").expect("id");
        assert_eq!(r.downlinks(&v2).expect("list").len(), 1);
    }
}
