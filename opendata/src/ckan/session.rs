//! One push's HTTP: each Action API request, its retries with backoff, creates that check before sending
//! again, and CKAN's answers classified into results, transient failures and typed errors.
use super::client::Ckan;
use super::json::text;
use super::report::CkanError;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;
use tracing::{debug, info, warn};

pub(super) enum Request<'a> {
    /// `GET ?id=…`: `package_show`.
    Show(&'a str),
    Post(&'a Value),
}

enum Failure {
    /// Worth another try (connect error, timeout, 5xx, 429).
    Transient {
        last: String,
        retry_after: Option<Duration>,
    },
    Fatal(CkanError),
}

/// One push: counts the requests it sends.
pub(super) struct Session<'c> {
    pub(super) ckan: &'c Ckan,
    pub(super) requests: u32,
}

impl Session<'_> {
    pub(super) async fn show(&mut self, name: &str) -> Result<Option<Value>, CkanError> {
        match self.call("package_show", Request::Show(name)).await {
            Ok(package) => Ok(Some(package)),
            Err(CkanError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `request`, retrying transient failures; only for idempotent actions.
    pub(super) async fn call(
        &mut self,
        action: &'static str,
        request: Request<'_>,
    ) -> Result<Value, CkanError> {
        let mut failures = 0;
        loop {
            match self.once(action, &request).await {
                Ok(result) => return Ok(result),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { last, retry_after }) => {
                    failures += 1;
                    self.backoff(action, failures, last, retry_after).await?;
                }
            }
        }
    }

    /// Sends a create; after a transient failure, looks the object up (`find` in a fresh `package_show` of
    /// `name`) before sending it again, since the lost attempt may have succeeded. Returns the object and
    /// whether it was found that way.
    pub(super) async fn create(
        &mut self,
        action: &'static str,
        body: &Value,
        name: &str,
        find: impl Fn(&Value) -> Option<Value>,
    ) -> Result<(Value, bool), CkanError> {
        let mut failures = 0;
        loop {
            match self.once(action, &Request::Post(body)).await {
                Ok(result) => return Ok((result, false)),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { last, retry_after }) => {
                    failures += 1;
                    self.backoff(action, failures, last, retry_after).await?;
                    if let Some(found) = self.show(name).await?.as_ref().and_then(&find) {
                        info!(
                            action,
                            "the failed request had succeeded; not sending it again"
                        );
                        return Ok((found, true));
                    }
                }
            }
        }
    }

    async fn backoff(
        &self,
        action: &'static str,
        failures: u32,
        last: String,
        retry_after: Option<Duration>,
    ) -> Result<(), CkanError> {
        let policy = self.ckan.retry;
        if failures >= policy.attempts.max(1) {
            return Err(CkanError::GaveUp {
                action,
                attempts: failures,
                last,
            });
        }
        let wait = policy.wait(failures, retry_after);
        warn!(action, attempt = failures, wait_ms = wait.as_millis() as u64, error = %last, "CKAN request failed; retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// One HTTP request, its answer classified.
    async fn once(
        &mut self,
        action: &'static str,
        request: &Request<'_>,
    ) -> Result<Value, Failure> {
        self.requests += 1;
        let ckan = self.ckan;
        let url = format!(
            "{}/api/3/action/{action}",
            ckan.target.url.trim_end_matches('/')
        );
        let builder = match request {
            Request::Show(id) => ckan.http.get(&url).query(&[("id", id)]),
            Request::Post(body) => ckan.http.post(&url).json(body),
        };
        debug!(action, "CKAN request");
        let response = match builder
            .header(AUTHORIZATION, ckan.auth.clone())
            .timeout(ckan.timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Err(Failure::Transient {
                    last: ckan.redact(&describe(&e)),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(Failure::Transient {
                    last: ckan.redact(&describe(&e)),
                    retry_after: None,
                });
            }
        };
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let error = body.as_ref().and_then(|b| b.get("error"));
        let kind = error.map(|e| text(e, "__type")).filter(|k| !k.is_empty());
        let detail = match error {
            Some(e) => error_detail(e),
            None => String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        };
        let detail = ckan.redact(&detail);

        if status.is_server_error() || status.as_u16() == 429 {
            let last = format!(
                "HTTP {}{}",
                status.as_u16(),
                kind.map(|k| format!(" {k}: {detail}")).unwrap_or_default()
            );
            return Err(Failure::Transient { last, retry_after });
        }
        let status = status.as_u16();
        if let Some(body) = &body
            && body.get("success").and_then(Value::as_bool) == Some(true)
            && (200..300).contains(&status)
        {
            return Ok(body.get("result").cloned().unwrap_or(Value::Null));
        }
        let fatal = match kind {
            Some("Authorization Error") => CkanError::Authorization {
                action,
                status,
                message: detail,
                owner_org: ckan.target.owner_org.clone(),
            },
            None if status == 401 || status == 403 => CkanError::Authorization {
                action,
                status,
                message: detail,
                owner_org: ckan.target.owner_org.clone(),
            },
            Some("Not Found Error") => CkanError::NotFound { action, detail },
            Some(kind) => CkanError::Refused {
                action,
                status,
                kind: kind.to_owned(),
                detail,
            },
            None if (200..300).contains(&status) => CkanError::Protocol {
                action,
                status,
                detail,
            },
            None => CkanError::Refused {
                action,
                status,
                kind: "HTTP error".into(),
                detail,
            },
        };
        Err(Failure::Fatal(fatal))
    }
}

/// A reqwest error with its causes (`error sending request …: connection refused`).
fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// CKAN's error dict as text: `message` first, then `field: problem` pairs (`name: That URL is already in use.`).
fn error_detail(error: &Value) -> String {
    fn flatten(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(list) => list
                .iter()
                .map(flatten)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k, flatten(v)))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    let mut parts = Vec::new();
    if let Some(message) = error.get("message").map(flatten).filter(|m| !m.is_empty()) {
        parts.push(message);
    }
    if let Some(fields) = error.as_object() {
        for (key, value) in fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "__type" | "message"))
        {
            let value = flatten(value);
            if !value.is_empty() {
                parts.push(format!("{key}: {value}"));
            }
        }
    }
    if parts.is_empty() {
        "no details given".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_details_name_fields() {
        let e = json!({"__type": "Validation Error", "name": ["That URL is already in use."], "tags": [{}, {"name": ["bad"]}]});
        assert_eq!(
            error_detail(&e),
            "name: That URL is already in use.; tags: name: bad"
        );
    }
}
