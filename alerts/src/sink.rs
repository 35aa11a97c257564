//! Where notifications go: [`AlertSink`] mirrors the notifier's `enqueue` (crate `bydata-notify`, trait
//! `Notifier`), field for field, so the binary wires the notifier in with a one-line adapter and this crate
//! needs none of its code. Until then (and in tests) [`FileSink`] stands in: a durable JSON-lines file that,
//! like the notifier, drops keys it already holds.
use bydata_schemas::{OrgId, UnixNanos};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A notification, as `bydata-notify` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub org: OrgId,
    /// A channel id of the organisation's.
    pub channel: String,
    /// Idempotency key: `alert:{rule}:{object}:{seq}:{firing|resolved}@{channel}`.
    pub key: String,
    pub kind: NotificationKind,
    /// One line, e.g. `room-1 silent for 2h (expected every 15m) — rule 'quiet sensors'`.
    pub subject: String,
    /// The alert as JSON.
    pub body: serde_json::Value,
    /// Digest group: `rule:{rule id}`, or `gateway:{eui}` when the gateway that last heard a silent device
    /// is silent too; the notifier folds a group's notifications on one channel into one message.
    pub group: Option<String>,
    pub at: UnixNanos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Firing,
    Resolved,
    Test,
}

/// Why notifications could not be queued (they stay in the alert outbox and are handed on again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
}

/// What takes notifications: `bydata-notify`'s `Notifier::enqueue`, adapted.
#[async_trait::async_trait]
pub trait AlertSink: Send + Sync + std::fmt::Debug {
    /// Durably queued when this returns `Ok`. A key already queued or delivered is dropped, so handing the
    /// same notification again (after a restart) sends nothing twice.
    async fn enqueue(&self, notifications: Vec<Notification>) -> Result<(), SinkError>;
}

/// A stand-in notifier: appends each new notification as a JSON line to a file (fsynced before `Ok`) and
/// drops those whose (channel, key) it already holds.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    known: Mutex<HashSet<(String, String)>>,
}

impl FileSink {
    /// Opens (or creates) the file and reads the keys it holds.
    pub fn open(path: &Path) -> std::io::Result<FileSink> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut known = HashSet::new();
        if let Ok(text) = std::fs::read_to_string(path) {
            // A line torn by a crash is no notification: skip it.
            for n in text
                .lines()
                .filter_map(|l| serde_json::from_str::<Notification>(l).ok())
            {
                known.insert((n.channel, n.key));
            }
        }
        Ok(FileSink {
            path: path.to_owned(),
            known: Mutex::new(known),
        })
    }
}

#[async_trait::async_trait]
impl AlertSink for FileSink {
    async fn enqueue(&self, notifications: Vec<Notification>) -> Result<(), SinkError> {
        let fresh: Vec<Notification> = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            notifications
                .into_iter()
                .filter(|n| !known.contains(&(n.channel.clone(), n.key.clone())))
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let lines: Vec<String> = fresh
            .iter()
            .filter_map(|n| serde_json::to_string(n).ok())
            .collect();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            for l in lines {
                writeln!(f, "{l}")?;
            }
            f.sync_data()
        })
        .await
        .map_err(|e| SinkError {
            message: format!("writing notifications: {e}"),
        })?
        .map_err(|e| SinkError {
            message: format!("cannot write notifications to {}: {e}", self.path.display()),
        })?;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for n in fresh {
            tracing::info!(key = %n.key, channel = %n.channel, subject = %n.subject, "alert notification queued");
            known.insert((n.channel, n.key));
        }
        Ok(())
    }
}
