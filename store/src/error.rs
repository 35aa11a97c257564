/// What can go wrong in the store. Callers map `NotFound`/`Conflict`/`InvalidQuery`/`QueryTooLarge` to client
/// errors, `QueryBusy`/`QueryTimeout` to "unavailable", and everything else to a server error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error while {context}: {source}")]
    Db {
        context: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("i/o error while {context} ({path}): {source}")]
    Io {
        context: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} {id:?} already exists")]
    Conflict { what: &'static str, id: String },
    #[error("{reason}")]
    InvalidQuery { reason: String },
    /// A query over its limits, refused before it read a point (or, for raw points, while reading).
    #[error("{refusal}")]
    QueryTooLarge {
        refusal: Box<crate::query::TooLarge>,
    },
    /// Too many heavy queries running: this one waited its turn too long. Waiting `retry_after_secs` helps.
    #[error("{message}")]
    QueryBusy {
        message: String,
        retry_after_secs: u64,
    },
    /// A query's deadline passed (before its answer began, or while it was written).
    #[error("{message}")]
    QueryTimeout { message: String },
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// The secrets key does not open what the registry sealed under another key.
    #[error(
        "the secrets key does not open the stored LoRaWAN keys: start bydata with the key this data dir was \
         written with (BYDATA_SECRETS_KEY or [registry] secrets_key_file)"
    )]
    SecretsKey,
    #[error(
        "{origin} is not a secrets key: write 64 hex digits or the base64 of 32 bytes (e.g. `openssl rand \
         -hex 32`)"
    )]
    InvalidSecretsKey { origin: String },
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("password hashing failed: {detail}")]
    Hash { detail: String },
    #[error("blocking task failed: {detail}")]
    Task { detail: String },
    #[error(transparent)]
    Journal(#[from] crate::journal::Error),
    /// A device's downlink queue is full.
    #[error(
        "device {device:?} has {limit} downlinks waiting, the most it may have: cancel one (DELETE \
         /api/v1/devices/{device}/downlinks/{{id}}) or wait until they are delivered"
    )]
    QueueFull { device: String, limit: usize },
}

impl From<crate::query::TooLarge> for Error {
    fn from(refusal: crate::query::TooLarge) -> Self {
        Error::QueryTooLarge {
            refusal: Box::new(refusal),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The filesystem is out of space (or quota): the operation can succeed once space is freed.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => crate::journal::storage_full(source),
            Error::Journal(e) => e.is_storage_full(),
            Error::Db { source, .. } => match &**source {
                redb::Error::Io(e) => crate::journal::storage_full(e),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Attaches what we were doing to any redb error.
pub(crate) fn db<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Db {
        context,
        source: Box::new(e.into()),
    }
}

pub(crate) fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
    move |e| Error::Corrupt {
        what,
        detail: e.to_string(),
    }
}

/// Attaches what we were doing, and to which file, to an I/O error.
pub(crate) fn io<'a>(
    context: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        context,
        path: path.display().to_string(),
        source,
    }
}
