//! What can go wrong fetching Danish energy data, in the operator's words.

/// An import run's failure. The run's cursor keeps its place and the next run tries again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service could not be reached or did not answer in time.
    #[error("{service} did not answer ({url}): {reason}")]
    Unreachable {
        service: &'static str,
        url: String,
        reason: String,
    },
    /// The service answered with an HTTP error status.
    #[error("{service} answered HTTP {status} to {url}{hint}")]
    Status {
        service: &'static str,
        url: String,
        status: u16,
        hint: &'static str,
    },
    /// The answer is not the documented JSON shape.
    #[error("{service} answered something that is not its documented JSON ({what})")]
    Shape { service: &'static str, what: String },
    /// Eloverblik refused a metering point in an otherwise successful answer.
    #[error("Eloverblik refused metering point {metering_point}: {reason}")]
    Refused {
        metering_point: String,
        reason: String,
    },
    /// The configuration cannot work (named field, what to do).
    #[error("{0}")]
    Config(String),
    /// Storing the points or the cursor failed.
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
