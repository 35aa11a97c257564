//! Per-device ingest status — counters, the last error and warning, which codec decoded which uplinks — and
//! the consumers' journal positions. The ingest consumer commits its position and the status it derived in
//! one transaction (`commit_ingest`), so after any crash the counters match exactly the entries consumed;
//! refusals at the edges, which never enter the journal, are added on their own (`add_statuses`).
use super::state::{self, TextState};
use super::{DEVICE_STATUS, DEVICES, POSITIONS, Registry};
use crate::Result;
use crate::error::{corrupt, db};
use bydata_schemas::{DeviceId, UnixNanos};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The last thing that went wrong with a device's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub time: UnixNanos,
    pub reason: String,
}

/// Ingest status of one device, derived from the journal by the ingest consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub last_seen: Option<UnixNanos>,
    pub last_decoded: Option<UnixNanos>,
    pub received: u64,
    pub decoded: u64,
    pub rejected: u64,
    pub values_stored: u64,
    pub last_error: Option<LastError>,
    /// The warnings of the last decode that had any (a JavaScript codec's `warnings`, skipped keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_warning: Option<LastError>,
    /// Which codec (and version) decoded the device's uplinks, as runs of receive time: every stored value
    /// of the device was produced by the run whose span holds its uplink's receive time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoded_by: Vec<DecodeRun>,
    /// The gateways that heard the last LoRaWAN uplink, with their signal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_radio: Vec<bydata_schemas::Reception>,
    /// The latest text of each field that sent text, by field name (bounded: `state.rs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, TextState>,
}

/// A span of uplinks (by receive time) decoded by one codec version, e.g. `js:elsys@3` or `cayenne`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeRun {
    pub codec: String,
    pub from: UnixNanos,
    pub to: UnixNanos,
    pub uplinks: u64,
}

/// Most runs kept per device; beyond it the two oldest are folded into one (labelled with both codecs).
const MAX_DECODE_RUNS: usize = 64;

impl DeviceStatus {
    /// Records that the uplink received at `time` was decoded by `codec`.
    pub fn decoded_with(&mut self, codec: &str, time: UnixNanos) {
        push_run(
            &mut self.decoded_by,
            DecodeRun {
                codec: codec.to_owned(),
                from: time,
                to: time,
                uplinks: 1,
            },
        );
    }

    /// Keeps `value` as the latest text of `field`, unless the device sent a newer one.
    pub fn keep_text(&mut self, field: &str, value: &str, time: UnixNanos) {
        state::keep(&mut self.state, field, value, time);
    }

    fn merge(&mut self, d: &DeviceStatus) {
        for (field, text) in &d.state {
            self.keep_text(field, &text.value, text.time);
        }
        for run in &d.decoded_by {
            push_run(&mut self.decoded_by, run.clone());
        }
        if d.last_warning.is_some() {
            self.last_warning = d.last_warning.clone();
        }
        if !d.last_radio.is_empty() {
            self.last_radio = d.last_radio.clone();
        }
        self.last_seen = self.last_seen.max(d.last_seen);
        self.last_decoded = self.last_decoded.max(d.last_decoded);
        self.received += d.received;
        self.decoded += d.decoded;
        self.rejected += d.rejected;
        self.values_stored += d.values_stored;
        // Refusals at the edges and decode errors arrive by different paths: keep the latest.
        if let Some(e) = &d.last_error
            && self
                .last_error
                .as_ref()
                .is_none_or(|mine| e.time >= mine.time)
        {
            self.last_error = Some(e.clone());
        }
    }
}

/// `runs` with `[from, to)` taken out of each (the part before and the part after stay, each with the
/// uplinks of `times` that fall in it subtracted from the whole) and a run of `codec` over the span.
fn replace_span(
    runs: &[DecodeRun],
    codec: &str,
    from: UnixNanos,
    to: UnixNanos,
    times: &[UnixNanos],
) -> Vec<DecodeRun> {
    let in_span = |a: UnixNanos, b: UnixNanos| {
        times
            .iter()
            .filter(|t| **t >= a && **t <= b && **t >= from && **t < to)
            .count() as u64
    };
    let mut out: Vec<DecodeRun> = Vec::new();
    let mut placed = false;
    for run in runs {
        if run.to < from || run.from >= to {
            if run.from >= to && !placed {
                out.push(span_run(codec, from, to, times));
                placed = true;
            }
            out.push(run.clone());
            continue;
        }
        let left = run.uplinks.saturating_sub(in_span(run.from, run.to));
        if run.from < from {
            out.push(DecodeRun {
                codec: run.codec.clone(),
                from: run.from,
                to: from - 1,
                uplinks: if run.to >= to { left / 2 } else { left },
            });
        }
        if !placed {
            out.push(span_run(codec, from, to, times));
            placed = true;
        }
        if run.to >= to {
            out.push(DecodeRun {
                codec: run.codec.clone(),
                from: to,
                to: run.to,
                uplinks: if run.from < from {
                    left - left / 2
                } else {
                    left
                },
            });
        }
    }
    if !placed {
        out.push(span_run(codec, from, to, times));
    }
    out
}

fn span_run(codec: &str, from: UnixNanos, to: UnixNanos, times: &[UnixNanos]) -> DecodeRun {
    DecodeRun {
        codec: codec.to_owned(),
        from: times.iter().copied().min().unwrap_or(from),
        to: times.iter().copied().max().unwrap_or(to - 1),
        uplinks: times.len() as u64,
    }
}

fn push_run(runs: &mut Vec<DecodeRun>, run: DecodeRun) {
    match runs.last_mut() {
        Some(last) if last.codec == run.codec && run.from >= last.from => {
            last.to = last.to.max(run.to);
            last.uplinks += run.uplinks;
        }
        _ => runs.push(run),
    }
    if runs.len() > MAX_DECODE_RUNS {
        let second = runs.remove(1);
        let first = &mut runs[0];
        if first.codec != second.codec {
            first.codec = format!("{} / {}", first.codec, second.codec);
        }
        first.to = first.to.max(second.to);
        first.uplinks += second.uplinks;
    }
}

impl Registry {
    /// Records that the uplinks of `id` received in `[from, to)` (at `times`) are now decoded by `codec`:
    /// earlier runs lose that span (and the uplinks in it), and a run for `codec` covers it.
    pub(crate) fn record_redecode(
        &self,
        id: &DeviceId,
        codec: &str,
        from: UnixNanos,
        to: UnixNanos,
        times: &[UnixNanos],
    ) -> Result<()> {
        let context = "recording a re-decode";
        let txn = self.db.begin_write().map_err(db(context))?;
        {
            let mut status = txn.open_table(DEVICE_STATUS).map_err(db(context))?;
            let mut current: DeviceStatus = match status.get(id.as_str()).map_err(db(context))? {
                Some(v) => serde_json::from_slice(v.value()).map_err(corrupt("device status"))?,
                None => DeviceStatus::default(),
            };
            current.decoded_by = replace_span(&current.decoded_by, codec, from, to, times);
            let json = serde_json::to_vec(&current).map_err(corrupt("device status"))?;
            status
                .insert(id.as_str(), json.as_slice())
                .map_err(db(context))?;
        }
        txn.commit().map_err(db(context))
    }

    pub(crate) fn status(&self, id: &DeviceId) -> Result<DeviceStatus> {
        let txn = self.db.begin_read().map_err(db("reading a status"))?;
        let status = txn
            .open_table(DEVICE_STATUS)
            .map_err(db("reading a status"))?;
        let row = status.get(id.as_str()).map_err(db("reading a status"))?;
        Ok(row
            .map(|v| serde_json::from_slice(v.value()).map_err(corrupt("device status")))
            .transpose()?
            .unwrap_or_default())
    }

    /// The journal position a consumer has committed (0 if it never ran).
    pub(crate) fn position(&self, consumer: &str) -> Result<u64> {
        let txn = self.db.begin_read().map_err(db("reading a position"))?;
        let positions = txn
            .open_table(POSITIONS)
            .map_err(db("reading a position"))?;
        Ok(positions
            .get(consumer)
            .map_err(db("reading a position"))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Atomically advances a consumer's journal position and adds the status changes derived from the
    /// entries it consumed. Changes for devices that no longer exist are dropped.
    pub(crate) fn commit_ingest(
        &self,
        consumer: &str,
        position: u64,
        deltas: &HashMap<DeviceId, DeviceStatus>,
    ) -> Result<()> {
        let txn = self.db.begin_write().map_err(db("committing ingest"))?;
        merge_statuses(&txn, deltas.iter(), "committing ingest")?;
        {
            let mut positions = txn.open_table(POSITIONS).map_err(db("committing ingest"))?;
            positions
                .insert(consumer, position)
                .map_err(db("committing ingest"))?;
        }
        txn.commit().map_err(db("committing ingest"))?;
        self.statuses_touched(deltas.keys());
        Ok(())
    }

    /// Adds status changes that did not come through the journal (refusals at the edges, aggregated), in one
    /// transaction. Changes for devices that no longer exist are dropped.
    pub(crate) fn add_statuses<'a>(
        &self,
        deltas: impl IntoIterator<Item = (&'a DeviceId, &'a DeviceStatus)>,
    ) -> Result<()> {
        let deltas: Vec<_> = deltas.into_iter().collect();
        let txn = self.db.begin_write().map_err(db("recording refusals"))?;
        merge_statuses(&txn, deltas.iter().copied(), "recording refusals")?;
        txn.commit().map_err(db("recording refusals"))?;
        self.statuses_touched(deltas.iter().map(|(id, _)| *id));
        Ok(())
    }
}

/// Merges each delta into its device's stored status, inside `txn`.
fn merge_statuses<'a>(
    txn: &redb::WriteTransaction,
    deltas: impl IntoIterator<Item = (&'a DeviceId, &'a DeviceStatus)>,
    context: &'static str,
) -> Result<()> {
    let devices = txn.open_table(DEVICES).map_err(db(context))?;
    let mut status = txn.open_table(DEVICE_STATUS).map_err(db(context))?;
    for (id, delta) in deltas {
        if devices.get(id.as_str()).map_err(db(context))?.is_none() {
            continue;
        }
        let mut current: DeviceStatus = match status.get(id.as_str()).map_err(db(context))? {
            Some(v) => serde_json::from_slice(v.value()).map_err(corrupt("device status"))?,
            None => DeviceStatus::default(),
        };
        current.merge(delta);
        let json = serde_json::to_vec(&current).map_err(corrupt("device status"))?;
        status
            .insert(id.as_str(), json.as_slice())
            .map_err(db(context))?;
    }
    Ok(())
}
