//! The fleet runner: plan the devices, onboard them over HTTP, run one MQTT client per device, report.

use crate::clock::{Clock, SystemClock};
use crate::device::{DeviceOutcome, RunParams, run_device};
use crate::error::{Error, Result};
use crate::onboard::{Onboarded, http_client, onboard};
use crate::plan::{DevicePlan, plan};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How many onboarding requests are in flight at once (the API hashes each new password, so a big fleet
/// onboarded one by one would take long, and all at once would flood it).
const ONBOARDING_CONCURRENCY: usize = 8;

/// What to simulate and where to send it.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Base URL of the bydata HTTP API, e.g. `http://127.0.0.1:8080`.
    pub http_url: String,
    /// The MQTT broker.
    pub mqtt_addr: SocketAddr,
    /// Admin (or organisation) token, sent as `Authorization: Bearer …` when onboarding.
    pub token: String,
    /// Number of devices, spread round-robin over climate sensors, meters and traffic counters.
    pub devices: usize,
    /// Messages per second per device; 0 = as fast as acknowledgements allow.
    pub rate: f64,
    /// Seed of every RNG in the run: same seed, same fleet, same payloads for the same times.
    pub seed: u64,
    /// Device ids are `{id_prefix}-{kind}-{n}`, e.g. `sim-meter-3`.
    pub id_prefix: String,
    /// Stop after this long (counted from when publishing starts, after onboarding).
    pub duration: Option<Duration>,
    /// Stop each device after this many messages (backfill included).
    pub max_messages_per_device: Option<u64>,
    /// (how far back, step): publish history samples with past times first, as fast as acks allow,
    /// then go live.
    pub backfill: Option<(Duration, Duration)>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            http_url: "http://127.0.0.1:8080".to_owned(),
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 1883)),
            token: String::new(),
            devices: 3,
            rate: 0.1,
            seed: 0,
            id_prefix: "sim".to_owned(),
            duration: None,
            max_messages_per_device: None,
            backfill: None,
        }
    }
}

/// What a run achieved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetReport {
    /// Devices onboarded and run.
    pub devices: usize,
    /// Messages handed to the MQTT clients.
    pub published: u64,
    /// PUBACKs received.
    pub acknowledged: u64,
    /// From the start of publishing to the last device finishing.
    pub elapsed: Duration,
}

impl FleetReport {
    /// Acknowledged messages per second over [`FleetReport::elapsed`]; 0 for an empty run.
    pub fn acked_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.acknowledged as f64 / secs
        } else {
            0.0
        }
    }
}

/// Runs a simulated fleet with the system clock until `shutdown`, the configured duration, or every
/// device reaching its message limit. See [`run_fleet_with_clock`].
pub async fn run_fleet(config: FleetConfig, shutdown: CancellationToken) -> Result<FleetReport> {
    run_fleet_with_clock(config, Arc::new(SystemClock), shutdown).await
}

/// [`run_fleet`] with the clock that stamps samples injected. Onboarding errors (API unreachable, a
/// refused token, …) end the run with an error before anything is published; MQTT connection errors do
/// not: each device logs them and reconnects with a backoff. Cancelling `shutdown` during onboarding
/// returns an empty report.
pub async fn run_fleet_with_clock(
    config: FleetConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<FleetReport> {
    validate(&config)?;
    let plans = plan(&config.id_prefix, config.devices, config.seed)?;
    let base_url = config.http_url.trim_end_matches('/').to_owned();

    let Some(credentials) = onboard_all(&plans, &base_url, &config.token, &shutdown).await? else {
        return Ok(FleetReport {
            devices: 0,
            published: 0,
            acknowledged: 0,
            elapsed: Duration::ZERO,
        });
    };
    tracing::info!(devices = plans.len(), mqtt = %config.mqtt_addr, rate = config.rate, "simulated devices onboarded; publishing");

    let params = Arc::new(RunParams {
        mqtt_addr: config.mqtt_addr,
        rate: config.rate,
        max_messages: config.max_messages_per_device,
        backfill: config.backfill,
        clock,
        published: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
    });
    let stop = shutdown.child_token();
    let started = Instant::now();
    if let Some(duration) = config.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(duration) => stop.cancel(),
            }
        });
    }

    let mut devices = JoinSet::new();
    for (plan, onboarded) in plans.into_iter().zip(credentials) {
        devices.spawn(run_device(
            plan,
            onboarded,
            Arc::clone(&params),
            stop.clone(),
        ));
    }
    let count = devices.len();
    let mut total = DeviceOutcome::default();
    let mut failure = None;
    while let Some(joined) = devices.join_next().await {
        match joined {
            Ok(outcome) => {
                total.published += outcome.published;
                total.acknowledged += outcome.acknowledged;
            }
            Err(source) => {
                // A panicking device is a bug: stop the others and report it.
                stop.cancel();
                failure.get_or_insert(Error::Task { source });
            }
        }
    }
    // Also ends the duration timer.
    stop.cancel();
    if let Some(error) = failure {
        return Err(error);
    }
    let report = FleetReport {
        devices: count,
        published: total.published,
        acknowledged: total.acknowledged,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        devices = report.devices,
        published = report.published,
        acknowledged = report.acknowledged,
        acked_per_second = report.acked_per_second(),
        "simulated fleet stopped"
    );
    Ok(report)
}

fn validate(config: &FleetConfig) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::Config {
            reason: reason.to_owned(),
        })
    };
    if config.devices == 0 {
        return bad("devices must be at least 1");
    }
    if !config.rate.is_finite() || config.rate < 0.0 {
        return bad("rate must be a finite number of messages per second, 0 or more");
    }
    if let Some((_, step)) = config.backfill
        && step.is_zero()
    {
        return bad("the backfill step must be longer than zero");
    }
    if !(config.http_url.starts_with("http://") || config.http_url.starts_with("https://")) {
        return bad("http_url must start with http:// or https://");
    }
    Ok(())
}

/// Onboards every device, a few at a time, in plan order. `None` if `shutdown` came first.
async fn onboard_all(
    plans: &[DevicePlan],
    base_url: &str,
    token: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Vec<Onboarded>>> {
    let client = http_client()?;
    let mut results: Vec<Option<Onboarded>> = vec![None; plans.len()];
    let mut pending = JoinSet::new();
    let mut next = 0;
    loop {
        while next < plans.len() && pending.len() < ONBOARDING_CONCURRENCY {
            let (client, url, token, plan) = (
                client.clone(),
                base_url.to_owned(),
                token.to_owned(),
                plans[next].clone(),
            );
            let index = next;
            pending.spawn(async move { (index, onboard(&client, &url, &token, &plan).await) });
            next += 1;
        }
        let joined = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(None),
            joined = pending.join_next() => joined,
        };
        match joined {
            None => break,
            Some(Ok((index, result))) => {
                // Returning drops `pending`, which aborts the other requests.
                results[index] = Some(result?);
            }
            Some(Err(source)) => return Err(Error::Task { source }),
        }
    }
    Ok(Some(results.into_iter().flatten().collect()))
}
