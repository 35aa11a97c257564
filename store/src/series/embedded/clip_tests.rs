//! Aggregates over ranges whose `from` and `to` cut buckets: only points in `[from, to)` count, whichever
//! path answers (rollups for the inner buckets, block summaries, decoded blocks, buffered points).
use super::tests::{key, matches_reference, point, small_blocks};
use super::*;
use crate::query::{self, AggFn, Every, Query};
use crate::series::{SeriesFilter, SeriesReader, SeriesWriter};
use bydata_schemas::MeasurementName;
use bydata_schemas::Point;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;

fn query(from: i64, to: i64, every: Every, func: AggFn) -> Query {
    Query {
        filter: SeriesFilter {
            scope: None,
            measurement: Some(MeasurementName::new("temperature").expect("name")),
            field: None,
            tags: BTreeMap::new(),
        },
        from,
        to,
        every: Some(every),
        func,
        group_by: None,
        tz: chrono_tz::Tz::UTC,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// The engine's partials over bounds clipped to an unaligned `[from, to)` equal a naive computation over
    /// the points inside it (with the reading before `from` as `increase`'s baseline), and `query::run`
    /// answers the same values at the aligned bucket starts.
    #[test]
    fn clipped_aggregates_match_a_naive_reference(
        writes in proptest::collection::vec(proptest::collection::vec((0i64..900, -800i16..800), 1..60), 1..4),
        from in 0i64..900,
        len in 1i64..900,
        width in prop::sample::select(vec![1i64, 2, 3, 24]),
        settle in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tmp");
            let engine = EmbeddedEngine::open_with(&dir.path().join("series"), small_blocks()).expect("open");
            let mut model: BTreeMap<i64, f64> = BTreeMap::new();
            // A reading every minute over 15 hours (dense enough for hourly rollups), written in batches.
            for batch in &writes {
                let mut points = Vec::new();
                for (m, v) in batch {
                    for t in (m * MINUTE..(m + 30) * MINUTE).step_by(MINUTE as usize) {
                        let value = f64::from(*v) / 8.0 + (t / MINUTE) as f64;
                        model.insert(t, value);
                        points.push(point("s", t, value));
                    }
                }
                engine.write(points).await.expect("write");
                if settle {
                    engine.compact().await.expect("compact");
                }
            }
            let (from, to) = (from * MINUTE + 17_000_000_000, (from + len) * MINUTE + 3_000_000_000);
            let every = Every::Fixed(width * HOUR);
            let bounds = query::bucket_bounds(from, to, every, chrono_tz::Tz::UTC).expect("bounds");
            let mut clipped = bounds.clone();
            clipped[0] = from;
            let last = clipped.len() - 1;
            clipped[last] = to;
            let parts = engine.partials(&key("s"), &clipped).await.expect("partials");
            matches_reference(&parts, &clipped, &model)?;
            for func in [AggFn::Sum, AggFn::Count, AggFn::Increase, AggFn::First] {
                let answer = query::run(&engine, &query(from, to, every, func)).await.expect("run");
                prop_assert_eq!(answer.len(), 1);
                let want: Vec<(i64, Option<f64>)> = bounds
                    .iter()
                    .copied()
                    .zip(parts.iter().map(|p| p.finish(func)))
                    .collect();
                prop_assert_eq!(&answer[0].points, &want);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_day_bucket_cut_to_ten_minutes_sums_only_those_minutes() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = EmbeddedEngine::open(&dir.path().join("series")).expect("open");
    let day = 24 * HOUR;
    // 1.0 every minute of a day; compacted so the daily rollup exists.
    engine
        .write(
            (0..24 * 60)
                .map(|m| point("s", day + m * MINUTE, 1.0))
                .collect(),
        )
        .await
        .expect("write");
    engine.compact().await.expect("compact");
    let (from, to) = (day + 10 * HOUR + 30 * MINUTE, day + 10 * HOUR + 40 * MINUTE);
    let plan = query::plan(
        &engine,
        &query(from, to, Every::Days(1), AggFn::Sum),
        &query::Limits::default(),
    )
    .await
    .expect("plan");
    assert!(plan.is_partial(0));
    let mut chunks = plan.chunks();
    let answer = chunks
        .next(&engine)
        .await
        .expect("answer")
        .expect("a chunk");
    assert_eq!(answer[0].points, vec![(day, Some(10.0))]);
    // Aligned, the same day is whole and not partial.
    let plan = query::plan(
        &engine,
        &query(day, 2 * day, Every::Days(1), AggFn::Sum),
        &query::Limits::default(),
    )
    .await
    .expect("plan");
    assert!(!plan.is_partial(0));
    let answer = plan
        .chunks()
        .next(&engine)
        .await
        .expect("answer")
        .expect("a chunk");
    assert_eq!(answer[0].points, vec![(day, Some(1440.0))]);
}

#[tokio::test]
async fn counts_and_estimates_come_from_the_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine =
        EmbeddedEngine::open_with(&dir.path().join("series"), small_blocks()).expect("open");
    engine
        .write((0..100).map(|i| point("a", i * 10, 1.0)).collect())
        .await
        .expect("write");
    engine.compact().await.expect("compact");
    engine
        .write((100..110).map(|i| point("a", i * 10, 1.0)).collect())
        .await
        .expect("buffered");
    engine.write(vec![point("b", 5, 1.0)]).await.expect("write");
    let all = query(0, 1, Every::Days(1), AggFn::Sum).filter;
    assert_eq!(engine.count_series(&all).await.expect("count"), 2);
    let a = key("a");
    let estimate = |from, to| engine.estimate_points(&a, from, to);
    assert_eq!(estimate(0, 2000).await.expect("estimate"), Some(110));
    assert_eq!(estimate(1000, 2000).await.expect("estimate"), Some(10));
    // Blocks of 4 points straddling the edges count in proportion: close to the 25 points of [0, 250).
    let some = estimate(0, 250).await.expect("estimate").expect("known");
    assert!((25..=28).contains(&some), "{some}");
    assert_eq!(estimate(5000, 6000).await.expect("estimate"), Some(0));
    assert_eq!(
        engine
            .estimate_points(&key("missing"), 0, 10)
            .await
            .expect("estimate"),
        Some(0)
    );
}

/// A range cut mid-day still gets its whole inner days from the daily rollups — also where raw retention has
/// removed their points — and its cut edges from the points that are left.
#[tokio::test]
async fn inner_buckets_of_a_cut_range_still_come_from_rollups() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let day = 24 * HOUR;
    let now = Arc::new(AtomicI64::new(0));
    let clock_now = now.clone();
    let config = EngineConfig {
        retention: BTreeMap::from([("temperature".to_owned(), Duration::from_secs(3 * 86_400))]),
        block_points: 1024,
        ..small_blocks()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let e = EmbeddedEngine::open_with_clock(
        &dir.path().join("series"),
        config,
        Arc::new(move || clock_now.load(Ordering::SeqCst)),
    )
    .expect("open");
    // Ten days of a reading every 2 minutes, then raw retention removes all but the last three days.
    let points: Vec<Point> = (0..10 * 720)
        .map(|i| point("a", i * 2 * MINUTE, 1.0))
        .collect();
    e.write(points).await.expect("write");
    e.compact().await.expect("compact");
    now.store(10 * day, Ordering::SeqCst);
    e.compact().await.expect("compact");
    // From 12:30 on day 0 to 12:30 on day 9: off the hourly grid, so the cut days are read from points.
    let (from, to) = (12 * HOUR + 30 * MINUTE, 9 * day + 12 * HOUR + 30 * MINUTE);
    let answer = query::run(&e, &query(from, to, Every::Days(1), AggFn::Count))
        .await
        .expect("run");
    let counts: Vec<Option<f64>> = answer[0].points.iter().map(|(_, v)| *v).collect();
    let mut want = vec![None];
    want.extend([Some(720.0); 8]);
    want.push(Some(375.0));
    assert_eq!(counts, want);
    assert_eq!(
        answer[0].points[0].0, 0,
        "times stay the aligned bucket starts"
    );
}
