//! What the HTTP API hands the ingest side and gets back (the binary wires the two; neither crate depends on
//! the other): what a codec test did, and what a re-decode did.
use crate::UnixNanos;
use serde::Serialize;
use serde_json::Value;

/// What a codec did with one payload in `POST /api/v1/codecs/test`, and what bydata would store from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodecTrial {
    /// Whether bydata would store this message (the codec decoded it and bydata accepts the result).
    pub ok: bool,
    /// `decodeUplink`'s `data`, as JSON (keys set to `undefined` are dropped); null when it gave none.
    pub data: Option<serde_json::Map<String, Value>>,
    /// The codec's warnings, then bydata's (keys it would keep nowhere).
    pub warnings: Vec<String>,
    /// The codec's own errors; or why it could not run (does not load, threw, ran out of time or memory);
    /// or why bydata would refuse its result.
    pub errors: Vec<String>,
    /// The numeric readings bydata would store (booleans as 1 and 0).
    pub readings: Vec<TrialReading>,
    /// The text fields bydata would keep as the device's latest state.
    pub state: std::collections::BTreeMap<String, String>,
}

/// One reading of a [`CodecTrial`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialReading {
    pub measurement: String,
    pub value: f64,
    /// The unit bydata gives the measurement by its name, if it knows one.
    pub unit: Option<String>,
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
