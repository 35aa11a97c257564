//! The engine behind the series port: `SeriesWriter` hands writes and deletes to the writer thread,
//! `SeriesReader` answers from the index, the buffer and the parts (`read`, `rollup`).
use super::messages::Payload;
use super::shared::{blocking, read_lock};
use super::tombstone::Hidden;
use super::{EmbeddedEngine, part, read, scan};
use crate::aggregate::Partial;
use crate::series::{SeriesFilter, SeriesInfo, SeriesReader, SeriesWriter};
use crate::{Error, Result};
use bydata_schemas::{Point, SeriesKey, UnixNanos};

#[async_trait::async_trait]
impl SeriesWriter for EmbeddedEngine {
    async fn write(&self, points: Vec<Point>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        if let Some(p) = points.iter().find(|p| !p.value.is_finite()) {
            return Err(Error::InvalidQuery {
                reason: format!("value of {} at {} is not finite", p.series, p.time),
            });
        }
        self.inner.writer.write(Payload::Points(points)).await
    }

    async fn write_grouped(&self, batch: Vec<crate::series::SeriesPoints>) -> Result<()> {
        let points: usize = batch.iter().map(|s| s.points.len()).sum();
        if points == 0 {
            return Ok(());
        }
        for s in &batch {
            if let Some((t, _)) = s.points.iter().find(|p| !p.1.is_finite()) {
                return Err(Error::InvalidQuery {
                    reason: format!("value of {} at {t} is not finite", s.series),
                });
            }
        }
        self.inner.writer.write(Payload::Grouped(batch)).await
    }

    async fn delete_range(
        &self,
        filter: &SeriesFilter,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        self.inner.writer.delete(filter.clone(), start, end).await
    }
}

#[async_trait::async_trait]
impl SeriesReader for EmbeddedEngine {
    async fn series(&self, filter: &SeriesFilter) -> Result<Vec<SeriesInfo>> {
        let index = read_lock(&self.inner.shared.index);
        let mut out: Vec<SeriesInfo> = index
            .infos
            .values()
            .filter(|info| filter.matches(&info.key))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn count_series(&self, filter: &SeriesFilter) -> Result<usize> {
        let index = read_lock(&self.inner.shared.index);
        Ok(index
            .infos
            .values()
            .filter(|info| filter.matches(&info.key))
            .count())
    }

    async fn count_unknown(&self, keys: &[&SeriesKey]) -> Result<Option<usize>> {
        let index = read_lock(&self.inner.shared.index);
        Ok(Some(keys.iter().filter(|k| index.id(k).is_none()).count()))
    }

    /// The buffered points in the range exactly, plus the parts' blocks by their index entries.
    async fn estimate_points(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Option<u64>> {
        let Some(id) = self.id_of(key).filter(|_| from < to) else {
            return Ok(Some(0));
        };
        let shared = &self.inner.shared;
        let buffered = read_lock(&shared.buffer).range(id, from, to).len() as u64;
        let parts = shared.parts();
        Ok(Some(buffered.saturating_add(read::estimate_points(
            &parts, id, from, to,
        ))))
    }

    async fn range(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<(UnixNanos, f64)>> {
        let Some(id) = self.id_of(key) else {
            return Ok(Vec::new());
        };
        if from >= to {
            return Ok(Vec::new());
        }
        let view = self.view(id, from, to);
        blocking(move || read::range(&view.parts, &view.overlay, id, from, to, &view.hidden)).await
    }

    async fn last_before(
        &self,
        key: &SeriesKey,
        before: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>> {
        let Some(id) = self.id_of(key) else {
            return Ok(None);
        };
        let view = self.view(id, before, before);
        // Usually answered from the in-memory index alone.
        scan::last_before(&view.parts, view.prev, id, before, &view.hidden)
    }

    async fn first_from(
        &self,
        key: &SeriesKey,
        from: UnixNanos,
    ) -> Result<Option<(UnixNanos, f64)>> {
        let Some(id) = self.id_of(key) else {
            return Ok(None);
        };
        let view = self.view(id, from, i64::MAX);
        // Usually answered from the in-memory index alone.
        scan::first_from(
            &view.parts,
            view.overlay.first().copied(),
            id,
            from,
            &view.hidden,
        )
    }

    async fn partials(&self, key: &SeriesKey, bounds: &[UnixNanos]) -> Result<Vec<Partial>> {
        let Some(out) = self
            .partials_many(std::slice::from_ref(key), bounds)
            .await?
            .pop()
        else {
            return Ok(Vec::new());
        };
        Ok(out)
    }

    /// One blocking task for the whole query, its series split across the cores.
    async fn partials_many(
        &self,
        keys: &[SeriesKey],
        bounds: &[UnixNanos],
    ) -> Result<Vec<Vec<Partial>>> {
        let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
            return Ok(vec![Vec::new(); keys.len()]);
        };
        let ids: Vec<Option<u64>> = keys.iter().map(|k| self.id_of(k)).collect();
        let shared = &self.inner.shared;
        // Buffered points first, then the parts (see `view`).
        let overlays: Vec<(Vec<(i64, f64)>, Option<(i64, f64)>)> = {
            let buffer = read_lock(&shared.buffer);
            ids.iter()
                .map(|id| match id {
                    Some(id) => (
                        buffer.range(*id, start, end).to_vec(),
                        buffer.range(*id, i64::MIN, start).last().copied(),
                    ),
                    None => (Vec::new(), None),
                })
                .collect()
        };
        let (parts, tombstones) = shared.snapshot();
        let bounds = bounds.to_vec();
        blocking(move || {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let work: Vec<(Option<u64>, (Vec<(i64, f64)>, Option<(i64, f64)>))> =
                ids.into_iter().zip(overlays).collect();
            let chunk = work.len().div_ceil(threads).max(1);
            let empty = vec![Partial::default(); bounds.len().saturating_sub(1)];
            let results: Vec<Result<Vec<Vec<Partial>>>> = std::thread::scope(|scope| {
                let workers: Vec<_> = work
                    .chunks(chunk)
                    .map(|slice| {
                        let (parts, bounds, empty) = (&parts, &bounds, &empty);
                        let tombstones = &tombstones;
                        scope.spawn(move || {
                            let mut scratch = part::Scratch::default();
                            slice
                                .iter()
                                .map(|(id, (overlay, prev))| match id {
                                    Some(id) => read::partials(
                                        parts,
                                        overlay,
                                        *prev,
                                        *id,
                                        bounds,
                                        &Hidden::of(tombstones, *id),
                                        &mut scratch,
                                    ),
                                    None => Ok(empty.clone()),
                                })
                                .collect::<Result<Vec<_>>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join().unwrap_or_else(|_| {
                            Err(Error::Task {
                                detail: "a query worker panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
            let mut out = Vec::with_capacity(work.len());
            for r in results {
                out.extend(r?);
            }
            Ok(out)
        })
        .await
    }
}
