//! Webhook delivery: one signed POST, and what its answer means for the next attempt.
//!
//! Retried: no connection, no answer in time, 5xx, 408 and 429 (a `Retry-After` in seconds or as an HTTP date
//! is honoured). Any other 4xx is the receiver refusing this request for good: the message fails at once.
//! Redirects are not followed (a signed request goes where it was configured to go). Unless
//! `webhook_private_addresses` is on, a host that resolves to a loopback, private, link-local or otherwise
//! non-public address is refused — at every attempt, after resolution, so DNS cannot be turned against it.
use crate::sign::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use bydata_store::WebhookSecrets;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of a receiver's answer is kept (and shown).
const ANSWER_CHARS: usize = 300;

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Delivered {
        answer: String,
    },
    /// Worth another attempt (after `retry_after` if the receiver said so).
    Retry {
        error: String,
        answer: Option<String>,
        retry_after: Option<Duration>,
    },
    /// Not worth another attempt.
    Refused {
        error: String,
        answer: Option<String>,
    },
}

/// The HTTP client webhooks are sent with.
pub(crate) fn client(timeout: Duration, private_addresses: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("bydata/", env!("CARGO_PKG_VERSION")));
    let builder = if private_addresses {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    };
    // Building fails only without a TLS backend, which the workspace always has; the default client then.
    builder.build().unwrap_or_default()
}

/// Whether bydata may send to `ip` when private addresses are off.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// A resolver that keeps only public addresses.
#[derive(Debug)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to non-public addresses")]
struct NotPublic(String);

/// Checks a webhook URL as the API takes it: http(s), a host, no credentials in it (they go in a header).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("url must start with https:// or http://".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("url must name a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "url must not carry credentials: put them in a header (headers: {\"Authorization\": …}), whose value is kept sealed"
                .into(),
        );
    }
    if url.len() > 2048 {
        return Err("url must be at most 2048 characters".into());
    }
    Ok(())
}

/// POSTs `body` to `url`, signed with the channel's secret, with its extra headers.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    secrets: &WebhookSecrets,
    key: &str,
    body: Vec<u8>,
    now_secs: i64,
    private_addresses: bool,
) -> Sent {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(_) => {
            return Sent::Refused {
                error: format!("the channel's url {url:?} is not a URL"),
                answer: None,
            };
        }
    };
    if !private_addresses
        && let Some(ip) = host_ip(&parsed)
        && !is_public(ip)
    {
        return Sent::Refused {
            error: format!(
                "{ip} is not a public address; webhooks to it need [notify] webhook_private_addresses = true"
            ),
            answer: None,
        };
    }
    let mut request = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, key)
        .header(TIMESTAMP_HEADER, now_secs.to_string())
        .header(
            SIGNATURE_HEADER,
            sign(&secrets.signing_secret, now_secs, &body),
        );
    for (name, value) in &secrets.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.body(body).send().await {
        Ok(response) => answered(response).await,
        Err(e) => Sent::Retry {
            error: in_words(&e, url),
            answer: None,
            retry_after: None,
        },
    }
}

/// The URL's host when it is an IP address (a name is resolved, and checked, by [`PublicOnly`]).
fn host_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

async fn answered(response: reqwest::Response) -> Sent {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let text = response.text().await.unwrap_or_default();
    let answer = describe(status, &text);
    if status.is_success() {
        Sent::Delivered { answer }
    } else if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Sent::Retry {
            error: format!("the receiver answered {answer}"),
            answer: Some(answer),
            retry_after,
        }
    } else if status.is_redirection() {
        Sent::Refused {
            error: format!(
                "the receiver answered {answer}: bydata does not follow redirects, configure the final URL"
            ),
            answer: Some(answer),
        }
    } else {
        Sent::Refused {
            error: format!("the receiver refused the request: {answer}"),
            answer: Some(answer),
        }
    }
}

/// `HTTP 503 Service Unavailable: <the first 300 characters of the body, one line>`.
fn describe(status: reqwest::StatusCode, body: &str) -> String {
    let mut out = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    let body: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ANSWER_CHARS)
        .collect();
    let body = body.trim();
    if !body.is_empty() {
        out.push_str(": ");
        out.push_str(body);
    }
    out
}

/// A `Retry-After` value: delay-seconds or an HTTP date (RFC 9110), at most an hour.
pub(crate) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A failed request in words: what could not be done, and the operating system's reason.
fn in_words(e: &reqwest::Error, url: &str) -> String {
    let target = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| url.to_owned());
    if e.is_timeout() {
        return format!("{target} did not answer in time");
    }
    // The innermost cause is the one that says what happened (connection refused, no such host…).
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    if let Some(not_public) = find::<NotPublic>(e) {
        return format!(
            "{not_public}; webhooks to it need [notify] webhook_private_addresses = true"
        );
    }
    if e.is_connect() {
        return format!("cannot connect to {target}: {cause}");
    }
    format!("the request to {target} failed: {cause}")
}

fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["8.8.8.8", "2a00:1450::1", "185.1.2.3"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_in_words() {
        assert_eq!(check_url("https://hooks.example.dk/bydata"), Ok(()));
        assert!(
            check_url("ftp://x")
                .expect_err("scheme")
                .contains("https://")
        );
        assert!(
            check_url("https://u:p@x.dk/")
                .expect_err("creds")
                .contains("header")
        );
        assert!(
            check_url("not a url")
                .expect_err("url")
                .contains("not a URL")
        );
    }
}
