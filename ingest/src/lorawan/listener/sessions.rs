//! The sessions of the DevAddrs the listener hears, cached so that a frame costs no registry read.
//!
//! The registry counts every committed write that can change a DevAddr's session (a LoRaWAN device created
//! or deleted, an OTAA join, a credentials change: `Registry::lorawan_generation`, bumped after the commit).
//! Before each lookup the cache compares that number with the one it was filled under and, if it moved,
//! forgets everything: a frame that arrives after such a write returned is checked against the registry as
//! it is now, so a deleted device's frames and a superseded session's are refused. A frame checked just
//! before such a write is stopped by the group commit, which takes a counter only if the DevAddr still has
//! the same session (`Registry::advance_uplink_counters`), and the frame is journaled only then.
//!
//! The cache holds each session's counter as the listener accepted it (ahead of the registry while a commit
//! is running), so a frame is refused as a replay at once; the registry stays the judge: a counter it does
//! not take drops the frame and the session is read again.
use crate::lorawan::frame;
use bydata_schemas::DeviceId;
use bydata_store::{LorawanSession, RegistryPort};
use std::collections::HashMap;

/// Most DevAddrs cached (known or not); frames from that many different addresses clear the cache rather
/// than grow it.
const MAX_CACHED: usize = 100_000;

/// A DevAddr's session as the frame path needs it.
#[derive(Clone)]
pub(super) struct Cached {
    pub(super) device: DeviceId,
    pub(super) session: frame::Session,
}

impl From<LorawanSession> for Cached {
    fn from(stored: LorawanSession) -> Self {
        Self {
            session: frame::Session {
                dev_addr: frame::DevAddr::new(stored.dev_addr),
                nwk_s_key: frame::NwkSKey::new(stored.nwk_s_key),
                app_s_key: frame::AppSKey::new(stored.app_s_key),
                fcnt_up: stored.fcnt_up,
                fcnt_down: stored.fcnt_down,
            },
            device: stored.device,
        }
    }
}

#[derive(Default)]
pub(super) struct Sessions {
    /// The registry's generation the entries were read under.
    generation: u64,
    /// DevAddr → its session, or `None`: no device has it.
    by_addr: HashMap<u32, Option<Cached>>,
}

impl Sessions {
    /// The session of `dev_addr` (`None`: no device has it), from the cache or the registry (read on the
    /// blocking pool, never on an async worker).
    pub(super) async fn get(
        &mut self,
        registry: &dyn RegistryPort,
        dev_addr: u32,
    ) -> Result<Option<Cached>, String> {
        let generation = registry.lorawan_generation();
        if generation != self.generation {
            self.by_addr.clear();
            self.generation = generation;
        }
        if let Some(cached) = self.by_addr.get(&dev_addr) {
            return Ok(cached.clone());
        }
        let stored = registry
            .lorawan_session(dev_addr)
            .await
            .map_err(|e| format!("cannot read the session of DevAddr {dev_addr:08x}: {e}"))?;
        let cached = stored.map(Cached::from);
        if self.by_addr.len() >= MAX_CACHED {
            self.by_addr.clear();
        }
        // Filed under the generation read before the read: if a write landed meanwhile, the next lookup
        // sees a newer generation and reads again.
        self.by_addr.insert(dev_addr, cached.clone());
        Ok(cached)
    }

    /// Records that the listener accepted `fcnt` for `dev_addr` (its commit is on its way).
    pub(super) fn accepted(&mut self, dev_addr: u32, fcnt: u32) {
        if let Some(Some(cached)) = self.by_addr.get_mut(&dev_addr) {
            cached.session.fcnt_up = cached.session.fcnt_up.max(Some(fcnt));
        }
    }

    /// Forgets `dev_addr`'s entry (the registry did not take a counter the cache accepted).
    pub(super) fn forget(&mut self, dev_addr: u32) {
        self.by_addr.remove(&dev_addr);
    }
}
