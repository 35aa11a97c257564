//! The MQTT edge in front of rumqttd: where connections are admitted, CONNECTs read and logins checked.
//!
//! rumqttd accepts every socket itself and cannot tell the auth handler where a connection comes from, so it
//! cannot cap connections per source or slow down a source that keeps failing. bydata therefore listens on the
//! device-facing addresses itself, and rumqttd on loopback ports of its own (one per MQTT version):
//!
//! ```text
//! device ──TCP──▶ edge: caps (total, per source) → [TLS handshake +] [WebSocket handshake +]
//!                   CONNECT (3.1.1 or 5) within connect_timeout → login (gate)
//!                   │ refused: CONNACK with a code in the client's version, or closed; counted; logged once per
//!                   │          source a minute
//!                   └ accepted: CONNECT forwarded ──▶ rumqttd (loopback, the port of its version) — relayed both
//!                               ways until either closes (MQTT 5: or right after a DISCONNECT from bydata)
//! ```
//!
//! Nothing about an unauthenticated connection is written anywhere. What an authenticated device does wrong
//! at CONNECT (a last will; keep-alive 0 in 3.1.1) is refused with a reason on its status.
use crate::auth::{self, Refusal};
use crate::connect::{Connect, ConnectError, Refuse, Version, connack, read_connect};
use crate::gate::{Gate, Identity};
use crate::metrics::inc;
use crate::{Config, Deps, v5, websocket};
use bydata_admission::tls::TlsAcceptor;
use bydata_admission::{ConnectionCaps, LogLimiter, Refused, Ticket};
use bydata_schemas::RejectReason;
use bytes::BytesMut;
use rumqttd::protocol::ConnectReturnCode;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Buffer per direction of a relayed connection.
const RELAY_BUFFER: usize = 4 * 1024;
/// One log line per source address per minute for refused connections.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// How a listener's connections arrive.
#[derive(Clone)]
pub(crate) enum Transport {
    /// MQTT on TCP.
    Tcp,
    /// MQTT in TLS.
    Tls(TlsAcceptor),
    /// MQTT in WebSocket binary frames, on TCP or (with an acceptor) in TLS.
    WebSocket(Option<TlsAcceptor>),
}

impl Transport {
    /// The listener's name in logs and metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transport::Tcp => "mqtt",
            Transport::Tls(_) => "mqtts",
            Transport::WebSocket(None) => "ws",
            Transport::WebSocket(Some(_)) => "wss",
        }
    }
}

/// The rumqttd listeners behind the edge, one per MQTT version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upstream {
    pub(crate) v4: SocketAddr,
    pub(crate) v5: SocketAddr,
}

/// What the edge shares between connections.
pub(crate) struct Edge {
    pub(crate) deps: Deps,
    pub(crate) gate: Arc<Gate>,
    pub(crate) caps: Arc<ConnectionCaps>,
    pub(crate) upstream: Upstream,
    pub(crate) connect_timeout: Duration,
    /// Largest WebSocket message or frame (a whole MQTT packet fits).
    pub(crate) max_ws_message: usize,
    pub(crate) log: LogLimiter<IpAddr>,
}

impl Edge {
    pub(crate) fn new(
        config: &Config,
        deps: Deps,
        gate: Arc<Gate>,
        caps: Arc<ConnectionCaps>,
        upstream: Upstream,
    ) -> Arc<Self> {
        Arc::new(Self {
            deps,
            gate,
            caps,
            upstream,
            connect_timeout: Duration::from_millis(u64::from(config.connect_timeout_ms.max(1))),
            max_ws_message: (v5::max_packet_size(config.max_message_bytes) as usize)
                .max(crate::connect::MAX_CONNECT_BYTES),
            log: LogLimiter::new(LOG_EVERY, 10_000),
        })
    }

    /// Accepts connections until `shutdown`; each runs in a task of its own until it closes or `shutdown`.
    ///
    /// With TLS or WebSocket, each connection's handshakes run in its task, inside the CONNECT deadline (a
    /// client over a cap is closed before any handshake).
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        transport: Transport,
        shutdown: CancellationToken,
    ) {
        let edge_name = transport.name();
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
                    let transport = transport.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = edge.admitted(stream, transport, source, ticket) => {}
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

    /// One admitted connection: the TLS handshake (if any), the WebSocket handshake (if any) and the whole
    /// CONNECT within `connect_timeout`.
    async fn admitted(
        &self,
        stream: TcpStream,
        transport: Transport,
        source: IpAddr,
        ticket: Ticket,
    ) {
        let _ = stream.set_nodelay(true);
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let tls = match &transport {
            Transport::Tcp => return self.connection(stream, deadline, source, ticket).await,
            Transport::WebSocket(None) => {
                return self.websocket(stream, deadline, source, ticket).await;
            }
            Transport::Tls(tls) | Transport::WebSocket(Some(tls)) => tls,
        };
        let stream = match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                inc(&self.deps.metrics.tls_handshake_failed);
                tracing::debug!(%source, error = %e, "MQTT TLS handshake failed");
                return;
            }
            Err(_) => return inc(&self.deps.metrics.connect_timeout),
        };
        match transport {
            Transport::WebSocket(_) => self.websocket(stream, deadline, source, ticket).await,
            _ => self.connection(stream, deadline, source, ticket).await,
        }
    }

    /// The WebSocket handshake within the deadline, then the MQTT byte stream it carries goes the way of a
    /// TCP connection's (through an in-memory pipe, pumped in this same task).
    async fn websocket<S>(
        &self,
        stream: S,
        deadline: tokio::time::Instant,
        source: IpAddr,
        ticket: Ticket,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let accept = websocket::accept(stream, self.max_ws_message);
        let ws = match tokio::time::timeout_at(deadline, accept).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(websocket::HandshakeError::Refused(why))) => {
                inc(&self.deps.metrics.ws_handshake_failed);
                return self.log_refusal(source, "", why);
            }
            Ok(Err(websocket::HandshakeError::Broken)) => {
                return inc(&self.deps.metrics.ws_handshake_failed);
            }
            Err(_) => return inc(&self.deps.metrics.connect_timeout),
        };
        inc(&self.deps.metrics.ws_connections);
        let (outer, inner) = websocket::pipe();
        tokio::join!(
            websocket::pump(ws, outer),
            self.connection(inner, deadline, source, ticket)
        );
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
                    &format!(
                        "MQTT protocol level {level}; bydata speaks MQTT 3.1.1 (level 4) and MQTT 5 (level 5)"
                    ),
                );
                let code = ConnectReturnCode::RefusedProtocolVersion;
                connack(&mut stream, refuse(Version::V4, code, code, None)).await;
                return;
            }
            Ok(Err(ConnectError::TooLarge(version))) => {
                inc(&self.deps.metrics.connect_malformed);
                let why = "a CONNECT larger than 8 KiB";
                self.log_refusal(source, "", why);
                // 3.1.1 has no code for it: the connection closes unanswered.
                if version == Version::V5 {
                    let code = ConnectReturnCode::PacketTooLarge;
                    connack(&mut stream, refuse(version, code, code, Some(why))).await;
                }
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
        let version = connect.version;
        let reason = |why: &'static str| connect.problem_info.then_some(why);
        if let Some((code, why)) = unsupported(&connect) {
            inc(&self.deps.metrics.connect_unsupported);
            self.log_refusal(source, &connect.client_id, why);
            connack(&mut stream, refuse(version, code, code, reason(why))).await;
            return;
        }
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
                v5,
                reason: why,
                claimed,
            }) => {
                self.log_refusal(source, &claimed, why);
                connack(&mut stream, refuse(version, code, v5, reason(why))).await;
                return;
            }
        };
        if let Some(rejected) = self.refuse_authenticated(&who, &connect) {
            let code = ConnectReturnCode::NotAuthorized;
            let why = match rejected {
                RejectReason::LastWill { .. } => {
                    "bydata does not accept a last will; connect without one"
                }
                _ => "keep-alive 0 is not accepted; set a keep-alive such as 60 s",
            };
            connack(&mut stream, refuse(version, code, code, reason(why))).await;
            if let Identity::Device(device) = &who
                && self
                    .deps
                    .refusals
                    .record(device, (self.deps.clock)(), &rejected)
            {
                tracing::warn!(%device, reason = %rejected, "MQTT connection refused");
            }
            return;
        }
        let upstream = match version {
            Version::V4 => self.upstream.v4,
            Version::V5 => self.upstream.v5,
        };
        let mut upstream = match TcpStream::connect(upstream).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the broker behind the MQTT edge");
                let code = ConnectReturnCode::ServiceUnavailable;
                connack(&mut stream, refuse(version, code, code, None)).await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        if version == Version::V5 {
            inc(&self.deps.metrics.v5_connections);
        }
        // The CONNECT as the client sent it, and whatever it sent after it.
        if upstream.write_all(&buffer).await.is_err() {
            return;
        }
        relay(stream, upstream, version).await;
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
        // MQTT 5 can tell the client the keep-alive it gets instead (Server Keep Alive, `crate::v5`).
        if connect.keep_alive == 0 && connect.version == Version::V4 {
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

/// A refusing CONNACK's contents.
fn refuse(
    version: Version,
    code: ConnectReturnCode,
    v5: ConnectReturnCode,
    reason: Option<&str>,
) -> Refuse<'_> {
    Refuse {
        version,
        code,
        v5,
        reason,
    }
}

/// What an MQTT 5 CONNECT asks for that bydata does not offer, and the code that says so.
fn unsupported(connect: &Connect) -> Option<(ConnectReturnCode, &'static str)> {
    if connect.auth_method {
        return Some((
            ConnectReturnCode::BadAuthenticationMethod,
            "extended authentication is not offered; log in with username and password",
        ));
    }
    if !connect.user_properties_ok {
        return Some((
            ConnectReturnCode::QuotaExceeded,
            "too many user properties: at most 16, of 1024 bytes in all",
        ));
    }
    None
}

/// Copies bytes both ways until either side closes (MQTT never half-closes), then closes both. MQTT 5: a
/// DISCONNECT bydata sends ends the connection once it has been passed on (`crate::v5`).
async fn relay(
    client: impl AsyncRead + AsyncWrite + Unpin,
    mut upstream: TcpStream,
    version: Version,
) {
    let (client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let mut from_client = BufReader::with_capacity(RELAY_BUFFER, client_read);
    let to_client = async {
        if version == Version::V4 {
            let mut from_upstream = BufReader::with_capacity(RELAY_BUFFER, &mut upstream_read);
            let _ = tokio::io::copy_buf(&mut from_upstream, &mut client_write).await;
            return;
        }
        let mut framer = v5::Framer::default();
        let mut chunk = vec![0u8; RELAY_BUFFER];
        loop {
            let n = match upstream_read.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            match framer.advance(&chunk[..n]) {
                Ok(None) => {
                    if client_write.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
                Ok(Some(end)) => {
                    let _ = client_write.write_all(&chunk[..end]).await;
                    let _ = client_write.shutdown().await;
                    return;
                }
                Err(()) => return,
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_buf(&mut from_client, &mut upstream_write) => {}
        () = to_client => {}
    }
}
