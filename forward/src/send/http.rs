//! HTTP targets: one POST of a JSON batch per attempt; the status says what became of it.
use super::outcome::{ANSWER_CHARS, Batch, Outcome};
use crate::{Config, Error, record};
use bydata_schemas::TargetId;
use bydata_store::{HttpAuth, TargetSecrets};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// Most bytes of an answer read (the log keeps a few hundred characters of it).
const ANSWER_BYTES: usize = 4096;

#[derive(Debug)]
pub(crate) struct HttpSender {
    client: reqwest::Client,
    url: reqwest::Url,
    target: TargetId,
    auth: HttpAuth,
    secrets: TargetSecrets,
    headers: HeaderMap,
    timeout: Duration,
}

impl HttpSender {
    pub(crate) fn new(
        target: &TargetId,
        url: &str,
        auth: HttpAuth,
        secrets: TargetSecrets,
        config: &Config,
    ) -> Result<Self, Error> {
        let settings = |reason: String| Error::Settings { reason };
        let url = reqwest::Url::parse(url).map_err(|e| settings(format!("url: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &secrets.headers {
            check_header(name, value).map_err(settings)?;
            if let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                v.set_sensitive(true);
                headers.insert(n, v);
            }
        }
        let timeout = Duration::from_millis(config.request_timeout_ms.max(1));
        let client = reqwest::Client::builder()
            // A redirect would turn the POST into something else, somewhere else: say so instead.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("bydata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| settings(format!("the HTTP client cannot be built: {e}")))?;
        Ok(Self {
            client,
            url,
            target: target.clone(),
            auth,
            secrets,
            headers,
            timeout,
        })
    }

    pub(crate) async fn send(&mut self, batch: &Batch<'_>) -> Outcome {
        let body = record::http_body(&self.target, batch.id, batch.records, batch.test);
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("x-bydata-batch", batch.id)
            .header("x-bydata-target", self.target.as_str())
            .body(body.to_string());
        if batch.test {
            request = request.header("x-bydata-test", "true");
        }
        let secret = self.secrets.secret.clone().unwrap_or_default();
        request = match &self.auth {
            HttpAuth::None => request,
            HttpAuth::Bearer => request.bearer_auth(secret),
            HttpAuth::Basic { username } => request.basic_auth(username, Some(secret)),
        };
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Unreachable {
                    status: None,
                    error: self.describe(&e),
                };
            }
        };
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while bytes.len() < ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let answer = record::cut(&String::from_utf8_lossy(&bytes), ANSWER_CHARS);
        classify(status, answer)
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        let host = self.url.host_str().unwrap_or("?");
        let port = self.url.port_or_known_default().unwrap_or(0);
        if e.is_timeout() {
            format!(
                "{host}:{port} did not answer within {} ms",
                self.timeout.as_millis()
            )
        } else if e.is_connect() {
            format!("cannot connect to {host}:{port} (is the receiver running and reachable?)")
        } else {
            // Without the URL: it is the target's setting, shown elsewhere.
            let mut text = e.to_string();
            if let Some(url) = e.url() {
                text = text.replace(url.as_str(), "");
            }
            format!("the request to {host}:{port} failed: {}", text.trim())
        }
    }
}

/// What an HTTP status means for the batch (see [`Outcome`]).
fn classify(status: u16, answer: String) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered {
            status: Some(status),
            answer: Some(answer).filter(|a| !a.is_empty()),
        },
        408 | 429 | 502 | 503 | 504 => Outcome::Unreachable {
            status: Some(status),
            error: format!("the receiver answered {status}: it asks to try later"),
        },
        500..=599 => Outcome::Failed {
            status,
            error: format!("the receiver answered {status} (a server error)"),
            answer,
        },
        _ => Outcome::Refused { status, answer },
    }
}

/// Headers a target may not set: bydata sets them itself.
const OWN_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if HeaderName::from_bytes(name.as_bytes()).is_err() || name.is_empty() || name.len() > 100 {
        return Err(format!(
            "header {name:?}: a header name is 1 to 100 letters, digits and - _"
        ));
    }
    if OWN_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-bydata-") {
        return Err(format!(
            "header {name:?} is set by bydata (use \"auth\" for Authorization)"
        ));
    }
    if HeaderValue::from_str(value).is_err() || value.len() > 4096 {
        return Err(format!(
            "header {name:?}: its value must be visible ASCII, at most 4096 characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_between_delivered_retry_and_dead_letter() {
        assert!(matches!(
            classify(204, String::new()),
            Outcome::Delivered { answer: None, .. }
        ));
        for later in [408, 429, 502, 503, 504] {
            assert!(
                matches!(classify(later, String::new()), Outcome::Unreachable { .. }),
                "{later}"
            );
        }
        assert!(matches!(
            classify(500, "boom".into()),
            Outcome::Failed { status: 500, .. }
        ));
        for refused in [301, 400, 401, 404, 413, 422] {
            assert!(
                matches!(classify(refused, String::new()), Outcome::Refused { .. }),
                "{refused}"
            );
        }
    }

    #[test]
    fn headers_bydata_sets_itself_are_refused() {
        assert!(check_header("X-Api-Key", "abc").is_ok());
        for bad in [
            "Authorization",
            "content-type",
            "X-Bydata-Batch",
            "bad header",
            "",
        ] {
            assert!(check_header(bad, "v").is_err(), "{bad}");
        }
        assert!(check_header("X-Ok", "line\nbreak").is_err());
    }
}
