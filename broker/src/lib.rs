//! The embedded MQTT broker (rumqttd) with bydata's device identity and topic authorisation.
//!
//! rumqttd authenticates but does not authorise topics, and an internal subscriber cannot tell who published.
//! So bydata builds rumqttd's `Router` and `Server` itself and hands the server a protocol wrapper
//! ([`protocol::DeviceProtocol`], one instance per connection) that sees the CONNECT and every PUBLISH and
//! SUBSCRIBE of its connection:
//!
//! CONNECT (client id must equal the username; the auth handler checks the password) → identity of the connection
//! PUBLISH inside `devices/{id}/` → uplinks on `devices/{id}/up` are appended to the journal *before* the router
//! sees the packet (and so before the PUBACK); anything outside → journaled as a rejection, connection closed.
//! SUBSCRIBE outside `devices/{id}/` → rejection, connection closed.
mod auth;
mod metrics;
mod protocol;

pub use metrics::Metrics;

use bydata_schemas::UnixNanos;
use bydata_store::Registry;
use bydata_store::journal::Journal;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Broker settings (`[broker]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where devices connect (MQTT 3.1.1 over TCP).
    pub mqtt_addr: SocketAddr,
    /// Largest MQTT message accepted, in bytes (topic and payload); larger ones are refused and counted.
    pub max_message_bytes: usize,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most unacknowledged QoS 1 messages the broker keeps per connection.
    pub max_inflight: usize,
    /// How long a new connection may take to send CONNECT, in milliseconds.
    pub connect_timeout_ms: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 1883)),
            max_message_bytes: 64 * 1024,
            max_connections: 10_000,
            max_inflight: 100,
            connect_timeout_ms: 10_000,
        }
    }
}

/// What the broker needs from the rest of bydata.
#[derive(Clone)]
pub struct Deps {
    pub journal: Arc<Journal>,
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    pub metrics: Arc<Metrics>,
    /// Where inbound network-server integrations' events go; `None` refuses them.
    pub integrations: Option<Arc<dyn IntegrationSink>>,
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
    ) -> Result<(), String>;
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the broker until `shutdown` is cancelled. Returns an error at once if the address cannot be bound.
///
/// The rumqttd router runs on its own OS thread (it cannot be stopped; it ends with the process); the listener
/// and the connections run on the caller's multi-thread tokio runtime.
pub async fn run(config: Config, deps: Deps, shutdown: CancellationToken) -> Result<()> {
    // rumqttd binds inside `Server::start` and only logs a failure: check the address first so that a busy
    // port stops `bydata serve` with a clear message instead of a broker that silently is not there.
    std::net::TcpListener::bind(config.mqtt_addr).map_err(|source| Error::Bind {
        addr: config.mqtt_addr,
        source,
    })?;

    let router_config = rumqttd::RouterConfig {
        max_connections: config.max_connections,
        max_outgoing_packet_count: 200,
        max_segment_size: 16 * 1024 * 1024,
        max_segment_count: 10,
        ..Default::default()
    };
    let router_tx = rumqttd::Router::new(0, router_config).spawn();

    let mut connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: config.connect_timeout_ms,
        max_payload_size: config.max_message_bytes,
        max_inflight_count: config.max_inflight,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(auth::handler(deps.clone()));
    let settings = rumqttd::ServerSettings {
        name: "devices".to_owned(),
        listen: config.mqtt_addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let protocol = protocol::DeviceProtocol::new(deps, config.max_message_bytes);
    let mut server = rumqttd::Server::new(settings, router_tx, protocol);
    let addr = config.mqtt_addr;
    tokio::select! {
        result = server.start(rumqttd::LinkType::Remote) => Err(Error::Listener {
            addr,
            detail: match result {
                Ok(()) => "listener returned".to_owned(),
                Err(e) => e.to_string(),
            },
        }),
        () = shutdown.cancelled() => Ok(()),
    }
}

/// The subtree a device may use: `devices/{id}/`.
pub(crate) fn device_prefix(id: &bydata_schemas::DeviceId) -> String {
    format!("devices/{id}/")
}
