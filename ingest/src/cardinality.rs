//! Series per device: a device's readings may create at most `max_series_per_device` series.
//!
//! A series is a measurement, a tag set and a field; a device's are its measurements (and each gateway's
//! signal for LoRaWAN). A payload whose keys change with every message — a timestamp or a counter as a key —
//! would otherwise create series without end, each costing memory in the store's index forever. An uplink
//! that would take its device past the limit is refused whole, with a reason on the device's status; its
//! other uplinks, and its existing series, carry on.
use bydata_schemas::{DeviceId, Point, SeriesKey};
use bydata_store::{SeriesFilter, SeriesReader};
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio::runtime::Handle;

/// What the pipeline knows about devices' series between batches.
#[derive(Debug)]
pub(crate) struct DeviceSeries {
    max: usize,
    /// Series the store holds (or this batch will write) per device, learned from the store once per device.
    counts: HashMap<DeviceId, usize>,
    /// Series admitted by the batch being built (not written yet, so unknown to the store).
    pending: HashSet<SeriesKey>,
}

impl DeviceSeries {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            counts: HashMap::new(),
            pending: HashSet::new(),
        }
    }

    /// Admits an uplink's points, or says why not. Runs on a blocking thread (`handle` reaches the store,
    /// whose index answers from memory).
    pub(crate) fn admit(
        &mut self,
        reader: &dyn SeriesReader,
        handle: &Handle,
        device: &DeviceId,
        points: &[Point],
    ) -> Result<(), String> {
        let keys: Vec<&SeriesKey> = points
            .iter()
            .map(|p| &p.series)
            .filter(|k| !self.pending.contains(*k))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let unknown = match handle.block_on(reader.count_unknown(&keys)) {
            // A store that cannot tell (InfluxDB) keeps its own limits.
            Ok(None) | Ok(Some(0)) => return Ok(()),
            Ok(Some(n)) => n,
            Err(e) => return Err(format!("cannot check the device's series: {e}")),
        };
        let held = match self.counts.get(device) {
            Some(n) => *n,
            None => {
                let filter = SeriesFilter {
                    scope: None,
                    measurement: None,
                    field: None,
                    tags: BTreeMap::from([("device".to_owned(), device.to_string())]),
                };
                handle
                    .block_on(reader.count_series(&filter))
                    .map_err(|e| format!("cannot count the device's series: {e}"))?
            }
        };
        if held + unknown > self.max {
            return Err(format!(
                "readings refused: they would add {unknown} series to the device's {held}, and a device may have at most {max}. \
                 Each measurement is a series: a payload whose keys change with every message (a time or a counter as a key) \
                 makes new ones each time; send such values as readings of one measurement, or raise [ingest] max_series_per_device",
                max = self.max
            ));
        }
        self.counts.insert(device.clone(), held + unknown);
        self.pending.extend(keys.into_iter().cloned());
        Ok(())
    }

    /// The batch was written: its series are in the store now.
    pub(crate) fn written(&mut self) {
        self.pending.clear();
    }

    /// The batch was not written (it will be built again): forget what it counted.
    pub(crate) fn not_written(&mut self) {
        self.pending.clear();
        self.counts.clear();
    }
}
