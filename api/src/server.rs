//! The HTTP server: bydata's own accept loop around hyper, so that slow, idle or too many clients meet limits
//! before they meet the process's file limit.
//!
//! - **Connections are capped** in total and per source address (`bydata_admission::ConnectionCaps`); one over
//!   a cap gets a short `503` / `429` and is closed at once.
//! - **Over TLS** (`https_addr`), the handshake runs in the connection's task after the caps, within
//!   `header_timeout_ms`; a connection over a cap there is closed without an answer.
//! - **Headers must arrive within `header_timeout_ms`**, counted from when the server waits for a request —
//!   which also closes a keep-alive connection idle that long (hyper's header-read timer).
//! - **A request has a deadline** (`request_timeout_secs`, applied in `lib.rs`), so a body trickled in cannot
//!   hold a handler.
//! - **A client that stops reading is dropped**: a write that makes no progress for `idle_timeout_secs` ends
//!   the connection (reads are not timed this way: hyper keeps one pending while a handler works, to notice a
//!   client that goes away).
use crate::Config;
use bydata_admission::metrics::{
    Collector, DescriptorEncoder, as_gauge, counters, gauge, gauges, get,
};
use bydata_admission::tls::TlsAcceptor;
use bydata_admission::{ConnectionCaps, LogLimiter, Refused};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// Counters of the HTTP edge.
#[derive(Debug, Default)]
pub struct Metrics {
    refused_total_cap: AtomicU64,
    refused_source_cap: AtomicU64,
    header_timeouts: AtomicU64,
    tls_handshake_failed: AtomicU64,
    stalled: AtomicU64,
    pub(crate) request_timeouts: AtomicU64,
    caps: std::sync::OnceLock<Arc<ConnectionCaps>>,
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut enc;
        if let Some(caps) = self.caps.get() {
            let (total, per_source) = caps.limits();
            gauge(
                e,
                "bydata_http_connections",
                "Open HTTP connections",
                as_gauge(caps.open() as u64),
            )?;
            gauges(
                e,
                "bydata_http_connections_limit",
                "HTTP connection caps",
                "scope",
                &[
                    ("total", as_gauge(total as u64)),
                    ("per_source", as_gauge(per_source as u64)),
                ],
            )?;
        }
        counters(
            e,
            "bydata_http_connections_refused",
            "HTTP connections refused at a connection cap",
            "reason",
            &[
                ("total_cap", get(&self.refused_total_cap)),
                ("source_cap", get(&self.refused_source_cap)),
            ],
        )?;
        // `header` counts connections closed waiting for a request's headers: slow clients, and idle
        // keep-alive connections (hyper's header timer runs while it waits for the next request).
        counters(
            e,
            "bydata_http_timeouts",
            "HTTP connections or requests ended by a timeout, by kind",
            "kind",
            &[
                ("header", get(&self.header_timeouts)),
                ("stalled", get(&self.stalled)),
                ("request", get(&self.request_timeouts)),
            ],
        )?;
        counters(
            e,
            "bydata_http_tls_handshakes_failed",
            "HTTPS connections whose TLS handshake failed",
            "reason",
            &[("error", get(&self.tls_handshake_failed))],
        )
    }
}

/// A listener of the HTTP edge: plain, or TLS with `tls`.
pub(crate) struct Listener {
    pub(crate) tcp: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
}

/// What the accept loops share.
struct Edge {
    caps: Arc<ConnectionCaps>,
    log: LogLimiter<IpAddr>,
    builder: hyper::server::conn::http1::Builder,
    header_timeout: Duration,
    stall: Duration,
    app: axum::Router,
    metrics: Arc<Metrics>,
}

/// Serves `app` on `plain` and `secure` (either may be absent) until `shutdown`, then lets requests in flight
/// finish. Both share the connection caps.
pub(crate) async fn serve(
    plain: Option<Listener>,
    secure: Option<Listener>,
    app: axum::Router,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let caps = ConnectionCaps::new(config.max_connections, config.max_connections_per_source);
    let _ = metrics.caps.set(caps.clone());
    let header_timeout = Duration::from_millis(config.header_timeout_ms.max(1));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let edge = Edge {
        caps,
        log: LogLimiter::new(Duration::from_secs(60), 10_000),
        builder,
        header_timeout,
        stall: Duration::from_secs(config.idle_timeout_secs.max(1)),
        app,
        metrics,
    };
    let graceful = GracefulShutdown::new();
    tokio::join!(
        edge.accept_loop(plain, &graceful, &shutdown),
        edge.accept_loop(secure, &graceful, &shutdown),
    );
    // Requests in flight finish; idle connections close at once.
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
}

impl Edge {
    async fn accept_loop(
        &self,
        listener: Option<Listener>,
        graceful: &GracefulShutdown,
        shutdown: &CancellationToken,
    ) {
        let Some(Listener { tcp: listener, tls }) = listener else {
            return;
        };
        let name = if tls.is_some() { "https" } else { "http" };
        loop {
            let (stream, peer) = tokio::select! {
                accepted = bydata_admission::accept(&listener, name) => accepted,
                () = shutdown.cancelled() => break,
            };
            let source = bydata_admission::source_key(peer.ip());
            let ticket = match self.caps.try_admit(source) {
                Ok(ticket) => ticket,
                Err(refused) => {
                    if tls.is_some() {
                        // No plain-text answer on a TLS port: counted and closed.
                        count_refusal(refused, &self.metrics);
                    } else {
                        refuse(&stream, refused, &self.metrics);
                    }
                    if let Some(held_back) = self.log.check(source) {
                        tracing::warn!(%source, cap = refused.label(), held_back, "HTTP connection refused: too many connections");
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            // Every request knows its client's address (failed logins are slowed per address).
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request
                        .extensions_mut()
                        .insert(crate::ClientAddr(peer.ip()));
                    tower::ServiceExt::oneshot(app.clone(), request)
                });
            let metrics = self.metrics.clone();
            let Some(tls) = tls.clone() else {
                let io = TokioIo::new(Stalling::new(stream, self.stall));
                let connection = graceful.watch(self.builder.serve_connection(io, service));
                tokio::spawn(async move {
                    let _ticket = ticket;
                    if let Err(e) = connection.await {
                        count_error(&e, peer.ip(), &metrics);
                    }
                });
                continue;
            };
            // The handshake runs in the connection's task, within the header timeout, holding the ticket.
            let (builder, stall, header_timeout) =
                (self.builder.clone(), self.stall, self.header_timeout);
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _ticket = ticket;
                let stream = match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        metrics.tls_handshake_failed.fetch_add(1, Ordering::Relaxed);
                        return tracing::debug!(%peer, error = %e, "HTTPS handshake failed");
                    }
                    Err(_) => {
                        metrics.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let io = TokioIo::new(Stalling::new(stream, stall));
                if let Err(e) = watcher.watch(builder.serve_connection(io, service)).await {
                    count_error(&e, peer.ip(), &metrics);
                }
            });
        }
    }
}

fn count_error(e: &hyper::Error, peer: IpAddr, metrics: &Metrics) {
    if e.is_timeout() {
        metrics.header_timeouts.fetch_add(1, Ordering::Relaxed);
    } else if std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    {
        metrics.stalled.fetch_add(1, Ordering::Relaxed);
    } else {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

/// Tells a client over a cap why, without waiting for it (a non-blocking write of a short answer), and closes.
fn refuse(stream: &TcpStream, refused: Refused, metrics: &Metrics) {
    count_refusal(refused, metrics);
    let (status, message) = match refused {
        Refused::Total => (
            "503 Service Unavailable",
            "bydata holds as many HTTP connections as it allows; try again shortly",
        ),
        Refused::Source => (
            "429 Too Many Requests",
            "too many connections from your address; close some and try again",
        ),
    };
    let code = match refused {
        Refused::Total => "busy",
        Refused::Source => "too_many_connections",
    };
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

fn count_refusal(refused: Refused, metrics: &Metrics) {
    let counter = match refused {
        Refused::Total => &metrics.refused_total_cap,
        Refused::Source => &metrics.refused_source_cap,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A stream whose writes fail with `TimedOut` once one has waited `limit` without progress.
#[derive(Debug)]
struct Stalling<S> {
    inner: S,
    limit: Duration,
    write_deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Stalling<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            write_deadline: None,
        }
    }
}

/// `Pending` until the deadline (started on the first wait) passes, then `TimedOut`.
fn wait(
    deadline: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Error> {
    let sleep =
        deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "no progress on the connection",
        )),
        Poll::Pending => Poll::Pending,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalling<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalling<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => wait(&mut this.write_deadline, this.limit, cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => wait(&mut this.write_deadline, this.limit, cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_without_progress_times_out() {
        let (a, _b) = tokio::io::duplex(4);
        let mut s = Stalling::new(a, Duration::from_millis(200));
        s.write_all(b"abcd").await.expect("progress");
        let started = Instant::now();
        let e = s.write_all(b"efgh").await.expect_err("stalled");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let waited = Instant::now() - started;
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
