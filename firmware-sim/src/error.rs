use bydata_schemas::{DeviceId, Eui64};
use std::net::SocketAddr;
use std::time::Duration;

/// Why a simulated fleet could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid fleet configuration: {reason}")]
    Config { reason: String },
    #[error("id prefix {prefix:?} does not make valid device ids: {source}")]
    IdPrefix {
        prefix: String,
        #[source]
        source: bydata_schemas::Error,
    },
    #[error("could not reach the bydata API at {url}: {detail}")]
    Http {
        url: String,
        /// The whole cause chain (e.g. "… Connection refused"), which `reqwest::Error`'s own text omits.
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("onboarding {device} failed: POST {url} answered {status}: {body}")]
    Onboarding {
        device: DeviceId,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "onboarding {device}: POST {url} answered {status} with a body that is not the expected JSON: {detail}"
    )]
    Response {
        device: DeviceId,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("a simulated device task failed: {source}")]
    Task {
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("registering gateway {gateway} failed: POST {url} answered {status}: {body}")]
    GatewayRegistration {
        gateway: Eui64,
        url: String,
        status: u16,
        body: String,
    },
    #[error("simulated gateway {gateway}: UDP socket, {action}: {source}")]
    Udp {
        gateway: Eui64,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "simulated gateway {gateway}: no {what} from the LoRaWAN server at {server} ({attempts} datagram(s) \
         sent, waited {timeout:?}); is it listening there, and is the gateway registered?"
    )]
    NoAck {
        what: &'static str,
        gateway: Eui64,
        server: SocketAddr,
        attempts: u64,
        timeout: Duration,
    },
    #[error("simulated gateway {gateway} has stopped")]
    GatewayStopped { gateway: Eui64 },
    #[error("OTAA device {dev_eui} did not join after {attempts} join-request(s): {last}")]
    JoinFailed {
        dev_eui: Eui64,
        attempts: u32,
        /// Why the last attempt failed.
        last: String,
    },
    #[error("LoRaWAN frame: {source}")]
    Frame {
        #[from]
        source: crate::lorawan::FrameError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and its causes, joined with ": ".
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
