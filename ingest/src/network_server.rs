//! Network-server integrations at work: events from ChirpStack or The Things Stack — published into bydata's
//! broker by an inbound integration, or read from their broker by a subscribe integration — become uplinks
//! of the devices registered with their DevEUI, journaled like any other uplink (source `chirpstack`/`tts`,
//! topic `lorawan/{fport}`, the decrypted payload, every gateway's RSSI/SNR), so the device's codec decodes
//! them downstream exactly as it decodes frames from bydata's own gateways.
//!
//! Every event is counted per integration (`GET /api/v1/integrations/{id}`): uplinks, ignored event types,
//! unknown DevEUIs, unreadable events with the last reason. An unreadable ChirpStack event whose topic names a
//! registered DevEUI is also counted on that device's status (aggregated, not journaled), so its owner sees why.
//!
//! [`Hub::run`] keeps one MQTT client per subscribe integration, started and stopped as integrations are
//! registered and deleted (the registry is read every `RESCAN`). QoS 1 messages are acknowledged by rumqttc
//! on receipt; the journal append follows within milliseconds, so a crash between the two can lose the
//! event in flight — the inbound path has no such window (the append happens before the PUBACK).
use crate::integrations::{self, Delivery, Event, Kind, RemoteBroker, subscribe};
use bydata_schemas::{
    IntegrationId, JournalEntry, NetworkServer, Reception, RejectReason, Source, UnixNanos, Uplink,
};
use bydata_store::journal::Journal;
use bydata_store::{Integration, IntegrationMode, LastError, SharedRegistry};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the registry is read for subscribe integrations to start or stop.
const RESCAN: Duration = Duration::from_secs(2);
/// How long an integration's registration is trusted by the inbound path.
const KNOWN_FOR: Duration = Duration::from_secs(5);
/// Events queued between a subscribe client and the journal; a full queue stops reading from the broker.
const QUEUE: usize = 256;
/// Most gateway receptions kept per uplink (each becomes two series points).
const MAX_RECEPTIONS: usize = 16;

/// What one integration has delivered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub events: u64,
    pub uplinks: u64,
    /// Events of other types (join, status, ack, …) and uplinks without application payload.
    pub ignored: u64,
    pub unknown_device: u64,
    pub invalid: u64,
    pub last_event: Option<UnixNanos>,
    pub last_error: Option<LastError>,
}

/// Why an integration's event was not taken (the sender should retry; nothing of it was journaled).
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("integration {integration} is not registered")]
    NotRegistered { integration: IntegrationId },
    #[error(transparent)]
    Registry(bydata_store::Error),
    #[error(transparent)]
    Journal(bydata_store::journal::Error),
}

/// What an integration has delivered and, for a subscribe integration, its client's connection state.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationStatus {
    #[serde(flatten)]
    pub counters: Counters,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<integrations::StatusSnapshot>,
}

/// What a hub needs.
#[derive(Clone)]
pub struct Deps {
    pub registry: SharedRegistry,
    pub journal: Arc<Journal>,
    pub clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    /// Where refusals of the devices' events are counted.
    pub refusals: Arc<bydata_store::refusals::Refusals>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The integrations' shared state: counters, the inbound path's cache, and the running clients.
pub struct Hub {
    deps: Deps,
    counters: Mutex<HashMap<IntegrationId, Counters>>,
    known: Mutex<HashMap<IntegrationId, (Option<NetworkServer>, Instant)>>,
    clients: Mutex<HashMap<IntegrationId, (Arc<integrations::ClientStatus>, CancellationToken)>>,
    /// The clients and their journal writers, waited for at shutdown so nothing queued is dropped.
    tasks: TaskTracker,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

fn kind(ns: NetworkServer) -> Kind {
    match ns {
        NetworkServer::Chirpstack => Kind::Chirpstack,
        NetworkServer::Tts => Kind::Tts,
    }
}

fn source(ns: NetworkServer) -> Source {
    match ns {
        NetworkServer::Chirpstack => Source::Chirpstack,
        NetworkServer::Tts => Source::Tts,
    }
}

impl Hub {
    pub fn new(deps: Deps) -> Self {
        Self {
            deps,
            counters: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        }
    }

    /// An event an inbound integration published at `topic` (below `integrations/{id}/`). `Err` only when
    /// the registry or journal failed: the event is not taken and the sender should retry.
    pub fn inbound(
        &self,
        id: &IntegrationId,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), InboundError> {
        let ns = self.network_server(id)?;
        let Some(ns) = ns else {
            return Err(InboundError::NotRegistered {
                integration: id.clone(),
            });
        };
        let result = integrations::parse(kind(ns), topic, payload);
        self.take(id, ns, topic, result)
    }

    fn network_server(&self, id: &IntegrationId) -> Result<Option<NetworkServer>, InboundError> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((ns, at)) = known.get(id)
            && at.elapsed() < KNOWN_FOR
        {
            return Ok(*ns);
        }
        let ns = wait(self.deps.registry.integration(id))
            .map_err(InboundError::Registry)?
            .map(|i| i.network_server);
        if known.len() > 10_000 {
            known.clear();
        }
        known.insert(id.clone(), (ns, Instant::now()));
        Ok(ns)
    }

    fn count(&self, id: &IntegrationId, f: impl FnOnce(&mut Counters)) {
        let mut all = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let c = all.entry(id.clone()).or_default();
        c.events += 1;
        c.last_event = Some((self.deps.clock)());
        f(c);
    }

    /// Journals what one event means; counts it.
    fn take(
        &self,
        id: &IntegrationId,
        ns: NetworkServer,
        topic: &str,
        result: Result<Event, integrations::IntegrationError>,
    ) -> Result<(), InboundError> {
        let now = (self.deps.clock)();
        let up = match result {
            Ok(Event::Uplink(up)) => up,
            Ok(Event::Ignored { .. }) => {
                self.count(id, |c| c.ignored += 1);
                return Ok(());
            }
            Err(e) => {
                let reason = format!("{topic}: {e}");
                self.count(id, |c| {
                    c.invalid += 1;
                    c.last_error = Some(LastError { time: now, reason });
                });
                // ChirpStack names the DevEUI in the topic: tell that device's owner too.
                if let Some(device) = dev_eui_in_topic(topic)
                    .and_then(|eui| {
                        wait(self.deps.registry.external_device(&eui))
                            .ok()
                            .flatten()
                    })
                    .filter(|d| d.integration.as_ref().is_none_or(|i| i == id))
                    .map(|d| d.device)
                {
                    let reason = RejectReason::IntegrationEvent {
                        integration: id.to_string(),
                        code: e.code().to_owned(),
                        detail: e.to_string(),
                    };
                    self.deps.refusals.record(&device, now, &reason);
                }
                return Ok(());
            }
        };
        let external = wait(self.deps.registry.external_device(&up.dev_eui))
            .map_err(InboundError::Registry)?;
        // Only devices registered as served by a network server, and only through their integration if they
        // name one: an integration cannot speak for bydata's own ABP/OTAA devices or another's devices.
        let Some(device) = external
            .filter(|d| d.integration.as_ref().is_none_or(|i| i == id))
            .map(|d| d.device)
        else {
            let reason = format!(
                "no device with DevEUI {} is served through this integration: onboard it with transport \"lorawan\" and lorawan.activation \"network_server\"",
                up.dev_eui
            );
            self.count(id, |c| {
                c.unknown_device += 1;
                c.last_error = Some(LastError { time: now, reason });
            });
            return Ok(());
        };
        let Some(fport) = up.f_port else {
            self.count(id, |c| c.ignored += 1);
            return Ok(());
        };
        let entry = JournalEntry::Uplink(Uplink {
            received_at: now,
            device,
            source: source(ns),
            topic: format!("lorawan/{fport}"),
            payload: up.payload,
            radio: up
                .rx
                .into_iter()
                .take(MAX_RECEPTIONS)
                .map(|r| Reception {
                    gateway: gateway_name(&r.gateway),
                    rssi: r.rssi.filter(|v| v.is_finite()),
                    snr: r.snr.filter(|v| v.is_finite()),
                })
                .collect(),
        });
        self.deps
            .journal
            .append(&entry)
            .map_err(InboundError::Journal)?;
        self.count(id, |c| c.uplinks += 1);
        Ok(())
    }

    /// An integration's counters and, for a subscribe integration, its client's connection state.
    pub fn status(&self, id: &IntegrationId) -> IntegrationStatus {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
            .unwrap_or_default();
        let client = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(|(s, _)| s.snapshot());
        IntegrationStatus { counters, client }
    }

    /// Runs the subscribe integrations' clients until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(RESCAN);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => self.rescan(&shutdown).await,
            }
        }
        let clients: Vec<_> = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        for (_, (_, token)) in clients {
            token.cancel();
        }
        // Each writer ends when its client has stopped and the queue is drained.
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn rescan(self: &Arc<Self>, shutdown: &CancellationToken) {
        let wanted = match self.deps.registry.integrations().await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "cannot read integrations");
                return;
            }
        };
        let wanted: HashMap<IntegrationId, Integration> = wanted
            .into_iter()
            .filter(|i| matches!(i.mode, IntegrationMode::Subscribe { .. }))
            .map(|i| (i.id.clone(), i))
            .collect();
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain(|id, (_, token)| {
            let keep = wanted.contains_key(id);
            if !keep {
                tracing::info!(integration = %id, "integration deleted; its client stops");
                token.cancel();
            }
            keep
        });
        for (id, integration) in wanted {
            if clients.contains_key(&id) {
                continue;
            }
            let IntegrationMode::Subscribe {
                host,
                port,
                username,
                topic,
                client_id,
            } = integration.mode
            else {
                continue;
            };
            let password = match wait(self.deps.registry.integration_remote_password(&id)) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(integration = %id, error = %e, "cannot read an integration's password");
                    continue;
                }
            };
            let remote = RemoteBroker {
                host,
                port,
                username,
                password,
                client_id: client_id.unwrap_or_else(|| format!("bydata-{id}")),
                topic,
            };
            if let Err(e) = remote.check() {
                // Settings no retry can fix: said on the integration's status (once per rescan).
                let reason = format!("cannot connect: {e}");
                let now = (self.deps.clock)();
                let mut all = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
                let c = all.entry(id.clone()).or_default();
                if c.last_error.as_ref().map(|l| &l.reason) != Some(&reason) {
                    tracing::error!(integration = %id, error = %e, "integration settings refused");
                }
                c.last_error = Some(LastError { time: now, reason });
                continue;
            }
            let clock = self.deps.clock.clone();
            let status = Arc::new(integrations::ClientStatus::new(move || clock()));
            let token = shutdown.child_token();
            clients.insert(id.clone(), (status.clone(), token.clone()));
            let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
            let ns = integration.network_server;
            self.tasks.spawn(self.clone().consume(id.clone(), ns, rx));
            self.tasks.spawn(async move {
                if let Err(e) = subscribe(kind(ns), remote, tx, status, token).await {
                    tracing::error!(integration = %id, error = %e, "integration client cannot start");
                }
            });
        }
    }

    /// Journals a subscribe client's deliveries, in order.
    async fn consume(
        self: Arc<Self>,
        id: IntegrationId,
        ns: NetworkServer,
        mut rx: tokio::sync::mpsc::Receiver<Delivery>,
    ) {
        while let Some(delivery) = rx.recv().await {
            let hub = self.clone();
            let moved = id.clone();
            let done = tokio::task::spawn_blocking(move || {
                hub.take(&moved, ns, &delivery.topic, delivery.result)
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(integration = %id, error = %e, "cannot journal an integration event; it is lost")
                }
                Err(e) => tracing::error!(integration = %id, error = %e, "integration task failed"),
            }
        }
    }
}

/// A gateway name from outside, fit to be a tag value: at most 64 characters of `A-Z a-z 0-9 - _ . : @`,
/// anything else replaced by `_` (a network server may name gateways freely).
fn gateway_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "unnamed".to_owned()
    } else {
        name
    }
}

/// ChirpStack's `application/{application_id}/device/{dev_eui}/event/{event}`: the DevEUI, if the topic has one.
fn dev_eui_in_topic(topic: &str) -> Option<bydata_schemas::Eui64> {
    let mut levels = topic.split('/');
    while let Some(level) = levels.next() {
        if level == "device" {
            return bydata_schemas::Eui64::new(levels.next()?).ok();
        }
    }
    None
}

/// Waits for a registry answer in synchronous code running on a runtime worker (the broker calls `inbound`
/// from its protocol hook, before the PUBACK): the worker's other tasks move elsewhere while it waits.
fn wait<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
