//! What can go wrong in alerts, in the user's words.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule or silence the API cannot accept: the field to fix and why.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The registry failed (logged where it is met).
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
    /// The notifier refused to queue notifications; they stay in the outbox and are handed on again.
    #[error("the notifier did not queue the notifications: {0}")]
    Sink(#[from] crate::sink::SinkError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
