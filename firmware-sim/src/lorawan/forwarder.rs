//! The packet forwarder behind a [`SimGateway`](super::SimGateway): its state, shared by the gateway's
//! handle, its downlink listeners and its background task, and the task itself (see the `gateway` module docs
//! for what it does).
use super::gateway::{Downlink, GatewayOptions, GatewayStats};
use super::wire::{self, Downstream, StatCounts};
use crate::error::{Error, Result};
use bydata_schemas::Eui64;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often PULL_DATA is repeated until the server first answers one (it may not know the gateway yet).
const PULL_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Counters {
    push_data: AtomicU64,
    push_ack: AtomicU64,
    pull_data: AtomicU64,
    pull_ack: AtomicU64,
    rx_packets: AtomicU64,
    downlinks: AtomicU64,
    downlinks_refused: AtomicU64,
    downlinks_missed: AtomicU64,
    invalid: AtomicU64,
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) eui: Eui64,
    pub(super) server: SocketAddr,
    pub(super) socket: UdpSocket,
    started: Instant,
    pub(super) options: GatewayOptions,
    next_token: AtomicU16,
    /// PUSH_DATA tokens → the uplink waiting for their PUSH_ACK.
    waiters: Mutex<HashMap<u16, oneshot::Sender<()>>>,
    pub(super) downlinks: broadcast::Sender<Downlink>,
    /// PULL_ACKs received so far.
    pub(super) pull_acks: watch::Sender<u64>,
    counters: Counters,
    /// The TX_ACK error every PULL_RESP gets, if set (`SimGateway::refuse_downlinks`).
    refusal: Mutex<Option<String>>,
    /// Cancelled when the gateway stops: ends the background task and every wait on it.
    pub(super) stop: CancellationToken,
}

/// Removes a PUSH_DATA's waiter however the uplink ends (acknowledged, failed, or cancelled).
struct Waiter<'a> {
    inner: &'a Inner,
    token: u16,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.inner.waiters().remove(&self.token);
    }
}

impl Inner {
    pub(super) fn new(
        eui: Eui64,
        server: SocketAddr,
        socket: UdpSocket,
        options: GatewayOptions,
        downlinks: broadcast::Sender<Downlink>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            eui,
            server,
            socket,
            started: Instant::now(),
            // Tokens start somewhere different per gateway, as the forwarder's random ones would.
            next_token: AtomicU16::new(crate::plan::mix(u64::from_be_bytes(eui.to_bytes())) as u16),
            options,
            waiters: Mutex::new(HashMap::new()),
            downlinks,
            pull_acks: watch::Sender::new(0),
            counters: Counters::default(),
            refusal: Mutex::new(None),
            stop,
        }
    }

    pub(super) fn stats(&self) -> GatewayStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GatewayStats {
            push_data: get(&c.push_data),
            push_ack: get(&c.push_ack),
            pull_data: get(&c.pull_data),
            pull_ack: get(&c.pull_ack),
            rx_packets: get(&c.rx_packets),
            downlinks: get(&c.downlinks),
            downlinks_refused: get(&c.downlinks_refused),
            downlinks_missed: get(&c.downlinks_missed),
            invalid: get(&c.invalid),
        }
    }

    pub(super) fn count_rx_packet(&self) {
        inc(&self.counters.rx_packets);
    }

    /// Downlinks a listener lost by falling behind.
    pub(super) fn missed(&self, n: u64) {
        self.counters
            .downlinks_missed
            .fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn tmst(&self) -> u32 {
        // Truncation is the wrap of a 32-bit microsecond counter.
        self.started.elapsed().as_micros() as u32
    }

    pub(super) fn refuse(&self, error: Option<&str>) {
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = error.map(str::to_owned);
    }

    /// Why the gateway would not send `downlink`: the refusal set, or `TOO_LATE` when its time has passed
    /// on the counter (a 32-bit wrapping counter: "passed" is up to half its range behind).
    fn refusal(&self, downlink: &Downlink) -> Option<String> {
        let set = self
            .refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        set.or_else(|| {
            let late = downlink
                .tmst
                .is_some_and(|t| t.wrapping_sub(self.tmst()) > u32::MAX / 2);
            late.then(|| "TOO_LATE".to_owned())
        })
    }

    pub(super) fn token(&self) -> u16 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u16, oneshot::Sender<()>>> {
        // The map stays consistent whatever panicked while holding it.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn stopped(&self) -> Error {
        Error::GatewayStopped { gateway: self.eui }
    }

    /// Sends a PUSH_DATA until its PUSH_ACK arrives.
    pub(super) async fn push(&self, token: u16, datagram: &[u8]) -> Result<()> {
        if self.stop.is_cancelled() {
            return Err(self.stopped());
        }
        let (sender, mut acked) = oneshot::channel();
        self.waiters().insert(token, sender);
        let _waiter = Waiter { inner: self, token };
        for _ in 0..self.options.attempts {
            inc(&self.counters.push_data);
            if let Err(e) = self.socket.send(datagram).await {
                // E.g. the ICMP "port unreachable" of an earlier datagram, reported on this send: try again.
                tracing::debug!(gateway = %self.eui, error = %e, "cannot send PUSH_DATA");
                continue;
            }
            let answer = tokio::select! {
                () = self.stop.cancelled() => return Err(self.stopped()),
                answer = tokio::time::timeout(self.options.ack_timeout, &mut acked) => answer,
            };
            match answer {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => return Err(self.stopped()),
                Err(_) => {}
            }
        }
        Err(Error::NoAck {
            what: "PUSH_ACK",
            gateway: self.eui,
            server: self.server,
            attempts: u64::from(self.options.attempts),
            timeout: self.options.ack_timeout,
        })
    }

    async fn send(&self, datagram: &[u8], what: &str) {
        if let Err(e) = self.socket.send(datagram).await {
            tracing::debug!(gateway = %self.eui, error = %e, "cannot send {what}");
        }
    }

    async fn pull(&self) {
        inc(&self.counters.pull_data);
        self.send(&wire::pull_data(self.token(), self.eui), "PULL_DATA")
            .await;
    }

    async fn report(&self) {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (pushed, acked) = (get(&c.push_data), get(&c.push_ack));
        let received = get(&c.rx_packets);
        let counts = StatCounts {
            rxnb: received,
            rxok: received,
            rxfw: received,
            ackr: if pushed == 0 {
                0.0
            } else {
                100.0 * acked.min(pushed) as f64 / pushed as f64
            },
            dwnb: get(&c.downlinks),
            txnb: get(&c.downlinks),
        };
        let stat = wire::stat(self.options.clock.now(), &counts);
        inc(&c.push_data);
        // Nobody waits for this PUSH_ACK; it is counted when it comes.
        self.send(
            &wire::push_data(self.token(), self.eui, &json!({ "stat": stat })),
            "a status report",
        )
        .await;
    }

    async fn receive(&self, datagram: &[u8]) {
        match wire::parse(datagram) {
            Ok(Downstream::PushAck { token }) => {
                inc(&self.counters.push_ack);
                if let Some(waiter) = self.waiters().remove(&token) {
                    // The uplink may have given up just now; then nobody needs the news.
                    let _ = waiter.send(());
                }
            }
            Ok(Downstream::PullAck { .. }) => {
                inc(&self.counters.pull_ack);
                self.pull_acks.send_modify(|n| *n += 1);
            }
            Ok(Downstream::PullResp { token, txpk }) => match txpk {
                Ok(downlink) => {
                    if let Some(error) = self.refusal(&downlink) {
                        inc(&self.counters.downlinks_refused);
                        self.send(&wire::tx_ack(token, self.eui, &error), "TX_ACK")
                            .await;
                        return;
                    }
                    inc(&self.counters.downlinks);
                    self.send(&wire::tx_ack(token, self.eui, "NONE"), "TX_ACK")
                        .await;
                    // Err only when no listener exists, i.e. the gateway is being dropped.
                    let _ = self.downlinks.send(downlink);
                }
                Err(e) => {
                    // As the reference forwarder does with a txpk it cannot read: log, no TX_ACK.
                    inc(&self.counters.invalid);
                    tracing::debug!(gateway = %self.eui, error = %e, "unusable PULL_RESP");
                }
            },
            Err(e) => {
                inc(&self.counters.invalid);
                tracing::debug!(gateway = %self.eui, error = %e, "datagram from the server not understood");
            }
        }
    }
}

/// The gateway's background task: receives, keeps the downlink route open, reports status.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut buf = vec![0u8; 65_536];
    let mut next_pull = Instant::now();
    let mut next_stat = inner
        .options
        .stat_interval
        .map(|every| Instant::now() + every);
    loop {
        // A far-off instant stands in for "never" when status reports are off.
        let stat_at = next_stat.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            biased;
            () = inner.stop.cancelled() => break,
            received = inner.socket.recv(&mut buf) => match received {
                Ok(n) => inner.receive(buf.get(..n).unwrap_or_default()).await,
                // An ICMP error for an earlier datagram (the server is not up yet): the keep-alive retries.
                Err(e) => tracing::debug!(gateway = %inner.eui, error = %e, "UDP receive error"),
            },
            () = tokio::time::sleep_until(next_pull) => {
                inner.pull().await;
                let every = if *inner.pull_acks.borrow() > 0 {
                    inner.options.keepalive
                } else {
                    inner.options.keepalive.min(PULL_RETRY)
                };
                next_pull = Instant::now() + every;
            }
            () = tokio::time::sleep_until(stat_at), if next_stat.is_some() => {
                inner.report().await;
                next_stat = inner.options.stat_interval.map(|every| Instant::now() + every);
            }
        }
    }
    tracing::debug!(gateway = %inner.eui, "simulated gateway stopped");
}
