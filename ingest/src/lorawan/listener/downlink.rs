//! Class A downlinks (LoRaWAN 1.0.3 §3.3, "Receive windows"): after each accepted uplink, once its
//! collection window has passed and every gateway's copy is in (`dedup`), the device gets, if it needs
//! anything, one frame in RX1 — or RX2 when RX1 can no longer be met — through the gateway with the best copy:
//!
//! - the device's ACK (FCtrl.ACK) of the confirmed downlink in flight marks it acknowledged; a confirmed
//!   downlink still unacknowledged is sent again (a new NFCntDown) until `downlink_attempts` transmissions,
//!   then failed;
//! - the oldest open downlink of the device's queue (`RegistryPort::next_downlink`) goes out, and a
//!   confirmed uplink (MType 100) is answered with ACK set, on that downlink or on an empty frame;
//! - NFCntDown is taken and committed in the registry before the frame leaves (`reserve_fcnt_down`);
//! - the gateway's TX_ACK, matched by (gateway, token), is written on the downlink (`tx_ack`); an error
//!   (`TOO_LATE`, `COLLISION_PACKET`, …) puts it back in the queue while attempts remain, else fails it.
//!
//! Timing (`window`): RX1 opens RECEIVE_DELAY1 (1 s) after the end of the uplink, on its frequency and data
//! rate (EU868, RX1DROffset 0); RX2 a second later on 869.525 MHz, SF12BW125. The PULL_RESP carries the
//! gateway's own clock (`tmst` of the uplink plus the delay). A window is used only if the PULL_RESP can
//! leave `MARGIN` before it opens, counted from when bydata received the first copy.
//!
//! The work runs in one task of its own (registry reads and fsyncs must not hold up the socket); the listener
//! hands it events over a bounded channel, and a full channel drops the event, counted
//! (`bydata_lorawan_downlinks_total{outcome="dropped"}`): the device's queue stays as it was, to be served at
//! its next uplink.
use super::{Config, Deps, Listener, Metrics, inc};
use crate::lorawan::frame::{self, DataDown};
use crate::lorawan::{region, semtech};
use bydata_schemas::{DeviceId, Downlink, DownlinkState, DownlinkUpdate, Eui64, UnixNanos};
use bydata_store::{GatewayStatus, SharedRegistry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long before a receive window opens the PULL_RESP must leave: the gateway's own scheduling margin
/// (the reference forwarder refuses with `TOO_LATE` under ~30 ms) plus the backhaul both ways.
const MARGIN: Duration = Duration::from_millis(200);
/// Events waiting for the downlink task; more are dropped and counted.
const EVENTS: usize = 1024;
/// How long a PULL_RESP waits for its TX_ACK (forwarders before protocol v2 send none).
const TX_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Most downlinks failed for their size in one uplink's turn before the rest wait for the next.
const MAX_REFUSED_PER_UPLINK: usize = 4;

/// One gateway's copy of an uplink: what a downlink through that gateway needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Heard {
    pub(super) gateway: Eui64,
    tmst: Option<u32>,
    freq: Option<f64>,
    datr: Option<String>,
    codr: Option<String>,
    rssi: Option<i32>,
    snr: Option<f64>,
    /// Where the gateway's PULL_DATA came from, looked up when the frame is released.
    route: Option<SocketAddr>,
}

impl Heard {
    pub(super) fn of(rxpk: &semtech::Rxpk, gateway: Eui64) -> Self {
        Self {
            gateway,
            tmst: rxpk.tmst,
            freq: rxpk.freq.filter(|f| f.is_finite()),
            datr: rxpk.datr.clone(),
            codr: rxpk.codr.clone(),
            rssi: rxpk.rssi,
            snr: rxpk.lsnr.filter(|s| s.is_finite()),
            route: None,
        }
    }
}

/// An accepted uplink, as a downlink answering it needs it.
#[derive(Debug, Clone)]
pub(super) struct ClassA {
    pub(super) session: frame::Session,
    /// MType 100: the device waits for an ACK.
    pub(super) confirmed: bool,
    /// FCtrl.ACK: the device acknowledges the last confirmed downlink.
    pub(super) ack: bool,
    /// Every gateway's copy, first first.
    pub(super) heard: Vec<Heard>,
}

enum Event {
    Uplink {
        device: DeviceId,
        class_a: ClassA,
        /// When bydata received the first copy.
        at: Instant,
    },
    /// A PULL_RESP the listener sent itself (a JoinAccept), so that its TX_ACK is matched.
    Sent { gateway: Eui64, token: u16 },
    TxAck {
        gateway: Eui64,
        token: u16,
        error: Option<String>,
    },
}

/// The listener's side of the downlink task.
pub(super) struct Downlinks {
    events: mpsc::Sender<Event>,
    /// Gateway status changes from the task (`tx_sent`), merged into the listener's.
    pub(super) status: mpsc::Receiver<(Eui64, GatewayStatus)>,
    task: JoinHandle<()>,
}

impl Downlinks {
    pub(super) fn start(
        config: &Config,
        deps: &Deps,
        socket: Arc<UdpSocket>,
        shutdown: CancellationToken,
    ) -> Self {
        let (events, receiver) = mpsc::channel(EVENTS);
        let (status_tx, status) = mpsc::channel(EVENTS);
        let worker = Worker {
            registry: deps.registry.clone(),
            clock: deps.clock.clone(),
            metrics: deps.metrics.clone(),
            socket,
            attempts: config.downlink_attempts.max(1),
            in_flight: HashMap::new(),
            status: status_tx,
        };
        let task = tokio::spawn(worker.run(receiver, shutdown));
        Self {
            events,
            status,
            task,
        }
    }

    /// Waits for the task (it ends with the listener's shutdown).
    pub(super) async fn stop(self) {
        drop(self.events);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the LoRaWAN downlink task failed");
        }
    }

    fn send(&self, metrics: &Metrics, event: Event) {
        if self.events.try_send(event).is_err() {
            inc(&metrics.downlinks_dropped);
        }
    }
}

impl Listener {
    /// Hands a released uplink to the downlink task, with its gateways' downlink routes.
    pub(super) fn class_a(&mut self, device: DeviceId, mut class_a: ClassA, at: Instant) {
        for heard in &mut class_a.heard {
            heard.route = self.downlink.get(&heard.gateway).copied();
        }
        let event = Event::Uplink {
            device,
            class_a,
            at,
        };
        self.downlinks.send(&self.deps.metrics, event);
    }

    /// A gateway's TX_ACK, for the downlink task to match.
    pub(super) fn tx_ack(&self, gateway: Eui64, token: u16, error: Option<String>) {
        let event = Event::TxAck {
            gateway,
            token,
            error,
        };
        self.downlinks.send(&self.deps.metrics, event);
    }

    /// A PULL_RESP the listener sent itself, so that its TX_ACK is expected.
    pub(super) fn sent_pull_resp(&self, gateway: Eui64, token: u16) {
        self.downlinks
            .send(&self.deps.metrics, Event::Sent { gateway, token });
    }
}

/// Which receive window, and how the gateway sends in it.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    rx2: bool,
    txpk: semtech::Txpk,
    /// The largest application payload of its data rate.
    max_payload: usize,
}

/// The copy to answer through: the best signal among those a downlink can follow (a concentrator time to
/// count from, a downlink route). Best is the highest SNR — how far above the noise the device is heard,
/// which is what decides whether it hears the gateway back on the same channel — then the highest RSSI.
fn best(heard: &[Heard]) -> Option<&Heard> {
    let snr = |h: &Heard| h.snr.unwrap_or(f64::NEG_INFINITY);
    let rssi = |h: &Heard| h.rssi.unwrap_or(i32::MIN);
    heard
        .iter()
        .filter(|h| h.tmst.is_some() && h.route.is_some())
        .max_by(|a, b| snr(a).total_cmp(&snr(b)).then(rssi(a).cmp(&rssi(b))))
}

/// The window a downlink can still make, `elapsed` after the first copy arrived: RX1 if its PULL_RESP can
/// leave `MARGIN` before RX1 opens and the uplink's data rate is an EU868 one, else RX2 under the same
/// condition, else none.
fn window(heard: &Heard, elapsed: Duration) -> Option<Window> {
    let tmst = heard.tmst?;
    let in_time = |delay_secs: u32| elapsed + MARGIN < Duration::from_secs(delay_secs.into());
    let codr = heard.codr.clone().unwrap_or_else(|| "4/5".to_owned());
    let rx1 = heard
        .datr
        .as_deref()
        .and_then(region::eu868_data_rate)
        .zip(heard.freq);
    if let Some((dr, freq)) = rx1
        && in_time(region::RECEIVE_DELAY1_SECS)
    {
        return Some(Window {
            rx2: false,
            txpk: txpk(
                tmst,
                region::RECEIVE_DELAY1_SECS,
                freq,
                dr,
                region::RX1_TX_POWER_DBM,
                codr,
            ),
            max_payload: dr.max_payload,
        });
    }
    in_time(region::RECEIVE_DELAY2_SECS).then(|| {
        let dr = region::RX2_DATA_RATE;
        Window {
            rx2: true,
            txpk: txpk(
                tmst,
                region::RECEIVE_DELAY2_SECS,
                region::RX2_FREQ_MHZ,
                dr,
                region::RX2_TX_POWER_DBM,
                codr,
            ),
            max_payload: dr.max_payload,
        }
    })
}

fn txpk(
    uplink_tmst: u32,
    delay_secs: u32,
    freq: f64,
    dr: region::Eu868DataRate,
    powe: u8,
    codr: String,
) -> semtech::Txpk {
    semtech::Txpk {
        imme: false,
        tmst: Some(semtech::rx1_tmst(uplink_tmst, delay_secs)),
        freq,
        rfch: 0,
        powe,
        datr: dr.datr.to_owned(),
        codr,
        ipol: true,
        data: Vec::new(),
    }
}

/// What a TX_ACK error means, for the downlink's `error` (PROTOCOL.TXT §6 and the packet forwarder v4).
fn tx_error_meaning(error: &str) -> &'static str {
    match error {
        "TOO_LATE" => "it reached the gateway too late for the receive window",
        "TOO_EARLY" => "its time was too far ahead for the gateway",
        "COLLISION_PACKET" => "the gateway had another downlink at that time",
        "COLLISION_BEACON" => "the gateway had a beacon at that time",
        "TX_FREQ" => "the gateway cannot send on that frequency",
        "TX_POWER" => "the gateway cannot send at that power",
        "GPS_UNLOCKED" => "the gateway has no GPS time",
        _ => "the gateway gave no known reason",
    }
}

/// A PULL_RESP waiting for its TX_ACK.
struct InFlight {
    at: Instant,
    /// The downlink it carried (device, id, its transmissions so far), if any (an ACK alone, a JoinAccept).
    downlink: Option<(DeviceId, u64, u32)>,
}

struct Worker {
    registry: SharedRegistry,
    clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    metrics: Arc<Metrics>,
    socket: Arc<UdpSocket>,
    attempts: u32,
    in_flight: HashMap<(Eui64, u16), InFlight>,
    status: mpsc::Sender<(Eui64, GatewayStatus)>,
}

impl Worker {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        let mut expire = tokio::time::interval(TX_ACK_TIMEOUT / 3);
        expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = expire.tick() => self.expire(),
                event = events.recv() => match event {
                    None => break,
                    Some(Event::Uplink { device, class_a, at }) => self.uplink(&device, class_a, at).await,
                    Some(Event::Sent { gateway, token }) => {
                        let flight = InFlight { at: Instant::now(), downlink: None };
                        self.in_flight.insert((gateway, token), flight);
                    }
                    Some(Event::TxAck { gateway, token, error }) => self.tx_ack(gateway, token, error).await,
                },
            }
        }
    }

    /// Forgets PULL_RESPs whose TX_ACK never came (counted; their downlinks stay as they were).
    fn expire(&mut self) {
        let before = self.in_flight.len();
        self.in_flight
            .retain(|_, f| f.at.elapsed() < TX_ACK_TIMEOUT);
        let gone = (before - self.in_flight.len()) as u64;
        self.metrics
            .tx_ack_missing
            .fetch_add(gone, std::sync::atomic::Ordering::Relaxed);
    }

    async fn next(&self, device: &DeviceId) -> Option<Downlink> {
        match self.registry.next_downlink(device).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(%device, error = %e, "cannot read the device's downlink queue");
                None
            }
        }
    }

    async fn update(&self, device: &DeviceId, id: u64, update: DownlinkUpdate) {
        if let Err(e) = self.registry.update_downlink(device, id, update).await {
            tracing::error!(%device, id, error = %e, "cannot record a downlink's state");
        }
    }

    /// Answers one accepted uplink (see the module docs).
    async fn uplink(&mut self, device: &DeviceId, up: ClassA, heard_at: Instant) {
        let now = (self.clock)();
        let mut next = self.next(device).await;
        // The confirmed downlink in flight: acknowledged by this uplink, or out of attempts, or sent again.
        if let Some(d) = next
            .as_ref()
            .filter(|d| d.state == DownlinkState::Sent && d.confirmed)
        {
            let settled = if up.ack {
                inc(&self.metrics.downlinks_acknowledged);
                Some(DownlinkUpdate::acknowledged(now))
            } else if d.attempts >= self.attempts {
                inc(&self.metrics.downlinks_failed);
                Some(DownlinkUpdate::failed(
                    format!(
                        "the device did not acknowledge it after {} transmissions",
                        d.attempts
                    ),
                    now,
                ))
            } else {
                None
            };
            if let Some(update) = settled {
                let id = d.id;
                self.update(device, id, update.expecting(DownlinkState::Sent))
                    .await;
                next = self.next(device).await;
            }
        }
        if next.is_none() && !up.confirmed {
            return;
        }
        let Some(gateway) = best(&up.heard).cloned() else {
            inc(&self.metrics.downlinks_no_gateway);
            tracing::debug!(%device, "no gateway that heard the device can send it a downlink (no tmst, or no PULL_DATA yet)");
            return;
        };
        let Some(mut window) = window(&gateway, heard_at.elapsed()) else {
            inc(&self.metrics.downlinks_missed_window);
            tracing::debug!(%device, elapsed = ?heard_at.elapsed(), "too late for both receive windows");
            return;
        };
        let payload = self.payload(device, next, &gateway, &window, now).await;
        if payload.is_none() && !up.confirmed {
            return;
        }
        let nwk_s_key = *up.session.nwk_s_key.as_bytes();
        let fcnt = match self
            .registry
            .reserve_fcnt_down(up.session.dev_addr.get(), device, nwk_s_key)
            .await
        {
            Ok(Some(fcnt)) => fcnt,
            Ok(None) => {
                tracing::debug!(%device, "the session changed (device deleted or rejoined, or its downlink counter is used up); no downlink");
                return;
            }
            Err(e) => {
                tracing::error!(%device, error = %e, "cannot reserve a downlink frame counter");
                return;
            }
        };
        let frame = DataDown {
            fcnt,
            confirmed: payload.as_ref().is_some_and(|d| d.confirmed),
            ack: up.confirmed,
            adr: false,
            fpending: false,
            application: payload.as_ref().map(|d| (d.fport, d.bytes.as_slice())),
        };
        window.txpk.data = match frame::build_downlink(&up.session, &frame) {
            Ok(phy) => phy,
            Err(e) => {
                // Unreachable: FPort and size were checked in `payload`.
                tracing::error!(%device, error = %e, "cannot build a downlink frame");
                return;
            }
        };
        let token: u16 = rand::random();
        let Some(route) = gateway.route else { return };
        let sent = self
            .socket
            .send_to(&semtech::pull_resp(token, &window.txpk), route)
            .await;
        if let Err(e) = sent {
            tracing::warn!(%device, gateway = %gateway.gateway, error = %e, "cannot send a PULL_RESP");
            return;
        }
        inc(if window.rx2 {
            &self.metrics.downlinks_rx2
        } else {
            &self.metrics.downlinks_rx1
        });
        if up.confirmed {
            inc(&self.metrics.downlink_acks);
        }
        let delta = GatewayStatus {
            tx_sent: 1,
            ..GatewayStatus::default()
        };
        // Status only; a full channel loses one count, never a downlink.
        let _ = self.status.try_send((gateway.gateway, delta));
        let flight = InFlight {
            at: Instant::now(),
            downlink: payload
                .as_ref()
                .map(|d| (device.clone(), d.id, d.attempts.saturating_add(1))),
        };
        self.in_flight.insert((gateway.gateway, token), flight);
        if let Some(d) = payload {
            if d.attempts > 0 {
                inc(&self.metrics.downlinks_retried);
            }
            let update = DownlinkUpdate {
                fcnt: Some(fcnt),
                ..DownlinkUpdate::sent(format!("gateway:{}", gateway.gateway), now)
            };
            self.update(device, d.id, update.expecting(d.state)).await;
            tracing::debug!(%device, id = d.id, fcnt, rx2 = window.rx2, gateway = %gateway.gateway, "downlink sent");
        }
    }

    /// The downlink to carry in `window`, from `next` on: one the uplink's data rate can never carry (the
    /// EU868 limit, RP002 §2.4.6) or no FPort allows fails with the reason, and the following one is tried;
    /// one that fits RX1 but not the RX2 it has to use waits for the next uplink.
    async fn payload(
        &self,
        device: &DeviceId,
        mut next: Option<Downlink>,
        gateway: &Heard,
        window: &Window,
        now: UnixNanos,
    ) -> Option<Downlink> {
        let uplink_rate = gateway
            .datr
            .as_deref()
            .and_then(region::eu868_data_rate)
            .unwrap_or(region::RX2_DATA_RATE);
        for _ in 0..MAX_REFUSED_PER_UPLINK {
            let d = next.take()?;
            let refusal = if !(1..=223).contains(&d.fport) {
                Some(format!(
                    "FPort {} cannot carry application data to a LoRaWAN device (1 to 223 can)",
                    d.fport
                ))
            } else if d.bytes.len() > uplink_rate.max_payload {
                Some(format!(
                    "{} bytes do not fit a downlink at the device's data rate DR{} ({}), which carries at most {} \
                     (EU868, LoRaWAN Regional Parameters RP002 §2.4.6); send smaller parts",
                    d.bytes.len(),
                    uplink_rate.index,
                    uplink_rate.datr,
                    uplink_rate.max_payload
                ))
            } else {
                None
            };
            let Some(reason) = refusal else {
                return (d.bytes.len() <= window.max_payload).then_some(d);
            };
            inc(&self.metrics.downlinks_failed);
            tracing::info!(%device, id = d.id, %reason, "downlink refused");
            self.update(
                device,
                d.id,
                DownlinkUpdate::failed(reason, now).expecting(d.state),
            )
            .await;
            next = self.next(device).await;
        }
        None
    }

    /// A gateway's TX_ACK: written on the downlink it carried; an error puts the downlink back in the queue
    /// while it has attempts left, else fails it.
    async fn tx_ack(&mut self, gateway: Eui64, token: u16, error: Option<String>) {
        let Some(flight) = self.in_flight.remove(&(gateway, token)) else {
            inc(&self.metrics.tx_ack_unmatched);
            return;
        };
        inc(if error.is_some() {
            &self.metrics.tx_ack_error
        } else {
            &self.metrics.tx_ack_ok
        });
        let Some((device, id, attempts)) = flight.downlink else {
            return;
        };
        let at = (self.clock)();
        let update = match error {
            None => DownlinkUpdate {
                at,
                tx_ack: Some("NONE".to_owned()),
                ..DownlinkUpdate::default()
            },
            Some(e) => {
                let why = format!(
                    "gateway {gateway} did not transmit it ({e}: {})",
                    tx_error_meaning(&e)
                );
                if attempts < self.attempts {
                    inc(&self.metrics.downlinks_retried);
                    DownlinkUpdate {
                        at,
                        state: Some(DownlinkState::Queued),
                        tx_ack: Some(e),
                        error: Some(format!("{why}; it goes again at the device's next uplink")),
                        ..DownlinkUpdate::default()
                    }
                } else {
                    inc(&self.metrics.downlinks_failed);
                    DownlinkUpdate {
                        tx_ack: Some(e),
                        ..DownlinkUpdate::failed(
                            format!("{why}, after {attempts} transmissions"),
                            at,
                        )
                    }
                }
            }
        };
        self.update(&device, id, update.expecting(DownlinkState::Sent))
            .await;
    }
}

#[cfg(test)]
#[path = "downlink_tests.rs"]
mod tests;
