use bydata_schemas::DeviceId;

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
