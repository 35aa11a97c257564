//! `[notify]` (digests, retries, webhooks) and `[smtp]` (the relay e-mail goes through).
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How notifications are folded, retried and sent (`[notify]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Notifications of one channel and digest group arriving within this many seconds of the first…
    pub digest_window_secs: u64,
    /// …are sent as one digest when there are more than this many; fewer are sent one by one.
    pub digest_threshold: usize,
    /// Attempts per message before it is marked failed.
    pub max_attempts: u32,
    /// The wait before the second attempt, in milliseconds; it doubles with each attempt (with jitter).
    pub initial_backoff_ms: u64,
    /// The longest wait between two attempts, in seconds (a receiver's longer `Retry-After` is honoured up to
    /// an hour).
    pub max_backoff_secs: u64,
    /// How long a webhook receiver may take to answer, in seconds.
    pub webhook_timeout_secs: u64,
    /// Whether webhooks may go to loopback, private, link-local and other non-public addresses. Off: an
    /// organisation's admin cannot make bydata probe the network it runs in.
    pub webhook_private_addresses: bool,
    /// Delivered and failed messages are kept this many days (and at most `keep_deliveries` of them); after
    /// that their keys may be enqueued anew.
    pub retention_days: u32,
    pub keep_deliveries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            digest_window_secs: 30,
            digest_threshold: 5,
            max_attempts: 12,
            initial_backoff_ms: 1_000,
            max_backoff_secs: 600,
            webhook_timeout_secs: 10,
            webhook_private_addresses: false,
            retention_days: 7,
            keep_deliveries: 10_000,
        }
    }
}

/// Whether the SMTP connection is upgraded with STARTTLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// STARTTLS or no mail (the default: credentials and alerts never cross the network in clear).
    #[default]
    Required,
    /// STARTTLS when the server offers it, else in clear.
    Opportunistic,
    /// Never (a relay on localhost).
    Off,
}

/// The SMTP relay e-mail notifications go through (`[smtp]`; no host: e-mail channels cannot send).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The relay's host name (checked against its certificate); empty: no e-mail.
    pub host: String,
    pub port: u16,
    pub starttls: StartTls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Better in `BYDATA_SMTP_PASSWORD`, which overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sender, e.g. `bydata <alerts@example.dk>`.
    pub from: String,
    /// A PEM file of the CA that signed a private relay's certificate (besides the public roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The name bydata greets the relay with (EHLO); empty: `localhost`.
    pub helo_name: String,
    /// How long one mail may take, connection included, in seconds.
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            starttls: StartTls::Required,
            username: None,
            password: None,
            from: "bydata <bydata@localhost>".into(),
            ca_file: None,
            helo_name: String::new(),
            timeout_secs: 30,
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}
