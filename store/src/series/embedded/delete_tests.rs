//! Deletes (`SeriesWriter::delete_range`) in the embedded engine: what they hide, where (buffer, parts,
//! rollups), across restarts, and that merges apply them and retire their tombstones.
use super::tests::{delete_filter, key, matches_reference, point, small_blocks};
use super::tombstone::Tombstone;
use super::*;
use crate::series::{SeriesFilter, SeriesReader, SeriesWriter};
use bydata_schemas::MeasurementName;
use bydata_schemas::Point;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;

/// A flush every `n` points, and no merges but the ones a test asks for (`compact`) or size-tiering starts.
fn flush_every(n: u64) -> EngineConfig {
    EngineConfig {
        compact_after_points: n,
        ..small_blocks()
    }
}

fn device(d: &str) -> SeriesFilter {
    delete_filter(Some(d.to_owned()))
}

async fn all(e: &EmbeddedEngine, device: &str) -> Vec<(i64, f64)> {
    e.range(&key(device), i64::MIN, i64::MAX)
        .await
        .expect("range")
}

#[tokio::test]
async fn a_delete_hides_buffered_and_flushed_points_but_not_later_writes_at_the_same_times() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("open");
    // Three parts of four points each (0, 10, …, 110), then two buffered points.
    for chunk in 0..3 {
        e.write(
            (0..4)
                .map(|i| point("a", (chunk * 4 + i) * 10, 1.0))
                .collect(),
        )
        .await
        .expect("write");
    }
    e.write(vec![point("a", 120, 1.0), point("a", 130, 1.0)])
        .await
        .expect("write");
    e.write(vec![point("b", 50, 7.0)]).await.expect("write b");
    assert!(e.verify().expect("verify").parts >= 3);
    assert_eq!(e.head_points().expect("head"), 3);

    // [15, 125): across all three parts and the buffer.
    e.delete_range(&device("a"), 15, 125).await.expect("delete");
    let want = vec![(0, 1.0), (10, 1.0), (130, 1.0)];
    assert_eq!(all(&e, "a").await, want);
    assert_eq!(
        all(&e, "b").await,
        vec![(50, 7.0)],
        "other series untouched"
    );
    assert_eq!(e.head_points().expect("head"), 2, "the buffer lost 120");
    assert_eq!(
        e.last_before(&key("a"), 125).await.expect("last"),
        Some((10, 1.0))
    );
    let p = e
        .partials(&key("a"), &[0, 100, 200])
        .await
        .expect("partials");
    assert_eq!((p[0].count, p[1].count), (2, 1));

    // A re-decode writes the range again: the new points are visible, the old ones stay deleted.
    e.write(vec![point("a", 20, 2.0), point("a", 120, 2.0)])
        .await
        .expect("rewrite");
    let want = vec![(0, 1.0), (10, 1.0), (20, 2.0), (120, 2.0), (130, 1.0)];
    assert_eq!(all(&e, "a").await, want);
    assert_eq!(
        e.last_before(&key("a"), 125).await.expect("last"),
        Some((120, 2.0))
    );

    // Restart (the WAL replays the delete in its place among the writes), then merge everything.
    drop(e);
    let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("reopen");
    assert_eq!(all(&e, "a").await, want);
    e.compact().await.expect("compact");
    assert_eq!(all(&e, "a").await, want);
    let report = e.verify().expect("verify");
    assert_eq!(
        (report.parts, report.block_points),
        (1, 6),
        "deleted points dropped"
    );
    assert_eq!(e.tombstones(), 0, "retired once merged");
}

#[tokio::test]
async fn deletes_survive_a_restart_from_the_wal_and_from_the_tombstones_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    {
        let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("open");
        e.write((0..4).map(|i| point("a", i * 10, 1.0)).collect())
            .await
            .expect("write");
        e.delete_range(&device("a"), 10, 30).await.expect("delete");
        assert_eq!(e.tombstones(), 1);
    }
    // Only the WAL has the delete so far.
    assert!(!path.join("tombstones").exists());
    {
        let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("reopen");
        assert_eq!(all(&e, "a").await, vec![(0, 1.0), (30, 1.0)]);
        assert_eq!(e.tombstones(), 1);
        // Written after the delete, at a deleted time; then enough points for a flush, which moves the
        // tombstone into its file and removes the WAL segment holding the delete.
        e.write(vec![point("a", 20, 2.0)]).await.expect("write");
        e.write((0..4).map(|i| point("b", i, 0.0)).collect())
            .await
            .expect("write");
        // The writer flushes before it takes the next request: once this write is answered, it has.
        e.write(vec![point("c", 0, 0.0)]).await.expect("write");
        assert_eq!(e.head_points().expect("head"), 1, "flushed");
    }
    assert!(path.join("tombstones").exists());
    let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("reopen");
    assert_eq!(
        all(&e, "a").await,
        vec![(0, 1.0), (20, 2.0), (30, 1.0)],
        "the tombstone hides only the part written before it"
    );
    assert_eq!(e.tombstones(), 1);
    e.compact().await.expect("compact");
    assert_eq!(e.tombstones(), 0);
    assert_eq!(
        tombstone::load(&path.join("tombstones")).expect("load"),
        vec![],
        "the file follows"
    );
}

#[tokio::test]
async fn a_torn_delete_record_was_never_acknowledged_and_is_cut() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    {
        let e = EmbeddedEngine::open_with(&path, small_blocks()).expect("open");
        e.write((0..4).map(|i| point("a", i * 10, 1.0)).collect())
            .await
            .expect("write");
        e.delete_range(&device("a"), 0, 15).await.expect("delete");
    }
    // kill -9 in the middle of writing a second delete: half of its record at the tail.
    let (_, segment) = files::numbered(&path.join("wal"), "wal")
        .expect("list")
        .into_iter()
        .rev()
        .find(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .expect("a segment with records");
    let torn = wal::encode_delete(&Tombstone {
        seq: 1_000,
        start: 0,
        end: 100,
        ids: vec![0],
    });
    let mut framed = Vec::new();
    files::frame(&mut framed, &torn);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.extend_from_slice(&framed[..framed.len() - 3]);
    std::fs::write(&segment, &bytes).expect("write");
    let e = EmbeddedEngine::open_with(&path, small_blocks()).expect("reopen");
    assert_eq!(all(&e, "a").await, vec![(20, 1.0), (30, 1.0)]);
}

#[tokio::test]
async fn a_merged_part_claims_the_delete_so_later_writes_stay_visible_after_restarts() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("series");
    {
        let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("open");
        e.write((0..4).map(|i| point("a", i * 10, 1.0)).collect())
            .await
            .expect("write");
        e.delete_range(&device("a"), 0, 15).await.expect("delete");
        // Nothing written after the delete: the merged part's range ends at the delete's number.
        e.compact().await.expect("compact");
        assert_eq!(e.tombstones(), 0);
    }
    {
        let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("reopen");
        assert_eq!(all(&e, "a").await, vec![(20, 1.0), (30, 1.0)]);
        e.write(vec![point("a", 0, 5.0)]).await.expect("write");
        e.compact().await.expect("compact");
    }
    let e = EmbeddedEngine::open_with(&path, flush_every(4)).expect("reopen");
    assert_eq!(all(&e, "a").await, vec![(0, 5.0), (20, 1.0), (30, 1.0)]);
}

#[tokio::test]
async fn a_filter_selects_series_by_measurement_and_tags() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = EmbeddedEngine::open_with(&dir.path().join("series"), small_blocks()).expect("open");
    let co2 = SeriesKey {
        measurement: MeasurementName::new("co2").expect("name"),
        tags: BTreeMap::from([("device".to_owned(), "a".to_owned())]),
        field: MeasurementName::new("value").expect("name"),
    };
    let floor = SeriesKey {
        tags: BTreeMap::from([
            ("device".to_owned(), "a".to_owned()),
            ("floor".to_owned(), "2".to_owned()),
        ]),
        ..key("a")
    };
    let mut points = vec![point("a", 10, 1.0), point("b", 10, 1.0)];
    for series in [&co2, &floor] {
        points.push(Point {
            series: series.clone(),
            unit: None,
            time: 10,
            value: 1.0,
        });
    }
    e.write(points).await.expect("write");
    e.compact().await.expect("compact");
    let count = |k: SeriesKey| {
        let e = e.clone();
        async move { e.range(&k, 0, 100).await.expect("range").len() }
    };
    // Unknown series and empty ranges delete nothing.
    e.delete_range(&device("nobody"), 0, 100)
        .await
        .expect("delete");
    e.delete_range(&device("a"), 10, 10).await.expect("delete");
    assert_eq!(e.tombstones(), 0);
    // Tag equality: every series with device=a, whatever else it has; other devices stay.
    e.delete_range(&device("a"), 0, 100).await.expect("delete");
    assert_eq!(
        (
            count(key("a")).await,
            count(floor.clone()).await,
            count(co2.clone()).await,
            count(key("b")).await
        ),
        (0, 0, 0, 1)
    );
    // A measurement: all its series.
    e.delete_range(&delete_filter(None), 0, 100)
        .await
        .expect("delete");
    assert_eq!(count(key("b")).await, 0);
    assert_eq!(e.tombstones(), 2);
    e.compact().await.expect("compact");
    assert_eq!(e.verify().expect("verify").block_points, 0);
    assert_eq!(e.tombstones(), 0);
}

#[tokio::test]
async fn rollups_never_answer_with_deleted_points_and_merges_recompute_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = EngineConfig {
        block_points: 1024,
        ..small_blocks()
    };
    let e = EmbeddedEngine::open_with(&dir.path().join("series"), config).expect("open");
    // Two days, a reading a minute: one part whose hourly and daily rollups answer aligned buckets.
    let mut model: BTreeMap<i64, f64> =
        (0..48 * 60).map(|i| (i * MINUTE, (i % 7) as f64)).collect();
    e.write(model.iter().map(|(t, v)| point("a", *t, *v)).collect())
        .await
        .expect("write");
    e.compact().await.expect("compact");
    let before = e.verify().expect("verify");
    assert_eq!(before.rollups, 48 + 2);

    // Hours 5 and 6 go, and half of hour 30.
    e.delete_range(&device("a"), 5 * HOUR, 7 * HOUR)
        .await
        .expect("delete");
    e.delete_range(&device("a"), 30 * HOUR, 30 * HOUR + 30 * MINUTE)
        .await
        .expect("delete");
    model.retain(|t, _| !(5 * HOUR..7 * HOUR).contains(t));
    model.retain(|t, _| !(30 * HOUR..30 * HOUR + 30 * MINUTE).contains(t));
    let hours: Vec<i64> = (0..=48).map(|h| h * HOUR).collect();
    let days = [0, 24 * HOUR, 48 * HOUR];
    let check = |label: &'static str| {
        let (e, model, hours) = (e.clone(), model.clone(), hours.clone());
        async move {
            for bounds in [&hours[..], &days[..], &hours[10..20]] {
                let parts = e.partials(&key("a"), bounds).await.expect("partials");
                if let Err(err) = matches_reference(&parts, bounds, &model) {
                    panic!("{label}: {err}");
                }
            }
            let hourly = e.partials(&key("a"), &hours).await.expect("partials");
            assert_eq!(hourly[5].count, 0, "{label}");
            assert_eq!(hourly[30].count, 30, "{label}");
        }
    };
    check("before the merge").await;
    e.compact().await.expect("compact");
    check("after the merge").await;
    let after = e.verify().expect("verify");
    assert_eq!(
        after.rollups,
        before.rollups - 2,
        "hours 5 and 6 have no bucket"
    );
    assert_eq!(after.block_points, model.len() as u64);
    assert_eq!(e.tombstones(), 0);
}

#[tokio::test]
async fn deleting_history_kept_only_in_rollups_drops_its_buckets() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let day = 24 * HOUR;
    let now = Arc::new(AtomicI64::new(0));
    let clock_now = now.clone();
    let config = EngineConfig {
        retention: BTreeMap::from([("temperature".to_owned(), Duration::from_secs(86_400))]),
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
    e.write(
        (0..3 * 24 * 60)
            .map(|i| point("a", i * MINUTE, 1.0))
            .collect(),
    )
    .await
    .expect("write");
    e.compact().await.expect("compact");
    // Raw points of the first two days expire; their daily rollups stay.
    now.store(3 * day, Ordering::SeqCst);
    e.compact().await.expect("compact");
    let days: Vec<i64> = (0..=3).map(|d| d * day).collect();
    let counts = |e: EmbeddedEngine, days: Vec<i64>| async move {
        let p = e.partials(&key("a"), &days).await.expect("partials");
        p.iter().map(|p| p.count).collect::<Vec<_>>()
    };
    assert_eq!(counts(e.clone(), days.clone()).await, vec![1440; 3]);
    // Deleting day 1 takes its summary too; day 0 still answers from its rollup, before and after a merge.
    e.delete_range(&device("a"), day, 2 * day)
        .await
        .expect("delete");
    let first_day = e.partials(&key("a"), &days[..2]).await.expect("partials");
    assert_eq!(first_day[0].count, 1440);
    assert_eq!(counts(e.clone(), days.clone()).await[1], 0);
    e.compact().await.expect("compact");
    assert_eq!(counts(e.clone(), days.clone()).await, vec![1440, 0, 1440]);
    assert_eq!(e.tombstones(), 0);
}

#[test]
fn delete_records_and_the_tombstones_file_round_trip() {
    let t = Tombstone {
        seq: 300,
        start: -5,
        end: i64::MAX,
        ids: vec![0, 7, 1_000_000],
    };
    assert_eq!(
        wal::decode(&wal::encode_delete(&t)).expect("decode"),
        wal::Entry::Delete(t.clone())
    );
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("tombstones");
    let other = Tombstone {
        seq: 301,
        start: 0,
        end: 1,
        ids: vec![3],
    };
    tombstone::store(&path, &[t.clone(), other.clone()]).expect("store");
    assert_eq!(tombstone::load(&path).expect("load"), vec![t, other]);
    tombstone::store(&path, &[]).expect("store");
    assert_eq!(tombstone::load(&path).expect("load"), vec![]);
    assert!(!path.with_extension("tmp").exists());
}

proptest! {
    /// Damaged tombstone bytes (in the WAL or the file) are errors, never panics.
    #[test]
    fn damaged_tombstones_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..64) {
        let mut record = vec![2u8];
        record.extend_from_slice(&bytes);
        let _ = wal::decode(&record);
        let _ = tombstone::decode_file(&bytes);
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("tombstones");
        let t = Tombstone { seq: 9, start: 1, end: 5, ids: vec![1, 2] };
        tombstone::store(&path, &[t]).expect("store");
        let mut good = std::fs::read(&path).expect("read");
        let whole = good.len();
        good.truncate(cut.min(whole));
        prop_assert!(cut >= whole || tombstone::decode_file(&good).is_err());
    }
}
