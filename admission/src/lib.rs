//! Admission control for bydata's network edges (MQTT, HTTP, Semtech UDP): the same discipline everywhere.
//!
//! - [`ConnectionCaps`]: at most so many connections in total and per source address (IPv6 sources counted
//!   per /64, what one subscriber usually holds); a [`Ticket`] holds a place until it is dropped.
//! - [`SourceRate`]: a token bucket per source, for datagrams.
//! - [`LogLimiter`]: one log line per key (a source, a device) per interval, with a count of what it held back,
//!   so a flood of refusals cannot flood the log.
//! - [`raise_file_limit`] and [`Budget`]: the process's file limit raised at start and shared out between the
//!   edges, so a flood of connections meets a cap before it meets `EMFILE`.
//! - [`tls`]: TLS from PEM files named in the config, reloaded when they are renewed.
//! - [`accept`]: an accept loop step that survives `EMFILE` and other accept errors without spinning.
//!
//! Everything here is in memory and bounded: maps keyed by a source are capped and pruned.
mod caps;
mod files;
mod log_limit;
pub mod metrics;
mod rate;
pub mod tls;

pub use caps::{ConnectionCaps, Refused, Ticket, source_key};
pub use files::{Budget, raise_file_limit};
pub use log_limit::LogLimiter;
pub use rate::SourceRate;

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Accepts the next connection. Accept errors (`EMFILE` when the file limit is reached, `ECONNABORTED`, …)
/// are logged at most once a minute and retried after a short pause, so a full table never spins a core.
pub async fn accept(listener: &TcpListener, edge: &'static str) -> (TcpStream, SocketAddr) {
    static ERRORS: std::sync::OnceLock<LogLimiter<&'static str>> = std::sync::OnceLock::new();
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                let log = ERRORS.get_or_init(|| LogLimiter::new(Duration::from_secs(60), 16));
                if let Some(held_back) = log.check(edge) {
                    tracing::warn!(edge, error = %e, held_back, "cannot accept a connection; retrying");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
