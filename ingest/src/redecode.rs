//! Re-decode: run a device's codec (typically a new version of it) over the raw uplinks the journal kept for
//! a time range, and replace the values its codec produced there — nothing else: other devices, the
//! device's values outside the range and the radio metadata bydata wrote itself are untouched.
//!
//! Steps: wait until the live pipeline has consumed the journal as far as it is durable now (so no value
//! of the old codec is still on its way); scan the journal for the device's uplinks; decode them (if any
//! fails, nothing is changed unless `force` says so); delete the device's codec-produced points timed in
//! `[from, to)`; write the new points in that range; record in the device's status which codec version now
//! accounts for it. The range ends at least `SETTLE` before now, so an uplink still being collected or
//! journaled cannot fall between the scan and the delete.
//!
//! Which uplinks: for codecs whose readings carry the receive time (JavaScript, Cayenne LPP) those received
//! in the range; for the JSON codecs, whose readings carry their own times, every uplink of the device, so a
//! reading backdated into the range is found wherever it arrived.
//!
//! The device's text state is left as it is: it holds the *latest* text of each field, which the live pipeline
//! keeps, and decoding old uplinks again must not move it back. A text-only uplink counts as decoded.
use crate::Config;
use crate::codec::DecodeContext;
use crate::decoders::Decoders;
use crate::pipeline::{RADIO_MEASUREMENTS, reading_points, series_tags};
use bydata_schemas::{Codec, DeviceId, JournalEntry, MeasurementName, UnixNanos};
use bydata_store::journal::Journal;
use bydata_store::{Device, SeriesFilter, SeriesReader, SeriesWriter, SharedRegistry};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How far before now a re-decode range must end (ns): the LoRaWAN collection window and the journal's
/// group commit are far shorter.
pub const SETTLE: i64 = 2_000_000_000;
/// Most uplinks one re-decode may cover; ask for a shorter range beyond it.
pub const MAX_UPLINKS: usize = 200_000;
/// Entries read from the journal at a time.
const SCAN_BATCH: usize = 10_000;

/// What a re-decode needs.
#[derive(Clone)]
pub struct Deps {
    pub journal: Arc<Journal>,
    pub registry: SharedRegistry,
    pub reader: Arc<dyn SeriesReader>,
    pub writer: Arc<dyn SeriesWriter>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// What a re-decode did: the type the API answers with.
pub use bydata_schemas::RedecodeReport as Report;

/// Why a re-decode was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{rejected} of {uplinks} uplinks do not decode with {codec}, so nothing was changed (set force to replace the range anyway, dropping their values); first errors: {errors:?}"
    )]
    DecodeFailures {
        codec: String,
        uplinks: u64,
        rejected: u64,
        errors: Vec<String>,
    },
    #[error("the ingest pipeline is still catching up with the journal; try again in a moment")]
    IngestBehind,
    #[error("no device {device}")]
    UnknownDevice { device: DeviceId },
    #[error("the range must end after it starts and at least 2 seconds before now")]
    BadRange,
    #[error("more than {max} uplinks in the range; re-decode it in shorter ranges")]
    TooMany { max: usize },
    #[error(transparent)]
    Journal(#[from] bydata_store::journal::Error),
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
    #[error("re-decode task failed: {detail}")]
    Task { detail: String },
}

/// How long a re-decode waits for the live pipeline to reach the journal's end.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// Re-decodes `device`'s values timed in `[from, to)` with its current codec (see the module docs).
pub async fn redecode(
    config: &Config,
    deps: &Deps,
    device: &DeviceId,
    from: UnixNanos,
    to: UnixNanos,
    force: bool,
) -> Result<Report, Error> {
    let to = to.min((deps.clock)().saturating_sub(SETTLE));
    if to <= from {
        return Err(Error::BadRange);
    }
    // Everything durable now has been decoded by the live pipeline before we delete and rewrite.
    let end = deps.journal.durable_offset();
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let position = deps.registry.position(crate::pipeline::CONSUMER).await?;
        if position >= end {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::IngestBehind);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Some(dev) = deps.registry.device(device).await? else {
        return Err(Error::UnknownDevice {
            device: device.clone(),
        });
    };
    let decoders = Decoders::new(deps.registry.clone(), config.codec_limits());
    let (config, d) = (config.clone(), deps.clone());
    let (report, points, times) =
        tokio::task::spawn_blocking(move || decode_range(&config, &d, &dev, decoders, from, to))
            .await
            .map_err(|e| Error::Task {
                detail: e.to_string(),
            })??;
    if report.rejected > 0 && !force {
        return Err(Error::DecodeFailures {
            codec: report.codec.clone(),
            uplinks: report.uplinks,
            rejected: report.rejected,
            errors: report.errors.clone(),
        });
    }
    // The codec's own series only: every series of the device but the radio ones.
    let mut tags = BTreeMap::new();
    tags.insert("device".to_owned(), device.to_string());
    let all = SeriesFilter {
        scope: None,
        measurement: None,
        field: None,
        tags: tags.clone(),
    };
    let mut measurements: Vec<MeasurementName> = deps
        .reader
        .series(&all)
        .await?
        .into_iter()
        .map(|s| s.key.measurement)
        .filter(|m| !RADIO_MEASUREMENTS.contains(&m.as_str()))
        .collect();
    measurements.sort();
    measurements.dedup();
    for measurement in measurements {
        let filter = SeriesFilter {
            scope: None,
            measurement: Some(measurement),
            field: None,
            tags: tags.clone(),
        };
        deps.writer.delete_range(&filter, from, to).await?;
    }
    deps.writer.write(points).await?;
    deps.registry
        .record_redecode(device, &report.codec, from, to, times)
        .await?;
    tracing::info!(%device, codec = %report.codec, uplinks = report.uplinks, values = report.values_written, "re-decoded");
    Ok(report)
}

fn decode_range(
    config: &Config,
    deps: &Deps,
    dev: &Device,
    mut decoders: Decoders,
    from: UnixNanos,
    to: UnixNanos,
) -> Result<(Report, Vec<bydata_schemas::Point>, Vec<UnixNanos>), Error> {
    let device = &dev.id;
    let tags = series_tags(dev);
    // Readings of these codecs are timed at receipt; the JSON codecs carry their own times.
    let timed_at_receipt = matches!(dev.codec, Codec::Script(_) | Codec::Cayenne);
    let mut report = Report {
        codec: dev.codec.to_string(),
        from,
        to,
        uplinks: 0,
        decoded: 0,
        rejected: 0,
        values_written: 0,
        errors: Vec::new(),
    };
    let mut points = Vec::new();
    let mut times = Vec::new();
    let mut position = 0;
    loop {
        let (entries, next) = deps.journal.read(position, SCAN_BATCH)?;
        if entries.is_empty() {
            break;
        }
        position = next;
        for (_, entry) in entries {
            let JournalEntry::Uplink(u) = entry else {
                continue;
            };
            if u.device != *device
                || (timed_at_receipt && (u.received_at < from || u.received_at >= to))
            {
                continue;
            }
            report.uplinks += 1;
            if (from..to).contains(&u.received_at) {
                times.push(u.received_at);
            }
            if report.uplinks as usize > MAX_UPLINKS {
                return Err(Error::TooMany { max: MAX_UPLINKS });
            }
            let ctx = DecodeContext {
                max_future: i64::from(config.max_future_secs) * 1_000_000_000,
                ..DecodeContext::new(u.received_at)
            };
            match decoders.decode(&dev.codec, &u, &ctx) {
                Ok(decoded) => {
                    report.decoded += 1;
                    report.codec = decoded.label;
                    report.values_written += decoded.readings.len() as u64;
                    // Values are replaced in [from, to): a reading timed outside it is left out.
                    points.extend(
                        reading_points(decoded.readings, &tags)
                            .filter(|p| p.time >= from && p.time < to),
                    );
                }
                Err(e) => {
                    report.rejected += 1;
                    if report.errors.len() < 10 {
                        report.errors.push(e.to_string());
                    }
                }
            }
        }
    }
    report.values_written = points.len() as u64;
    Ok((report, points, times))
}
