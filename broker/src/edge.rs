//! The MQTT edge in front of rumqttd: where connections are admitted, CONNECTs read and logins checked.
//!
//! rumqttd accepts every socket itself and cannot tell the auth handler where a connection comes from, so it
//! cannot cap connections per source or slow down a source that keeps failing. bydata therefore listens on the
//! device-facing address itself, and rumqttd on a loopback port of its own:
//!
//! ```text
//! device ──TCP──▶ edge: caps (total, per source) → [TLS handshake +] CONNECT within connect_timeout → login (gate)
//!                   │ refused: CONNACK with a return code, or closed; counted; logged once per source a minute
//!                   └ accepted: CONNECT forwarded ──▶ rumqttd (loopback) — relayed both ways until either closes
//! ```
//!
//! Nothing about an unauthenticated connection is written anywhere. What an authenticated device does wrong
//! at CONNECT (a last will, keep-alive 0) is refused with a reason on its status.
use crate::auth::{self, Refusal};
use crate::gate::{Gate, Identity};
use crate::metrics::inc;
use crate::{Config, Deps};
use bydata_admission::tls::TlsAcceptor;
use bydata_admission::{ConnectionCaps, LogLimiter, Refused, Ticket};
use bydata_schemas::RejectReason;
use bytes::{Buf, BytesMut};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{ConnAck, ConnectReturnCode, Error, LastWill, Login, Packet, Protocol};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Most bytes a CONNECT may take (client id, username, password, a will to be refused).
pub(crate) const MAX_CONNECT_BYTES: usize = 8 * 1024;
/// Buffer per direction of a relayed connection.
const RELAY_BUFFER: usize = 4 * 1024;
/// One log line per source address per minute for refused connections.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the edge shares between connections.
pub(crate) struct Edge {
    pub(crate) deps: Deps,
    pub(crate) gate: Arc<Gate>,
    pub(crate) caps: Arc<ConnectionCaps>,
    pub(crate) upstream: SocketAddr,
    pub(crate) connect_timeout: Duration,
    pub(crate) log: LogLimiter<IpAddr>,
}

impl Edge {
    pub(crate) fn new(
        config: &Config,
        deps: Deps,
        gate: Arc<Gate>,
        caps: Arc<ConnectionCaps>,
        upstream: SocketAddr,
    ) -> Arc<Self> {
        Arc::new(Self {
            deps,
            gate,
            caps,
            upstream,
            connect_timeout: Duration::from_millis(u64::from(config.connect_timeout_ms.max(1))),
            log: LogLimiter::new(LOG_EVERY, 10_000),
        })
    }

    /// Accepts connections until `shutdown`; each runs in a task of its own until it closes or `shutdown`.
    ///
    /// With `tls`, each connection's TLS handshake runs in its task, inside the CONNECT deadline (a client over a
    /// cap is closed before any handshake).
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: CancellationToken,
    ) {
        let edge_name = if tls.is_some() { "mqtts" } else { "mqtt" };
        loop {
            let (stream, peer) = tokio::select! {
                accepted = bydata_admission::accept(&listener, edge_name) => accepted,
                () = shutdown.cancelled() => return,
            };
            // IPv6 addresses count per /64 (what one subscriber holds) for caps, backoff and logging alike.
            let source = bydata_admission::source_key(peer.ip());
            match self.caps.try_admit(source) {
                Ok(ticket) => {
                    let edge = self.clone();
                    let shutdown = shutdown.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = edge.admitted(stream, tls, source, ticket) => {}
                            () = shutdown.cancelled() => {}
                        }
                    });
                }
                Err(refused) => {
                    inc(match refused {
                        Refused::Total => &self.deps.metrics.refused_total_cap,
                        Refused::Source => &self.deps.metrics.refused_source_cap,
                    });
                    if let Some(held_back) = self.log.check(source) {
                        let (total, per_source) = self.caps.limits();
                        tracing::warn!(%source, cap = refused.label(), total, per_source, held_back,
                            "MQTT connection refused: too many connections");
                    }
                    // Closed at once: the client learns now, and the descriptor is free again.
                    drop(stream);
                }
            }
        }
    }

    /// One admitted connection: the TLS handshake (if any) and the whole CONNECT within `connect_timeout`.
    async fn admitted(
        &self,
        stream: TcpStream,
        tls: Option<TlsAcceptor>,
        source: IpAddr,
        ticket: Ticket,
    ) {
        let _ = stream.set_nodelay(true);
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let Some(tls) = tls else {
            return self.connection(stream, deadline, source, ticket).await;
        };
        match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
            Ok(Ok(stream)) => self.connection(stream, deadline, source, ticket).await,
            Ok(Err(e)) => {
                inc(&self.deps.metrics.tls_handshake_failed);
                tracing::debug!(%source, error = %e, "MQTT TLS handshake failed");
            }
            Err(_) => inc(&self.deps.metrics.connect_timeout),
        }
    }

    async fn connection<S>(
        &self,
        mut stream: S,
        deadline: tokio::time::Instant,
        source: IpAddr,
        _ticket: Ticket,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut buffer = BytesMut::with_capacity(512);
        let read = tokio::time::timeout_at(deadline, read_connect(&mut stream, &mut buffer));
        let connect = match read.await {
            Ok(Ok(connect)) => connect,
            Ok(Err(ConnectError::Closed)) => return,
            Ok(Err(ConnectError::Protocol(level))) => {
                inc(&self.deps.metrics.connect_bad_protocol);
                self.log_refusal(
                    source,
                    "",
                    &format!("MQTT protocol level {level}; bydata speaks MQTT 3.1.1 (level 4)"),
                );
                connack(&mut stream, ConnectReturnCode::RefusedProtocolVersion).await;
                return;
            }
            Ok(Err(ConnectError::Malformed(detail))) => {
                inc(&self.deps.metrics.connect_malformed);
                self.log_refusal(source, "", &detail);
                return;
            }
            Err(_) => {
                inc(&self.deps.metrics.connect_timeout);
                return;
            }
        };
        let who = match auth::login(
            &self.deps,
            &self.gate,
            source,
            &connect.client_id,
            connect.login.as_ref(),
        )
        .await
        {
            Ok(who) => who,
            Err(Refusal {
                code,
                reason,
                claimed,
            }) => {
                self.log_refusal(source, &claimed, reason);
                connack(&mut stream, code).await;
                return;
            }
        };
        if let Some(reason) = self.refuse_authenticated(&who, &connect) {
            connack(&mut stream, ConnectReturnCode::NotAuthorized).await;
            if let Identity::Device(device) = &who
                && self
                    .deps
                    .refusals
                    .record(device, (self.deps.clock)(), &reason)
            {
                tracing::warn!(%device, %reason, "MQTT connection refused");
            }
            return;
        }
        let mut upstream = match TcpStream::connect(self.upstream).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the broker behind the MQTT edge");
                connack(&mut stream, ConnectReturnCode::ServiceUnavailable).await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        // The CONNECT as the client sent it, and whatever it sent after it.
        if upstream.write_all(&buffer).await.is_err() {
            return;
        }
        relay(stream, upstream).await;
    }

    /// What a device that has logged in may still not do at CONNECT.
    fn refuse_authenticated(&self, who: &Identity, connect: &Connect) -> Option<RejectReason> {
        if let Some(will) = &connect.will {
            inc(&self.deps.metrics.connect_will);
            let topic =
                bydata_store::refusals::truncate(&String::from_utf8_lossy(&will.topic), 200);
            tracing::debug!(%who, "last will refused");
            return Some(RejectReason::LastWill { topic });
        }
        if connect.keep_alive == 0 {
            inc(&self.deps.metrics.connect_keep_alive);
            return Some(RejectReason::KeepAliveZero);
        }
        None
    }

    fn log_refusal(&self, source: IpAddr, claimed: &str, reason: &str) {
        if let Some(held_back) = self.log.check(source) {
            tracing::warn!(%source, client_id = %claimed.escape_debug(), reason, held_back,
                "MQTT connection refused (held_back: refusals from this address not logged in the last minute)");
        }
    }
}

/// The parts of a CONNECT the edge decides on.
#[derive(Debug)]
pub(crate) struct Connect {
    pub(crate) client_id: String,
    pub(crate) keep_alive: u16,
    pub(crate) login: Option<Login>,
    pub(crate) will: Option<LastWill>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// The client closed before a whole CONNECT arrived.
    Closed,
    /// A CONNECT of another MQTT version (the level it asked for).
    Protocol(u8),
    /// Not a CONNECT, or not a well-formed one; says what, in words.
    Malformed(String),
}

/// Parses the first packet of a connection from `bytes` without consuming them: `Ok(None)` wants more bytes.
/// Pure, so it can be fuzzed.
pub(crate) fn parse_connect(bytes: &BytesMut) -> Result<Option<Connect>, ConnectError> {
    let mut scratch = bytes.clone();
    match V4.read_mut(&mut scratch, MAX_CONNECT_BYTES) {
        Ok(Packet::Connect(connect, _, will, _, login)) => Ok(Some(Connect {
            client_id: connect.client_id,
            keep_alive: connect.keep_alive,
            login,
            will,
        })),
        Ok(_) => Err(ConnectError::Malformed(
            "the first packet was not a CONNECT".into(),
        )),
        Err(Error::InsufficientBytes(_)) if bytes.len() < MAX_CONNECT_BYTES => Ok(None),
        Err(Error::InsufficientBytes(_) | Error::PayloadSizeLimitExceeded(_)) => Err(
            ConnectError::Malformed(format!("a CONNECT larger than {MAX_CONNECT_BYTES} bytes")),
        ),
        Err(Error::InvalidProtocolLevel(level)) => Err(ConnectError::Protocol(level)),
        Err(e) => Err(ConnectError::Malformed(format!("malformed CONNECT: {e}"))),
    }
}

/// Reads until `buffer` holds a whole CONNECT (and maybe more).
async fn read_connect(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut BytesMut,
) -> Result<Connect, ConnectError> {
    loop {
        if let Some(connect) = parse_connect(buffer)? {
            return Ok(connect);
        }
        let room = MAX_CONNECT_BYTES.saturating_sub(buffer.len()).max(1);
        let mut chunk = [0u8; 1024];
        let want = room.min(chunk.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return Err(ConnectError::Closed),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends a CONNACK refusing the connection, then the connection is dropped (closed).
async fn connack(stream: &mut (impl AsyncWrite + Unpin), code: ConnectReturnCode) {
    let mut out = BytesMut::new();
    let ack = Packet::ConnAck(
        ConnAck {
            session_present: false,
            code,
        },
        None,
    );
    if V4.write(ack, &mut out).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(out.chunk())).await;
        let _ = stream.shutdown().await;
    }
}

/// Copies bytes both ways until either side closes (MQTT never half-closes), then closes both.
async fn relay(client: impl AsyncRead + AsyncWrite + Unpin, mut upstream: TcpStream) {
    let (client_read, mut client_write) = tokio::io::split(client);
    let (upstream_read, mut upstream_write) = upstream.split();
    let mut from_client = BufReader::with_capacity(RELAY_BUFFER, client_read);
    let mut from_upstream = BufReader::with_capacity(RELAY_BUFFER, upstream_read);
    tokio::select! {
        _ = tokio::io::copy_buf(&mut from_client, &mut upstream_write) => {}
        _ = tokio::io::copy_buf(&mut from_upstream, &mut client_write) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::QoS;

    fn encoded(packet: Packet) -> BytesMut {
        let mut out = BytesMut::new();
        V4.write(packet, &mut out).expect("encode");
        out
    }

    fn connect(client_id: &str, will: Option<LastWill>) -> BytesMut {
        encoded(Packet::Connect(
            rumqttd::protocol::Connect {
                keep_alive: 30,
                client_id: client_id.into(),
                clean_session: true,
            },
            None,
            will,
            None,
            Some(Login {
                username: client_id.into(),
                password: "pw".into(),
            }),
        ))
    }

    #[test]
    fn connects_are_read_whole_or_refused_in_words() {
        let full = connect("meter-1", None);
        for cut in 0..full.len() {
            assert!(
                matches!(parse_connect(&BytesMut::from(&full[..cut])), Ok(None)),
                "{cut}"
            );
        }
        let c = parse_connect(&full).expect("valid").expect("whole");
        assert_eq!((c.client_id.as_str(), c.keep_alive), ("meter-1", 30));
        assert_eq!(c.login.map(|l| l.password), Some("pw".to_owned()));
        let will = LastWill {
            topic: "devices/meter-1/status".into(),
            message: "offline".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
        };
        assert!(
            parse_connect(&connect("meter-1", Some(will)))
                .expect("valid")
                .expect("whole")
                .will
                .is_some()
        );
        // MQTT 5 asks for level 5.
        let mut v5 = full.clone();
        v5[8] = 5;
        assert_eq!(parse_connect(&v5).err(), Some(ConnectError::Protocol(5)));
        // A PUBLISH first, garbage, or a CONNECT that never ends.
        let publish = encoded(Packet::PingReq(rumqttd::protocol::PingReq));
        assert!(matches!(
            parse_connect(&publish),
            Err(ConnectError::Malformed(_))
        ));
        assert!(matches!(
            parse_connect(&BytesMut::from(&[0xff; 16][..])),
            Err(ConnectError::Malformed(_))
        ));
        let mut endless = BytesMut::from(&[0x10, 0xff, 0xff, 0x7f][..]);
        endless.resize(MAX_CONNECT_BYTES, 0);
        assert!(matches!(
            parse_connect(&endless),
            Err(ConnectError::Malformed(_))
        ));
    }
}
