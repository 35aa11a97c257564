//! One simulated device on MQTT: a publisher task that samples its model and publishes QoS 1 on
//! `devices/{id}/up`, and a task that polls the rumqttc event loop continuously (publishing from the polling
//! task deadlocks under load), counts PUBACKs and reconnects with a backoff.

use crate::clock::Clock;
use crate::models::DeviceModel;
use crate::onboard::Onboarded;
use crate::plan::DevicePlan;
use bydata_schemas::{DeviceId, UnixNanos};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Publishes a device may have outstanding; small so that `rate = 0` measures acknowledged throughput
/// rather than how much rumqttc can buffer.
const INFLIGHT: u16 = 10;
/// Requests queued in front of the event loop; `publish().await` waits when it is full (backpressure).
const REQUEST_CHANNEL: usize = 10;
const MAX_PACKET: usize = 64 * 1024;
/// How long a stopping device waits for PUBACKs of what it already published.
const ACK_GRACE: Duration = Duration::from_secs(5);
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// What every device of a run shares.
#[derive(Debug)]
pub(crate) struct RunParams {
    pub(crate) mqtt_addr: SocketAddr,
    pub(crate) rate: f64,
    pub(crate) max_messages: Option<u64>,
    pub(crate) backfill: Option<(Duration, Duration)>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Fleet-wide totals, readable while the run goes on.
    pub(crate) published: AtomicU64,
    pub(crate) acknowledged: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeviceOutcome {
    pub(crate) published: u64,
    pub(crate) acknowledged: u64,
}

pub(crate) async fn run_device(
    plan: DevicePlan,
    onboarded: Onboarded,
    params: Arc<RunParams>,
    stop: CancellationToken,
) -> DeviceOutcome {
    let id = plan.id.clone();
    let Onboarded {
        credentials,
        resume,
    } = onboarded;
    let client_id = credentials
        .client_id
        .clone()
        .unwrap_or_else(|| id.to_string());
    let username = credentials
        .username
        .clone()
        .unwrap_or_else(|| id.to_string());
    let topic = credentials
        .publish_topic
        .clone()
        .unwrap_or_else(|| format!("devices/{id}/up"));

    let mut options = MqttOptions::new(
        client_id,
        params.mqtt_addr.ip().to_string(),
        params.mqtt_addr.port(),
    );
    options
        .set_credentials(username, credentials.password)
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(INFLIGHT);
    let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL);

    let mut rng = StdRng::seed_from_u64(plan.seed);
    // Draw the event loop's backoff-jitter seed first so it never shifts the model's stream.
    let jitter_seed = rng.r#gen::<u64>();
    let phase = rng.r#gen::<f64>();
    let mut model = DeviceModel::new(plan.kind, rng);
    if let Some(time) = resume.last_time {
        model.resume(time, &resume.values);
    }

    let (acked_tx, acked_rx) = watch::channel(0u64);
    let poll_stop = CancellationToken::new();
    let poller = tokio::spawn(poll_events(
        eventloop,
        id.clone(),
        acked_tx,
        Arc::clone(&params),
        poll_stop.clone(),
        jitter_seed,
    ));

    let published = publish_loop(
        &client,
        &topic,
        model,
        &params,
        &stop,
        phase,
        resume.last_time,
    )
    .await;

    // Let what was published be acknowledged (bounded), then leave politely.
    let mut waiting = acked_rx.clone();
    if tokio::time::timeout(ACK_GRACE, waiting.wait_for(|acked| *acked >= published))
        .await
        .is_err()
    {
        tracing::warn!(device = %id, published, acknowledged = *acked_rx.borrow(), "stopped waiting for acknowledgements");
    }
    let _ = tokio::time::timeout(DISCONNECT_GRACE, client.disconnect()).await;
    let mut poller = poller;
    if tokio::time::timeout(DISCONNECT_GRACE, &mut poller)
        .await
        .is_err()
    {
        poll_stop.cancel();
        let _ = poller.await;
    }
    let acknowledged = *acked_rx.borrow();
    DeviceOutcome {
        published,
        acknowledged,
    }
}

/// Publishes until `stop`, the message limit, or the event loop is gone; returns how many were handed to
/// rumqttc. Backfill samples (past times) go first, as fast as acknowledgements allow; live samples follow,
/// paced at `rate` per second (first tick at a seeded phase so a fleet does not publish in lock-step;
/// missed ticks are skipped, never bursted) or unpaced when `rate` is 0. Backfill starts after `stored_until`.
async fn publish_loop(
    client: &AsyncClient,
    topic: &str,
    mut model: DeviceModel,
    params: &RunParams,
    stop: &CancellationToken,
    phase: f64,
    stored_until: Option<UnixNanos>,
) -> u64 {
    let limit = params.max_messages.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let publish = |payload: Vec<u8>| client.publish(topic, QoS::AtLeastOnce, false, payload);

    if let Some((back, step)) = params.backfill {
        let now = params.clock.now();
        let step = nanos(step).max(1);
        // History the device stored in an earlier run is not sent again.
        let mut t = now.saturating_sub(nanos(back));
        if let Some(stored) = stored_until {
            t = t.max(stored.saturating_add(step));
        }
        while t < now && sent < limit {
            let payload = model.sample(t).to_bytes();
            tokio::select! {
                biased;
                () = stop.cancelled() => return sent,
                result = publish(payload) => if result.is_err() { return sent },
            }
            sent += 1;
            params.published.fetch_add(1, Ordering::Relaxed);
            t = t.saturating_add(step);
        }
    }

    let mut ticker = (params.rate > 0.0).then(|| {
        let period = Duration::try_from_secs_f64(1.0 / params.rate)
            .unwrap_or(Duration::MAX)
            .max(Duration::from_micros(1));
        let start = Instant::now() + period.mul_f64(phase.clamp(0.0, 1.0));
        let mut ticker = tokio::time::interval_at(start, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        ticker
    });
    while sent < limit {
        if let Some(ticker) = ticker.as_mut() {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
        } else if stop.is_cancelled() {
            break;
        }
        let payload = model.sample(params.clock.now()).to_bytes();
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            result = publish(payload) => if result.is_err() { break },
        }
        sent += 1;
        params.published.fetch_add(1, Ordering::Relaxed);
    }
    sent
}

fn nanos(d: Duration) -> UnixNanos {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Drives the connection: counts PUBACKs, ends after our DISCONNECT went out, and on a connection error
/// waits an exponential, jittered backoff before polling (i.e. reconnecting) again.
async fn poll_events(
    mut eventloop: EventLoop,
    id: DeviceId,
    acked: watch::Sender<u64>,
    params: Arc<RunParams>,
    stop: CancellationToken,
    jitter_seed: u64,
) {
    let mut jitter = StdRng::seed_from_u64(jitter_seed);
    let mut backoff = BACKOFF_MIN;
    loop {
        let event = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked.send_modify(|n| *n += 1);
                params.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::debug!(device = %id, "connected");
                backoff = BACKOFF_MIN;
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(error) => {
                let wait = backoff.mul_f64(jitter.gen_range(0.5..1.0));
                tracing::warn!(device = %id, %error, retry_in_ms = wait.as_millis() as u64, "MQTT connection failed");
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
