/// What stops a target's worker (it is restarted after a pause) or fails an API action.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] bydata_store::journal::Error),
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
    #[error("a decoding task failed: {detail}")]
    Task { detail: String },
    /// The target's settings cannot be used (a URL reqwest refuses, a topic template that makes no topic).
    #[error("{reason}")]
    Settings { reason: String },
}
