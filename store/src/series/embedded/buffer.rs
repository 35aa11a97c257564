//! Points written since the last flush, per series, sorted by time (the WAL holds them durably; this is the
//! readable copy). In-order writes append; late points and overwrites go to their place by binary search.
use super::fxhash::FxBuild;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub(super) struct Buffer {
    /// Keyed by our own dense series ids, so the fast hasher is safe here.
    series: HashMap<u64, Vec<(i64, f64)>, FxBuild>,
    points: usize,
}

/// Puts one point in its place; returns whether it was new (not an overwrite).
fn place(points: &mut Vec<(i64, f64)>, t: i64, v: f64) -> bool {
    match points.last() {
        Some(&(last, _)) if t <= last => match points.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => {
                points[i].1 = v;
                false
            }
            Err(i) => {
                points.insert(i, (t, v));
                true
            }
        },
        _ => {
            points.push((t, v));
            true
        }
    }
}

impl Buffer {
    /// Inserts points of one series in the order given (a later one wins at the same time).
    pub(super) fn insert_many(&mut self, id: u64, new: &[(i64, f64)]) {
        let points = self.series.entry(id).or_default();
        for &(t, v) in new {
            if place(points, t, v) {
                self.points += 1;
            }
        }
    }

    /// Deletes the points of `id` in `[from, to)` (a delete: they were written before it).
    pub(super) fn remove_range(&mut self, id: u64, from: i64, to: i64) {
        if let Some(points) = self.series.get_mut(&id) {
            let a = points.partition_point(|p| p.0 < from);
            let b = points.partition_point(|p| p.0 < to).max(a);
            points.drain(a..b);
            self.points -= b - a;
        }
    }

    pub(super) fn points(&self) -> usize {
        self.points
    }

    pub(super) fn get(&self, id: u64) -> &[(i64, f64)] {
        self.series.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The points of `id` in `[from, to)`.
    pub(super) fn range(&self, id: u64, from: i64, to: i64) -> &[(i64, f64)] {
        let points = self.get(id);
        let a = points.partition_point(|p| p.0 < from);
        let b = points.partition_point(|p| p.0 < to);
        points.get(a..b.max(a)).unwrap_or_default()
    }

    /// Every series, sorted by id.
    pub(super) fn sorted(&self) -> Vec<(u64, &[(i64, f64)])> {
        let mut out: Vec<(u64, &[(i64, f64)])> = self
            .series
            .iter()
            .map(|(id, p)| (*id, p.as_slice()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    pub(super) fn clear(&mut self) {
        self.series.clear();
        self.points = 0;
    }
}
