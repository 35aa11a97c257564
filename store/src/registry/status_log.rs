//! Which device statuses changed, kept in memory for the alert evaluator (`Registry::statuses_since`); its
//! own file so the registry's root can hold it without depending on the alerts tables.
use bydata_schemas::DeviceId;
use std::collections::{BTreeMap, HashMap};

/// The devices whose status changed, in the order of their latest change; in memory, one entry per device.
#[derive(Debug)]
pub(crate) struct StatusLog {
    pub(crate) epoch: u64,
    pub(crate) next: u64,
    pub(crate) by_device: HashMap<DeviceId, u64>,
    pub(crate) by_seq: BTreeMap<u64, DeviceId>,
}

impl Default for StatusLog {
    fn default() -> Self {
        Self {
            // Random, never 0: a cursor of an earlier process (or the default one) never matches.
            epoch: rand::random::<u64>() | 1,
            next: 0,
            by_device: HashMap::new(),
            by_seq: BTreeMap::new(),
        }
    }
}

impl StatusLog {
    pub(crate) fn touched<'a>(&mut self, ids: impl IntoIterator<Item = &'a DeviceId>) {
        for id in ids {
            self.next += 1;
            if let Some(old) = self.by_device.insert(id.clone(), self.next) {
                self.by_seq.remove(&old);
            }
            self.by_seq.insert(self.next, id.clone());
        }
    }
}
