//! Alerts with the real binary: a device publishes over MQTT then goes quiet, and its silence alert fires
//! within the rule's interval + 30 s; it resolves when the device publishes again; a threshold alert waits
//! for its `for`; `kill -9` while an alert fires keeps it firing (same episode, same `since`) and no second
//! firing notification is queued. Notifications are read from the stand-in notifier's file, which records
//! each (channel, key) once, as the notifier will.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN, Bydata, Mqtt, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Short intervals: the evaluator runs every 300 ms.
// Notifications grouped by rule wait out a one-second digest window (not the default 30 s).
const CONFIG: &str = "[alerts]\nevaluate_every_ms = 300\n[notify]\ndigest_window_secs = 1\n";

async fn alert(b: &Bydata, device: &str, rule: &str) -> Option<Value> {
    let (code, body) = b
        .get(
            &format!("/api/v1/alerts?device={device}&rule={rule}"),
            ADMIN,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["alerts"].as_array().and_then(|a| a.first().cloned())
}

async fn wait_state(b: &Bydata, device: &str, rule: &str, state: &str, seq: u64) -> Value {
    let what = format!("{device} {state} (episode {seq})");
    eventually(Duration::from_secs(40), &what, || async {
        alert(b, device, rule)
            .await
            .filter(|a| a["state"] == state && a["seq"] == seq)
    })
    .await
}

/// The notifications the notifier's outbox holds, as `/api/v1/notifications` lists them (the rule's
/// channel `ops` mails through no SMTP relay here, so each one is listed as failed with that reason; the
/// notifier's own tests deliver to real receivers). A single notification's delivery key is its own key.
async fn notifications(b: &Bydata) -> Vec<Value> {
    let (code, body) = b.get("/api/v1/notifications?limit=1000", ADMIN).await;
    assert_eq!(code, 200, "{body}");
    body["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn keys(b: &Bydata) -> Vec<String> {
    notifications(b)
        .await
        .iter()
        .map(|n| n["delivery"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn rule(b: &Bydata, body: Value) -> String {
    let (code, answer) = b.post("/api/v1/alert-rules", ADMIN, &body).await;
    assert_eq!(code, 201, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

async fn passes(b: &Bydata) -> u64 {
    let text = b
        .client
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("bydata_alerts_passes_total{outcome=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_and_threshold_alerts_fire_resolve_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bydata::start_with_config(dir.path(), CONFIG).await;
    let quiet_pw = b.onboard("quiet-1", json!({"type": "climate"})).await;
    let hot_pw = b.onboard("hot-1", json!({})).await;
    // A rule names only channels its organisation has.
    let (code, answer) = b
        .post(
            "/api/v1/notification-channels",
            ADMIN,
            &json!({"id": "ops", "name": "Ops", "kind": "email", "to": ["ops@example.dk"]}),
        )
        .await;
    assert_eq!(code, 201, "{answer}");
    let quiet = rule(
        &b,
        json!({"name": "quiet sensors", "condition": {"kind": "silence", "every": "2s"},
               "select": {"tags": {"type": "climate"}}, "channels": ["ops"]}),
    )
    .await;
    let hot = rule(
        &b,
        json!({"name": "hot rooms", "condition": {"kind": "threshold", "measurement": "temperature", "above": 30},
               "select": {"devices": ["hot-1"]}, "for": "2s", "channels": ["ops"]}),
    )
    .await;

    // Silence: publish, go quiet, fire within 2 s + 30 s; publish again, resolve.
    let mut q = Mqtt::device(b.mqtt, "quiet-1", &quiet_pw).await;
    q.publish_acked("devices/quiet-1/up", r#"{"temperature": 21.5}"#)
        .await
        .unwrap();
    let quiet_since = Instant::now();
    let fired = wait_state(&b, "quiet-1", &quiet, "firing", 1).await;
    assert!(
        quiet_since.elapsed() < Duration::from_secs(32),
        "fired {:?} after the last uplink",
        quiet_since.elapsed()
    );
    assert_eq!(fired["group"], format!("rule:{quiet}"));
    assert!(
        fired["summary"].as_str().unwrap().contains("silent for"),
        "{fired}"
    );
    q.publish_acked("devices/quiet-1/up", r#"{"temperature": 21.6}"#)
        .await
        .unwrap();
    wait_state(&b, "quiet-1", &quiet, "resolved", 1).await;
    let firing_1 = format!("alert:{quiet}:device:quiet-1:1:firing@ops");
    let resolved_1 = format!("alert:{quiet}:device:quiet-1:1:resolved@ops");
    eventually(Duration::from_secs(10), "both notifications", || async {
        let k = keys(&b).await;
        (k.contains(&firing_1) && k.contains(&resolved_1)).then_some(())
    })
    .await;
    let (_, history) = b
        .get(
            &format!("/api/v1/alerts/{quiet}:device:quiet-1/history"),
            ADMIN,
        )
        .await;
    let events: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["resolved", "firing"], "{history}");

    // Threshold with `for`: pending first, firing only after 2 s above; then back below, resolved.
    let mut h = Mqtt::device(b.mqtt, "hot-1", &hot_pw).await;
    h.publish_acked("devices/hot-1/up", r#"{"temperature": 35}"#)
        .await
        .unwrap();
    let above_since = Instant::now();
    let pending = wait_state(&b, "hot-1", &hot, "pending", 0).await;
    assert_eq!(pending["value"], 35.0);
    wait_state(&b, "hot-1", &hot, "firing", 1).await;
    assert!(
        above_since.elapsed() >= Duration::from_secs(2),
        "fired before its `for`"
    );
    h.publish_acked("devices/hot-1/up", r#"{"temperature": 22}"#)
        .await
        .unwrap();
    wait_state(&b, "hot-1", &hot, "resolved", 1).await;

    // The quiet device goes quiet again (episode 2); kill -9 while it fires.
    let firing = wait_state(&b, "quiet-1", &quiet, "firing", 2).await;
    let firing_2 = format!("alert:{quiet}:device:quiet-1:2:firing@ops");
    eventually(Duration::from_secs(10), "episode 2 notified", || async {
        keys(&b).await.contains(&firing_2).then_some(())
    })
    .await;
    b.kill9();
    drop(q);
    drop(h);
    let b = Bydata::start_with_config(dir.path(), CONFIG).await;
    let after = alert(&b, "quiet-1", &quiet).await.unwrap();
    assert_eq!(after["state"], "firing", "{after}");
    assert_eq!(
        (after["seq"].clone(), after["since"].clone()),
        (firing["seq"].clone(), firing["since"].clone()),
        "the same episode, not a new one"
    );
    // Several passes later: still that episode, and its firing was queued once.
    eventually(Duration::from_secs(20), "three passes", || async {
        (passes(&b).await >= 3).then_some(())
    })
    .await;
    let after = alert(&b, "quiet-1", &quiet).await.unwrap();
    assert_eq!(after["seq"], 2, "{after}");
    let k = keys(&b).await;
    assert_eq!(k.iter().filter(|k| **k == firing_2).count(), 1, "{k:?}");
    assert!(
        !k.iter().any(|k| k.contains(":device:quiet-1:3:")),
        "no new episode: {k:?}"
    );
    // And it resolves after the restart, once.
    let mut q = Mqtt::device(b.mqtt, "quiet-1", &quiet_pw).await;
    q.publish_acked("devices/quiet-1/up", r#"{"temperature": 21.7}"#)
        .await
        .unwrap();
    wait_state(&b, "quiet-1", &quiet, "resolved", 2).await;
    let resolved_2 = format!("alert:{quiet}:device:quiet-1:2:resolved@ops");
    eventually(Duration::from_secs(10), "episode 2 resolved", || async {
        keys(&b).await.contains(&resolved_2).then_some(())
    })
    .await;
    let all = notifications(&b).await;
    let subject = all
        .iter()
        .find(|n| n["delivery"] == firing_2)
        .and_then(|n| n["subject"].as_str())
        .unwrap()
        .to_owned();
    assert!(subject.contains("rule 'quiet sensors'"), "{subject}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_refuse_bad_bodies_naming_the_field_and_changes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bydata::start_with_config(dir.path(), CONFIG).await;
    let (code, body) = b
        .post(
            "/api/v1/alert-rules",
            ADMIN,
            &json!({"name": "x", "condition": {"kind": "silence", "every": "five minutes"}, "select": {"all": "devices"}}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["error"]["problems"][0]["field"], "condition.every",
        "{body}"
    );
    let id = rule(
        &b,
        json!({"name": "all quiet", "condition": {"kind": "silence", "learn": {}, "every": "1h"},
               "select": {"all": "devices"}}),
    )
    .await;
    let (code, silence) = b
        .post(
            "/api/v1/silences",
            ADMIN,
            &json!({"rule": id, "duration": "2h", "comment": "roof works"}),
        )
        .await;
    assert_eq!(code, 201, "{silence}");
    assert_eq!(silence["active"], true);
    let (code, _) = b.delete(&format!("/api/v1/alert-rules/{id}"), ADMIN).await;
    assert_eq!(code, 204);
    let (_, audit) = b.get("/api/v1/audit?action=alert_rule.", ADMIN).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        ["alert_rule.delete", "alert_rule.create"],
        "{audit}"
    );
}
