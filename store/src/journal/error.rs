use std::path::PathBuf;

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal corrupt at offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: &'static str },
    #[error("journal {field} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("journal offset {offset} lies before the first segment, which starts at {first}")]
    OffsetBeforeStart { offset: u64, first: u64 },
    #[error(
        "journal in {path} is already open (another process or another Journal holds its lock)"
    )]
    Locked { path: PathBuf },
    #[error("could not encode a reject reason: {source}")]
    Encode { source: serde_json::Error },
    #[error("journal is closed")]
    Closed,
    /// New data is refused for now (the disk is full, or bydata is stopping); nothing was written.
    #[error("{reason}")]
    Refused { reason: crate::health::Refusal },
    /// After a failed write that could not be undone, or a failed fsync, the kernel may have dropped data we
    /// already acknowledged as written; appending more would only hide that. Reopening re-verifies the files.
    #[error(
        "an earlier journal write or fsync failed; appends are refused until the journal is reopened"
    )]
    Failed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The filesystem is out of space: appending can succeed once space is freed.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => storage_full(source),
            Error::Refused {
                reason: crate::health::Refusal::DiskFull { .. },
            } => true,
            _ => false,
        }
    }
}

/// For `map_err`: an I/O error on `path`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// ENOSPC or EDQUOT (here, at the bottom of the store's modules, so every error type can ask).
pub(crate) fn storage_full(e: &std::io::Error) -> bool {
    const EDQUOT: i32 = 122;
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(EDQUOT)
}
