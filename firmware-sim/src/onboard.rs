//! Registering simulated devices with the bydata API and getting their MQTT credentials.

use crate::error::{Error, Result, chain};
use crate::plan::DevicePlan;
use bydata_schemas::{DeviceId, Domain, Location, UnixNanos};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// MQTT credentials as the API hands them out (shown once).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MqttCredentials {
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) username: Option<String>,
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) publish_topic: Option<String>,
}

#[derive(Deserialize)]
struct WithCredentials {
    mqtt: MqttCredentials,
}

/// What an already registered device had stored last, so a restarted simulator continues where it left off
/// (a meter's counter keeps counting instead of jumping back, and no history is sent twice).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Resume {
    /// The newest time of any stored value.
    pub(crate) last_time: Option<UnixNanos>,
    /// The latest value of each measurement.
    pub(crate) values: Vec<(String, f64)>,
}

/// A device ready to publish.
#[derive(Debug, Clone)]
pub(crate) struct Onboarded {
    pub(crate) credentials: MqttCredentials,
    pub(crate) resume: Resume,
}

#[derive(Deserialize)]
struct Latest {
    latest: Vec<LatestValue>,
}

#[derive(Deserialize)]
struct LatestValue {
    measurement: String,
    time: String,
    value: f64,
}

#[derive(Serialize)]
struct CreateDevice<'a> {
    id: &'a DeviceId,
    name: &'a str,
    transport: &'static str,
    domain: &'a Domain,
    location: Location,
    tags: &'a BTreeMap<String, String>,
}

/// A reqwest client for the API. Timeouts keep an unreachable or stuck API from hanging the fleet.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| Error::Http {
            url: String::new(),
            detail: chain(&source),
            source,
        })
}

/// Registers `device`; if it already exists (409, e.g. a demo restart) rotates its credentials instead and
/// reads what it stored last.
pub(crate) async fn onboard(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    device: &DevicePlan,
) -> Result<Onboarded> {
    let url = format!("{base_url}/api/v1/devices");
    let body = CreateDevice {
        id: &device.id,
        name: &device.name,
        transport: "mqtt",
        domain: &device.domain,
        location: device.location,
        tags: &device.tags,
    };
    let request = client.post(&url).bearer_auth(token).json(&body);
    let (status, text) = send(request, &url).await?;
    match status {
        StatusCode::CREATED | StatusCode::OK => Ok(Onboarded {
            credentials: parse(device, &url, status, &text)?,
            resume: Resume::default(),
        }),
        StatusCode::CONFLICT => {
            tracing::info!(device = %device.id, "device exists already; rotating its MQTT credentials");
            let url = format!("{base_url}/api/v1/devices/{}/credentials", device.id);
            let (status, text) = send(client.post(&url).bearer_auth(token), &url).await?;
            if !status.is_success() {
                return Err(refused(device, url, status, text));
            }
            let credentials = parse(device, &url, status, &text)?;
            let url = format!("{base_url}/api/v1/devices/{}/latest", device.id);
            let (status, text) = send(client.get(&url).bearer_auth(token), &url).await?;
            if !status.is_success() {
                return Err(refused(device, url, status, text));
            }
            let latest: Latest = serde_json::from_str(&text).map_err(|e| Error::Response {
                device: device.id.clone(),
                url: url.clone(),
                status: status.as_u16(),
                detail: format!("{e}; body: {}", truncate(&text)),
            })?;
            let resume = Resume {
                last_time: latest
                    .latest
                    .iter()
                    .filter_map(|l| bydata_schemas::parse_rfc3339(&l.time).ok())
                    .max(),
                values: latest
                    .latest
                    .into_iter()
                    .map(|l| (l.measurement, l.value))
                    .collect(),
            };
            Ok(Onboarded {
                credentials,
                resume,
            })
        }
        _ => Err(refused(device, url, status, text)),
    }
}

pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<(StatusCode, String)> {
    let http = |source: reqwest::Error| Error::Http {
        url: url.to_owned(),
        detail: chain(&source),
        source,
    };
    let response = request.send().await.map_err(http)?;
    let status = response.status();
    let text = response.text().await.map_err(http)?;
    Ok((status, text))
}

fn parse(
    device: &DevicePlan,
    url: &str,
    status: StatusCode,
    text: &str,
) -> Result<MqttCredentials> {
    serde_json::from_str::<WithCredentials>(text)
        .map(|body| body.mqtt)
        .map_err(|e| Error::Response {
            device: device.id.clone(),
            url: url.to_owned(),
            status: status.as_u16(),
            detail: format!("{e}; body: {}", truncate(text)),
        })
}

fn refused(device: &DevicePlan, url: String, status: StatusCode, text: String) -> Error {
    Error::Onboarding {
        device: device.id.clone(),
        url,
        status: status.as_u16(),
        body: truncate(&text),
    }
}

/// Error bodies go into error messages; keep them readable.
pub(crate) fn truncate(text: &str) -> String {
    const LIMIT: usize = 500;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}
