//! The journal consumer.
use crate::codec::{DecodeContext, decode};
use crate::metrics::{Metrics, add};
use bydata_schemas::{DeviceId, JournalEntry, MeasurementName, Point, SeriesKey};
use bydata_store::journal::Journal;
use bydata_store::{Device, DeviceStatus, LastError, Registry, SeriesWriter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The name under which the pipeline's journal position is stored.
const CONSUMER: &str = "ingest";

/// Ingest settings (`[ingest]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Most journal entries decoded and committed together.
    pub batch_max: usize,
    /// How far (seconds) a reading's time may be ahead of its receive time before it is rejected.
    pub max_future_secs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            batch_max: 2000,
            max_future_secs: 300,
        }
    }
}

/// What the pipeline needs.
#[derive(Clone)]
pub struct Deps {
    pub journal: Arc<Journal>,
    pub registry: Arc<Registry>,
    pub writer: Arc<dyn SeriesWriter>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// Errors that stop the pipeline (a store that keeps failing is retried, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] bydata_store::journal::Error),
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
}

/// Consumes the journal until `shutdown`; then drains what is already durable and returns.
pub async fn run(config: Config, deps: Deps, shutdown: CancellationToken) -> Result<(), Error> {
    let mut position = deps.registry.position(CONSUMER)?;
    deps.metrics.position.store(position, Ordering::Relaxed);
    tracing::info!(position, "ingest resumes from journal position");
    let mut backoff = Duration::from_millis(100);
    loop {
        let (entries, next) = deps.journal.read(position, config.batch_max.max(1))?;
        if entries.is_empty() {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            tokio::select! {
                () = deps.journal.wait_durable_beyond(position) => {}
                () = shutdown.cancelled() => {}
            }
            continue;
        }
        let batch = Batch::build(&config, &deps, &entries)?;
        let values = batch.points.len() as u64;
        if let Err(e) = deps.writer.write(batch.points).await {
            // Nothing is lost: the position did not move, so the same entries are read again.
            add(&deps.metrics.store_errors, 1);
            tracing::error!(error = %e, position, "store write failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
            continue;
        }
        backoff = Duration::from_millis(100);
        deps.registry.commit_ingest(CONSUMER, next, &batch.status)?;
        add(&deps.metrics.entries, entries.len() as u64);
        add(&deps.metrics.values, values);
        deps.metrics.position.store(next, Ordering::Relaxed);
        position = next;
    }
}

/// The effect of a run of journal entries: points to write and per-device status changes.
struct Batch {
    points: Vec<Point>,
    status: HashMap<DeviceId, DeviceStatus>,
}

impl Batch {
    fn build(config: &Config, deps: &Deps, entries: &[(u64, JournalEntry)]) -> Result<Self, Error> {
        let mut devices: HashMap<DeviceId, Option<Device>> = HashMap::new();
        let mut batch = Batch {
            points: Vec::new(),
            status: HashMap::new(),
        };
        for (offset, entry) in entries {
            let device_id = match entry {
                JournalEntry::Uplink(u) => &u.device,
                JournalEntry::Rejected(r) => &r.device,
            };
            if !devices.contains_key(device_id) {
                devices.insert(device_id.clone(), deps.registry.device(device_id)?);
            }
            let Some(Some(device)) = devices.get(device_id) else {
                // Deleted since it sent this: the raw bytes stay in the journal, nothing is stored.
                add(&deps.metrics.orphaned, 1);
                tracing::debug!(device = %device_id, offset, "journal entry of an unknown device skipped");
                continue;
            };
            let status = batch.status.entry(device_id.clone()).or_default();
            status.received += 1;
            match entry {
                JournalEntry::Rejected(r) => {
                    add(&deps.metrics.edge_rejected, 1);
                    status.rejected += 1;
                    status.last_error = Some(LastError {
                        time: r.received_at,
                        reason: r.reason.to_string(),
                    });
                }
                JournalEntry::Uplink(u) => {
                    let span = tracing::debug_span!("uplink", device = %u.device, offset);
                    let _enter = span.enter();
                    status.last_seen = status.last_seen.max(Some(u.received_at));
                    let ctx = DecodeContext {
                        max_future: i64::from(config.max_future_secs) * 1_000_000_000,
                        ..DecodeContext::new(u.received_at)
                    };
                    match decode(device.codec, &u.payload, &ctx) {
                        Ok(readings) => {
                            add(&deps.metrics.decoded, 1);
                            status.decoded += 1;
                            status.values_stored += readings.len() as u64;
                            status.last_decoded = status.last_decoded.max(Some(u.received_at));
                            let tags = series_tags(device);
                            batch.points.extend(readings.into_iter().map(|r| Point {
                                series: SeriesKey {
                                    measurement: r.measurement,
                                    tags: tags.clone(),
                                    field: value_field(),
                                },
                                unit: r.unit,
                                time: r.time,
                                value: r.value,
                            }));
                        }
                        Err(e) => {
                            add(&deps.metrics.rejected, 1);
                            tracing::debug!(error = %e, "payload rejected");
                            status.rejected += 1;
                            status.last_error = Some(LastError {
                                time: u.received_at,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
            }
        }
        Ok(batch)
    }
}

fn value_field() -> MeasurementName {
    #[allow(clippy::unwrap_used)] // a constant that is a valid name
    MeasurementName::new(SeriesKey::DEFAULT_FIELD).unwrap()
}

/// A device's series tags: its own tags plus `device` and `domain` (reserved, so they cannot be overridden).
fn series_tags(device: &Device) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = device
        .tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    tags.insert("device".to_owned(), device.id.to_string());
    tags.insert("domain".to_owned(), device.domain.to_string());
    tags
}
