//! Where to push (a site, a token, an organisation) and how patiently a failed request is retried.
use std::fmt;
use std::time::Duration;

/// Where to push: a CKAN site, an API token and the organisation that owns our datasets.
#[derive(Clone)]
pub struct CkanTarget {
    /// The site root, e.g. `https://admin.opendata.dk`.
    pub url: String,
    /// A CKAN API token; never logged, redacted in `Debug`.
    pub token: String,
    /// The organisation's name (or id) in CKAN.
    pub owner_org: String,
}

impl fmt::Debug for CkanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CkanTarget")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("owner_org", &self.owner_org)
            .finish()
    }
}

/// How often and how patiently a failed request is retried (exponential backoff, no jitter: one client per
/// site, so there is no herd to spread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait, also the cap on a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure (1-based).
    pub(super) fn wait(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        retry_after.unwrap_or(backoff).min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
        };
        let waits: Vec<u64> = (1..=4).map(|n| p.wait(n, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 3, 3]);
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(60))),
            Duration::from_secs(3)
        );
    }
}
