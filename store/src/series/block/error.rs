//! What a block refuses to hold or to read, and the most points it holds.

/// Most points in one block.
pub(crate) const MAX_POINTS: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BlockError {
    #[error("a block needs at least one point")]
    Empty,
    #[error("a block holds at most {MAX_POINTS} points, got {count}")]
    TooMany { count: usize },
    #[error("point {index} is not later than the point before it")]
    NotIncreasing { index: usize },
    #[error("point {index} has a non-finite value")]
    NonFinite { index: usize },
    #[error("block truncated: needs {expected} bytes, has {got}")]
    Truncated { expected: usize, got: usize },
    #[error("block checksum mismatch: stored {expected:#010x}, computed {got:#010x}")]
    Checksum { expected: u32, got: u32 },
    #[error("unknown block format version {version}")]
    UnknownVersion { version: u8 },
    #[error("corrupt block: {reason}")]
    Corrupt { reason: &'static str },
}
