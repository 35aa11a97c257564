//! Sending a batch to a target's receiver, and what its answer means for the batch.
mod http;
mod mqtt;
mod outcome;

pub(crate) use outcome::{ANSWER_CHARS, Batch, Outcome};

use crate::Config;
use bydata_store::{Target, TargetKind, TargetSecrets};

/// A target's connection to its receiver.
#[derive(Debug)]
pub(crate) enum Sender {
    Http(http::HttpSender),
    Mqtt(mqtt::MqttSender),
}

impl Sender {
    pub(crate) fn new(
        target: &Target,
        secrets: TargetSecrets,
        config: &Config,
    ) -> Result<Self, crate::Error> {
        Ok(match &target.kind {
            TargetKind::Http { url, auth, .. } => Self::Http(http::HttpSender::new(
                &target.id,
                url,
                auth.clone(),
                secrets,
                config,
            )?),
            TargetKind::Mqtt {
                host,
                port,
                tls,
                username,
                client_id,
                topic,
            } => Self::Mqtt(mqtt::MqttSender::new(
                &target.id,
                mqtt::Remote {
                    host,
                    port: *port,
                    tls: *tls,
                    username: username.as_deref(),
                    client_id: client_id.as_deref(),
                    topic,
                },
                secrets,
                config,
            )?),
        })
    }

    pub(crate) async fn send(&mut self, batch: &Batch<'_>) -> Outcome {
        match self {
            Self::Http(s) => s.send(batch).await,
            Self::Mqtt(s) => s.send(batch).await,
        }
    }
}
