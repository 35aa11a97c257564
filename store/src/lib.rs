//! Everything bydata keeps on disk.
pub mod journal;
