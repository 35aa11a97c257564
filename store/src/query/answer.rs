//! Running a query as a streamed answer: priced and checked first (a refusal is an ordinary error response),
//! heavy ones admitted by the gate, then computed and rendered a chunk at a time by a task that sends the
//! bytes over a bounded channel to the answer (which the API turns into its response body) — so memory holds a chunk, not the answer, and a client
//! that stops reading stops the work. The deadline covers everything: hit before the first bytes, it is a
//! 503; hit later, the body ends with an error, which cuts the connection (the client sees an incomplete
//! answer, never a short one that looks whole).
use super::limits::QueryGate;
use super::render::{Format, Render};
use super::{Plan, Query};
use crate::series::SeriesReader;
use crate::{Error, Result};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

/// Chunks rendered ahead of the client: backpressure beyond that.
const AHEAD: usize = 2;

/// Plans `q`, waits for a heavy-query permit if it needs one, and starts the answer; returns its body once
/// the first chunk is rendered, or the error that came before it (which the caller counts: `QueryGate::count`).
pub async fn start(
    reader: Arc<dyn SeriesReader>,
    gate: Arc<QueryGate>,
    q: Query,
    format: Format,
) -> Result<Answer> {
    let deadline = Instant::now() + gate.deadline;
    let plan = tokio::time::timeout_at(
        deadline,
        super::plan(reader.as_ref(), &q, &gate.store_limits()),
    )
    .await
    .map_err(|_| gate.timed_out(None))??;
    // A deadline already past is past, even when the work happened to be ready at once.
    if Instant::now() >= deadline {
        return Err(gate.timed_out(Some(&plan.cost())));
    }
    let permit = if gate.is_heavy(&plan.cost()) {
        Some(gate.admit(&plan.cost(), deadline).await?)
    } else {
        None
    };
    // Nothing matched: say so, and what is near (the answer itself stays `"series": []`); or series matched
    // but the range holds none of their points: say where their newest point is.
    let notice = tokio::time::timeout_at(deadline, notice(reader.as_ref(), &plan))
        .await
        .map_err(|_| gate.timed_out(Some(&plan.cost())))??;
    let (tx, mut rx) = mpsc::channel(AHEAD);
    let render = Render::new(&plan, format, notice.clone());
    tokio::spawn(produce(plan, render, reader, deadline, gate, permit, tx));
    let first = rx.recv().await.ok_or_else(|| Error::Task {
        detail: "the query task ended without an answer".into(),
    })??;
    Ok(Answer {
        first: Some(first),
        rx,
        notice,
    })
}

/// What an answer says beside its series, if anything.
async fn notice(reader: &dyn SeriesReader, plan: &Plan) -> Result<Option<String>> {
    let q = plan.query();
    if plan.answer_series().next().is_none() {
        return Ok(Some(super::nothing_matched(reader, &q.filter).await?));
    }
    let keys: Vec<_> = plan
        .series_keys()
        .take(super::suggest::MAX_RANGE_CHECK + 1)
        .cloned()
        .collect();
    super::nothing_in_range(reader, &keys, (q.from, q.to, q.tz)).await
}

/// Computes and renders the answer until done, the deadline, an error or the client leaving. An error after
/// the first bytes went out is counted here (before them, the handler answers and counts it).
async fn produce(
    plan: Plan,
    render: Render,
    reader: Arc<dyn SeriesReader>,
    deadline: Instant,
    gate: Arc<QueryGate>,
    permit: Option<OwnedSemaphorePermit>,
    tx: mpsc::Sender<Result<Vec<u8>>>,
) {
    // Held until the answer is out: a heavy query counts as running while the client reads it.
    let _permit = permit;
    let cost = plan.cost();
    let mut started = false;
    let outcome = tokio::time::timeout_at(
        deadline,
        write(plan, render, reader.as_ref(), &tx, &mut started, deadline),
    )
    .await;
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => gate.timed_out(Some(&cost)),
    };
    if started {
        gate.count(&error);
        tracing::warn!(error = %error, "query answer cut short");
    }
    let _ = tx.send(Err(error)).await;
}

/// Renders the answer onto `tx`. The first message holds the head and the first chunk of series, so an
/// error in that chunk (the raw-point limit, a store error) still becomes a proper HTTP status.
async fn write(
    plan: Plan,
    mut render: Render,
    reader: &dyn SeriesReader,
    tx: &mpsc::Sender<Result<Vec<u8>>>,
    started: &mut bool,
    deadline: Instant,
) -> Result<()> {
    let mut pending = render.head()?;
    let mut chunks = plan.chunks();
    while let Some(series) = chunks.next(reader).await? {
        if Instant::now() >= deadline {
            // Work that was ready at once still ends at the deadline: wait for the timer to say so.
            std::future::pending::<()>().await;
        }
        // Rendering a chunk is CPU work of tens of milliseconds: off the async workers.
        let (back, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = render.series(&series);
            (render, bytes)
        })
        .await
        .map_err(|e| Error::Task {
            detail: format!("rendering the answer: {e}"),
        })?;
        render = back;
        pending.extend(bytes?);
        if tx.send(Ok(std::mem::take(&mut pending))).await.is_err() {
            // The client left: nothing more to do.
            return Ok(());
        }
        *started = true;
    }
    pending.extend(render.tail()?);
    let _ = tx.send(Ok(pending)).await;
    Ok(())
}

/// A started answer: the first chunk (already rendered when the answer started), then the channel. An error
/// after the first chunk means the answer is cut: the reader must not present what came as whole.
#[derive(Debug)]
pub struct Answer {
    first: Option<Vec<u8>>,
    rx: mpsc::Receiver<Result<Vec<u8>>>,
    notice: Option<String>,
}

impl Answer {
    /// When no series matched: what was asked and the nearest names that exist (also in the JSON answer;
    /// a CSV answer has no place for it, so the API sends it as a header).
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The next chunk of bytes, an error that cuts the answer, or `None` at its end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        self.rx.poll_recv(cx)
    }

    /// `poll_chunk` as a future.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }
}

/// The answer as a stream of byte chunks: what an HTTP body is made from.
impl futures_core::Stream for Answer {
    type Item = Result<Vec<u8>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        self.poll_chunk(cx)
    }
}
