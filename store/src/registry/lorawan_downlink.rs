//! The downlink frame counter (LoRaWAN 1.0.x NFCntDown, one per session) of class A downlinks: taken and
//! committed before the frame is sent, so no counter is ever sent twice, even across `kill -9` (a device
//! drops a frame whose counter it has seen, and a reused counter with the same keys would also reuse the
//! FRMPayload keystream). A counter taken for a frame that is then not sent is simply skipped.
use super::Registry;
use super::lorawan::{LORAWAN_SESSIONS, LorawanSession, addr_key};
use super::sealing::{open_json, seal_json};
use crate::Result;
use crate::error::db;
use bydata_schemas::DeviceId;
use redb::ReadableTable;

impl Registry {
    /// Takes the next downlink counter of the session `dev_addr` has — if it is still `device`'s with
    /// `nwk_s_key` (not deleted or rejoined since the uplink was checked) — and commits the one after it.
    /// `None`: no such session, or its 2³² counters are used up (the device must rejoin).
    pub(crate) fn reserve_fcnt_down(
        &self,
        dev_addr: u32,
        device: &DeviceId,
        nwk_s_key: [u8; 16],
    ) -> Result<Option<u32>> {
        let context = "reserving a downlink frame counter";
        let key = addr_key(dev_addr);
        let txn = self.db.begin_write().map_err(db(context))?;
        let taken = {
            let mut table = txn.open_table(LORAWAN_SESSIONS).map_err(db(context))?;
            let session: Option<LorawanSession> = table
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
                .transpose()?;
            match session {
                Some(mut s) if s.device == *device && s.nwk_s_key == nwk_s_key => {
                    match s.fcnt_down.checked_add(1) {
                        Some(next) => {
                            let taken = s.fcnt_down;
                            s.fcnt_down = next;
                            let sealed = seal_json(
                                &self.secrets,
                                LORAWAN_SESSIONS,
                                &key,
                                &s,
                                "lorawan session",
                            )?;
                            table
                                .insert(key.as_str(), sealed.as_slice())
                                .map_err(db(context))?;
                            Some(taken)
                        }
                        None => None,
                    }
                }
                _ => None,
            }
        };
        if taken.is_some() {
            txn.commit().map_err(db(context))?;
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;
    use bydata_schemas::{Codec, Domain, Eui64, Transport};

    const ADDR: u32 = 0x2601_1bda;

    fn abp(reg: &Registry, id: &str, key: u8) -> LorawanSession {
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
            dev_addr: ADDR,
            nwk_s_key: [key; 16],
            app_s_key: [key; 16],
            fcnt_up: None,
            fcnt_down: 0,
        };
        reg.create_lorawan_device(device, session.clone())
            .expect("create");
        session
    }

    #[test]
    fn downlink_counters_are_never_handed_out_twice_even_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("registry.redb");
        let s = {
            let reg = Registry::open(&path).expect("open");
            let s = abp(&reg, "valve-1", 1);
            let taken: Vec<_> = (0..3)
                .map(|_| reg.reserve_fcnt_down(ADDR, &s.device, s.nwk_s_key))
                .collect::<Result<_>>()
                .expect("reserve");
            assert_eq!(taken, [Some(0), Some(1), Some(2)]);
            s
        };
        let reg = Registry::open(&path).expect("reopen");
        assert_eq!(
            reg.reserve_fcnt_down(ADDR, &s.device, s.nwk_s_key)
                .expect("reserve"),
            Some(3)
        );
        let session = reg.lorawan_session(ADDR).expect("read").expect("session");
        assert_eq!(session.fcnt_down, 4);
        assert_eq!(session.fcnt_up, None, "the uplink counter is left alone");
        // Another key (a rejoin replaced the session) or another device: nothing taken.
        assert_eq!(
            reg.reserve_fcnt_down(ADDR, &s.device, [9; 16])
                .expect("reserve"),
            None
        );
        assert_eq!(
            reg.reserve_fcnt_down(ADDR + 1, &s.device, s.nwk_s_key)
                .expect("reserve"),
            None
        );
    }
}
