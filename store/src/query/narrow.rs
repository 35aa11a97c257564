//! How a query over its limits could be narrowed: the refusals `plan` gives, with the wider bucket that would
//! fit computed here (their wording is `refusal.rs`'s).
use super::plan::Limits;
use super::refusal::TooLarge;
use super::{Every, Query, bucket_bounds};

/// Bucket widths suggested instead of a narrower one, narrowest first.
const WIDER: [&str; 8] = ["1m", "5m", "15m", "1h", "1d", "1w", "1mo", "1y"];

impl TooLarge {
    pub(super) fn values(
        q: &Query,
        rows: u64,
        grouped: bool,
        buckets: u64,
        limits: &Limits,
    ) -> Self {
        let every = q.every.unwrap_or(Every::Days(1));
        let wider = fitting(q, rows, limits.max_values, |w| {
            w.approximate_secs() > every.approximate_secs()
        });
        TooLarge::Values {
            rows,
            grouped,
            buckets,
            every,
            limit: limits.max_values,
            wider,
        }
    }

    pub(super) fn raw(q: &Query, estimated: u64, series: u64, limits: &Limits) -> Self {
        let aggregate = fitting(
            q,
            series,
            limits.max_values.min(limits.max_raw_points),
            |w| w.approximate_secs() >= 3600,
        );
        TooLarge::RawPoints {
            estimated,
            series,
            limit: limits.max_raw_points,
            aggregate,
        }
    }
}

/// The narrowest suggested width accepted by `wanted` whose answer (`rows` × buckets) fits `limit`.
fn fitting(
    q: &Query,
    rows: u64,
    limit: u64,
    wanted: impl Fn(&Every) -> bool,
) -> Option<(Every, u64)> {
    WIDER
        .iter()
        .filter_map(|w| w.parse::<Every>().ok())
        .filter(|w| wanted(w))
        .find_map(|w| {
            let buckets = bucket_bounds(q.from, q.to, w, q.tz).ok()?.len() as u64 - 1;
            (rows.saturating_mul(buckets) <= limit).then_some((w, buckets))
        })
}
