//! The LoRaWAN fleet runner: plan the fleet, register its gateways, onboard its devices, start the gateways,
//! then one task per device — an OTAA device first joins through the gateway that hears it best — sending a
//! climate reading every `interval`, each frame heard by every gateway with its own RSSI and SNR (so the
//! server's de-duplication is exercised on every frame).
use super::fleet_device::{Shared, Totals, run_device};
use super::gateway::{GatewayOptions, SimGateway};
use super::onboard::{Onboarded, onboard_device, register_gateway};
use super::payload::PayloadFormat;
use super::plan::{DevicePlan, plan};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::onboard::http_client;
use bydata_schemas::Codec;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Onboarding requests in flight at once.
const ONBOARDING_CONCURRENCY: usize = 8;
/// How long a gateway may take to be answered by the server (first PULL_ACK).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What to simulate and where.
#[derive(Debug, Clone)]
pub struct LorawanFleetConfig {
    /// Base URL of the bydata HTTP API, e.g. `http://127.0.0.1:8080`.
    pub api_url: String,
    /// Admin token, sent as `Authorization: Bearer …` to register gateways and devices.
    pub admin_token: String,
    /// bydata's Semtech UDP listener.
    pub udp_server: SocketAddr,
    /// Simulated gateways, at least 1; every one hears every frame.
    pub gateways: usize,
    pub abp_devices: usize,
    pub otaa_devices: usize,
    /// Time between two uplinks of a device; devices are spread evenly over it.
    pub interval: Duration,
    /// Device ids are `{prefix}-lora-abp-{n}` and `{prefix}-lora-otaa-{n}`.
    pub prefix: String,
    /// Seed of every key, EUI, address, reading and radio condition of the run.
    pub seed: u64,
    pub payload: PayloadFormat,
    /// The codec devices are registered with; `None` = the payload format's built-in one, if it has one
    /// (Cayenne), else the API's default.
    pub codec: Option<Codec>,
    /// Stop after this long (counted from when the gateways are up).
    pub duration: Option<Duration>,
    /// Stop each device after this many uplinks.
    pub uplinks_per_device: Option<u64>,
}

impl Default for LorawanFleetConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:8080".to_owned(),
            admin_token: String::new(),
            udp_server: SocketAddr::from(([127, 0, 0, 1], 1700)),
            gateways: 2,
            abp_devices: 2,
            otaa_devices: 2,
            interval: Duration::from_secs(60),
            prefix: "sim".to_owned(),
            seed: 0,
            payload: PayloadFormat::Cayenne,
            codec: None,
            duration: None,
            uplinks_per_device: None,
        }
    }
}

/// What a run achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LorawanFleetReport {
    pub gateways: usize,
    /// Devices onboarded and run.
    pub devices: usize,
    /// Devices that existed from an earlier run and were deleted and created again.
    pub recreated: usize,
    /// OTAA joins completed.
    pub joins: u64,
    /// Join rounds given up after [`JOIN_ATTEMPTS`](super::JOIN_ATTEMPTS) requests each; the device tries
    /// again at its next interval, three rounds in all, then stops.
    pub join_failures: u64,
    /// Data frames sent that at least one gateway forwarded (got a PUSH_ACK for).
    pub frames: u64,
    /// Data frames no gateway got through.
    pub frames_lost: u64,
    /// Copies of frames forwarded and acknowledged: `frames × gateways` when all is well.
    pub forwarded: u64,
    /// Copies a gateway could not get acknowledged.
    pub forward_failures: u64,
    /// Downlinks the gateways received (join-accepts).
    pub downlinks: u64,
    /// From the gateways being up to the last device finishing.
    pub elapsed: Duration,
}

/// Runs a simulated LoRaWAN fleet with the system clock; see [`run_lorawan_fleet_with_clock`].
pub async fn run_lorawan_fleet(
    config: LorawanFleetConfig,
    shutdown: CancellationToken,
) -> Result<LorawanFleetReport> {
    run_lorawan_fleet_with_clock(config, Arc::new(SystemClock), shutdown).await
}

/// Runs until `shutdown`, the configured duration, or every device reaching its uplink limit. Registering,
/// onboarding and a gateway the server never answers end the run with an error before anything is sent;
/// after that, failed joins and unacknowledged frames are counted in the report, not errors. Cancelling
/// `shutdown` before the devices run returns an empty report.
pub async fn run_lorawan_fleet_with_clock(
    config: LorawanFleetConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<LorawanFleetReport> {
    validate(&config)?;
    let fleet = plan(
        &config.prefix,
        config.gateways,
        config.abp_devices,
        config.otaa_devices,
        config.seed,
    )?;
    let base_url = config.api_url.trim_end_matches('/').to_owned();
    let client = http_client()?;
    for gateway in &fleet.gateways {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(LorawanFleetReport::default()),
            registered = register_gateway(&client, &base_url, &config.admin_token, gateway) => registered?,
        }
    }
    let codec = config
        .codec
        .clone()
        .or_else(|| config.payload.builtin_codec().and_then(|c| c.parse().ok()));
    let Some(onboarded) = onboard_all(
        &client,
        &base_url,
        &config.admin_token,
        &fleet.devices,
        codec,
        &shutdown,
    )
    .await?
    else {
        return Ok(LorawanFleetReport::default());
    };
    let recreated = onboarded
        .iter()
        .filter(|o| **o == Onboarded::Recreated)
        .count();

    let mut gateways = Vec::with_capacity(fleet.gateways.len());
    for gateway in &fleet.gateways {
        let options = GatewayOptions {
            clock: Arc::clone(&clock),
            ..GatewayOptions::default()
        };
        gateways.push(
            SimGateway::start_with(gateway.eui, config.udp_server, options, shutdown.clone())
                .await?,
        );
    }
    for gateway in &gateways {
        match gateway.connected(CONNECT_TIMEOUT).await {
            Ok(()) => {}
            Err(_) if shutdown.is_cancelled() => return Ok(LorawanFleetReport::default()),
            Err(e) => return Err(e),
        }
    }
    tracing::info!(
        gateways = gateways.len(),
        devices = fleet.devices.len(),
        recreated,
        udp = %config.udp_server,
        "simulated LoRaWAN fleet onboarded; sending"
    );

    let shared = Arc::new(Shared {
        gateways,
        totals: Totals::default(),
        clock,
        payload: config.payload,
        interval: config.interval,
        uplinks: config.uplinks_per_device,
        devices: fleet.devices.len(),
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
    let mut tasks = JoinSet::new();
    for (index, device) in fleet.devices.into_iter().enumerate() {
        tasks.spawn(run_device(index, device, Arc::clone(&shared), stop.clone()));
    }
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        if let Err(source) = joined {
            // A panicking device is a bug: stop the others and report it.
            stop.cancel();
            failure.get_or_insert(Error::Task { source });
        }
    }
    // Also ends the duration timer.
    stop.cancel();
    if let Some(error) = failure {
        return Err(error);
    }
    let t = &shared.totals;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let report = LorawanFleetReport {
        gateways: shared.gateways.len(),
        devices: shared.devices,
        recreated,
        joins: get(&t.joins),
        join_failures: get(&t.join_failures),
        frames: get(&t.frames),
        frames_lost: get(&t.frames_lost),
        forwarded: get(&t.forwarded),
        forward_failures: get(&t.forward_failures),
        downlinks: shared.gateways.iter().map(|g| g.stats().downlinks).sum(),
        elapsed: started.elapsed(),
    };
    tracing::info!(?report, "simulated LoRaWAN fleet stopped");
    Ok(report)
}

fn validate(config: &LorawanFleetConfig) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::Config {
            reason: reason.to_owned(),
        })
    };
    if config.gateways == 0 {
        return bad("a LoRaWAN fleet needs at least 1 gateway");
    }
    if config.abp_devices + config.otaa_devices == 0 {
        return bad("a LoRaWAN fleet needs at least 1 device (ABP or OTAA)");
    }
    if config.interval.is_zero() {
        return bad("the uplink interval must be longer than zero");
    }
    if !(config.api_url.starts_with("http://") || config.api_url.starts_with("https://")) {
        return bad("api_url must start with http:// or https://");
    }
    Ok(())
}

/// Onboards every device, a few at a time; `None` if `shutdown` came first.
async fn onboard_all(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    devices: &[DevicePlan],
    codec: Option<Codec>,
    shutdown: &CancellationToken,
) -> Result<Option<Vec<Onboarded>>> {
    let mut results = vec![None; devices.len()];
    let mut pending = JoinSet::new();
    let mut next = 0;
    loop {
        while next < devices.len() && pending.len() < ONBOARDING_CONCURRENCY {
            let (client, url, token, device, codec) = (
                client.clone(),
                base_url.to_owned(),
                token.to_owned(),
                devices[next].clone(),
                codec.clone(),
            );
            let index = next;
            pending.spawn(async move {
                let onboarded =
                    onboard_device(&client, &url, &token, &device, codec.as_ref()).await;
                (index, onboarded)
            });
            next += 1;
        }
        let joined = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(None),
            joined = pending.join_next() => joined,
        };
        match joined {
            None => break,
            // Returning drops `pending`, which aborts the other requests.
            Some(Ok((index, result))) => results[index] = Some(result?),
            Some(Err(source)) => return Err(Error::Task { source }),
        }
    }
    Ok(Some(results.into_iter().flatten().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let ok = LorawanFleetConfig::default();
        assert!(validate(&ok).is_ok());
        for bad in [
            LorawanFleetConfig {
                gateways: 0,
                ..ok.clone()
            },
            LorawanFleetConfig {
                abp_devices: 0,
                otaa_devices: 0,
                ..ok.clone()
            },
            LorawanFleetConfig {
                interval: Duration::ZERO,
                ..ok.clone()
            },
            LorawanFleetConfig {
                api_url: "127.0.0.1:8080".into(),
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(validate(&bad), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
    }
}
