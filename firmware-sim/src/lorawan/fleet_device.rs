//! One device of a simulated LoRaWAN fleet: its task (join if OTAA, then a reading every interval, each frame
//! through every gateway) and the radio conditions under which the gateways hear it.
use super::device::{AbpDevice, OtaaDevice};
use super::gateway::{RxParams, SimGateway};
use super::join::JOIN_ATTEMPTS;
use super::payload::{ClimateSensor, PayloadFormat};
use super::plan::{Activation, DevicePlan};
use crate::clock::Clock;
use crate::error::Error;
use crate::models::gaussian;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How long a device waits for its join-accept before it sends a new join-request.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Rounds of [`JOIN_ATTEMPTS`] join-requests, one round per interval, before an OTAA device gives up (so
/// a run bounded by `uplinks_per_device` ends even if the server never answers).
const JOIN_ROUNDS: u32 = 3;
/// The EU868 default channels a device hops over, one per frame.
const CHANNELS: [f64; 3] = [868.1, 868.3, 868.5];

#[derive(Debug, Default)]
pub(super) struct Totals {
    pub(super) joins: AtomicU64,
    pub(super) join_failures: AtomicU64,
    pub(super) frames: AtomicU64,
    pub(super) frames_lost: AtomicU64,
    pub(super) forwarded: AtomicU64,
    pub(super) forward_failures: AtomicU64,
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every device task shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) gateways: Vec<SimGateway>,
    pub(super) totals: Totals,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) payload: PayloadFormat,
    pub(super) interval: Duration,
    pub(super) uplinks: Option<u64>,
    pub(super) devices: usize,
}

/// A fleet device of either activation.
#[derive(Debug)]
enum Radio {
    Abp(AbpDevice),
    Otaa(OtaaDevice),
}

/// The radio metadata of one gateway hearing a frame: the device's mean RSSI at that gateway plus fading,
/// and an SNR that follows it (LoRa demodulates down to about −20 dB).
fn rx_params(plan: &DevicePlan, gateway: usize, freq: f64, noise: &mut StdRng) -> RxParams {
    let mean = plan.rssi.get(gateway).copied().unwrap_or(-100.0);
    let rssi = mean + 2.0 * gaussian(noise);
    RxParams {
        rssi: rssi.round() as i32,
        lsnr: ((rssi + 112.0) / 3.0 + gaussian(noise)).clamp(-20.0, 13.0),
        freq,
        datr: plan.datr.to_owned(),
        tmst: None,
    }
}

pub(super) async fn run_device(
    index: usize,
    plan: DevicePlan,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut radio = match &plan.activation {
        Activation::Abp {
            dev_addr,
            nwk_s_key,
            app_s_key,
        } => Radio::Abp(
            AbpDevice::new(
                plan.dev_eui,
                *dev_addr,
                nwk_s_key.clone(),
                app_s_key.clone(),
            )
            .with_adr(true),
        ),
        Activation::Otaa { join_eui, app_key } => Radio::Otaa(
            OtaaDevice::new(plan.dev_eui, *join_eui, app_key.clone(), plan.seed).with_adr(true),
        ),
    };
    let mut sensor = ClimateSensor::new(plan.seed);
    let mut noise = StdRng::seed_from_u64(plan.seed.rotate_left(17));
    // Joins go through the gateway that hears the device best.
    let home = (0..shared.gateways.len())
        .max_by(|a, b| {
            let rssi = |g: &usize| plan.rssi.get(*g).copied().unwrap_or(f64::NEG_INFINITY);
            rssi(a).total_cmp(&rssi(b))
        })
        .unwrap_or(0);
    let offset = shared
        .interval
        .mul_f64(index as f64 / shared.devices.max(1) as f64);
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, shared.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let totals = &shared.totals;
    let mut sent = 0u64;
    let mut failed_joins = 0;
    while shared.uplinks.is_none_or(|limit| sent < limit) {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let freq = CHANNELS[(sent as usize) % CHANNELS.len()];
        if let Radio::Otaa(device) = &mut radio
            && !device.is_joined()
            && let Some(gateway) = shared.gateways.get(home)
        {
            let rx = rx_params(&plan, home, freq, &mut noise);
            let joined = tokio::select! {
                () = stop.cancelled() => break,
                joined = device.join_with(gateway, &rx, JOIN_TIMEOUT, JOIN_ATTEMPTS) => joined,
            };
            match joined {
                Ok(()) => inc(&totals.joins),
                Err(Error::GatewayStopped { .. }) => break,
                Err(e) => {
                    inc(&totals.join_failures);
                    failed_joins += 1;
                    if failed_joins >= JOIN_ROUNDS {
                        tracing::warn!(device = %plan.id, error = %e, "join failed {JOIN_ROUNDS} times; the device gives up");
                        break;
                    }
                    tracing::warn!(device = %plan.id, error = %e, "join failed; trying again next interval");
                    continue;
                }
            }
        }
        let payload = shared.payload.encode(&sensor.reading(shared.clock.now()));
        let fport = shared.payload.fport();
        let built = match &mut radio {
            Radio::Abp(d) => d.uplink(fport, &payload),
            Radio::Otaa(d) => d.uplink(fport, &payload),
        };
        let phy = match built {
            Ok(phy) => phy,
            Err(e) => {
                tracing::warn!(device = %plan.id, error = %e, "cannot build a frame; the device stops");
                break;
            }
        };
        sent += 1;
        let mut heard = false;
        for (g, gateway) in shared.gateways.iter().enumerate() {
            let rx = rx_params(&plan, g, freq, &mut noise);
            let forwarded = tokio::select! {
                () = stop.cancelled() => return,
                forwarded = gateway.uplink(&phy, rx) => forwarded,
            };
            match forwarded {
                Ok(()) => {
                    heard = true;
                    inc(&totals.forwarded);
                }
                Err(Error::GatewayStopped { .. }) => return,
                Err(e) => {
                    inc(&totals.forward_failures);
                    tracing::debug!(device = %plan.id, gateway = %gateway.eui(), error = %e, "frame not forwarded");
                }
            }
        }
        inc(if heard {
            &totals.frames
        } else {
            &totals.frames_lost
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lorawan::plan::plan;

    #[test]
    fn radio_conditions_follow_the_plan() {
        let fleet = plan("sim", 2, 1, 0, 5).expect("valid plan");
        let device = &fleet.devices[0];
        let mut noise = StdRng::seed_from_u64(1);
        for g in 0..2 {
            let rx = rx_params(device, g, 868.3, &mut noise);
            assert!((f64::from(rx.rssi) - device.rssi[g]).abs() < 12.0, "{rx:?}");
            assert!((-20.0..=13.0).contains(&rx.lsnr));
            assert_eq!((rx.freq, rx.datr.as_str()), (868.3, device.datr));
        }
    }
}
