//! The Semtech UDP listener on `--lorawan-addr`: gateways push radio packets (PUSH_DATA), keep their downlink
//! route open (PULL_DATA) and report downlinks (TX_ACK).
//!
//! Semtech UDP has no authentication, so a gateway's registered EUI is the allow-list: a datagram from an
//! unregistered gateway is counted (`bydata_lorawan_datagrams_total{outcome="unknown_gateway"}`) and dropped
//! without an acknowledgement; a datagram that does not parse is counted as `invalid`. A registered
//! gateway's activity goes into its status (`Registry::record_gateways`), written at most once a second so a
//! busy gateway costs one registry transaction per second, not one per packet.
//!
//! Each radio packet that is a data-up frame is routed by its DevAddr to the device's session
//! (`super::frame`): the MIC is checked with the full frame counter, replays are refused, and the decrypted
//! FRMPayload is journaled as the device's uplink (decoded by its codec downstream, like an MQTT message).
//! The uplink counter is committed before the journal append, so a frame replayed after a crash is refused.
//! The same frame heard by several gateways is journaled once: it is held for `COLLECT_WINDOW` after the
//! first copy, every gateway's RSSI and SNR heard in that time is kept with it (the uplink's `radio`), and
//! then it is journaled (its FPort a field of the entry). A copy arriving later, within `DEDUP_WINDOW`, is counted as a duplicate, not as a
//! replay. A crash inside the collection window loses that frame: the counter was already committed (so it
//! cannot be replayed), and a Semtech gateway never retransmits an uplink anyway. A refused frame of a known device is never journaled:
//! a replay (its MIC holds) is counted on the device's status, anything unverifiable only in memory (see
//! `refuse`); a frame from an unknown DevAddr is counted. One source address may send at most
//! `datagrams_per_sec` datagrams a second on average (bursts of twice that); the rest are counted and dropped
//! before any work is done on them.
mod join;
mod metrics;

pub use metrics::Metrics;

use super::frame;
use super::semtech::{self, Packet};
use bydata_schemas::{
    DeviceId, Eui64, JournalEntry, Reception, RejectReason, Source, UnixNanos, Uplink,
};
use bydata_store::journal::Journal;
use bydata_store::refusals::{Refusals, UnverifiedKind};
use bydata_store::{GatewayStatus, LastError, Registry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// How long a registry answer about a gateway is trusted (a new registration is heard within this).
const KNOWN_FOR: Duration = Duration::from_secs(5);
/// Most gateway EUIs remembered; spoofed EUIs cannot grow the cache past this.
const MAX_REMEMBERED: usize = 10_000;
/// How often gateway status is written.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long after a frame a copy of it (heard by another gateway) counts as a duplicate.
const DEDUP_WINDOW: Duration = Duration::from_secs(30);
/// How long after a join a copy of its request (heard by another gateway) counts as a duplicate; copies
/// arrive within milliseconds, and a request resent later is a reused DevNonce.
const JOIN_DEDUP_WINDOW: Duration = Duration::from_secs(1);
/// How long a frame waits for copies from other gateways before it is journaled (ChirpStack uses 200 ms).
const COLLECT_WINDOW: Duration = Duration::from_millis(200);
/// Most frames held in their collection window; beyond it the oldest are journaled early.
const MAX_HELD: usize = 10_000;
/// Most (DevAddr, FCnt) pairs remembered for de-duplication.
const MAX_RECENT: usize = 100_000;

fn empty_uplink(device: &DeviceId) -> Uplink {
    Uplink {
        received_at: 0,
        device: device.clone(),
        source: Source::Lorawan,
        topic: String::new(),
        fport: None,
        payload: Vec::new(),
        radio: Vec::new(),
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Settings of the UDP edge (`[lorawan]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Datagrams one source address may send per second on average (bursts of twice that); more are
    /// dropped and counted (`outcome="rate_limited"`). A busy gateway sends one per radio packet it hears.
    pub datagrams_per_sec: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            datagrams_per_sec: 500,
        }
    }
}

/// Most source addresses whose datagram rate is tracked (a flood of spoofed sources resets the buckets
/// rather than growing memory).
const MAX_RATED_SOURCES: usize = 10_000;

/// What the listener needs.
#[derive(Clone)]
pub struct Deps {
    pub registry: Arc<Registry>,
    pub journal: Arc<Journal>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
    /// Where refusals of the devices' frames are counted.
    pub refusals: Arc<Refusals>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

struct Listener {
    socket: UdpSocket,
    deps: Deps,
    /// Gateway → (registered?, when the registry said so).
    known: HashMap<Eui64, (bool, Instant)>,
    /// Status changes not yet written.
    pending: HashMap<Eui64, GatewayStatus>,
    /// Where each gateway's PULL_DATA came from: its downlink route.
    downlink: HashMap<Eui64, SocketAddr>,
    /// (DevAddr, FCnt) of recent accepted frames → when.
    recent: HashMap<(u32, u32), Instant>,
    /// (DevEUI, DevNonce) of recent accepted joins → when (the same request through another gateway).
    recent_joins: HashMap<(Eui64, u16), Instant>,
    /// Accepted frames in their collection window, by (DevAddr, FCnt).
    held: HashMap<(u32, u32), (Uplink, Instant)>,
}

/// Serves `socket` until `shutdown`, then writes the last status changes.
pub async fn run(config: Config, socket: UdpSocket, deps: Deps, shutdown: CancellationToken) {
    let mut rate = bydata_admission::SourceRate::new(
        config.datagrams_per_sec,
        config.datagrams_per_sec.saturating_mul(2),
        MAX_RATED_SOURCES,
    );
    let mut listener = Listener {
        socket,
        deps,
        known: HashMap::new(),
        pending: HashMap::new(),
        downlink: HashMap::new(),
        recent: HashMap::new(),
        recent_joins: HashMap::new(),
        held: HashMap::new(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut collect = tokio::time::interval(COLLECT_WINDOW / 4);
    collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => listener.write_status().await,
            _ = collect.tick(), if !listener.held.is_empty() => listener.release(COLLECT_WINDOW).await,
            received = listener.socket.recv_from(&mut buf) => match received {
                Ok((_, from)) if !rate.allow(from.ip(), Instant::now()) => inc(&listener.deps.metrics.rate_limited),
                Ok((n, from)) => listener.handle(buf.get(..n).unwrap_or_default(), from).await,
                // ICMP errors from an earlier send surface here on some systems; the socket is still good.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            },
        }
    }
    listener.release(Duration::ZERO).await;
    listener.write_status().await;
}

impl Listener {
    fn registered(&mut self, eui: Eui64) -> bool {
        if let Some((yes, at)) = self.known.get(&eui)
            && at.elapsed() < KNOWN_FOR
        {
            return *yes;
        }
        let yes = match self.deps.registry.gateway(&eui) {
            Ok(g) => g.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the gateway registry; dropping the datagram");
                return false;
            }
        };
        if self.known.len() >= MAX_REMEMBERED {
            self.known.clear();
        }
        self.known.insert(eui, (yes, Instant::now()));
        yes
    }

    async fn handle(&mut self, bytes: &[u8], from: SocketAddr) {
        let packet = match semtech::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                inc(&self.deps.metrics.invalid);
                tracing::debug!(%from, code = e.code(), error = %e, "invalid Semtech UDP datagram");
                return;
            }
        };
        let eui = packet.gateway();
        if !self.registered(eui) {
            inc(&self.deps.metrics.unknown_gateway);
            tracing::debug!(%from, gateway = %eui, "datagram from an unregistered gateway dropped");
            return;
        }
        inc(&self.deps.metrics.accepted);
        let now = (self.deps.clock)();
        let mut delta = GatewayStatus {
            last_seen: Some(now),
            ..GatewayStatus::default()
        };
        let reply = match packet {
            Packet::PushData { token, json, .. } => {
                delta.push_data = 1;
                for rxpk in json.rxpk {
                    match rxpk {
                        Ok(rxpk) => {
                            delta.rx_packets += 1;
                            inc(&self.deps.metrics.rxpk_received);
                            if let Err(reason) = self.frame(&rxpk, eui, now).await {
                                delta.rx_rejected += 1;
                                delta.last_error = Some(LastError { time: now, reason });
                            }
                        }
                        Err(e) => {
                            delta.rx_packets += 1;
                            delta.rx_rejected += 1;
                            inc(&self.deps.metrics.rxpk_invalid);
                            delta.last_error = Some(LastError {
                                time: now,
                                reason: format!("radio packet refused ({}): {e}", e.code()),
                            });
                        }
                    }
                }
                if let Some(Err(e)) = json.stat {
                    delta.last_error = Some(LastError {
                        time: now,
                        reason: format!("status report refused ({}): {e}", e.code()),
                    });
                }
                Some(semtech::push_ack(token))
            }
            Packet::PullData { token, .. } => {
                delta.pull_data = 1;
                self.downlink.insert(eui, from);
                Some(semtech::pull_ack(token))
            }
            Packet::TxAck { error, .. } => {
                match error {
                    None => delta.tx_acked = 1,
                    Some(e) => {
                        delta.last_error = Some(LastError {
                            time: now,
                            reason: format!("the gateway refused a downlink: {e}"),
                        });
                    }
                }
                None
            }
        };
        if let Some(reply) = reply
            && let Err(e) = self.socket.send_to(&reply, from).await
        {
            tracing::debug!(%from, error = %e, "cannot answer a gateway");
        }
        self.pending.entry(eui).or_default().merge(&delta);
    }

    /// Routes one radio packet's frame; `Err` says why it went nowhere (for the gateway's status).
    async fn frame(
        &mut self,
        rxpk: &semtech::Rxpk,
        gateway: Eui64,
        now: UnixNanos,
    ) -> Result<(), String> {
        let phy = rxpk.data.as_slice();
        let metrics = self.deps.metrics.clone();
        if phy.first().map(|m| m >> 5) == Some(0b000) {
            return self.join(rxpk, gateway, now).await;
        }
        // MType 010 (unconfirmed) or 100 (confirmed) data up; DevAddr follows the MHDR, little-endian.
        let data_up = matches!(phy.first().map(|m| m >> 5), Some(0b010 | 0b100));
        let Some(addr) = phy.get(1..5).filter(|_| data_up) else {
            inc(&metrics.frames_other);
            return Err("not a data-up frame (joins are not served yet)".into());
        };
        let dev_addr = u32::from_le_bytes([addr[0], addr[1], addr[2], addr[3]]);
        let registry = self.deps.registry.clone();
        let stored = tokio::task::spawn_blocking(move || registry.lorawan_session(dev_addr))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(stored) = stored else {
            inc(&metrics.frames_unknown_device);
            return Err(format!("frame from unknown DevAddr {dev_addr:08x}"));
        };
        let session = frame::Session {
            dev_addr: frame::DevAddr::new(stored.dev_addr),
            nwk_s_key: frame::NwkSKey::new(stored.nwk_s_key),
            app_s_key: frame::AppSKey::new(stored.app_s_key),
            fcnt_up: stored.fcnt_up,
            fcnt_down: stored.fcnt_down,
        };
        let device = stored.device;
        let registry = self.deps.registry.clone();
        let reception = Reception {
            gateway: gateway.to_string(),
            rssi: rxpk.rssi.map(f64::from),
            snr: rxpk.lsnr.filter(|s| s.is_finite()),
        };
        match frame::decode_uplink(phy, &session) {
            Ok(up) => {
                let fcnt = up.fcnt;
                tokio::task::spawn_blocking(move || {
                    registry.advance_uplink_counter(dev_addr, fcnt)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot commit the frame counter: {e}"))?;
                self.remember(dev_addr, fcnt);
                inc(&metrics.frames_accepted);
                let uplink = Uplink {
                    received_at: now,
                    device,
                    source: Source::Lorawan,
                    topic: String::new(),
                    fport: Some(up.fport.unwrap_or(0)),
                    payload: up.payload,
                    radio: vec![reception],
                };
                if self.held.len() >= MAX_HELD {
                    // Full: journal everything held now (their other gateways' copies will count as
                    // duplicates without their signal) rather than grow.
                    self.release(Duration::ZERO).await;
                }
                self.held.insert((dev_addr, fcnt), (uplink, Instant::now()));
                Ok(())
            }
            // A copy of the frame just accepted, heard by another gateway: not an attack.
            Err(frame::FrameError::Replay { got, last })
                if got == last && self.is_recent(dev_addr, got) =>
            {
                inc(&metrics.frames_duplicate);
                if let Some((held, _)) = self.held.get_mut(&(dev_addr, got))
                    && !held.radio.iter().any(|r| r.gateway == reception.gateway)
                {
                    held.radio.push(reception);
                }
                Ok(())
            }
            Err(e) => Err(self.refuse(device, now, e.code(), &e.to_string())),
        }
    }

    /// Counts a refused frame or join of `device`; returns the reason (for the gateway's status).
    ///
    /// Only a refusal of something that verified as the device's (a replayed frame or join request: its MIC
    /// holds) reaches the device's status, aggregated, never the journal. Anything else from the air (a MIC
    /// that fails, a counter too far ahead to check, a malformed frame) could come from anyone with a radio:
    /// it is counted on the gateway, in `/metrics`, and in memory for the device (its owner sees the count).
    fn refuse(&self, device: DeviceId, now: UnixNanos, code: &str, detail: &str) -> String {
        inc(&self.deps.metrics.frames_rejected);
        let reason = format!("frame of {device} refused ({code}): {detail}");
        if matches!(code, "replay" | "dev_nonce_reused") {
            let refusal = RejectReason::LorawanFrame {
                code: code.to_owned(),
                detail: detail.to_owned(),
            };
            if self.deps.refusals.record(&device, now, &refusal) {
                tracing::info!(%device, %refusal, "LoRaWAN frame refused");
            }
        } else {
            self.deps
                .refusals
                .record_unverified(&device, now, UnverifiedKind::UnverifiedFrame);
        }
        reason
    }

    /// Journals the held frames whose collection window (`older_than`) has passed, in arrival order.
    async fn release(&mut self, older_than: Duration) {
        let mut due: Vec<(Instant, Uplink)> = Vec::new();
        self.held.retain(|_, (uplink, at)| {
            if at.elapsed() < older_than {
                return true;
            }
            due.push((*at, std::mem::replace(uplink, empty_uplink(&uplink.device))));
            false
        });
        if due.is_empty() {
            return;
        }
        due.sort_by_key(|(at, _)| *at);
        let journal = self.deps.journal.clone();
        let appended = tokio::task::spawn_blocking(move || {
            for (_, uplink) in due {
                let device = uplink.device.clone();
                if let Err(e) = journal.append(&JournalEntry::Uplink(uplink)) {
                    tracing::error!(%device, error = %e, "cannot journal a LoRaWAN frame; it is lost");
                }
            }
        })
        .await;
        if let Err(e) = appended {
            tracing::error!(error = %e, "LoRaWAN journal task failed");
        }
    }

    fn remember(&mut self, dev_addr: u32, fcnt: u32) {
        if self.recent.len() >= MAX_RECENT {
            self.recent.retain(|_, at| at.elapsed() < DEDUP_WINDOW);
            if self.recent.len() >= MAX_RECENT {
                self.recent.clear();
            }
        }
        self.recent.insert((dev_addr, fcnt), Instant::now());
    }

    fn is_recent(&self, dev_addr: u32, fcnt: u32) -> bool {
        self.recent
            .get(&(dev_addr, fcnt))
            .is_some_and(|at| at.elapsed() < DEDUP_WINDOW)
    }

    async fn write_status(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let deltas: Vec<(Eui64, GatewayStatus)> = self.pending.drain().collect();
        let registry = self.deps.registry.clone();
        match tokio::task::spawn_blocking(move || registry.record_gateways(&deltas)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot record gateway status"),
            Err(e) => tracing::error!(error = %e, "gateway status task failed"),
        }
    }
}
