//! The embedded MQTT broker (rumqttd) with bydata's device identity, topic authorisation and admission control.
//!
//! rumqttd authenticates but does not authorise topics, an internal subscriber cannot tell who published, and
//! it cannot see where a connection comes from. So bydata puts an edge of its own in front ([`edge`]: caps
//! per source and in total, the CONNECT read with a deadline, logins checked by a bounded [`gate`] with
//! backoff), builds rumqttd's `Router` and `Server` itself on a loopback port, and hands the server a protocol
//! wrapper ([`protocol::DeviceProtocol`], one instance per connection) that sees every packet:
//!
//! CONNECT (client id == username; the edge has checked the password) → identity of the connection
//! PUBLISH to `devices/{id}/up` → appended to the journal *before* the router sees the packet (so before the
//! PUBACK); any other topic → refused (counted on the device's status, aggregated), connection closed.
//! SUBSCRIBE outside `devices/{id}/` → refused, connection closed.
//!
//! MQTT 5 takes the same path through its own rumqttd listener and wrapper ([`v5`]), which also resolves topic
//! aliases, bounds user properties and answers refusals with reason codes instead of closing. MQTT over
//! WebSockets ([`websocket`]) is unwrapped by the edge into the same byte stream as TCP.
mod auth;
mod connect;
pub mod downlink;
mod edge;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod metrics;
mod protocol;
mod v5;
mod websocket;

pub use downlink::Downlinks;
pub use metrics::Metrics;

use bydata_schemas::UnixNanos;
use bydata_store::SharedRegistry;
use bydata_store::journal::Journal;
use bydata_store::refusals::Refusals;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Broker settings (`[broker]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where devices connect (MQTT 3.1.1 over TCP), or `off`.
    #[serde(with = "bydata_schemas::listen")]
    pub mqtt_addr: Option<SocketAddr>,
    /// Where devices connect with MQTT over TLS (needs `[tls]`), or `off`.
    #[serde(with = "bydata_schemas::listen")]
    pub mqtts_addr: Option<SocketAddr>,
    /// Where devices connect with MQTT over WebSockets (path `/mqtt`, subprotocol `mqtt`), or `off`.
    #[serde(with = "bydata_schemas::listen")]
    pub ws_addr: Option<SocketAddr>,
    /// Where devices connect with MQTT over secure WebSockets (needs `[tls]`), or `off`.
    #[serde(with = "bydata_schemas::listen")]
    pub wss_addr: Option<SocketAddr>,
    /// Largest MQTT message accepted, in bytes (topic and payload); larger ones are refused and counted.
    pub max_message_bytes: usize,
    /// Most simultaneous connections (lowered at start if the process's file limit cannot hold them: each
    /// costs three descriptors — the device's socket and the two ends of the relay to rumqttd).
    pub max_connections: usize,
    /// Most simultaneous connections from one address (IPv6: one /64).
    pub max_connections_per_source: usize,
    /// Most unacknowledged QoS 1 messages the broker keeps per connection.
    pub max_inflight: usize,
    /// How long a new connection may take to send its whole CONNECT, in milliseconds.
    pub connect_timeout_ms: u16,
    /// Longest keep-alive granted, in seconds: a longer one is shortened to this, so a silent connection is
    /// closed after 1.5 times it.
    pub max_keep_alive_secs: u16,
    /// Argon2 password checks run at once (0: one per CPU core). Each holds ~19 MiB while it runs.
    pub password_checks: usize,
    /// How long a login may wait for a password check before it is refused as busy, in milliseconds.
    pub password_queue_ms: u32,
    /// How long a verified login is remembered, so reconnects skip the slow check, in seconds.
    pub verified_cache_secs: u32,
    /// Delivering downlinks to MQTT devices (`[broker.downlinks]`).
    pub downlinks: downlink::Config,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mqtt_addr: Some(SocketAddr::from(([127, 0, 0, 1], 1883))),
            mqtts_addr: None,
            ws_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8083))),
            wss_addr: None,
            max_message_bytes: 64 * 1024,
            max_connections: 10_000,
            max_connections_per_source: 256,
            max_inflight: 100,
            connect_timeout_ms: 5_000,
            max_keep_alive_secs: 3_600,
            password_checks: 0,
            password_queue_ms: 5_000,
            verified_cache_secs: 3_600,
            downlinks: downlink::Config::default(),
        }
    }
}

impl Config {
    /// The settings of the login gate (`bydata_store::logins`), which `serve` starts once for the broker and
    /// the HTTP push.
    pub fn login_gate(&self) -> bydata_store::logins::GateConfig {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        bydata_store::logins::GateConfig {
            checks: if self.password_checks == 0 {
                cores
            } else {
                self.password_checks
            },
            queue_wait: Duration::from_millis(u64::from(self.password_queue_ms.max(1))),
            remember: Duration::from_secs(u64::from(self.verified_cache_secs)),
        }
    }
}

/// What the broker needs from the rest of bydata.
#[derive(Clone)]
pub struct Deps {
    pub journal: Arc<Journal>,
    pub registry: SharedRegistry,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
    /// Where refusals of authenticated devices are counted (aggregated onto their status).
    pub refusals: Arc<Refusals>,
    /// Where inbound network-server integrations' events go; `None` refuses them.
    pub integrations: Option<Arc<dyn IntegrationSink>>,
    /// The MQTT delivery of downlinks (`None`: no downlinks are delivered).
    pub downlinks: Option<Arc<Downlinks>>,
    /// The login gate, shared with the HTTP push (`Gate::new(registry, metrics, config.login_gate())`).
    pub logins: Arc<bydata_store::logins::Gate>,
}

/// Takes an event an inbound integration (ChirpStack, The Things Stack) published into the broker. Called
/// synchronously before the PUBACK: an `Ok` means the event is journaled or deliberately dropped (and
/// counted); an `Err` (the journal failed) closes the connection without a PUBACK, so the sender retries.
pub trait IntegrationSink: Send + Sync {
    fn publish(
        &self,
        integration: &bydata_schemas::IntegrationId,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), SinkError>;
}

/// Why an [`IntegrationSink`] did not take an event: nothing of it was journaled, so the sender must retry.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("integration {integration} is not registered")]
    NotRegistered {
        integration: bydata_schemas::IntegrationId,
    },
    #[error(transparent)]
    Registry(bydata_store::Error),
    #[error(transparent)]
    Journal(bydata_store::journal::Error),
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("MQTT listener on {addr} stopped: {detail}")]
    Listener { addr: SocketAddr, detail: String },
    #[error("cannot start the MQTT broker: {detail}")]
    Start { detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the broker until `shutdown` is cancelled. Returns an error at once if an address cannot be bound.
///
/// Listens on `mqtt_addr` and `ws_addr` and, with `tls`, on `mqtts_addr` and `wss_addr` (any may be off, not
/// all); they share the connection caps. The rumqttd router runs on its own OS thread (it cannot be stopped; it
/// ends with the process); the edge, the rumqttd listeners and the connections run on the caller's
/// multi-thread tokio runtime.
pub async fn run(
    config: Config,
    deps: Deps,
    tls: Option<bydata_admission::tls::Tls>,
    shutdown: CancellationToken,
) -> Result<()> {
    use edge::Transport;
    let acceptor = |key: &str| match &tls {
        Some(tls) => tls.acceptor(&[]).map_err(|e| Error::Start {
            detail: e.to_string(),
        }),
        None => Err(Error::Start {
            detail: format!("{key} is set but there is no [tls] section with cert_pem and key_pem"),
        }),
    };
    let mut listeners = Vec::new();
    for (key, addr) in [
        ("mqtt_addr", config.mqtt_addr),
        ("mqtts_addr", config.mqtts_addr),
        ("ws_addr", config.ws_addr),
        ("wss_addr", config.wss_addr),
    ] {
        let Some(addr) = addr else { continue };
        let transport = match key {
            "mqtt_addr" => Transport::Tcp,
            "mqtts_addr" => Transport::Tls(acceptor(key)?),
            "ws_addr" => Transport::WebSocket(None),
            _ => Transport::WebSocket(Some(acceptor(key)?)),
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        listeners.push((listener, transport));
    }
    if listeners.is_empty() {
        return Err(Error::Start {
            detail: "no MQTT listener: mqtt_addr, mqtts_addr, ws_addr and wss_addr are all off"
                .to_owned(),
        });
    }
    let gate = deps.logins.clone();
    let router_config = rumqttd::RouterConfig {
        max_connections: config.max_connections,
        max_outgoing_packet_count: 200,
        max_segment_size: 16 * 1024 * 1024,
        max_segment_count: 10,
        ..Default::default()
    };
    // One router on its own thread; both listeners (3.1.1 and 5) feed it.
    let router_tx = rumqttd::Router::new(0, router_config).spawn();
    let mut connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: config.connect_timeout_ms,
        max_payload_size: config.max_message_bytes,
        max_inflight_count: config.max_inflight,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(auth::handler(gate.clone()));
    let session = protocol::Session::new(
        deps.clone(),
        config.max_message_bytes,
        config.max_keep_alive_secs,
    );
    let v4 = protocol::DeviceProtocol::new(
        deps.clone(),
        config.max_message_bytes,
        config.max_keep_alive_secs,
    );
    let (v4, mut rumqttd_v4) = start_rumqttd(&connections, |settings| {
        rumqttd::Server::new(settings, router_tx.clone(), v4.clone())
    })
    .await?;
    let v5 = v5::DeviceProtocolV5::new(session, config.max_inflight);
    let (v5, mut rumqttd_v5) = start_rumqttd(&connections, |settings| {
        rumqttd::Server::new(settings, router_tx.clone(), v5.clone())
    })
    .await?;
    if let Some(downlinks) = deps.downlinks.clone() {
        // The delivery publishes through a local link; its receiving half only has to be kept and emptied.
        let router = router_tx.clone();
        let (tx, mut rx) = downlink::link(move |id| rumqttd::local::LinkBuilder::new(id, router))
            .map_err(|detail| Error::Start { detail })?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = async { while rx.next().await.is_ok() {} } => {}
            }
        });
        tokio::spawn(downlinks.run(tx, shutdown.clone()));
    }
    let caps = bydata_admission::ConnectionCaps::new(
        config.max_connections,
        config.max_connections_per_source,
    );
    let _ = deps.metrics.caps.set(caps.clone());
    let edge = edge::Edge::new(&config, deps, gate, caps, edge::Upstream { v4, v5 });
    let addr = listeners
        .first()
        .and_then(|(l, _)| l.local_addr().ok())
        .unwrap_or(v4);
    let serve =
        futures_util::future::join_all(listeners.into_iter().map(|(listener, transport)| {
            edge.clone().serve(listener, transport, shutdown.clone())
        }));
    let stopped = |result: std::result::Result<std::result::Result<(), String>, _>| {
        Err(Error::Listener {
            addr,
            detail: match result {
                Ok(Ok(())) => "the broker behind the edge stopped".to_owned(),
                Ok(Err(e)) => e,
                Err(e) => format!("{e}"),
            },
        })
    };
    tokio::select! {
        _ = serve => Ok(()),
        result = &mut rumqttd_v4 => stopped(result),
        result = &mut rumqttd_v5 => stopped(result),
    }
}

type RumqttdTask = tokio::task::JoinHandle<std::result::Result<(), String>>;
/// Starts a rumqttd listener (made by `server` from its settings) on a free loopback port (rumqttd cannot
/// report a port it picked, so one is picked first and, should another process take it meanwhile, another).
async fn start_rumqttd<P>(
    connections: &rumqttd::ConnectionSettings,
    server: impl Fn(rumqttd::ServerSettings) -> rumqttd::Server<P>,
) -> Result<(SocketAddr, RumqttdTask)>
where
    P: rumqttd::protocol::Protocol + Clone + Send + Sync + 'static,
{
    let mut last_error = String::new();
    for _ in 0..5 {
        let listen = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::Start {
                detail: format!("no free loopback port: {e}"),
            })?;
        let settings = rumqttd::ServerSettings {
            name: "devices".to_owned(),
            listen,
            tls: None,
            next_connection_delay_ms: 0,
            connections: connections.clone(),
        };
        let mut server = server(settings);
        let task: RumqttdTask = tokio::spawn(async move {
            server
                .start(rumqttd::LinkType::Remote)
                .await
                .map_err(|e| e.to_string())
        });
        for _ in 0..200 {
            if task.is_finished() {
                break;
            }
            if tokio::net::TcpStream::connect(listen).await.is_ok() {
                return Ok((listen, task));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if !task.is_finished() {
            task.abort();
        }
        last_error = match task.await {
            Ok(Err(e)) => e,
            _ => "it did not listen".to_owned(),
        };
    }
    Err(Error::Start {
        detail: format!("rumqttd could not listen on loopback: {last_error}"),
    })
}

/// The subtree a device may use: `devices/{id}/`.
pub(crate) fn device_prefix(id: &bydata_schemas::DeviceId) -> String {
    format!("devices/{id}/")
}
