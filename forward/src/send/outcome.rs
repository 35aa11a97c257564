//! A batch as the senders take it, and what the receiver's answer means for it.
use serde_json::Value;

/// One batch: its id and its records.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    pub(crate) id: &'a str,
    pub(crate) records: &'a [Value],
    /// A test message (`X-Bydata-Test: true`, `"test": true` in the body).
    pub(crate) test: bool,
}

/// How an attempt ended.
///
/// The cursor of a target waits while its receiver is `Unreachable` (nothing can be learnt about the batch
/// from a receiver that is not there, so it is retried for as long as it takes, in order); a receiver that
/// answers `Failed` (a server error) gets `max_attempts` tries for the batch; a batch it `Refused` (HTTP 4xx)
/// will not be accepted by trying again, so it becomes a dead letter at once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// 2xx, or every PUBACK.
    Delivered {
        status: Option<u16>,
        answer: Option<String>,
    },
    /// 4xx (but 408 and 429) or a redirect.
    Refused { status: u16, answer: String },
    /// A server error (500, 501, 505, …).
    Failed {
        status: u16,
        answer: String,
        error: String,
    },
    /// No connection, no answer in time, the broker gone, or an answer that says "later" (408, 429, 502,
    /// 503, 504).
    Unreachable { status: Option<u16>, error: String },
}

/// Characters of a receiver's answer kept in the delivery log.
pub(crate) const ANSWER_CHARS: usize = 300;
