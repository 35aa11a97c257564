//! The LoRaWAN listener's group commit of uplink frame counters, and the generation number by which its
//! cache of sessions learns that sessions changed.
use super::Registry;
use super::lorawan::{LORAWAN_SESSIONS, LorawanSession, addr_key};
use super::sealing::{open_json, seal_json};
use crate::Result;
use crate::error::db;
use bydata_schemas::DeviceId;
use redb::ReadableTable;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;

/// One accepted frame's counter, for [`Registry::advance_uplink_counters`], with the session it was checked
/// against (a session replaced or removed meanwhile must not take the frame).
#[derive(Clone, PartialEq, Eq)]
pub struct CounterAdvance {
    pub dev_addr: u32,
    pub fcnt: u32,
    pub device: DeviceId,
    pub nwk_s_key: [u8; 16],
}

impl std::fmt::Debug for CounterAdvance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterAdvance")
            .field("dev_addr", &format_args!("{:08x}", self.dev_addr))
            .field("fcnt", &self.fcnt)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// What became of one [`CounterAdvance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// The counter is committed: the frame may be journaled.
    Committed,
    /// The counter is not above the last committed one: a replay (or a copy) of an accepted frame.
    Stale { last: u32 },
    /// The DevAddr no longer has the session the frame was checked against (device deleted, rejoined).
    NoSession,
}

impl Registry {
    /// A number that changes after every committed write that can change which session a DevAddr has
    /// (a LoRaWAN device created or deleted, an OTAA join) or a device's credentials: a cache of sessions
    /// read at one generation is stale once this differs. Frame counter advances do not change it.
    pub(crate) fn lorawan_generation(&self) -> u64 {
        self.lorawan_generation.load(Ordering::Acquire)
    }

    /// Called after such a write commits (after, so that a reader who sees the new number reads the new
    /// sessions).
    pub(super) fn sessions_changed(&self) {
        self.lorawan_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Advances the uplink counters of many frames in one transaction (one fsync): the group commit of the
    /// LoRaWAN listener. Each advance, in order, is `Committed` only if its DevAddr still has the session
    /// the frame was checked against (same device and NwkSKey) and its counter is above the last committed
    /// one (earlier advances of the batch included); the answers come back in the order of `advances`.
    /// Once this returns, the `Committed` counters are durable.
    pub(crate) fn advance_uplink_counters(
        &self,
        advances: &[CounterAdvance],
    ) -> Result<Vec<Advanced>> {
        let context = "advancing frame counters";
        let txn = self.db.begin_write().map_err(db(context))?;
        let mut outcomes = Vec::with_capacity(advances.len());
        {
            let mut table = txn.open_table(LORAWAN_SESSIONS).map_err(db(context))?;
            let mut sessions: HashMap<u32, Option<LorawanSession>> = HashMap::new();
            let mut changed: Vec<u32> = Vec::new();
            for a in advances {
                let session = match sessions.entry(a.dev_addr) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let key = addr_key(a.dev_addr);
                        e.insert(
                            table
                                .get(key.as_str())
                                .map_err(db(context))?
                                .map(|v| {
                                    open_json(
                                        &self.secrets,
                                        LORAWAN_SESSIONS,
                                        &key,
                                        v.value(),
                                        "lorawan session",
                                    )
                                })
                                .transpose()?,
                        )
                    }
                };
                let outcome = match session.as_mut() {
                    Some(s) if s.device != a.device || s.nwk_s_key != a.nwk_s_key => {
                        Advanced::NoSession
                    }
                    None => Advanced::NoSession,
                    Some(s) => match s.fcnt_up {
                        Some(last) if a.fcnt <= last => Advanced::Stale { last },
                        _ => {
                            s.fcnt_up = Some(a.fcnt);
                            changed.push(a.dev_addr);
                            Advanced::Committed
                        }
                    },
                };
                outcomes.push(outcome);
            }
            changed.sort_unstable();
            changed.dedup();
            for addr in changed {
                if let Some(Some(session)) = sessions.get(&addr) {
                    let key = addr_key(addr);
                    let sealed = seal_json(
                        &self.secrets,
                        LORAWAN_SESSIONS,
                        &key,
                        session,
                        "lorawan session",
                    )?;
                    table
                        .insert(key.as_str(), sealed.as_slice())
                        .map_err(db(context))?;
                }
            }
        }
        txn.commit().map_err(db(context))?;
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;
    use bydata_schemas::{Codec, Domain, Eui64, Transport};

    const ADDR: u32 = 0x2601_1bda;

    fn abp(reg: &Registry, id: &str, dev_addr: u32, key: u8) -> LorawanSession {
        let device = Device {
            org: Default::default(),
            id: DeviceId::new(id).expect("id"),
            name: id.into(),
            transport: Transport::Lorawan,
            domain: Domain::new("building").expect("domain"),
            location: None,
            tags: Default::default(),
            codec: Codec::Auto,
            created_at: 0,
        };
        let session = LorawanSession {
            device: device.id.clone(),
            dev_eui: Eui64::from_bytes([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, key]),
            dev_addr,
            nwk_s_key: [key; 16],
            app_s_key: [key; 16],
            fcnt_up: None,
            fcnt_down: 0,
        };
        reg.create_lorawan_device(device, session.clone())
            .expect("create");
        session
    }

    fn advance(s: &LorawanSession, fcnt: u32) -> CounterAdvance {
        CounterAdvance {
            dev_addr: s.dev_addr,
            fcnt,
            device: s.device.clone(),
            nwk_s_key: s.nwk_s_key,
        }
    }

    #[test]
    fn a_group_commits_rising_counters_once_each_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        {
            let reg = Registry::open(&path).expect("open");
            let s = abp(&reg, "lora-1", ADDR, 1);
            let other = abp(&reg, "lora-2", ADDR + 1, 2);
            let outcomes = reg
                .advance_uplink_counters(&[
                    advance(&s, 5),
                    advance(&other, 0),
                    advance(&s, 5),
                    advance(&s, 3),
                    advance(&s, 6),
                ])
                .expect("commit");
            assert_eq!(
                outcomes,
                [
                    Advanced::Committed,
                    Advanced::Committed,
                    Advanced::Stale { last: 5 },
                    Advanced::Stale { last: 5 },
                    Advanced::Committed,
                ]
            );
        }
        let reg = Registry::open(&path).expect("reopen");
        let s = reg.lorawan_session(ADDR).expect("read").expect("session");
        assert_eq!(s.fcnt_up, Some(6));
        assert_eq!(
            reg.advance_uplink_counters(&[advance(&s, 6), advance(&s, 7)])
                .expect("commit"),
            [Advanced::Stale { last: 6 }, Advanced::Committed]
        );
    }

    #[test]
    fn a_removed_or_replaced_session_takes_no_frame_and_changes_the_generation() {
        let dir = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(&dir.path().join("registry.redb")).expect("open");
        let g0 = reg.lorawan_generation();
        let s = abp(&reg, "lora-1", ADDR, 1);
        let g1 = reg.lorawan_generation();
        assert_ne!(g0, g1, "creating a LoRaWAN device changes the generation");
        let forged = CounterAdvance {
            nwk_s_key: [9; 16],
            ..advance(&s, 1)
        };
        let unknown = CounterAdvance {
            dev_addr: ADDR + 7,
            ..advance(&s, 1)
        };
        assert_eq!(
            reg.advance_uplink_counters(&[forged, unknown, advance(&s, 1)])
                .expect("commit"),
            [
                Advanced::NoSession,
                Advanced::NoSession,
                Advanced::Committed
            ]
        );
        assert_eq!(reg.lorawan_generation(), g1, "counters do not change it");
        assert!(reg.delete_device(&s.device).expect("delete"));
        let g2 = reg.lorawan_generation();
        assert_ne!(g1, g2, "deleting a device changes the generation");
        assert_eq!(
            reg.advance_uplink_counters(&[advance(&s, 2)])
                .expect("commit"),
            [Advanced::NoSession]
        );
        // The same DevAddr given to another device: the old session's frames do not count for it.
        let new = abp(&reg, "lora-3", ADDR, 3);
        assert_ne!(reg.lorawan_generation(), g2);
        assert_eq!(
            reg.advance_uplink_counters(&[advance(&s, 3), advance(&new, 3)])
                .expect("commit"),
            [Advanced::NoSession, Advanced::Committed]
        );
    }
}
