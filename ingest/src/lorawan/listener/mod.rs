//! The Semtech UDP listener on `--lorawan-addr`: gateways push radio packets (PUSH_DATA), keep their downlink
//! route open (PULL_DATA) and report downlinks (TX_ACK). One task owns the socket and every piece of state;
//! each concern has a file, as ChirpStack's `uplink/` does:
//!
//! - `datagram`: the socket's datagrams — the per-source rate limit, parsing, the gateway allow-list (a
//!   registered EUI; Semtech UDP has no authentication), PUSH_ACK / PULL_ACK, the downlink route;
//! - `uplink`: a data-up frame — its DevAddr's session (`sessions`, a cache), MIC with the full frame
//!   counter, replay check, decryption, refusals; `join`: OTAA join requests;
//! - `counters`: the group commit of accepted frames' counters; `dedup`: copies of a frame heard by
//!   several gateways, the collection window, and the journal append;
//! - `downlink`: class A downlinks after each accepted uplink — the device's queue, ACKs of confirmed
//!   uplinks, retries of confirmed downlinks, RX1/RX2 timing, the best gateway, TX_ACKs — in a task of its own;
//! - `status`: gateway status, written at most once a second; `metrics`: the counters in `/metrics`.
//!
//! **An uplink is accepted — journaled — only once its frame counter is durable**, so no frame accepted
//! before a crash (even `kill -9`, even power loss) can be accepted again. Counters are committed in groups
//! (one redb transaction and fsync for every frame that arrived while the previous commit ran, the way the
//! journal commits), on the blocking pool, never on a tokio worker. Meanwhile the frame waits in its
//! collection window (`COLLECT_WINDOW`, for the other gateways' copies), so the commit costs no latency.
//! A crash after the commit and before the append loses that frame: its counter is spent, and a Semtech
//! gateway never retransmits an uplink anyway.
//!
//! The PUSH_ACK is sent as soon as the datagram is read and its gateway known, before its frames are
//! checked: it acknowledges the datagram (the protocol's meaning; a refused frame gets one too), not the
//! frames, so it need not wait for a disk.
//!
//! A refused frame of a known device is never journaled: a replay (its MIC holds) is counted on the device's
//! status, anything unverifiable only in memory (see `uplink::refuse`); a frame from an unknown DevAddr is
//! counted. A datagram from an unregistered gateway is counted and dropped, unanswered.
mod counters;
mod datagram;
mod dedup;
mod downlink;
mod join;
mod metrics;
mod sessions;
mod status;
mod uplink;

pub use metrics::Metrics;

use bydata_schemas::{Eui64, UnixNanos};
use bydata_store::journal::Journal;
use bydata_store::refusals::Refusals;
use bydata_store::{GatewayStatus, SharedRegistry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

/// How often gateway status is written.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long a frame waits for copies from other gateways before it is journaled (ChirpStack uses 200 ms).
const COLLECT_WINDOW: Duration = Duration::from_millis(200);
/// Most datagrams read in one wake-up of the listener before its timers and finished jobs are looked at.
const DRAIN_MAX: usize = 256;
/// Most (DevAddr, FCnt) pairs remembered for de-duplication.
const MAX_RECENT: usize = 100_000;

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
    /// Transmissions of a confirmed downlink (the first included) before it fails unacknowledged; also how
    /// often any downlink is tried again after a gateway refused to transmit it (TX_ACK error).
    pub downlink_attempts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            datagrams_per_sec: 500,
            downlink_attempts: 3,
        }
    }
}

/// What the listener needs.
#[derive(Clone)]
pub struct Deps {
    pub registry: SharedRegistry,
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
    /// Shared with the downlink task, which sends PULL_RESPs on it.
    socket: Arc<UdpSocket>,
    deps: Deps,
    /// Gateway allow-list (a cache of the registry's answers).
    gateways: datagram::Gateways,
    /// Status changes not yet written, and the write running.
    pending: HashMap<Eui64, GatewayStatus>,
    status_write: Job<bydata_store::Result<()>>,
    /// Where each gateway's PULL_DATA came from: its downlink route.
    downlink: HashMap<Eui64, SocketAddr>,
    /// Sessions by DevAddr, as last read from the registry, with the counters accepted since.
    sessions: sessions::Sessions,
    /// Accepted frames' counters on their way to the registry.
    counters: counters::Counters,
    /// Recent frames, and the frames in their collection window.
    dedup: dedup::Dedup,
    /// (DevEUI, DevNonce) of recent accepted joins → when (the same request through another gateway).
    recent_joins: HashMap<(Eui64, u16), Instant>,
    /// The class A downlink task.
    downlinks: downlink::Downlinks,
}

/// Serves `socket` until `shutdown`, then commits the counters of the frames it accepted, journals them and
/// writes the last status changes.
pub async fn run(config: Config, socket: UdpSocket, deps: Deps, shutdown: CancellationToken) {
    let mut rate = datagram::rate(&config);
    let socket = Arc::new(socket);
    let downlinks =
        downlink::Downlinks::start(&config, &deps, socket.clone(), shutdown.child_token());
    let mut listener = Listener {
        socket,
        downlinks,
        gateways: datagram::Gateways::default(),
        pending: HashMap::new(),
        status_write: status::idle(),
        downlink: HashMap::new(),
        sessions: sessions::Sessions::default(),
        counters: counters::Counters::new(deps.registry.clone()),
        dedup: dedup::Dedup::new(deps.journal.clone()),
        recent_joins: HashMap::new(),
        deps,
    };
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut collect = tokio::time::interval(COLLECT_WINDOW / 4);
    collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Backpressure: while the counters or the held frames are at their bound, datagrams wait in the
        // socket's buffer (and beyond it are dropped by the kernel) until a commit or an append ends.
        let reading = !listener.counters.full() && !listener.dedup.full();
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => listener.write_status(),
            written = listener.status_write.finished() => status::status_written(written),
            _ = collect.tick(), if !listener.dedup.is_empty() => listener.release(COLLECT_WINDOW),
            done = listener.counters.finished() => listener.committed(done),
            appended = listener.dedup.appended() => dedup::log_failed_append(appended),
            Some((gateway, delta)) = listener.downlinks.status.recv() => {
                listener.pending.entry(gateway).or_default().merge(&delta);
            }
            received = listener.socket.recv_from(&mut buf), if reading => {
                listener.drain(&mut rate, &mut buf, received).await;
            }
        }
        listener.counters.start();
    }
    listener.flush_counters().await;
    listener.dedup.drain().await;
    listener.release(Duration::ZERO);
    listener.dedup.drain().await;
    listener.flush_status().await;
    listener.downlinks.stop().await;
}

impl Listener {
    /// Handles the datagram just received and then every one already waiting in the socket's buffer (at
    /// most `DRAIN_MAX`, and only while there is room for their frames): one wake-up of the task serves a
    /// burst from many gateways instead of one datagram.
    async fn drain(
        &mut self,
        rate: &mut bydata_admission::SourceRate,
        buf: &mut [u8],
        first: std::io::Result<(usize, SocketAddr)>,
    ) {
        let mut received = first;
        for handled in 1.. {
            match received {
                Ok((n, from)) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    self.datagram(rate, bytes, from).await;
                }
                // ICMP errors from an earlier send surface here on some systems; the socket is still good.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            }
            if handled >= DRAIN_MAX || self.counters.full() || self.dedup.full() {
                return;
            }
            received = match self.socket.try_recv_from(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                other => other,
            };
        }
    }
}

/// One blocking job at a time on tokio's blocking pool (a registry commit, a batch of journal appends),
/// awaited from the listener's loop without blocking it.
struct Job<T> {
    running: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Job<T> {
    fn idle() -> Self {
        Self { running: None }
    }

    fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Starts `work`; the caller checks `busy` first (a job already running is never replaced).
    fn start(&mut self, work: impl FnOnce() -> T + Send + 'static) {
        debug_assert!(self.running.is_none());
        self.running = Some(tokio::task::spawn_blocking(work));
    }

    /// Starts `work` that waits on the registry port (which runs its transactions off the workers).
    fn start_async(&mut self, work: impl std::future::Future<Output = T> + Send + 'static) {
        debug_assert!(self.running.is_none());
        self.running = Some(tokio::spawn(work));
    }

    /// The running job's result; pending forever while none runs. Cancel-safe: dropping this future
    /// leaves the job running and its result to the next call.
    async fn finished(&mut self) -> Result<T, JoinError> {
        let Some(running) = self.running.as_mut() else {
            return std::future::pending().await;
        };
        let result = running.await;
        self.running = None;
        result
    }
}
