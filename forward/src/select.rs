//! Which readings of a run of journal entries a target receives: uplinks of its organisation's devices that
//! pass its filter, decoded as the pipeline decodes them, the filter's measurements kept.
use crate::record;
use bydata_ingest::readings::UplinkDecoder;
use bydata_schemas::{DeviceId, JournalEntry};
use bydata_store::{Device, SharedRegistry, Target, TargetFilter};
use serde_json::Value;
use std::collections::HashMap;

/// One journal entry's records for the target.
#[derive(Debug)]
pub(crate) struct Selected {
    /// The entry's journal position.
    pub(crate) position: u64,
    /// Where the next entry starts: the cursor once this entry is delivered.
    pub(crate) end: u64,
    pub(crate) records: Vec<Value>,
}

/// Outcomes of selecting, for the caller's counters.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Uplinks of the target's devices that did not decode (their device's status says why).
    pub(crate) undecodable: u64,
}

pub(crate) struct Selector {
    registry: SharedRegistry,
    decoder: UplinkDecoder,
    /// Devices as last read, dropped whenever the registry changed.
    devices: HashMap<DeviceId, Option<Device>>,
    changes: u64,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl Selector {
    /// Call on the runtime; [`Selector::select`] then runs on a blocking thread.
    pub(crate) fn new(registry: SharedRegistry, ingest: &bydata_ingest::Config) -> Self {
        Self {
            decoder: UplinkDecoder::new(registry.clone(), ingest),
            changes: registry.changes(),
            registry,
            devices: HashMap::new(),
        }
    }

    /// The target's records in `entries` (read from the journal; `next` is where the run ends). Blocking:
    /// reads devices through `handle` and may run script codecs.
    pub(crate) fn select(
        &mut self,
        handle: &tokio::runtime::Handle,
        target: &Target,
        entries: &[(u64, JournalEntry)],
        next: u64,
    ) -> Result<(Vec<Selected>, Counts), bydata_store::Error> {
        let changes = self.registry.changes();
        if changes != self.changes {
            // A device moved, was retagged, deleted or got a new codec: read them again.
            self.devices.clear();
            self.changes = changes;
        }
        let mut out = Vec::new();
        let mut counts = Counts::default();
        for (i, (position, entry)) in entries.iter().enumerate() {
            let JournalEntry::Uplink(uplink) = entry else {
                continue;
            };
            if !target.filter.devices.is_empty() && !target.filter.devices.contains(&uplink.device)
            {
                continue;
            }
            if !self.devices.contains_key(&uplink.device) {
                let device = handle.block_on(self.registry.device(&uplink.device))?;
                self.devices.insert(uplink.device.clone(), device);
            }
            let Some(Some(device)) = self.devices.get(&uplink.device) else {
                continue;
            };
            if device.org != target.org || !tags_match(&target.filter, device) {
                continue;
            }
            let decoded = match self.decoder.decode(device, uplink) {
                Ok(decoded) => decoded,
                Err(_) => {
                    counts.undecodable += 1;
                    continue;
                }
            };
            let measurements = &target.filter.measurements;
            let readings = decoded
                .readings
                .into_iter()
                .filter(|r| measurements.is_empty() || measurements.contains(&r.measurement));
            let records = record::records(
                device,
                *position,
                uplink.received_at,
                &decoded.codec,
                readings,
            );
            if records.is_empty() {
                continue;
            }
            let end = entries.get(i + 1).map_or(next, |(p, _)| *p);
            out.push(Selected {
                position: *position,
                end,
                records,
            });
        }
        Ok((out, counts))
    }
}

/// Whether the device has every tag the filter names (`domain` is the device's domain).
fn tags_match(filter: &TargetFilter, device: &Device) -> bool {
    filter.tags.iter().all(|(k, v)| {
        if k == "domain" {
            device.domain.as_str() == v
        } else {
            device
                .tags
                .iter()
                .any(|(tk, tv)| tk.as_str() == k && tv == v)
        }
    })
}
