//! What the engine's threads say to each other: requests to the writer thread (`Request`), notices and
//! requests to the merger thread (`MergeRequest`), and how either answers a request (`Done`, `answer`).
use crate::series::{SeriesFilter, SeriesPoints};
use crate::{Error, Result};
use bydata_schemas::Point;
use tokio::sync::oneshot;

/// Where a request is answered, once the work it asked for is durable (or has failed).
pub(super) type Done = oneshot::Sender<Result<()>>;

/// What a write request carries: points each with its key, or points grouped by series.
pub(super) enum Payload {
    Points(Vec<Point>),
    Grouped(Vec<SeriesPoints>),
}

impl Payload {
    pub(super) fn len(&self) -> usize {
        match self {
            Payload::Points(p) => p.len(),
            Payload::Grouped(g) => g.iter().map(|s| s.points.len()).sum(),
        }
    }
}

/// A request to the writer thread.
pub(super) enum Request {
    Write {
        payload: Payload,
        done: Done,
    },
    Delete {
        filter: SeriesFilter,
        start: i64,
        end: i64,
        done: Done,
    },
    Compact {
        done: Done,
    },
}

/// A notice or request to the merger thread.
pub(super) enum MergeRequest {
    /// The writer flushed a part.
    Flushed,
    /// Merge everything now, and answer.
    All { done: Done },
}

/// Answers a request with its outcome, naming the work that failed.
pub(super) fn answer(done: Done, result: &Result<()>, what: &str) {
    let _ = done.send(match result {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::Task {
            detail: format!("{what} failed: {e}"),
        }),
    });
}
