//! Notifications/s to a webhook receiver on loopback, through the real outbox (redb in a temporary directory)
//! and the real delivery loop: N ungrouped notifications (each its own signed POST), then N of one digest
//! group (one POST per 1000 of them). Prints the figures; `bench/notify.sh` runs it.
//!   usage: notify_bench [notifications, default 2000]
#![allow(clippy::unwrap_used, clippy::print_stdout)]
use bydata_notify::{
    Channel, ChannelId, ChannelTarget, DeliveryStatus, Notification, NotificationKind, Notifier,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(2000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    let registry = bydata_store::RedbRegistry::open(
        &dir.path().join("registry.redb"),
        bydata_store::SecretKey::from_bytes([9; 32]),
    )
    .unwrap()
    .shared();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let org = bydata_store::OrgId::default();
    registry
        .create_channel(
            Channel {
                id: ChannelId::new("bench").unwrap(),
                name: "bench".into(),
                org: org.clone(),
                target: ChannelTarget::Webhook {
                    url,
                    headers: vec![],
                },
                created_at: 0,
            },
            vec![],
        )
        .await
        .unwrap();
    let notify = bydata_notify::Notify::new(
        bydata_notify::Deps {
            registry,
            clock: Arc::new(now),
            metrics: Arc::default(),
        },
        bydata_notify::Config {
            digest_window_secs: 1,
            webhook_private_addresses: true,
            ..bydata_notify::Config::default()
        },
        &bydata_notify::SmtpConfig::default(),
    )
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(notify.clone().run(stop.clone()));
    let make = |prefix: &str, group: Option<&str>| -> Vec<Notification> {
        (0..n)
            .map(|i| Notification {
                org: org.clone(),
                channel: "bench".into(),
                key: format!("{prefix}-{i}"),
                kind: NotificationKind::Firing,
                subject: format!("dev-{i} went silent"),
                body: serde_json::json!({"device": format!("dev-{i}"), "silent_for_s": 7200}),
                group: group.map(str::to_owned),
                at: now(),
            })
            .collect()
    };
    for (label, batch, expected_posts) in [
        ("one message each", make("single", None), n as u64),
        (
            "digests (at most 1000 notifications each)",
            make("grouped", Some("gateway:aa")),
            n.div_ceil(1000) as u64,
        ),
    ] {
        let last = batch.last().unwrap().key.clone();
        let before = hits.load(Ordering::Relaxed);
        let started = Instant::now();
        for chunk in batch.chunks(100) {
            notify.enqueue(chunk.to_vec()).await.unwrap();
        }
        let enqueued = started.elapsed();
        loop {
            let done = notify.delivery(&last).await.unwrap().map(|s| s.status);
            if done == Some(DeliveryStatus::Delivered)
                && hits.load(Ordering::Relaxed) - before >= expected_posts
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = started.elapsed();
        println!(
            "{label}: {n} notifications enqueued (committed, batches of 100) in {:.2} s, delivered in {:.2} s = {:.0} notifications/s, {} POSTs",
            enqueued.as_secs_f64(),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            hits.load(Ordering::Relaxed) - before
        );
    }
    stop.cancel();
}
