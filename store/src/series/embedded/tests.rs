use super::*;
use crate::series::{SeriesFilter, SeriesReader, SeriesWriter};
use bydata_schemas::MeasurementName;
use bydata_schemas::{Point, Unit};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) fn key(device: &str) -> SeriesKey {
    SeriesKey {
        measurement: MeasurementName::new("temperature").expect("name"),
        tags: BTreeMap::from([("device".to_owned(), device.to_owned())]),
        field: MeasurementName::new("value").expect("name"),
    }
}

pub(super) fn point(device: &str, time: i64, value: f64) -> Point {
    Point {
        series: key(device),
        unit: Unit::for_measurement("temperature"),
        time,
        value,
    }
}

pub(super) fn small_blocks() -> EngineConfig {
    EngineConfig {
        block_points: 4,
        // Small enough that the model tests flush many overlapping parts, which the merger combines.
        compact_after_points: 16,
        compact_when_idle: Duration::from_secs(3600),
        max_group_points: 1000,
        retention: BTreeMap::new(),
        rollups: true,
        rollup_retention: None,
    }
}

#[tokio::test]
async fn writes_are_idempotent_and_durable() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    {
        let e = EmbeddedEngine::open(&path).expect("open");
        e.write(vec![
            point("a", 10, 1.0),
            point("a", 20, 2.0),
            point("b", 10, 5.0),
        ])
        .await
        .expect("write");
        e.write(vec![point("a", 20, 2.5)]).await.expect("rewrite");
    }
    let e = EmbeddedEngine::open(&path).expect("reopen");
    assert_eq!(
        e.range(&key("a"), 0, 100).await.expect("range"),
        vec![(10, 1.0), (20, 2.5)]
    );
    assert_eq!(
        e.range(&key("a"), 10, 20).await.expect("range"),
        vec![(10, 1.0)]
    );
    assert_eq!(
        e.last_before(&key("a"), i64::MAX).await.expect("last"),
        Some((20, 2.5))
    );
    assert_eq!(e.last_before(&key("a"), 10).await.expect("last"), None);
    let all = e
        .series(&SeriesFilter {
            scope: None,
            measurement: Some(MeasurementName::new("temperature").expect("name")),
            field: None,
            tags: BTreeMap::new(),
        })
        .await
        .expect("series");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].unit.as_ref().map(Unit::as_str), Some("Cel"));
    // A non-finite value never reaches disk.
    assert!(e.write(vec![point("a", 30, f64::NAN)]).await.is_err());
    assert_eq!(e.range(&key("a"), 0, 100).await.expect("range").len(), 2);
}

#[tokio::test]
async fn compaction_keeps_every_point_and_late_data_wins() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = EmbeddedEngine::open_with(&dir.path().join("series"), small_blocks()).expect("open");
    e.write((0..10).map(|i| point("a", i * 10, i as f64)).collect())
        .await
        .expect("write");
    e.compact().await.expect("compact");
    let report = e.verify().expect("verify");
    assert_eq!((report.head_points, report.block_points), (0, 10));
    assert_eq!(report.blocks, 3, "4 + 4 + 2 points");
    // Late data into the middle of a block, a rewrite, and new points topping up the last block.
    e.write(vec![
        point("a", 35, 99.0),
        point("a", 40, -4.0),
        point("a", 100, 10.0),
    ])
    .await
    .expect("late write");
    let want: Vec<(i64, f64)> = (0..10)
        .map(|i| (i * 10, if i == 4 { -4.0 } else { i as f64 }))
        .chain([(35, 99.0), (100, 10.0)])
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    assert_eq!(
        e.range(&key("a"), i64::MIN, i64::MAX).await.expect("range"),
        want,
        "before compaction"
    );
    e.compact().await.expect("compact");
    assert_eq!(
        e.range(&key("a"), i64::MIN, i64::MAX).await.expect("range"),
        want,
        "after compaction"
    );
    assert_eq!(e.verify().expect("verify").block_points, 12);
    assert_eq!(
        e.last_before(&key("a"), 40).await.expect("last"),
        Some((35, 99.0))
    );
    assert_eq!(
        e.last_before(&key("a"), 41).await.expect("last"),
        Some((40, -4.0))
    );
}

/// Every function's buckets from `parts` equal a naive computation over the model's points.
pub(super) fn matches_reference(
    parts: &[crate::query::Partial],
    bounds: &[i64],
    model: &BTreeMap<i64, f64>,
) -> Result<(), TestCaseError> {
    use crate::query::{AggFn, aggregate, increase};
    let (b0, bn) = (bounds[0], bounds[bounds.len() - 1]);
    let inside: Vec<(i64, f64)> = model.range(b0..bn).map(|(t, v)| (*t, *v)).collect();
    let before = model.range(..b0).next_back().map(|(_, v)| *v);
    // fn=consumption: from the same partials and the model's readings around the range, against the meter's
    // line through all of the model's points.
    let around = (
        model.range(..b0).next_back().map(|(t, v)| (*t, *v)),
        model.range(bn..).next().map(|(t, v)| (*t, *v)),
    );
    let c = crate::query::consumption::per_bucket(bounds, around.0, parts, around.1);
    let all: Vec<(i64, f64)> = model.iter().map(|(t, v)| (*t, *v)).collect();
    for (i, w) in bounds.windows(2).enumerate() {
        let want = crate::query::consumption::line_at(&all, w[1])
            .zip(crate::query::consumption::line_at(&all, w[0]))
            .map(|(b, a)| b - a);
        match (c.value(i), want) {
            (Some(g), Some(w)) => prop_assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "consumption: {g} vs {w}"
            ),
            (g, w) => prop_assert_eq!(g.is_some(), w.is_some(), "consumption: {:?}", c),
        }
    }
    for func in [
        AggFn::Mean,
        AggFn::Min,
        AggFn::Max,
        AggFn::Sum,
        AggFn::Count,
        AggFn::First,
        AggFn::Last,
        AggFn::Increase,
    ] {
        let want = if func == AggFn::Increase {
            increase(bounds, before, &inside)
        } else {
            aggregate(bounds, &inside, func)
        };
        let got: Vec<Option<f64>> = parts.iter().map(|p| p.finish(func)).collect();
        for (g, w) in got.iter().zip(&want) {
            match (g, w) {
                (Some(g), Some(w)) => prop_assert!(
                    (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                    "{func}: {g} vs {w}"
                ),
                _ => prop_assert_eq!(
                    g.is_some(),
                    w.is_some(),
                    "{}: {:?} vs {:?}",
                    func,
                    got,
                    want
                ),
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(u8, i16, i16)>),
    /// Deletes `[from, to)` of one series (or of the whole measurement), then, with `rewrite`, writes the
    /// deleted points again at the same times with new values (what a re-decode does).
    Delete {
        series: Option<u8>,
        from: i16,
        to: i16,
        rewrite: bool,
    },
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0u8..3, any::<i16>(), any::<i16>()), 1..40).prop_map(Op::Write),
        2 => (proptest::option::of(0u8..3), any::<i16>(), any::<i16>(), any::<bool>()).prop_map(
            |(series, a, b, rewrite)| Op::Delete { series, from: a.min(b), to: a.max(b), rewrite }
        ),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// A delete's filter: one device's series, or every series of the measurement.
pub(super) fn delete_filter(device: Option<String>) -> SeriesFilter {
    match device {
        Some(d) => SeriesFilter {
            scope: None,
            measurement: None,
            field: None,
            tags: BTreeMap::from([("device".to_owned(), d)]),
        },
        None => SeriesFilter {
            scope: None,
            measurement: Some(MeasurementName::new("temperature").expect("name")),
            field: None,
            tags: BTreeMap::new(),
        },
    }
}

/// Runs `Op::Delete` against the engine and a model keyed by (series, time); `name` gives a series' device.
async fn delete_in_both(
    engine: &EmbeddedEngine,
    model: &mut BTreeMap<(u8, i64), f64>,
    series: Option<u8>,
    (from, to): (i64, i64),
    rewrite: bool,
    name: &dyn Fn(u8) -> String,
) {
    engine
        .delete_range(&delete_filter(series.map(name)), from, to)
        .await
        .expect("delete");
    let gone: Vec<((u8, i64), f64)> = model
        .iter()
        .filter(|((s, t), _)| series.is_none_or(|x| x == *s) && (from..to).contains(t))
        .map(|(k, v)| (*k, *v))
        .collect();
    for (k, _) in &gone {
        model.remove(k);
    }
    if rewrite && !gone.is_empty() {
        engine
            .write(
                gone.iter()
                    .map(|((s, t), v)| point(&name(*s), *t, v + 1.0))
                    .collect(),
            )
            .await
            .expect("rewrite");
        for ((s, t), v) in gone {
            model.insert((s, t), v + 1.0);
        }
    }
}

/// The single-series model of the aggregate tests, by time.
fn by_time(model: &BTreeMap<(u8, i64), f64>) -> BTreeMap<i64, f64> {
    model.iter().map(|((_, t), v)| (*t, *v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Random writes in random orders, with deletes (and re-writes at the deleted times), compactions and
    /// reopenings in between, always read back as a naive map (last write wins) says, through `range` and
    /// `last_before`; a full compaction stores exactly the model's points and retires every tombstone.
    #[test]
    fn reads_match_a_naive_model(ops in proptest::collection::vec(op(), 1..25), probes in proptest::collection::vec((any::<i16>(), any::<i16>()), 4)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("series");
            let mut engine = EmbeddedEngine::open_with(&path, small_blocks()).expect("open");
            let mut model: BTreeMap<(u8, i64), f64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Write(points) => {
                        for (s, t, v) in &points {
                            model.insert((*s, i64::from(*t)), f64::from(*v) / 8.0);
                        }
                        engine
                            .write(points.iter().map(|(s, t, v)| point(&format!("s{s}"), i64::from(*t), f64::from(*v) / 8.0)).collect())
                            .await
                            .expect("write");
                    }
                    Op::Delete { series, from, to, rewrite } => {
                        let range = (i64::from(from), i64::from(to));
                        delete_in_both(&engine, &mut model, series, range, rewrite, &|s| format!("s{s}")).await;
                    }
                    Op::Compact => engine.compact().await.expect("compact"),
                    Op::Reopen => {
                        drop(engine);
                        engine = EmbeddedEngine::open_with(&path, small_blocks()).expect("reopen");
                    }
                }
            }
            for s in 0u8..3 {
                let k = key(&format!("s{s}"));
                for (a, b) in &probes {
                    let (from, to) = (i64::from(*a.min(b)), i64::from(*a.max(b)));
                    let want: Vec<(i64, f64)> = model.range((s, from)..(s, to)).map(|((_, t), v)| (*t, *v)).collect();
                    prop_assert_eq!(engine.range(&k, from, to).await.expect("range"), want);
                    let last = model.range((s, i64::MIN)..(s, to)).next_back().map(|((_, t), v)| (*t, *v));
                    prop_assert_eq!(engine.last_before(&k, to).await.expect("last"), last);
                    let next = model.range((s, from)..(s, i64::MAX)).next().map(|((_, t), v)| (*t, *v));
                    prop_assert_eq!(engine.first_from(&k, from).await.expect("first"), next);
                }
            }
            engine.compact().await.expect("compact");
            let report = engine.verify().expect("verify");
            prop_assert_eq!(report.head_points, 0);
            prop_assert_eq!(report.block_points, model.len() as u64);
            prop_assert_eq!(engine.tombstones(), 0);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Bucket aggregates answered from block summaries, decoded blocks and head points equal a naive
    /// computation over the model's points, for every function, after any mix of writes, deletes and
    /// compactions.
    #[test]
    fn aggregates_match_a_naive_reference(
        ops in proptest::collection::vec(op(), 1..20),
        start in -2000i64..2000,
        width in 1i64..3000,
        buckets in 1usize..12,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("series");
            let engine = EmbeddedEngine::open_with(&path, small_blocks()).expect("open");
            let mut model: BTreeMap<(u8, i64), f64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Write(points) => {
                        for (_, t, v) in &points {
                            model.insert((0, i64::from(*t)), f64::from(*v) / 8.0);
                        }
                        engine
                            .write(points.iter().map(|(_, t, v)| point("s", i64::from(*t), f64::from(*v) / 8.0)).collect())
                            .await
                            .expect("write");
                    }
                    Op::Delete { series, from, to, rewrite } => {
                        let range = (i64::from(from), i64::from(to));
                        // One series here: any series means "s".
                        delete_in_both(&engine, &mut model, series.map(|_| 0), range, rewrite, &|_| "s".to_owned()).await;
                    }
                    Op::Compact | Op::Reopen => engine.compact().await.expect("compact"),
                }
            }
            let model = by_time(&model);
            let bounds: Vec<i64> = (0..=buckets as i64).map(|i| start + i * width).collect();
            let parts = engine.partials(&key("s"), &bounds).await.expect("partials");
            // The batched form answers the same, in order, with empty buckets for an unknown series.
            let many = engine.partials_many(&[key("missing"), key("s")], &bounds).await.expect("many");
            prop_assert_eq!(&many[1], &parts);
            prop_assert!(many[0].iter().all(|p| p.count == 0));
            // fn=consumption as the query layer asks for it: the readings around the range found by the
            // engine (folded with the buckets, or looked up), against the meter's line through the model.
            let (_, c) = crate::query::consumption::partials_many(&engine, &[key("s")], &bounds).await.expect("consumption");
            let all: Vec<(i64, f64)> = model.iter().map(|(t, v)| (*t, *v)).collect();
            for (i, w) in bounds.windows(2).enumerate() {
                let line = crate::query::consumption::line_at;
                let want = line(&all, w[1]).zip(line(&all, w[0])).map(|(b, a)| b - a);
                let got = c.first().and_then(|c| c.value(i));
                match (got, want) {
                    (Some(g), Some(w)) => prop_assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "consumption: {} vs {}", g, w),
                    (g, w) => prop_assert_eq!(g.is_some(), w.is_some(), "consumption: {:?}", c),
                }
            }
            matches_reference(&parts, &bounds, &model)
        })?;
    }
}

#[tokio::test]
async fn retention_deletes_exactly_what_is_too_old() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let dir = tempfile::tempdir().expect("tmp");
    let now = Arc::new(AtomicI64::new(1_000));
    let clock_now = now.clone();
    let config = EngineConfig {
        retention: BTreeMap::from([("temperature".to_owned(), Duration::from_nanos(500))]),
        ..small_blocks()
    };
    let e = EmbeddedEngine::open_with_clock(
        &dir.path().join("series"),
        config,
        Arc::new(move || clock_now.load(Ordering::SeqCst)),
    )
    .expect("open");
    let co2 = |t: i64| Point {
        series: SeriesKey {
            measurement: MeasurementName::new("co2").expect("name"),
            tags: BTreeMap::new(),
            field: MeasurementName::new("value").expect("name"),
        },
        unit: None,
        time: t,
        value: 400.0,
    };
    e.write(
        (0..10)
            .map(|i| point("a", i * 100, i as f64))
            .chain((0..10).map(|i| co2(i * 100)))
            .collect(),
    )
    .await
    .expect("write");
    // At 1000 with 500 ns of retention, temperatures before 500 go — also from inside the block 400..700.
    e.compact().await.expect("compact");
    let kept: Vec<i64> = e
        .range(&key("a"), i64::MIN, i64::MAX)
        .await
        .expect("range")
        .iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(kept, vec![500, 600, 700, 800, 900]);
    let co2_key = co2(0).series;
    assert_eq!(
        e.range(&co2_key, i64::MIN, i64::MAX)
            .await
            .expect("range")
            .len(),
        10,
        "no retention set for co2"
    );
    // Time passes; late old data is also dropped at the next pass, uncompacted head points included.
    now.store(1_750, Ordering::SeqCst);
    e.write(vec![point("a", 50, 0.5), point("a", 1_500, 15.0)])
        .await
        .expect("write");
    e.compact().await.expect("compact");
    let kept: Vec<i64> = e
        .range(&key("a"), i64::MIN, i64::MAX)
        .await
        .expect("range")
        .iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(kept, vec![1_500]);
    assert_eq!(e.verify().expect("verify").block_points, 11);
}

#[tokio::test]
async fn a_torn_wal_tail_is_cut_and_the_rest_replayed() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    {
        let e = EmbeddedEngine::open_with(&path, small_blocks()).expect("open");
        e.write(vec![point("a", 10, 1.0)]).await.expect("write");
        e.write(vec![point("a", 20, 2.0)]).await.expect("write");
    }
    // A record cut short by kill -9 in the middle of its write: half of a third record.
    let (_, segment) = files::numbered(&path.join("wal"), "wal")
        .expect("list")
        .into_iter()
        .find(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .expect("a segment with records");
    let mut bytes = std::fs::read(&segment).expect("read");
    let whole = bytes.len();
    let third = wal::encode(&[], &[(0, &[(30, 3.0)][..])]).expect("encode");
    let mut framed = Vec::new();
    files::frame(&mut framed, &third);
    bytes.extend_from_slice(&framed[..framed.len() - 5]);
    std::fs::write(&segment, &bytes).expect("write");
    let e = EmbeddedEngine::open_with(&path, small_blocks()).expect("reopen");
    assert_eq!(
        e.range(&key("a"), 0, 100).await.expect("range"),
        vec![(10, 1.0), (20, 2.0)]
    );
    assert_eq!(
        std::fs::metadata(&segment).expect("meta").len(),
        whole as u64,
        "the torn tail is cut"
    );
    assert_eq!(e.head_points().expect("head"), 2);
}

#[tokio::test]
async fn parts_a_finished_merge_replaced_are_removed_at_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    {
        let e = EmbeddedEngine::open_with(&path, small_blocks()).expect("open");
        e.write(vec![point("a", 10, 1.0)]).await.expect("write");
        e.compact().await.expect("compact");
        e.write(vec![point("a", 10, 5.0), point("a", 20, 2.0)])
            .await
            .expect("write");
        e.compact().await.expect("compact");
    }
    let parts_dir = path.join("parts");
    let merged = files::numbered(&parts_dir, "part").expect("list");
    assert_eq!(merged.len(), 1, "one part after a full compaction");
    // Put back what a merge that stopped before removing its inputs would have left: an older part whose
    // flush range the merged part covers, holding the old value, and a temporary file.
    let (number, merged_path) = &merged[0];
    let old = Part::open(merged_path, *number).expect("open part");
    let mut stale = part::PartWriter::create(&parts_dir, 0, old.lo, old.lo).expect("create");
    stale.add_points(0, &[(10, 1.0)], 4).expect("add");
    stale.finish().expect("finish");
    std::fs::write(parts_dir.join("0000000000000099.part.tmp"), b"half").expect("tmp");
    let e = EmbeddedEngine::open_with(&path, small_blocks()).expect("reopen");
    assert_eq!(
        e.range(&key("a"), 0, 100).await.expect("range"),
        vec![(10, 5.0), (20, 2.0)]
    );
    let left: Vec<String> = std::fs::read_dir(&parts_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[tokio::test]
async fn late_data_in_a_newer_part_wins_until_and_after_a_merge() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = EngineConfig {
        compact_after_points: 3,
        ..small_blocks()
    };
    let e = EmbeddedEngine::open_with(&dir.path().join("series"), config).expect("open");
    // Each write of 3 points flushes a part of its own: three parts with overlapping time spans.
    e.write((0..3).map(|i| point("a", i * 10, 1.0)).collect())
        .await
        .expect("write");
    e.write(vec![
        point("a", 5, 2.0),
        point("a", 10, 2.0),
        point("a", 40, 2.0),
    ])
    .await
    .expect("write");
    e.write(vec![
        point("a", 10, 3.0),
        point("a", 15, 3.0),
        point("a", 50, 3.0),
    ])
    .await
    .expect("write");
    let want = vec![
        (0, 1.0),
        (5, 2.0),
        (10, 3.0),
        (15, 3.0),
        (20, 1.0),
        (40, 2.0),
        (50, 3.0),
    ];
    assert!(e.verify().expect("verify").parts >= 2);
    assert_eq!(e.range(&key("a"), 0, 100).await.expect("range"), want);
    let bounds = [0, 100];
    let p = e.partials(&key("a"), &bounds).await.expect("partials");
    assert_eq!((p[0].count, p[0].sum), (7, 15.0));
    e.compact().await.expect("compact");
    let report = e.verify().expect("verify");
    assert_eq!((report.parts, report.block_points), (1, 7));
    assert_eq!(e.range(&key("a"), 0, 100).await.expect("range"), want);
}

proptest! {
    /// Bytes from disk never panic the parsers: WAL records, frames, and part files.
    #[test]
    fn damaged_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
        let _ = wal::decode(&bytes);
        let _ = files::frames(&bytes);
        let dir = tempfile::tempdir().expect("tmp");
        let good = {
            let mut w = part::PartWriter::create(dir.path(), 1, 1, 1).expect("create");
            w.add_points(3, &[(1, 1.0), (2, 2.5), (9, -1.0)], 2).expect("add");
            w.finish().expect("finish");
            std::fs::read(part::path(dir.path(), 1)).expect("read")
        };
        let path = dir.path().join("x.part");
        std::fs::write(&path, &bytes).expect("write");
        let _ = Part::open(&path, 2);
        // A real part, cut or with a byte flipped.
        let mut damaged = good.clone();
        damaged.truncate(cut.min(good.len()));
        std::fs::write(&path, &damaged).expect("write");
        prop_assert!(cut >= good.len() || Part::open(&path, 2).is_err());
        let mut flipped = good.clone();
        let i = cut % good.len();
        flipped[i] ^= 0x41;
        std::fs::write(&path, &flipped).expect("write");
        if let Ok(p) = Part::open(&path, 2) {
            for b in p.blocks() {
                let _ = p.decode(b);
            }
        }
    }
}

const MINUTE: i64 = 60_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Hour- and day-aligned buckets (answered from rollups when one part holds the range, from points
    /// otherwise) equal a naive computation, after any mix of writes (late data included), deletes and
    /// compactions — so a rollup never answers with a deleted point.
    #[test]
    fn rollup_aggregates_match_a_naive_reference(
        ops in proptest::collection::vec(op(), 1..20),
        start in -3i64..12,
        width in prop::sample::select(vec![1i64, 2, 24, 48]),
        buckets in 1usize..12,
        settle in any::<bool>(),
        then_delete in proptest::option::weighted(0.75, (any::<i16>(), any::<i16>())),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tmp");
            let engine = EmbeddedEngine::open_with(&dir.path().join("series"), small_blocks()).expect("open");
            let mut model: BTreeMap<(u8, i64), f64> = BTreeMap::new();
            // Points on a 1-minute grid over 10 hours, so hours hold enough of them for rollups to pay.
            let at = |t: i16| i64::from(t).rem_euclid(600) * MINUTE;
            for op in ops {
                match op {
                    Op::Write(points) => {
                        for (_, t, v) in &points {
                            model.insert((0, at(*t)), f64::from(*v) / 8.0);
                        }
                        engine
                            .write(points.iter().map(|(_, t, v)| point("s", at(*t), f64::from(*v) / 8.0)).collect())
                            .await
                            .expect("write");
                    }
                    Op::Delete { series, from, to, rewrite } => {
                        let (a, b) = (at(from), at(to));
                        let range = (a.min(b), a.max(b));
                        // One series here: any series means "s".
                        delete_in_both(&engine, &mut model, series.map(|_| 0), range, rewrite, &|_| "s".to_owned()).await;
                    }
                    Op::Compact | Op::Reopen => engine.compact().await.expect("compact"),
                }
            }
            if settle {
                // One part and an empty buffer: the rollups answer.
                engine.compact().await.expect("compact");
            }
            if let Some((from, to)) = then_delete {
                // A delete over that one part: its rollups must not answer for the buckets it touches.
                let (a, b) = (at(from), at(to));
                delete_in_both(&engine, &mut model, Some(0), (a.min(b), a.max(b)), false, &|_| "s".to_owned()).await;
            }
            let model = by_time(&model);
            let hour = 60 * MINUTE;
            let bounds: Vec<i64> = (0..=buckets as i64).map(|i| (start + i * width) * hour).collect();
            let parts = engine.partials(&key("s"), &bounds).await.expect("partials");
            matches_reference(&parts, &bounds, &model)
        })?;
    }
}

#[tokio::test]
async fn rollups_answer_aligned_buckets_and_outlive_raw_retention() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let day = 24 * 60 * MINUTE;
    let now = Arc::new(AtomicI64::new(10 * day));
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
    // Ten days of a reading every 2 minutes (values 0..720 per day), written before retention bites.
    now.store(0, Ordering::SeqCst);
    let points: Vec<Point> = (0..10 * 720)
        .map(|i| point("a", i * 2 * MINUTE, (i % 720) as f64))
        .collect();
    e.write(points).await.expect("write");
    e.compact().await.expect("compact");
    let report = e.verify().expect("verify");
    assert_eq!(
        report.rollups,
        10 * 24 + 10,
        "an entry per hour and per day"
    );
    // Seven days later, raw retention (3 days) has removed the first days' points...
    now.store(10 * day, Ordering::SeqCst);
    e.compact().await.expect("compact");
    let raw = e.range(&key("a"), 0, 10 * day).await.expect("range");
    assert_eq!(raw.first().map(|p| p.0), Some(7 * day));
    // ...but daily aggregates still answer for every day, from the rollups.
    let bounds: Vec<i64> = (0..=10).map(|d| d * day).collect();
    let parts = e.partials(&key("a"), &bounds).await.expect("partials");
    let sums: Vec<Option<f64>> = parts
        .iter()
        .map(|p| p.finish(crate::query::AggFn::Sum))
        .collect();
    assert_eq!(sums, vec![Some(719.0 * 720.0 / 2.0); 10]);
    let counts: Vec<u64> = parts.iter().map(|p| p.count).collect();
    assert_eq!(counts, vec![720; 10]);
    // Hourly too, on the first day, whose points are gone.
    let hours: Vec<i64> = (0..=24).map(|h| h * 60 * MINUTE).collect();
    let parts = e.partials(&key("a"), &hours).await.expect("partials");
    assert!(parts.iter().all(|p| p.count == 30), "{parts:?}");
    assert_eq!(parts[1].finish(crate::query::AggFn::First), Some(30.0));
}

#[tokio::test]
async fn grouped_writes_equal_point_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = EmbeddedEngine::open_with(&dir.path().join("series"), small_blocks()).expect("open");
    e.write_grouped(vec![
        crate::series::SeriesPoints {
            series: key("a"),
            unit: Unit::for_measurement("temperature"),
            points: vec![(30, 3.0), (10, 1.0), (30, 3.5)],
        },
        crate::series::SeriesPoints {
            series: key("b"),
            unit: None,
            points: vec![(10, 7.0)],
        },
    ])
    .await
    .expect("grouped");
    e.write(vec![point("a", 20, 2.0)]).await.expect("points");
    assert_eq!(
        e.range(&key("a"), 0, 100).await.expect("range"),
        vec![(10, 1.0), (20, 2.0), (30, 3.5)],
        "in order, the later point at the same time winning"
    );
    assert_eq!(
        e.range(&key("b"), 0, 100).await.expect("range"),
        vec![(10, 7.0)]
    );
    let nan = crate::series::SeriesPoints {
        series: key("b"),
        unit: None,
        points: vec![(20, f64::NAN)],
    };
    assert!(e.write_grouped(vec![nan]).await.is_err());
}
