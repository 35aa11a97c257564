//! A simulated LoRaWAN gateway: a Semtech UDP packet forwarder (protocol v2) in front of a radio that hears
//! whatever [`SimGateway::uplink`] is given.
//!
//! One UDP socket, connected to the server, carries both directions (the server answers the address a
//! PULL_DATA came from). A background task owns the receiving side and the timers: PULL_DATA at once, then
//! every second until the first PULL_ACK and every `keepalive` after; a `stat` report every `stat_interval`;
//! PUSH_ACKs are handed to the uplink waiting for that token; a PULL_RESP is answered with a TX_ACK and its
//! downlink broadcast to every [`DownlinkListener`] (the radio: every device in range hears every downlink
//! and keeps only what is for it) — unless, as the reference forwarder's just-in-time queue would, the
//! gateway refuses it: `TOO_LATE` when its `tmst` has passed on the gateway's counter, or the error set
//! with [`SimGateway::refuse_downlinks`] (then the downlink is not sent, and the TX_ACK says why).
//!
//! Overflow policy of the downlink queue: a broadcast channel of `downlink_queue` entries; a listener that
//! falls behind loses the oldest downlinks, counted in [`GatewayStats::downlinks_missed`].
use super::forwarder::{self, Inner};
use super::wire::{self, RxMeta};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use bydata_schemas::Eui64;
use serde_json::json;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// EU868's default and common channels, in the order a concentrator numbers them.
const EU868_CHANNELS: [f64; 8] = [868.1, 868.3, 868.5, 867.1, 867.3, 867.5, 867.7, 867.9];

/// How a packet was received: the radio metadata of one `rxpk`.
#[derive(Debug, Clone, PartialEq)]
pub struct RxParams {
    /// Signal strength, dBm.
    pub rssi: i32,
    /// LoRa signal-to-noise ratio, dB.
    pub lsnr: f64,
    /// Centre frequency, MHz.
    pub freq: f64,
    /// LoRa data rate, e.g. `"SF7BW125"`.
    pub datr: String,
    /// Concentrator counter (µs) at the end of reception; `None` = the gateway's counter now.
    pub tmst: Option<u32>,
}

impl Default for RxParams {
    fn default() -> Self {
        Self {
            rssi: -60,
            lsnr: 7.5,
            freq: 868.1,
            datr: "SF7BW125".to_owned(),
            tmst: None,
        }
    }
}

/// A downlink the server asked the gateway to send (the `txpk` of a PULL_RESP).
#[derive(Debug, Clone, PartialEq)]
pub struct Downlink {
    /// The PHYPayload.
    pub phy: Vec<u8>,
    /// When to send it, on the gateway's counter; `None` = immediately.
    pub tmst: Option<u32>,
    /// MHz.
    pub freq: f64,
    pub datr: String,
    /// Inverted polarity, as LoRaWAN downlinks are sent (devices hear nothing else).
    pub ipol: bool,
}

/// How a gateway behaves; [`GatewayOptions::default`] is the reference packet forwarder's.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Interval of PULL_DATA keep-alives once the server answers them.
    pub keepalive: Duration,
    /// Interval of `stat` reports; `None` = none.
    pub stat_interval: Option<Duration>,
    /// How long to wait for the PUSH_ACK of a PUSH_DATA before sending it again.
    pub ack_timeout: Duration,
    /// Sends of one PUSH_DATA before [`SimGateway::uplink`] gives up.
    pub attempts: u32,
    /// Downlinks a listener may fall behind by before it loses the oldest.
    pub downlink_queue: usize,
    /// Stamps `rxpk.time` and `stat.time`.
    pub clock: Arc<dyn Clock>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(10),
            stat_interval: Some(Duration::from_secs(30)),
            ack_timeout: Duration::from_secs(2),
            attempts: 3,
            downlink_queue: 32,
            clock: Arc::new(SystemClock),
        }
    }
}

/// What a gateway has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// PUSH_DATA datagrams sent (resends and status reports included).
    pub push_data: u64,
    pub push_ack: u64,
    pub pull_data: u64,
    pub pull_ack: u64,
    /// Radio packets forwarded.
    pub rx_packets: u64,
    /// PULL_RESPs with a usable `txpk` that were sent, each answered with a TX_ACK `NONE`.
    pub downlinks: u64,
    /// PULL_RESPs refused with a TX_ACK error (`TOO_LATE`, or the one set by [`SimGateway::refuse_downlinks`]).
    pub downlinks_refused: u64,
    /// Downlinks a listener lost because it fell behind (see the module docs).
    pub downlinks_missed: u64,
    /// Datagrams from the server that were not understood.
    pub invalid: u64,
}

/// A running simulated gateway; dropping it stops it.
#[derive(Debug)]
pub struct SimGateway {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
    /// The listener behind [`SimGateway::next_downlink`].
    own: tokio::sync::Mutex<DownlinkListener>,
}

impl SimGateway {
    /// Starts a gateway with the reference forwarder's defaults; see [`SimGateway::start_with`].
    pub async fn start(
        eui: Eui64,
        server: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        Self::start_with(eui, server, GatewayOptions::default(), shutdown).await
    }

    /// Binds a UDP socket on an ephemeral port (on 127.0.0.1 when the server is local), connects it to
    /// `server` and starts the background task, which sends the first PULL_DATA at once and runs until
    /// `shutdown` or until the gateway is dropped.
    pub async fn start_with(
        eui: Eui64,
        server: SocketAddr,
        options: GatewayOptions,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let udp = |action| {
            move |source| Error::Udp {
                gateway: eui,
                action,
                source,
            }
        };
        let local: SocketAddr = match server {
            SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await.map_err(udp("binding"))?;
        socket
            .connect(server)
            .await
            .map_err(udp("connecting to the server"))?;
        let (downlinks, receiver) = broadcast::channel(options.downlink_queue.max(1));
        let stop = shutdown.child_token();
        let inner = Arc::new(Inner::new(eui, server, socket, options, downlinks, stop));
        let task = tokio::spawn(forwarder::run(Arc::clone(&inner)));
        let own = tokio::sync::Mutex::new(DownlinkListener {
            receiver,
            inner: Arc::clone(&inner),
        });
        Ok(Self { inner, task, own })
    }

    pub fn eui(&self) -> Eui64 {
        self.inner.eui
    }

    pub fn server(&self) -> SocketAddr {
        self.inner.server
    }

    /// The address the gateway sends from.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.inner.socket.local_addr().map_err(|source| Error::Udp {
            gateway: self.inner.eui,
            action: "reading the local address",
            source,
        })
    }

    /// The concentrator counter now: microseconds since the gateway started, wrapping at 2³².
    pub fn tmst(&self) -> u32 {
        self.inner.tmst()
    }

    /// Waits for the first PULL_ACK: from then on the server knows the gateway and can send it downlinks.
    pub async fn connected(&self, timeout: Duration) -> Result<()> {
        let mut acks = self.inner.pull_acks.subscribe();
        let acked = tokio::select! {
            () = self.inner.stop.cancelled() => return Err(self.inner.stopped()),
            acked = tokio::time::timeout(timeout, acks.wait_for(|n| *n > 0)) => acked,
        };
        match acked {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(self.inner.stopped()),
            Err(_) => Err(Error::NoAck {
                what: "PULL_ACK",
                gateway: self.inner.eui,
                server: self.inner.server,
                attempts: self.inner.stats().pull_data,
                timeout,
            }),
        }
    }

    /// Forwards one radio packet: a PUSH_DATA with one `rxpk`, sent until its PUSH_ACK arrives (`attempts`
    /// sends, `ack_timeout` apart), else [`Error::NoAck`].
    pub async fn uplink(&self, phy: &[u8], rx: RxParams) -> Result<()> {
        let inner = &self.inner;
        let meta = RxMeta {
            tmst: rx.tmst.unwrap_or_else(|| inner.tmst()),
            time: inner.options.clock.now(),
            freq: rx.freq,
            chan: EU868_CHANNELS
                .iter()
                .position(|f| (f - rx.freq).abs() < 1e-4)
                .map_or(0, |i| i as u8),
            datr: &rx.datr,
            rssi: rx.rssi,
            lsnr: rx.lsnr,
        };
        let token = inner.token();
        let datagram =
            wire::push_data(token, inner.eui, &json!({"rxpk": [wire::rxpk(phy, &meta)]}));
        inner.count_rx_packet();
        inner.push(token, &datagram).await
    }

    /// The next downlink heard since the gateway started (or since the previous call), waiting at most
    /// `timeout`; `Ok(None)` when none came.
    pub async fn next_downlink(&self, timeout: Duration) -> Result<Option<Downlink>> {
        self.own.lock().await.next(timeout).await
    }

    /// From now on, answers every PULL_RESP with this TX_ACK error (e.g. `"COLLISION_PACKET"`) and sends
    /// nothing; `None` sends again.
    pub fn refuse_downlinks(&self, error: Option<&str>) {
        self.inner.refuse(error);
    }

    /// A listener that hears every downlink from now on, independently of other listeners.
    pub fn listen(&self) -> DownlinkListener {
        DownlinkListener {
            receiver: self.inner.downlinks.subscribe(),
            inner: Arc::clone(&self.inner),
        }
    }

    pub fn stats(&self) -> GatewayStats {
        self.inner.stats()
    }

    /// Stops the background task and waits for it.
    pub async fn stop(mut self) {
        self.inner.stop.cancel();
        // A panic in the task has been reported by the runtime already.
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimGateway {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

/// Hears a gateway's downlinks (see [`SimGateway::listen`]).
#[derive(Debug)]
pub struct DownlinkListener {
    receiver: broadcast::Receiver<Downlink>,
    inner: Arc<Inner>,
}

impl DownlinkListener {
    /// The next downlink, waiting at most `timeout`; `Ok(None)` when none came. Downlinks lost by falling
    /// behind are counted and skipped.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Downlink>> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = tokio::select! {
                () = self.inner.stop.cancelled() => return Err(self.inner.stopped()),
                received = tokio::time::timeout_at(deadline, self.receiver.recv()) => received,
            };
            match received {
                Err(_) => return Ok(None),
                Ok(Ok(downlink)) => return Ok(Some(downlink)),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    self.inner.missed(n);
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(self.inner.stopped()),
            }
        }
    }
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
