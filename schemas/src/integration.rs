//! Network-server integrations: ChirpStack or The Things Stack delivering uplinks of LoRaWAN devices.
use crate::device::{check_slug, string_newtype};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An integration's id: a slug like a device id. Its MQTT identity is `integration:{id}`, which no device id
/// can spell, and it publishes under `integrations/{id}/…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IntegrationId(String);
string_newtype!(IntegrationId, "integration id", check_slug);

impl IntegrationId {
    /// The MQTT client id and username the integration connects with.
    pub fn mqtt_identity(&self) -> String {
        format!("{}{}", Self::MQTT_PREFIX, self.0)
    }

    /// The integration an MQTT identity names, if it names one.
    pub fn from_mqtt_identity(identity: &str) -> Option<IntegrationId> {
        identity
            .strip_prefix(Self::MQTT_PREFIX)
            .and_then(|id| IntegrationId::new(id).ok())
    }

    /// The topic prefix the integration publishes under.
    pub fn topic_prefix(&self) -> String {
        format!("integrations/{}/", self.0)
    }

    const MQTT_PREFIX: &'static str = "integration:";
}

/// Which network server an integration speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkServer {
    /// ChirpStack v4 (MQTT integration, JSON marshaler).
    Chirpstack,
    /// The Things Stack v3 (MQTT).
    Tts,
}

impl fmt::Display for NetworkServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkServer::Chirpstack => "chirpstack",
            NetworkServer::Tts => "tts",
        })
    }
}

impl FromStr for NetworkServer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "chirpstack" => Ok(NetworkServer::Chirpstack),
            "tts" => Ok(NetworkServer::Tts),
            _ => Err(Error::Invalid {
                kind: "network server",
                value: s.to_owned(),
                reason: "must be chirpstack or tts",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_identities_cannot_be_device_ids() {
        let id = IntegrationId::new("cs-aarhus").expect("id");
        assert_eq!(id.mqtt_identity(), "integration:cs-aarhus");
        assert!(crate::DeviceId::new(id.mqtt_identity()).is_err());
        assert_eq!(
            IntegrationId::from_mqtt_identity("integration:cs-aarhus"),
            Some(id)
        );
        assert_eq!(IntegrationId::from_mqtt_identity("cs-aarhus"), None);
        assert_eq!(IntegrationId::from_mqtt_identity("integration:A/b"), None);
    }
}
