//! What the HTTP API hands the ingest side and gets back (the binary wires the two; neither crate depends on
//! the other): a codec's example, and what a re-decode did.
use crate::UnixNanos;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One example uplink and the `data` object it must decode to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecExample {
    pub fport: u8,
    /// The payload as hex, e.g. `"0100e5"`; white space between digits is ignored.
    pub bytes_hex: String,
    /// The expected `data` (free-form, as the codec returns it); numbers match within a relative tolerance
    /// of 1e-9.
    pub expected: Value,
}

/// What a re-decode did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedecodeReport {
    pub codec: String,
    /// Shown in RFC 3339, like every time in an answer.
    #[serde(serialize_with = "rfc3339")]
    pub from: UnixNanos,
    #[serde(serialize_with = "rfc3339")]
    pub to: UnixNanos,
    pub uplinks: u64,
    pub decoded: u64,
    pub rejected: u64,
    pub values_written: u64,
    /// The first few decode errors, for the one who asked.
    pub errors: Vec<String>,
}

fn rfc3339<S: serde::Serializer>(t: &UnixNanos, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::format_rfc3339(*t))
}
