//! Registering the simulated gateways and LoRaWAN devices with the bydata API.
//!
//! Re-runs: a gateway that exists already (409) is fine — its EUI is all there is to it. A device that exists
//! already is deleted and created again: its keys are derived from the seed and so are the same, but the
//! network server remembers an ABP device's frame counter and an OTAA device's used DevNonces, which a
//! restarted simulator (counting from 0, drawing the same DevNonces) would collide with. Deleting keeps the
//! device's stored series (they are history); only its registration, status and session start afresh.
use super::plan::{Activation, DevicePlan, GatewayPlan};
use crate::error::{Error, Result};
use crate::onboard::{send, truncate};
use bydata_schemas::Codec;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What onboarding a device took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Onboarded {
    Created,
    /// It existed (an earlier run) and was deleted and created again.
    Recreated,
}

/// Registers a gateway; one that exists already is fine.
pub(crate) async fn register_gateway(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    gateway: &GatewayPlan,
) -> Result<()> {
    let url = format!("{base_url}/api/v1/gateways");
    let body = json!({
        "eui": gateway.eui,
        "name": gateway.name,
        "location": gateway.location,
    });
    let (status, text) = send(client.post(&url).bearer_auth(token).json(&body), &url).await?;
    match status {
        StatusCode::CREATED | StatusCode::OK => Ok(()),
        StatusCode::CONFLICT => {
            tracing::debug!(gateway = %gateway.eui, "gateway registered already");
            Ok(())
        }
        _ => Err(Error::GatewayRegistration {
            gateway: gateway.eui,
            url,
            status: status.as_u16(),
            body: truncate(&text),
        }),
    }
}

fn device_body(device: &DevicePlan, codec: Option<&Codec>) -> Value {
    let lorawan = match &device.activation {
        Activation::Abp {
            dev_addr,
            nwk_s_key,
            app_s_key,
        } => json!({
            "activation": "abp",
            "dev_eui": device.dev_eui,
            "dev_addr": dev_addr.to_string(),
            "nwk_s_key": nwk_s_key.to_hex(),
            "app_s_key": app_s_key.to_hex(),
        }),
        Activation::Otaa { join_eui, app_key } => json!({
            "activation": "otaa",
            "dev_eui": device.dev_eui,
            "join_eui": join_eui,
            "app_key": app_key.to_hex(),
        }),
    };
    let activation = match device.activation {
        Activation::Abp { .. } => "abp",
        Activation::Otaa { .. } => "otaa",
    };
    let mut body = json!({
        "id": device.id,
        "name": device.name,
        "transport": "lorawan",
        "domain": "building",
        "location": device.location,
        "tags": {"simulated": "true", "activation": activation},
        "lorawan": lorawan,
    });
    if let Some(codec) = codec {
        body["codec"] = json!(codec);
    }
    body
}

/// Registers a LoRaWAN device; one that exists already is deleted and created again (see the module docs).
pub(crate) async fn onboard_device(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    device: &DevicePlan,
    codec: Option<&Codec>,
) -> Result<Onboarded> {
    let url = format!("{base_url}/api/v1/devices");
    let body = device_body(device, codec);
    let create = || client.post(&url).bearer_auth(token).json(&body);
    let refused = |url: String, status: StatusCode, text: String| Error::Onboarding {
        device: device.id.clone(),
        url,
        status: status.as_u16(),
        body: truncate(&text),
    };
    let (status, text) = send(create(), &url).await?;
    match status {
        StatusCode::CREATED | StatusCode::OK => return Ok(Onboarded::Created),
        StatusCode::CONFLICT => {}
        _ => return Err(refused(url, status, text)),
    }
    tracing::info!(device = %device.id, "LoRaWAN device exists already; deleting and re-creating it to reset its session");
    let one = format!("{url}/{}", device.id);
    let (status, text) = send(client.delete(&one).bearer_auth(token), &one).await?;
    // 404: deleted meanwhile, or the conflict was another device's DevEUI/DevAddr, which the POST will say.
    if !(status.is_success() || status == StatusCode::NOT_FOUND) {
        return Err(refused(one, status, text));
    }
    let (status, text) = send(create(), &url).await?;
    if status.is_success() {
        Ok(Onboarded::Recreated)
    } else {
        Err(refused(url, status, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lorawan::plan::plan;
    use bydata_schemas::Eui64;

    #[test]
    fn device_bodies_are_what_the_api_takes() {
        let fleet = plan("sim", 1, 1, 1, 9).expect("valid plan");
        let abp = device_body(&fleet.devices[0], Some(&Codec::Cayenne));
        assert_eq!(abp["id"], "sim-lora-abp-1");
        assert_eq!(abp["transport"], "lorawan");
        assert_eq!(abp["codec"], "cayenne");
        assert_eq!(abp["lorawan"]["activation"], "abp");
        for (field, len) in [
            ("dev_addr", 8),
            ("nwk_s_key", 32),
            ("app_s_key", 32),
            ("dev_eui", 16),
        ] {
            let value = abp["lorawan"][field].as_str().unwrap_or_default();
            assert_eq!(value.len(), len, "{field}: {abp}");
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        let otaa = device_body(&fleet.devices[1], None);
        assert_eq!(otaa["id"], "sim-lora-otaa-1");
        assert!(otaa.get("codec").is_none());
        assert_eq!(
            otaa["lorawan"].as_object().map(|o| o.len()),
            Some(4),
            "activation, dev_eui, join_eui, app_key: {otaa}"
        );
        for field in ["dev_eui", "join_eui"] {
            let eui = otaa["lorawan"][field].as_str().unwrap_or_default();
            assert!(Eui64::new(eui).is_ok(), "{field}: {otaa}");
        }
        assert!(otaa["location"]["lat"].is_number());
    }

    #[test]
    fn truncation_keeps_messages_short() {
        assert_eq!(truncate("short"), "short");
        assert_eq!(truncate(&"é".repeat(600)).chars().count(), 501);
    }
}
