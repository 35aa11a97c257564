//! The Semtech UDP listener on `--lorawan-addr`: gateways push radio packets (PUSH_DATA), keep their downlink
//! route open (PULL_DATA) and report downlinks (TX_ACK).
//!
//! Semtech UDP has no authentication, so a gateway's registered EUI is the allow-list: a datagram from an
//! unregistered gateway is counted (`bydata_lorawan_datagrams_total{outcome="unknown_gateway"}`) and dropped
//! without an acknowledgement; a datagram that does not parse is counted as `invalid`. A registered
//! gateway's activity goes into its status (`Registry::record_gateways`), written at most once a second so a
//! busy gateway costs one registry transaction per second, not one per packet.
//!
//! Radio packets are counted here; routing their frames to device sessions comes with LoRaWAN onboarding.
use super::semtech::{self, Packet};
use bydata_schemas::{Eui64, UnixNanos};
use bydata_store::{GatewayStatus, LastError, Registry};
use std::collections::HashMap;
use std::fmt::Write as _;
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

/// Counters of the UDP edge (Prometheus text).
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    unknown_gateway: AtomicU64,
    invalid: AtomicU64,
    rxpk_received: AtomicU64,
    rxpk_invalid: AtomicU64,
}

impl Metrics {
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE bydata_lorawan_datagrams_total counter");
        for (outcome, c) in [
            ("accepted", &self.accepted),
            ("unknown_gateway", &self.unknown_gateway),
            ("invalid", &self.invalid),
        ] {
            let _ = writeln!(
                out,
                "bydata_lorawan_datagrams_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# TYPE bydata_lorawan_rxpk_total counter");
        for (outcome, c) in [
            ("received", &self.rxpk_received),
            ("invalid", &self.rxpk_invalid),
        ] {
            let _ = writeln!(
                out,
                "bydata_lorawan_rxpk_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the listener needs.
#[derive(Clone)]
pub struct Deps {
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
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
}

/// Serves `socket` until `shutdown`, then writes the last status changes.
pub async fn run(socket: UdpSocket, deps: Deps, shutdown: CancellationToken) {
    let mut listener = Listener {
        socket,
        deps,
        known: HashMap::new(),
        pending: HashMap::new(),
        downlink: HashMap::new(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => listener.write_status().await,
            received = listener.socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => listener.handle(buf.get(..n).unwrap_or_default(), from).await,
                // ICMP errors from an earlier send surface here on some systems; the socket is still good.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            },
        }
    }
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
                        Ok(_) => {
                            delta.rx_packets += 1;
                            inc(&self.deps.metrics.rxpk_received);
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
