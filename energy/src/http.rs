//! The two HTTP calls the imports make, with the services' failures turned into [`Error`]s an operator can act
//! on. Never logs or returns a token: errors name the URL (which carries none) and the status.
use crate::error::{Error, Result};

/// Most bytes read from one answer (a year of hourly values for one meter is ~1 MB).
const MAX_BODY: usize = 64 * 1024 * 1024;

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " — the token is not accepted: create a new refresh token on eloverblik.dk and put it in the token file"
        }
        429 => " — too many requests; the next run tries again",
        503 => " — the service is busy or down; the next run tries again",
        _ => "",
    }
}

async fn read(
    service: &'static str,
    url: &str,
    sent: reqwest::Result<reqwest::Response>,
) -> Result<Vec<u8>> {
    let unreachable = |e: reqwest::Error| Error::Unreachable {
        service,
        url: url.to_owned(),
        reason: if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else {
            "the connection failed".to_owned()
        },
    };
    let mut response = sent.map_err(unreachable)?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(Error::Status {
            service,
            url: url.to_owned(),
            status,
            hint: hint(status),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::Shape {
                service,
                what: format!("an answer over {MAX_BODY} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) async fn get_json(
    client: &reqwest::Client,
    service: &'static str,
    url: &str,
    query: &[(&str, String)],
    bearer: Option<&str>,
) -> Result<Vec<u8>> {
    let mut req = client
        .get(url)
        .query(query)
        .header("Accept", "application/json");
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    read(service, url, req.send().await).await
}

pub(crate) async fn post_json(
    client: &reqwest::Client,
    service: &'static str,
    url: &str,
    body: &serde_json::Value,
    bearer: &str,
) -> Result<Vec<u8>> {
    let req = client
        .post(url)
        .bearer_auth(bearer)
        .header("Accept", "application/json")
        .json(body);
    read(service, url, req.send().await).await
}
