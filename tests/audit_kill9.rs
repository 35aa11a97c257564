//! The audit log survives `kill -9` with the changes it records: devices are created from many clients at
//! once while the process is killed; after a restart every device has exactly one `device.create` entry and
//! every `device.create` entry has its device — no change without its record, no record without its change.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN, Bydata};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_device_has_its_create_entry_and_every_entry_its_device_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Bydata::start(&data).await;

    let created = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..8 {
        let (http, url, created) = (b.client.clone(), b.url("/api/v1/devices"), created.clone());
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({"id": format!("c{client}-{i}"), "name": "D", "transport": "mqtt",
                                  "domain": "building"});
                match http.post(&url).bearer_auth(ADMIN).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    // The server is gone: stop.
                    _ => return,
                }
            }
        }));
    }
    common::eventually(Duration::from_secs(20), "40 devices created", || {
        let n = created.load(Ordering::Relaxed);
        async move { (n >= 40).then_some(()) }
    })
    .await;
    // Killed with creations in flight.
    b.kill9();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = created.load(Ordering::Relaxed);

    let b = Bydata::start(&data).await;
    let (code, devices) = b.get("/api/v1/devices", ADMIN).await;
    assert_eq!(code, 200);
    let devices: BTreeSet<String> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    let mut entries: BTreeMap<String, usize> = BTreeMap::new();
    let mut query = "/api/v1/audit?action=device.create&limit=1000".to_owned();
    loop {
        let (code, page) = b.get(&query, ADMIN).await;
        assert_eq!(code, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            let object = e["object"].as_str().unwrap();
            *entries
                .entry(object.strip_prefix("device:").unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next"].as_u64() {
            Some(next) => {
                query = format!("/api/v1/audit?action=device.create&limit=1000&before={next}")
            }
            None => break,
        }
    }
    assert!(
        devices.len() >= acknowledged,
        "an acknowledged device was lost"
    );
    let twice: Vec<_> = entries.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "entries recorded more than once: {twice:?}"
    );
    let recorded: BTreeSet<String> = entries.into_keys().collect();
    assert_eq!(
        devices.difference(&recorded).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "devices without their record"
    );
    assert_eq!(
        recorded.difference(&devices).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "records without their device"
    );
    eprintln!(
        "{} devices, {} acknowledged before kill -9, each with one device.create entry",
        devices.len(),
        acknowledged
    );
}
