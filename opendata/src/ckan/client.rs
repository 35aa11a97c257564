//! The CKAN client for one site: its HTTP client, target, token header, retry policy and request timeout.
use super::config::{CkanTarget, RetryPolicy};
use super::report::CkanError;
use reqwest::header::HeaderValue;
use std::time::Duration;

/// A CKAN Action API client for one site.
#[derive(Debug, Clone)]
pub struct Ckan {
    pub(super) http: reqwest::Client,
    pub(super) target: CkanTarget,
    pub(super) auth: HeaderValue,
    pub(super) retry: RetryPolicy,
    pub(super) timeout: Duration,
}

impl Ckan {
    /// A client with the default retry policy and a 30 s per-request timeout.
    pub fn new(target: CkanTarget) -> Result<Self, CkanError> {
        let mut auth =
            HeaderValue::from_str(target.token.trim()).map_err(|_| CkanError::Config {
                reason: "the API token is not a valid header value".into(),
            })?;
        auth.set_sensitive(true);
        if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
            return Err(CkanError::Config {
                reason: format!("url {:?} is not http(s)", target.url),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("bydata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CkanError::Config {
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            target,
            auth,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The limit on each HTTP request (connect to last byte).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Ckan {
    /// The message with the token blanked, in case a server echoes it.
    pub(super) fn redact(&self, message: &str) -> String {
        let token = self.target.token.trim();
        if token.len() >= 4 {
            message.replace(token, "<redacted>")
        } else {
            message.to_owned()
        }
    }
}
