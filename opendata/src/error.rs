//! What open data can fail with, in the user's words. No HTTP here: `api` maps each variant to a status and
//! an error code in its one error mapping.
use std::path::PathBuf;

/// Everything publishing, validating and reading open data can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The definition is malformed or names something unknown (`invalid_dataset`).
    #[error("{message}")]
    InvalidDefinition { message: String },
    /// A person-given name (publisher, contact point) is empty or too long (`invalid_name`).
    #[error("{message}")]
    InvalidName { message: String },
    /// The privacy rules forbid publishing this, as defined or with these values (`privacy_refused`).
    #[error("{reason}")]
    PrivacyRefused { reason: String },
    /// A period asked for on demand is malformed, not begun or outside the coverage (`invalid_period`).
    #[error("{message}")]
    InvalidPeriod { message: String },
    /// The dataset is not (or no longer) defined.
    #[error("dataset {id:?} not found")]
    DatasetNotFound { id: String },
    /// A stored definition no longer parses (the registry was edited by hand, or written by a newer bydata).
    #[error("dataset {id}: stored definition unreadable: {source}")]
    UnreadableDefinition {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing the published files.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest that cannot be read or written as JSON.
    #[error("{}: {source}", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The registry or the series store.
    #[error(transparent)]
    Store(#[from] bydata_store::Error),
    /// File work on the blocking pool panicked or was cancelled.
    #[error("{detail}")]
    Task { detail: String },
}

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidDefinition {
            message: message.into(),
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        Error::PrivacyRefused {
            reason: reason.into(),
        }
    }

    pub(crate) fn period(message: impl Into<String>) -> Self {
        Error::InvalidPeriod {
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Runs file work on the blocking pool; a panicked task is a [`Error::Task`].
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            detail: e.to_string(),
        })?
}
