//! MQTT targets: each reading one QoS 1 PUBLISH to an outside broker; a batch is delivered when every one
//! of its PUBLISHes has its PUBACK.
//!
//! The event loop runs in a task of its own (publishing from the polling task deadlocks under load) and
//! reports through a watch: connected, PUBACKs counted, or the error that ended it. Any failure drops the
//! connection whole (a clean session), so a late PUBACK of an abandoned batch can never be counted for the
//! next one; the next attempt connects again and sends the batch again (the duplicates carry their keys).
use super::outcome::{Batch, Outcome};
use crate::{Config, Error, record};
use bydata_schemas::TargetId;
use bydata_store::TargetSecrets;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where the broker is and how to publish there.
#[derive(Debug)]
pub(crate) struct Remote<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) username: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) topic: &'a str,
}

#[derive(Debug, Clone, Default)]
struct State {
    connected: bool,
    acked: u64,
    error: Option<String>,
}

struct Connection {
    client: AsyncClient,
    state: watch::Receiver<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct MqttSender {
    options: MqttOptions,
    target: TargetId,
    where_: String,
    topic: String,
    timeout: Duration,
    connection: Option<Connection>,
}

impl std::fmt::Debug for MqttSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSender")
            .field("broker", &self.where_)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl MqttSender {
    pub(crate) fn new(
        target: &TargetId,
        remote: Remote<'_>,
        secrets: TargetSecrets,
        config: &Config,
    ) -> Result<Self, Error> {
        record::check_topic_template(remote.topic).map_err(|reason| Error::Settings { reason })?;
        let client_id = remote
            .client_id
            .map_or_else(|| format!("bydata-{target}"), str::to_owned);
        let mut options = MqttOptions::new(client_id, remote.host, remote.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        options.set_max_packet_size(1024 * 1024, 1024 * 1024);
        options.set_inflight(100);
        if let Some(user) = remote.username {
            options.set_credentials(user, secrets.secret.unwrap_or_default());
        }
        if remote.tls {
            options.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config()?)),
            ));
        }
        Ok(Self {
            options,
            target: target.clone(),
            where_: format!("{}:{}", remote.host, remote.port),
            topic: remote.topic.to_owned(),
            timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            connection: None,
        })
    }

    pub(crate) async fn send(&mut self, batch: &Batch<'_>) -> Outcome {
        match self.publish(batch).await {
            Ok(()) => Outcome::Delivered {
                status: None,
                answer: None,
            },
            Err(error) => {
                self.connection = None;
                Outcome::Unreachable {
                    status: None,
                    error,
                }
            }
        }
    }

    async fn publish(&mut self, batch: &Batch<'_>) -> Result<(), String> {
        if self
            .connection
            .as_ref()
            .is_none_or(|c| c.task.is_finished())
        {
            self.connection = Some(self.connect());
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err("not connected".into());
        };
        let mut state = connection.state.clone();
        let ready = tokio::time::timeout(
            self.timeout,
            state.wait_for(|s| s.connected || s.error.is_some()),
        )
        .await
        .map(|r| r.map(|s| (s.acked, s.error.clone())));
        let base = match ready {
            Ok(Ok((acked, None))) => Ok(acked),
            Ok(Ok((_, Some(error)))) => Err(error),
            Ok(Err(_)) => Err(format!("the connection to {} ended", self.where_)),
            Err(_) => Err(format!(
                "{} did not accept the connection within {} ms",
                self.where_,
                self.timeout.as_millis()
            )),
        }?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        for r in batch.records {
            let topic = record::topic(&self.topic, &self.target, r);
            let payload = serde_json::to_vec(r).unwrap_or_default();
            let queued = tokio::time::timeout_at(
                deadline,
                connection
                    .client
                    .publish(topic, QoS::AtLeastOnce, false, payload),
            )
            .await;
            if !matches!(queued, Ok(Ok(()))) {
                return Err(format!("publishing to {} stalled", self.where_));
            }
        }
        let wanted = base + batch.records.len() as u64;
        let acked = tokio::time::timeout_at(
            deadline,
            state.wait_for(|s| s.acked >= wanted || s.error.is_some()),
        )
        .await;
        let acked = acked.map(|r| r.map(|s| (s.acked, s.error.clone())));
        match acked {
            Ok(Ok((n, _))) if n >= wanted => Ok(()),
            Ok(Ok((_, error))) => Err(error.unwrap_or_default()),
            Ok(Err(_)) => Err(format!("the connection to {} ended", self.where_)),
            Err(_) => Err(format!(
                "{} did not acknowledge every reading within {} ms",
                self.where_,
                self.timeout.as_millis()
            )),
        }
    }

    fn connect(&self) -> Connection {
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 64);
        let (tx, rx) = watch::channel(State::default());
        let where_ = self.where_.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if ack.code == ConnectReturnCode::Success {
                            tx.send_modify(|s| s.connected = true);
                        } else {
                            let error = refused(&where_, ack.code);
                            tx.send_modify(|s| s.error = Some(error));
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => tx.send_modify(|s| s.acked += 1),
                    Ok(_) => {}
                    Err(e) => {
                        let error = match e {
                            rumqttc::ConnectionError::ConnectionRefused(code) => {
                                refused(&where_, code)
                            }
                            other => format!("the connection to {where_} failed: {other}"),
                        };
                        tx.send_modify(|s| {
                            s.connected = false;
                            s.error = Some(error);
                        });
                        return;
                    }
                }
            }
        });
        Connection {
            client,
            state: rx,
            task,
        }
    }
}

fn refused(broker: &str, code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => {
            format!("{broker} refused the login (check the target's username and password)")
        }
        other => format!("{broker} refused the connection ({other:?})"),
    }
}

/// TLS with the Mozilla roots (webpki-roots) and ring, as bydata's other clients.
fn tls_config() -> Result<tokio_rustls::rustls::ClientConfig, Error> {
    let roots = tokio_rustls::rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(
        tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Settings {
                reason: format!("TLS: {e}"),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
