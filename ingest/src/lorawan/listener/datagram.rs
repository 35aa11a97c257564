//! The socket's datagrams: at most `datagrams_per_sec` from one source address (bursts of twice that; the
//! rest counted and dropped before any work), parsed, admitted only from a registered gateway (counted as
//! `unknown_gateway` or `invalid` and dropped, unanswered, otherwise), acknowledged at once, and their radio
//! packets handed to `uplink`.
use super::{Config, Listener, inc};
use crate::lorawan::semtech::{self, Packet};
use bydata_admission::SourceRate;
use bydata_schemas::Eui64;
use bydata_store::{GatewayStatus, LastError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a registry answer about a gateway is trusted (a new registration is heard within this).
const KNOWN_FOR: Duration = Duration::from_secs(5);
/// Most gateway EUIs remembered; spoofed EUIs cannot grow the cache past this.
const MAX_REMEMBERED: usize = 10_000;
/// Most source addresses whose datagram rate is tracked (a flood of spoofed sources resets the buckets
/// rather than growing memory).
const MAX_RATED_SOURCES: usize = 10_000;

pub(super) fn rate(config: &Config) -> SourceRate {
    SourceRate::new(
        config.datagrams_per_sec,
        config.datagrams_per_sec.saturating_mul(2),
        MAX_RATED_SOURCES,
    )
}

/// Gateway → (registered?, when the registry said so).
#[derive(Debug, Default)]
pub(super) struct Gateways {
    known: HashMap<Eui64, (bool, Instant)>,
}

impl Listener {
    /// Handles one datagram from `from`.
    pub(super) async fn datagram(&mut self, rate: &mut SourceRate, bytes: &[u8], from: SocketAddr) {
        if !rate.allow(from.ip(), Instant::now()) {
            inc(&self.deps.metrics.rate_limited);
            return;
        }
        let packet = match semtech::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                inc(&self.deps.metrics.invalid);
                tracing::debug!(%from, code = e.code(), error = %e, "invalid Semtech UDP datagram");
                return;
            }
        };
        let eui = packet.gateway();
        if !self.registered(eui).await {
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
        match packet {
            Packet::PushData { token, json, .. } => {
                delta.push_data = 1;
                self.reply(&semtech::push_ack(token), from).await;
                for rxpk in json.rxpk {
                    delta.rx_packets += 1;
                    let refused = match rxpk {
                        Ok(rxpk) => {
                            inc(&self.deps.metrics.rxpk_received);
                            self.frame(&rxpk, eui, now).await.err()
                        }
                        Err(e) => {
                            inc(&self.deps.metrics.rxpk_invalid);
                            Some(format!("radio packet refused ({}): {e}", e.code()))
                        }
                    };
                    if let Some(reason) = refused {
                        delta.rx_rejected += 1;
                        delta.last_error = Some(LastError { time: now, reason });
                    }
                }
                if let Some(Err(e)) = json.stat {
                    delta.last_error = Some(LastError {
                        time: now,
                        reason: format!("status report refused ({}): {e}", e.code()),
                    });
                }
            }
            Packet::PullData { token, .. } => {
                delta.pull_data = 1;
                self.downlink.insert(eui, from);
                self.reply(&semtech::pull_ack(token), from).await;
            }
            Packet::TxAck { token, error, .. } => {
                match &error {
                    None => delta.tx_acked = 1,
                    Some(e) => {
                        delta.last_error = Some(LastError {
                            time: now,
                            reason: format!("the gateway refused a downlink: {e}"),
                        });
                    }
                }
                self.tx_ack(eui, token, error);
            }
        }
        self.pending.entry(eui).or_default().merge(&delta);
    }

    async fn reply(&self, reply: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.send_to(reply, to).await {
            tracing::debug!(%to, error = %e, "cannot answer a gateway");
        }
    }

    /// Whether `eui` is a registered gateway: the registry is asked (off the async workers) at most once per
    /// `KNOWN_FOR` per gateway.
    async fn registered(&mut self, eui: Eui64) -> bool {
        if let Some((yes, at)) = self.gateways.known.get(&eui)
            && at.elapsed() < KNOWN_FOR
        {
            return *yes;
        }
        let yes = match self.deps.registry.gateway(&eui).await {
            Ok(g) => g.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the gateway registry; dropping the datagram");
                return false;
            }
        };
        let known = &mut self.gateways.known;
        if known.len() >= MAX_REMEMBERED {
            known.clear();
        }
        known.insert(eui, (yes, Instant::now()));
        yes
    }
}
