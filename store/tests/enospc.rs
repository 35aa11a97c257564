//! Out of space for real: the journal and the embedded engine on a tiny tmpfs, written until the kernel says
//! ENOSPC. Nothing acknowledged is lost or corrupted, nothing panics, the writer keeps running, and writing
//! resumes once space is freed. Mounting needs root (CI runs as root); without it the tests say so and stop.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use bydata_schemas::{DeviceId, JournalEntry, MeasurementName, Point, SeriesKey, Source, Uplink};
use bydata_store::journal::{Journal, JournalConfig};
use bydata_store::{EmbeddedEngine, EngineConfig, SeriesWriter};
use std::path::Path;
use std::time::Duration;

#[path = "../../tests/support/tmpfs.rs"]
mod tmpfs;
use tmpfs::{Tmpfs, is_root};

/// Fills what is left of the filesystem with `path` (ends at ENOSPC).
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
}

#[test]
fn a_journal_out_of_space_keeps_every_acknowledged_entry() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "1m");
    let journal = Journal::open(&mnt.join("journal"), JournalConfig::default()).unwrap();
    let device = DeviceId::new("tank-1").unwrap();
    let entry = |n: u64| {
        JournalEntry::Uplink(Uplink {
            received_at: n as i64,
            device: device.clone(),
            source: Source::Mqtt,
            topic: "devices/tank-1/up".into(),
            fport: None,
            payload: vec![b'x'; 3000],
            radio: Vec::new(),
        })
    };
    let mut acked = 0u64;
    let error = loop {
        match journal.append(&entry(acked)) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
    };
    assert!(error.is_storage_full(), "{error}");
    assert!(acked > 100, "{acked}");
    assert_eq!(
        journal.check(),
        Ok(()),
        "out of space is not a journal failure"
    );
    // A few more tries fail the same way, and leave no partial record behind.
    for _ in 0..3 {
        assert!(journal.append(&entry(acked)).unwrap_err().is_storage_full());
    }
    journal.close().unwrap();
    drop(journal);
    let journal = Journal::open(&mnt.join("journal"), JournalConfig::default()).unwrap();
    let (entries, _) = journal.read(0, 1_000_000).unwrap();
    assert_eq!(entries.len() as u64, acked);
    for (i, (_, e)) in entries.iter().enumerate() {
        let JournalEntry::Uplink(u) = e else { panic!() };
        assert_eq!(u.received_at, i as i64);
    }
}

fn point(n: u64) -> Point {
    Point {
        series: SeriesKey {
            measurement: MeasurementName::new("level").unwrap(),
            tags: [("tank".to_owned(), format!("t{}", n % 7))].into(),
            field: MeasurementName::new("value").unwrap(),
        },
        unit: None,
        time: 1_763_600_000_000_000_000 + n as i64 * 1_000_000_000,
        value: (n % 1000) as f64,
    }
}

fn stored(dir: &Path) -> u64 {
    let engine = EmbeddedEngine::open_with(
        dir,
        EngineConfig {
            compact_when_idle: Duration::from_secs(3600),
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let report = engine.verify().unwrap();
    report.block_points + report.head_points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_series_engine_out_of_space_keeps_running_and_loses_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "2m");
    let series = mnt.join("series");
    let config = EngineConfig {
        compact_when_idle: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let engine = EmbeddedEngine::open_with(&series, config.clone()).unwrap();
    // Room to give back later.
    std::fs::write(mnt.join("spare"), vec![0u8; 256 * 1024]).unwrap();

    // The WAL: group commits until the disk is full.
    let mut acked = 0u64;
    let mut refused = 0;
    while refused < 3 {
        let batch: Vec<Point> = (acked..acked + 500).map(point).collect();
        match engine.write(batch).await {
            Ok(()) => acked += 500,
            Err(e) => {
                assert!(e.to_string().contains("No space left"), "{e}");
                refused += 1;
            }
        }
    }
    assert!(acked >= 5_000, "{acked}");
    assert!(
        engine.check().iter().all(|(_, r)| r.is_ok()),
        "{:?}",
        engine.check()
    );

    // A flush out of space: it fails, leaves no unfinished part, the WAL keeps the points.
    assert!(engine.compact().await.is_err());
    let leftovers: Vec<_> = std::fs::read_dir(series.join("parts"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(engine.check().iter().all(|(_, r)| r.is_ok()));

    // Space returns: writes and flushes work again.
    std::fs::remove_file(mnt.join("spare")).unwrap();
    let batch: Vec<Point> = (acked..acked + 500).map(point).collect();
    engine.write(batch).await.unwrap();
    acked += 500;
    engine.compact().await.unwrap();

    // Full to the last byte: compaction fails or has nothing to do; either way nothing is lost.
    fill(&mnt.join("filler"));
    let _ = engine.compact().await;
    assert!(engine.check().iter().all(|(_, r)| r.is_ok()));
    engine.close();
    drop(engine);
    std::fs::remove_file(mnt.join("filler")).unwrap();
    assert_eq!(stored(&series), acked);
}
