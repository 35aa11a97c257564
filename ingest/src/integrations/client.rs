//! bydata as an MQTT client of a network server's broker: connect, subscribe to its uplink events, and hand
//! each message, parsed, to the caller's bounded queue.
//!
//! - **Backpressure.** Each message is [`parse`](super::parse)d and sent as a [`Delivery`] with `send().await`:
//!   while the queue is full nothing more is read from the broker, and TCP pushes back to it. If the queue
//!   stays full for longer than about 1.5 × [`KEEP_ALIVE`], no ping is sent and the broker drops the
//!   connection, which is then re-established like any other.
//! - **Sessions.** A clean session on every connection, subscribing again after each CONNACK. The broker
//!   therefore keeps nothing for bydata while it is away (messages published meanwhile are not delivered) and
//!   a changed topic never leaves an old subscription behind. QoS 1 for ChirpStack, 0 for The Things Stack
//!   (its MQTT server offers nothing else); QoS 1 messages are acknowledged on receipt, since with a clean
//!   session an unacknowledged one is not sent again anyway.
//! - **Reconnecting.** After any connection error, wait and reconnect: 1 s, doubling to at most 30 s, back to
//!   1 s once the broker has accepted the subscription. A refused subscription (the user's ACL) is an error
//!   too.
//! - **Limits.** Incoming packets larger than [`MAX_PACKET_SIZE`] close the connection (the message is lost;
//!   uplink events are a few KiB).
//! - **Shutdown.** On cancellation, a DISCONNECT is sent when connected (waiting at most [`GOODBYE`]) and
//!   [`subscribe`] returns.

use super::{Event, IntegrationError, Kind};
use bydata_schemas::UnixNanos;
use bydata_store::LastError;
use rumqttc::{AsyncClient, ConnectionError, MqttOptions, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// MQTT keep-alive: a dead connection is noticed within about 1.5 times this.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// The largest packet accepted from the broker.
pub(crate) const MAX_PACKET_SIZE: usize = 256 * 1024;
/// The first wait before reconnecting, and the longest.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a DISCONNECT may take at shutdown.
pub(crate) const GOODBYE: Duration = Duration::from_millis(500);
/// Requests bydata queues for rumqttc's event loop: one SUBSCRIBE per connection and the final DISCONNECT, each
/// queued while the loop is being polled, so two never wait at once.
const REQUEST_CAPACITY: usize = 4;

/// The network server's MQTT broker (plain TCP: TLS is not built in).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteBroker {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub username: Option<String>,
    /// Never logged or shown (the `Debug` output says whether one is set).
    #[serde(default)]
    pub password: Option<String>,
    /// Unique per broker: a second client with the same ID disconnects the first.
    pub client_id: String,
    /// The topic filter; [`Kind::subscription`] when `None`.
    #[serde(default)]
    pub topic: Option<String>,
}

fn default_port() -> u16 {
    1883
}

impl fmt::Debug for RemoteBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteBroker")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_id", &self.client_id)
            .field("topic", &self.topic)
            .finish()
    }
}

impl RemoteBroker {
    /// Refuses settings no connection attempt could fix, so they are reported at startup.
    pub fn check(&self) -> Result<(), ClientError> {
        if self.host.trim().is_empty() {
            return Err(ClientError::EmptyHost);
        }
        if self.port == 0 {
            return Err(ClientError::ZeroPort);
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(ClientError::PasswordWithoutUsername);
        }
        if let Some(topic) = &self.topic
            && (topic.is_empty() || !rumqttc::valid_filter(topic))
        {
            return Err(ClientError::InvalidTopic {
                topic: topic.clone(),
            });
        }
        Ok(())
    }

    fn topic(&self, kind: Kind) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| kind.subscription().to_owned())
    }

    /// The rumqttc options: clean session, keep-alive, packet size limit, credentials.
    pub(crate) fn options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
        if let Some(username) = &self.username {
            options.set_credentials(username, self.password.clone().unwrap_or_default());
        }
        options
    }
}

/// Settings of a [`RemoteBroker`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("the network server's broker host is empty")]
    EmptyHost,
    #[error("the network server's broker port is 0")]
    ZeroPort,
    #[error(
        "a password is set for the network server's broker without a username; MQTT sends neither then"
    )]
    PasswordWithoutUsername,
    #[error("topic {topic:?} is not a valid MQTT topic filter")]
    InvalidTopic { topic: String },
}

/// One message from the network server's broker: its topic and what [`parse`](super::parse) made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub topic: String,
    pub result: Result<Event, IntegrationError>,
}

/// The client's state for status pages and metrics; shared with [`subscribe`], which updates it.
pub struct ClientStatus {
    connected: AtomicBool,
    received: AtomicU64,
    parse_errors: AtomicU64,
    stamps: Mutex<Stamps>,
    clock: Box<dyn Fn() -> UnixNanos + Send + Sync>,
}

#[derive(Debug, Default)]
struct Stamps {
    last_connected: Option<UnixNanos>,
    last_error: Option<LastError>,
}

/// A copy of a [`ClientStatus`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnapshot {
    /// Connected to the broker now.
    pub connected: bool,
    /// When the broker last accepted a connection.
    pub last_connected: Option<UnixNanos>,
    /// The last connection or subscription error (never contains the password).
    pub last_error: Option<LastError>,
    /// Messages received from the broker, including those refused.
    pub messages_received: u64,
    /// Messages [`parse`](super::parse) refused.
    pub parse_errors: u64,
}

impl ClientStatus {
    /// A status stamped with the given clock.
    pub fn new(clock: impl Fn() -> UnixNanos + Send + Sync + 'static) -> Self {
        Self {
            connected: AtomicBool::new(false),
            received: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
            stamps: Mutex::new(Stamps::default()),
            clock: Box::new(clock),
        }
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        StatusSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            last_connected: stamps.last_connected,
            last_error: stamps.last_error.clone(),
            messages_received: self.received.load(Ordering::Relaxed),
            parse_errors: self.parse_errors.load(Ordering::Relaxed),
        }
    }

    fn set_connected(&self) {
        let now = (self.clock)();
        self.connected.store(true, Ordering::Relaxed);
        self.stamps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_connected = Some(now);
    }

    fn set_disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    fn set_error(&self, reason: String) {
        let time = (self.clock)();
        self.stamps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error = Some(LastError { time, reason });
    }

    fn count(&self, result: &Result<Event, IntegrationError>) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.parse_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for ClientStatus {
    /// A status stamped with the system clock.
    fn default() -> Self {
        Self::new(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }
}

impl fmt::Debug for ClientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientStatus")
            .field(&self.snapshot())
            .finish()
    }
}

/// Capped exponential backoff: [`FIRST_BACKOFF`], doubling, at most [`MAX_BACKOFF`].
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self {
            next: FIRST_BACKOFF,
        }
    }

    /// The wait before the next attempt; the one after is twice as long, up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }
}

fn qos(kind: Kind) -> QoS {
    match kind {
        Kind::Chirpstack => QoS::AtLeastOnce,
        Kind::Tts => QoS::AtMostOnce,
    }
}

/// Reads the network server's uplink events until `shutdown` is cancelled or `sink`'s receiver is dropped,
/// reconnecting as long as it takes (see the module docs). Each message becomes one [`Delivery`]; `status`
/// follows the connection. Fails at once only for settings [`RemoteBroker::check`] refuses.
pub async fn subscribe(
    kind: Kind,
    remote: RemoteBroker,
    sink: mpsc::Sender<Delivery>,
    status: Arc<ClientStatus>,
    shutdown: CancellationToken,
) -> Result<(), ClientError> {
    remote.check()?;
    let topic = remote.topic(kind);
    let broker = format!("{}:{}", remote.host, remote.port);
    let (client, mut eventloop) = AsyncClient::new(remote.options(), REQUEST_CAPACITY);
    let mut backoff = Backoff::new();
    loop {
        let polled = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        let failure = match polled {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                status.set_connected();
                info!(network_server = %kind, %broker, %topic, "connected to the network server's broker");
                // The queue holds REQUEST_CAPACITY requests and this is the only one queued now.
                client
                    .try_subscribe(&topic, qos(kind))
                    .err()
                    .map(|e| Failure::network(format!("could not subscribe to {topic}: {e}")))
            }
            Ok(rumqttc::Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|code| matches!(code, rumqttc::SubscribeReasonCode::Failure))
                {
                    Some(Failure::operator(format!(
                        "the broker at {broker} refused the subscription to {topic}; may this user read it?"
                    )))
                } else {
                    debug!(network_server = %kind, %topic, "subscribed");
                    backoff.reset();
                    None
                }
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => {
                let result = super::parse(kind, &publish.topic, &publish.payload);
                status.count(&result);
                let delivery = Delivery {
                    topic: publish.topic,
                    result,
                };
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    sent = sink.send(delivery) => if sent.is_err() {
                        debug!(network_server = %kind, "the receiver of deliveries is gone; stopping");
                        break;
                    },
                }
                None
            }
            Ok(_) => None,
            Err(e) => Some(Failure::from_connection(&e, &broker)),
        };
        let Some(failure) = failure else { continue };
        status.set_disconnected();
        let delay = backoff.next_delay();
        if failure.operator_must_act {
            error!(network_server = %kind, reason = %failure.reason, retry_in = ?delay, "network server's broker: cannot read uplinks");
        } else {
            warn!(network_server = %kind, reason = %failure.reason, retry_in = ?delay, "network server's broker: reconnecting");
        }
        status.set_error(failure.reason);
        // Drops the connection, if any, so that the next poll connects afresh (clean session, subscribe again).
        eventloop.clean();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    goodbye(&client, &mut eventloop).await;
    status.set_disconnected();
    Ok(())
}

/// Why the connection is being dropped and retried.
struct Failure {
    reason: String,
    /// Credentials or permissions: retrying alone will not help.
    operator_must_act: bool,
}

impl Failure {
    fn network(reason: String) -> Self {
        Self {
            reason,
            operator_must_act: false,
        }
    }

    fn operator(reason: String) -> Self {
        Self {
            reason,
            operator_must_act: true,
        }
    }

    /// rumqttc's errors carry no credentials; the broker's address is added.
    fn from_connection(e: &ConnectionError, broker: &str) -> Self {
        use rumqttc::ConnectReturnCode as Code;
        let refused = |why: &str| format!("the broker at {broker} refused the connection: {why}");
        match e {
            ConnectionError::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => {
                Self::operator(refused("check the username and password"))
            }
            ConnectionError::ConnectionRefused(Code::BadClientId) => {
                Self::operator(refused("it does not accept the client ID"))
            }
            ConnectionError::ConnectionRefused(Code::RefusedProtocolVersion) => {
                Self::operator(refused("it does not speak MQTT 3.1.1"))
            }
            ConnectionError::ConnectionRefused(code) => {
                Self::network(refused(&format!("{code:?}")))
            }
            other => Self::network(format!("connection to {broker}: {other}")),
        }
    }
}

/// Sends a DISCONNECT, when connected, so the broker ends the session at once rather than after the
/// keep-alive; waits at most [`GOODBYE`].
async fn goodbye(client: &AsyncClient, eventloop: &mut rumqttc::EventLoop) {
    if eventloop.network.is_none() || client.try_disconnect().is_err() {
        return;
    }
    let sent = async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(GOODBYE, sent).await;
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
