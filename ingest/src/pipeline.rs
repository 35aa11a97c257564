//! The journal consumer.
use crate::cardinality::DeviceSeries;
use crate::codec::DecodeContext;
use crate::codec::script::Limits;
use crate::decoders::Decoders;
use crate::metrics::{Metrics, add};
use bydata_schemas::{DeviceId, JournalEntry, MeasurementName, Point, SeriesKey, Unit, Uplink};
use bydata_store::journal::Journal;
use bydata_store::{Device, DeviceStatus, LastError, SeriesReader, SeriesWriter, SharedRegistry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The name under which the pipeline's journal position is stored.
pub(crate) const CONSUMER: &str = "ingest";

/// Ingest settings (`[ingest]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Most journal entries decoded and committed together.
    pub batch_max: usize,
    /// How far (seconds) a reading's time may be ahead of its receive time before it is rejected.
    pub max_future_secs: u32,
    /// CPU time (milliseconds) a JavaScript codec may use per uplink before it is stopped.
    pub codec_cpu_ms: u32,
    /// Memory (MiB) one JavaScript codec may hold.
    pub codec_memory_mib: u32,
    /// Most series one device's readings may create; an uplink that would create more is refused.
    pub max_series_per_device: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            batch_max: 2000,
            max_future_secs: 300,
            codec_cpu_ms: 100,
            codec_memory_mib: 32,
            max_series_per_device: 1_000,
        }
    }
}

impl Config {
    pub fn codec_limits(&self) -> Limits {
        Limits {
            cpu: Duration::from_millis(u64::from(self.codec_cpu_ms.max(1))),
            memory_bytes: (self.codec_memory_mib.max(1) as usize) * 1024 * 1024,
            ..Limits::default()
        }
    }
}

/// What the pipeline needs.
#[derive(Clone)]
pub struct Deps {
    pub journal: Arc<Journal>,
    pub registry: SharedRegistry,
    pub writer: Arc<dyn SeriesWriter>,
    /// Asked which series exist, for the per-device series limit.
    pub reader: Arc<dyn SeriesReader>,
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
    #[error("decode task failed: {detail}")]
    Task { detail: String },
}

/// Consumes the journal until `shutdown`; then drains what is already durable and returns.
pub async fn run(config: Config, deps: Deps, shutdown: CancellationToken) -> Result<(), Error> {
    let mut position = deps.registry.position(CONSUMER).await?;
    deps.metrics.position.store(position, Ordering::Relaxed);
    tracing::info!(position, "ingest resumes from journal position");
    let mut backoff = Duration::from_millis(100);
    let mut decoders = Some(Decoders::new(deps.registry.clone(), config.codec_limits()));
    let mut series = Some(DeviceSeries::new(config.max_series_per_device));
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
        // Script codecs may run for their CPU limit per uplink: decode on a blocking thread.
        let (batch, returned) = {
            let (config, deps) = (config.clone(), deps.clone());
            let lost = || Error::Task {
                detail: "decoders lost".into(),
            };
            let mut held = (
                decoders.take().ok_or_else(lost)?,
                series.take().ok_or_else(lost)?,
            );
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                let (decoders, series) = &mut held;
                let batch = Batch::build(&config, &deps, &entries, decoders, series, &handle);
                (batch, held)
            })
            .await
            .map_err(|e| Error::Task {
                detail: e.to_string(),
            })?
        };
        let (returned, mut counted) = returned;
        decoders = Some(returned);
        let batch = batch?;
        let entries_len = batch.entries;
        let values = batch.points.len() as u64;
        if let Err(e) = deps.writer.write(batch.points).await {
            // Nothing is lost: the position did not move, so the same entries are read again.
            counted.not_written();
            series = Some(counted);
            add(&deps.metrics.store_errors, 1);
            tracing::error!(error = %e, position, "store write failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
            continue;
        }
        counted.written();
        series = Some(counted);
        backoff = Duration::from_millis(100);
        if let Err(e) = deps
            .registry
            .commit_ingest(CONSUMER, next, batch.status)
            .await
        {
            // Out of space: the position did not move, so the same entries are decoded and written again
            // (the store keys points by series and time, so that stores them once). Any other registry
            // failure ends the pipeline: redb must be reopened after an I/O error.
            if !e.is_storage_full() {
                return Err(e.into());
            }
            add(&deps.metrics.store_errors, 1);
            tracing::warn!(error = %e, position, "committing the ingest position failed for lack of space; retrying");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            continue;
        }
        add(&deps.metrics.entries, entries_len as u64);
        add(&deps.metrics.values, values);
        deps.metrics.position.store(next, Ordering::Relaxed);
        position = next;
    }
}

/// The effect of a run of journal entries: points to write and per-device status changes.
struct Batch {
    points: Vec<Point>,
    status: HashMap<DeviceId, DeviceStatus>,
    entries: usize,
}

impl Batch {
    fn build(
        config: &Config,
        deps: &Deps,
        entries: &[(u64, JournalEntry)],
        decoders: &mut Decoders,
        series: &mut DeviceSeries,
        handle: &tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let mut devices: HashMap<DeviceId, Option<Device>> = HashMap::new();
        let mut batch = Batch {
            points: Vec::new(),
            status: HashMap::new(),
            entries: entries.len(),
        };
        for (offset, entry) in entries {
            let device_id = match entry {
                JournalEntry::Uplink(u) => &u.device,
                JournalEntry::Rejected(r) => &r.device,
            };
            if !devices.contains_key(device_id) {
                let device = handle.block_on(deps.registry.device(device_id))?;
                devices.insert(device_id.clone(), device);
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
                    let tags = series_tags(device);
                    let mut points: Vec<Point> = radio_points(u, &tags).collect();
                    if !u.radio.is_empty() {
                        status.last_radio = u.radio.clone();
                    }
                    match decoders.decode(&device.codec, u, &ctx) {
                        Ok(decoded) => {
                            let readings = decoded.readings;
                            let values = readings.len() as u64;
                            points.extend(reading_points(readings, &tags));
                            if let Err(reason) =
                                series.admit(deps.reader.as_ref(), handle, &u.device, &points)
                            {
                                add(&deps.metrics.series_limit, 1);
                                status.rejected += 1;
                                status.last_error = Some(LastError {
                                    time: u.received_at,
                                    reason,
                                });
                                continue;
                            }
                            add(&deps.metrics.decoded, 1);
                            status.decoded += 1;
                            status.values_stored += values;
                            for text in &decoded.state {
                                status.keep_text(text.field.as_str(), &text.value, text.time);
                            }
                            status.last_decoded = status.last_decoded.max(Some(u.received_at));
                            status.decoded_with(&decoded.label, u.received_at);
                            if !decoded.warnings.is_empty() {
                                status.last_warning = Some(LastError {
                                    time: u.received_at,
                                    reason: format!(
                                        "{}: {}",
                                        decoded.label,
                                        decoded.warnings.join("; ")
                                    ),
                                });
                            }
                            batch.points.extend(points);
                        }
                        Err(e) => {
                            // The signal is worth keeping even when the payload is not.
                            if series
                                .admit(deps.reader.as_ref(), handle, &u.device, &points)
                                .is_ok()
                            {
                                batch.points.extend(points);
                            }
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

/// A device's decoded readings as points of its series.
pub(crate) fn reading_points(
    readings: Vec<bydata_schemas::Reading>,
    tags: &BTreeMap<String, String>,
) -> impl Iterator<Item = Point> + '_ {
    readings.into_iter().map(move |r| Point {
        series: SeriesKey {
            measurement: r.measurement,
            tags: tags.clone(),
            field: value_field(),
        },
        unit: r.unit,
        time: r.time,
        value: r.value,
    })
}

/// Measurements bydata writes itself beside a device's decoded values (not produced by its codec).
pub(crate) const RADIO_MEASUREMENTS: [&str; 2] = ["lorawan_rssi", "lorawan_snr"];

/// Each gateway's RSSI and SNR for a LoRaWAN uplink, as `lorawan_rssi` / `lorawan_snr` series tagged with
/// the gateway, at the receive time: the sensor owner sees signal quality per gateway over time.
fn radio_points<'a>(
    u: &'a Uplink,
    tags: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = Point> + 'a {
    u.radio.iter().flat_map(move |r| {
        let mut tags = tags.clone();
        tags.insert("gateway".to_owned(), r.gateway.clone());
        [
            (RADIO_MEASUREMENTS[0], "dBm", r.rssi),
            (RADIO_MEASUREMENTS[1], "dB", r.snr),
        ]
        .into_iter()
        .filter_map(move |(name, unit, value)| {
            let value = value?;
            Some(Point {
                series: SeriesKey {
                    measurement: MeasurementName::new(name).ok()?,
                    tags: tags.clone(),
                    field: value_field(),
                },
                unit: Unit::new(unit).ok(),
                time: u.received_at,
                value,
            })
        })
    })
}

fn value_field() -> MeasurementName {
    #[allow(clippy::unwrap_used)] // a constant that is a valid name
    MeasurementName::new(SeriesKey::DEFAULT_FIELD).unwrap()
}

/// A device's series tags: its own tags plus `device` and `domain` (reserved, so they cannot be overridden).
pub(crate) fn series_tags(device: &Device) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = device
        .tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    tags.insert("device".to_owned(), device.id.to_string());
    tags.insert("domain".to_owned(), device.domain.to_string());
    tags
}
