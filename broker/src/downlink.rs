//! Downlinks to MQTT devices: the registry's per-device queue, published into rumqttd through a local link
//! when the device is connected and subscribed, its state following what the device's connection shows.
//!
//! - **Topics.** Raw bytes on `devices/{id}/down/{fport}` to a device subscribed to a filter matching it
//!   (`devices/{id}/down/+`, `devices/{id}/down/#`); otherwise, to one subscribed to exactly
//!   `devices/{id}/down`, a JSON envelope there: `{"id", "fport", "confirmed", "bytes" (base64), "hex"}`.
//! - **Seeing the device's side.** rumqttd does not tell a local link what happened to a message downstream,
//!   but the per-connection protocol wrapper sees every packet of the device's connection: its SUBSCRIBE and
//!   the SUBACK (so a filter is known granted, at which QoS), the PUBLISH rumqttd writes to it (with the
//!   packet id rumqttd chose) and the device's PUBACK. [`Downlinks::on_read`] / [`Downlinks::on_write`] are
//!   that hook; they only look, under a short lock, and pass events on through a bounded channel.
//! - **States.** One downlink per device is in flight at a time (so a PUBLISH on the device's down topic with
//!   the same payload is that downlink). Sent when rumqttd writes it to the device's socket, Acknowledged when
//!   the device's PUBACK for that packet id arrives. A device subscribed at QoS 0 sends no PUBACK: an
//!   unconfirmed downlink then ends Sent, a confirmed one Failed (it cannot be confirmed). A confirmed one
//!   not acknowledged on a connection is sent again on the device's next connection, up to `max_attempts`;
//!   a downlink still not sent after `expire_after_secs` fails as expired instead of being sent.
//! - **Offline devices** keep their queue in the registry (so across restarts); a device's SUBACK for a
//!   matching filter starts delivery, as does a new downlink for a subscribed device ([`Downlinks::wake`]).
//! - **Overflow.** The event channel is bounded; an event that does not fit is dropped and counted: a lost
//!   "written" leaves the downlink queued (it is published again, at least once), a lost PUBACK leaves it
//!   sent (a confirmed one is retried on the next connection).
use bydata_admission::metrics::{Collector, DescriptorEncoder, counter, counters, get};
use bydata_schemas::{DeviceId, Downlink, DownlinkState, DownlinkUpdate, UnixNanos};
use bydata_store::SharedRegistry;
use rumqttd::protocol::{Packet, QoS, SubscribeReasonCode};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Downlink delivery to MQTT devices (`[broker.downlinks]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How many times a confirmed downlink is sent (once per connection) before it fails unacknowledged.
    pub max_attempts: u32,
    /// A downlink not sent within this many seconds of being queued fails as expired instead.
    pub expire_after_secs: u64,
    /// How long to wait for the device's PUBACK before the next downlink goes out, in seconds (the one not
    /// acknowledged stays sent; a confirmed one is sent again on the next connection).
    pub ack_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            expire_after_secs: 7 * 24 * 3600,
            ack_timeout_secs: 30,
        }
    }
}

/// Events the hook passes to the delivery task; at most this many wait (then they are dropped, counted).
const EVENTS: usize = 4096;
/// A downlink handed to rumqttd but not written to the device within this long was dropped by rumqttd
/// (the device left): it stays queued for the next subscription.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The client id of the local link: neither a device id (a slug, no `:`) nor `integration:{id}`, so no client
/// the edge lets in can take it over (rumqttd refuses `+$#/` in client ids).
const LINK_CLIENT_ID: &str = "bydata:downlinks";

#[derive(Debug)]
enum Event {
    Wake(DeviceId),
    Written { device: DeviceId, id: u64, qos: QoS },
    Acked { device: DeviceId, id: u64 },
}

/// What the delivery knows of one device's current connection.
#[derive(Debug, Default)]
struct Session {
    /// Filters asked for, by SUBSCRIBE packet id, until the SUBACK grants them.
    asked: Vec<(u16, Vec<(String, QoS)>)>,
    /// Granted filters and their QoS.
    filters: Vec<(String, QoS)>,
    in_flight: Option<InFlight>,
    /// Downlinks sent on this connection (a confirmed one is sent again only on a later connection).
    sent_here: HashSet<u64>,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    topic: String,
    payload: Vec<u8>,
    /// The packet ids rumqttd wrote it with (one per matching subscription).
    pkids: Vec<u16>,
    written: bool,
    since: Instant,
}

/// Counters of the delivery, shown in `/metrics` through [`Downlinks::metrics`].
#[derive(Debug, Default)]
pub struct DownlinkCounters {
    pub published: AtomicU64,
    pub acknowledged: AtomicU64,
    pub failed: AtomicU64,
    pub events_dropped: AtomicU64,
}

/// The delivery's counters as a `Collector` for the one metrics registry. Totals only: which downlink of
/// which device went how is on the downlink itself (`GET /api/v1/devices/{id}/downlinks`).
#[derive(Debug, Clone)]
pub struct DownlinkMetrics(Arc<Downlinks>);

impl Collector for DownlinkMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let c = &self.0.counters;
        counters(
            &mut enc,
            "bydata_mqtt_downlinks",
            "Downlinks to MQTT devices: PUBLISHes written (published), PUBACKs received (acknowledged), \
             given up (failed)",
            "outcome",
            &[
                ("published", get(&c.published)),
                ("acknowledged", get(&c.acknowledged)),
                ("failed", get(&c.failed)),
            ],
        )?;
        counter(
            &mut enc,
            "bydata_mqtt_downlink_events_dropped",
            "Events for the downlink task (wake-ups, session changes) dropped because its queue was full",
            get(&c.events_dropped),
        )
    }
}

/// The MQTT delivery of downlinks: the hook the protocol wrapper calls, and the task that publishes.
pub struct Downlinks {
    registry: SharedRegistry,
    clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
    config: Config,
    sessions: Mutex<HashMap<DeviceId, Session>>,
    events: mpsc::Sender<Event>,
    inbox: Mutex<Option<mpsc::Receiver<Event>>>,
    pub counters: DownlinkCounters,
}

impl std::fmt::Debug for Downlinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downlinks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Downlinks {
    pub fn new(
        registry: SharedRegistry,
        clock: Arc<dyn Fn() -> UnixNanos + Send + Sync>,
        config: Config,
    ) -> Arc<Self> {
        let (events, inbox) = mpsc::channel(EVENTS);
        Arc::new(Self {
            registry,
            clock,
            config,
            sessions: Mutex::default(),
            events,
            inbox: Mutex::new(Some(inbox)),
            counters: DownlinkCounters::default(),
        })
    }

    /// Its counters, for the metrics registry.
    pub fn metrics(self: &Arc<Self>) -> DownlinkMetrics {
        DownlinkMetrics(self.clone())
    }

    /// A downlink was queued for `device`: if it is connected and subscribed, it goes out now.
    pub fn wake(&self, device: &DeviceId) {
        self.send(Event::Wake(device.clone()));
    }

    fn send(&self, event: Event) {
        if self.events.try_send(event).is_err() {
            self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A packet the device sent (after the wrapper accepted it).
    pub(crate) fn on_read(&self, device: &DeviceId, packet: &Packet) {
        let acked = {
            let mut sessions = self.sessions();
            match packet {
                Packet::Connect(..) => {
                    sessions.insert(device.clone(), Session::default());
                    None
                }
                Packet::Disconnect(..) => {
                    sessions.remove(device);
                    None
                }
                Packet::Subscribe(subscribe, _) => {
                    let asked = subscribe
                        .filters
                        .iter()
                        .map(|f| (f.path.clone(), f.qos))
                        .collect();
                    let session = sessions.entry(device.clone()).or_default();
                    session.asked.push((subscribe.pkid, asked));
                    None
                }
                Packet::Unsubscribe(unsubscribe, _) => {
                    if let Some(session) = sessions.get_mut(device) {
                        session
                            .filters
                            .retain(|(f, _)| !unsubscribe.filters.contains(f));
                    }
                    None
                }
                Packet::PubAck(ack, _) => sessions.get_mut(device).and_then(|s| {
                    let hit = s
                        .in_flight
                        .as_ref()
                        .is_some_and(|f| f.written && f.pkids.contains(&ack.pkid));
                    hit.then(|| s.in_flight.take().map(|f| f.id)).flatten()
                }),
                _ => None,
            }
        };
        if let Some(id) = acked {
            self.send(Event::Acked {
                device: device.clone(),
                id,
            });
        }
    }

    /// A packet rumqttd is writing to the device.
    pub(crate) fn on_write(&self, device: &DeviceId, packet: &Packet) {
        let event = {
            let mut sessions = self.sessions();
            let Some(session) = sessions.get_mut(device) else {
                return;
            };
            match packet {
                Packet::SubAck(suback, _) => {
                    let Some(at) = session.asked.iter().position(|(p, _)| *p == suback.pkid) else {
                        return;
                    };
                    let (_, asked) = session.asked.remove(at);
                    for ((filter, _), code) in asked.into_iter().zip(&suback.return_codes) {
                        let granted = match code {
                            SubscribeReasonCode::QoS0 => Some(QoS::AtMostOnce),
                            SubscribeReasonCode::QoS1 => Some(QoS::AtLeastOnce),
                            SubscribeReasonCode::QoS2 => Some(QoS::ExactlyOnce),
                            SubscribeReasonCode::Success(q) => Some(*q),
                            _ => None,
                        };
                        if let Some(qos) = granted {
                            session.filters.retain(|(f, _)| *f != filter);
                            session.filters.push((filter, qos));
                        }
                    }
                    Some(Event::Wake(device.clone()))
                }
                Packet::Publish(publish, _) => {
                    let Some(flight) = session.in_flight.as_mut() else {
                        return;
                    };
                    if publish.topic.as_ref() != flight.topic.as_bytes()
                        || publish.payload.as_ref() != flight.payload.as_slice()
                    {
                        return;
                    }
                    // rumqttd keeps a PUBLISH's QoS and packet id private; its own serialisation starts with
                    // them (the fixed header's QoS bits, then the packet id).
                    let (qos, pkid) = qos_and_pkid(publish);
                    if qos != QoS::AtMostOnce {
                        flight.pkids.push(pkid);
                    }
                    if flight.written {
                        return;
                    }
                    flight.written = true;
                    let id = flight.id;
                    if qos == QoS::AtMostOnce {
                        // No PUBACK will come: the slot is free for the next one.
                        session.in_flight = None;
                    }
                    session.sent_here.insert(id);
                    Some(Event::Written {
                        device: device.clone(),
                        id,
                        qos,
                    })
                }
                _ => None,
            }
        };
        if let Some(event) = event {
            self.send(event);
        }
    }

    /// Publishes downlinks through `link` until `shutdown`. Runs once (the event inbox is taken).
    pub(crate) async fn run(
        self: Arc<Self>,
        mut link: rumqttd::local::LinkTx,
        shutdown: CancellationToken,
    ) {
        let Some(mut inbox) = self
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(event) = inbox.recv() => self.handle(event, &mut link).await,
                _ = tick.tick() => self.expire_flights(&mut link).await,
            }
        }
    }

    async fn handle(&self, event: Event, link: &mut rumqttd::local::LinkTx) {
        match event {
            Event::Wake(device) => self.pump(&device, link).await,
            Event::Written { device, id, qos } => {
                let now = (self.clock)();
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                let sent = self
                    .update(&device, id, DownlinkUpdate::sent("mqtt", now))
                    .await;
                if qos == QoS::AtMostOnce {
                    if sent.is_some_and(|d| d.confirmed) {
                        let why = format!(
                            "sent at QoS 0 (the device subscribed to its down topic at QoS 0), so it cannot \
                             be acknowledged: subscribe to devices/{device}/down/# at QoS 1"
                        );
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        self.update(&device, id, DownlinkUpdate::failed(why, now))
                            .await;
                    }
                    self.pump(&device, link).await;
                }
            }
            Event::Acked { device, id } => {
                self.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
                self.update(&device, id, DownlinkUpdate::acknowledged((self.clock)()))
                    .await;
                self.pump(&device, link).await;
            }
        }
    }

    async fn update(&self, device: &DeviceId, id: u64, update: DownlinkUpdate) -> Option<Downlink> {
        match self.registry.update_downlink(device, id, update).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(%device, downlink = id, error = %e, "cannot record a downlink's state");
                None
            }
        }
    }

    /// Frees the slots of downlinks rumqttd never wrote (the device left) or the device never acknowledged.
    async fn expire_flights(&self, link: &mut rumqttd::local::LinkTx) {
        let ack_timeout = Duration::from_secs(self.config.ack_timeout_secs);
        let mut unacknowledged = Vec::new();
        {
            let mut sessions = self.sessions();
            for (device, session) in sessions.iter_mut() {
                let expired = session.in_flight.as_ref().is_some_and(|f| {
                    let age = f.since.elapsed();
                    (!f.written && age > WRITE_TIMEOUT) || (f.written && age > ack_timeout)
                });
                if expired
                    && let Some(f) = session.in_flight.take()
                    && f.written
                {
                    unacknowledged.push((device.clone(), f.id));
                }
            }
        }
        for (device, id) in unacknowledged {
            let update = DownlinkUpdate {
                at: (self.clock)(),
                error: Some(format!(
                    "no PUBACK from the device within {} s",
                    self.config.ack_timeout_secs
                )),
                ..DownlinkUpdate::default()
            };
            self.update(&device, id, update).await;
            self.pump(&device, link).await;
        }
    }

    /// Sends the device's next downlink if it is subscribed and has none in flight.
    async fn pump(&self, device: &DeviceId, link: &mut rumqttd::local::LinkTx) {
        let (filters, sent_here) = {
            let sessions = self.sessions();
            match sessions.get(device) {
                Some(s) if s.in_flight.is_none() && !s.filters.is_empty() => {
                    (s.filters.clone(), s.sent_here.clone())
                }
                _ => return,
            }
        };
        let queue = match self.registry.downlinks(device).await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(%device, error = %e, "cannot read a device's downlinks");
                return;
            }
        };
        let now = (self.clock)();
        let expire_ns = i64::try_from(self.config.expire_after_secs)
            .unwrap_or(i64::MAX / 1_000_000_000)
            .saturating_mul(1_000_000_000);
        // Oldest first: the registry answers newest first.
        for d in queue.into_iter().rev() {
            let retry = d.state == DownlinkState::Sent && d.confirmed && !sent_here.contains(&d.id);
            if d.state != DownlinkState::Queued && !retry {
                continue;
            }
            if d.state == DownlinkState::Queued && now.saturating_sub(d.created_at) > expire_ns {
                let why = format!(
                    "expired: not delivered within {} s of being queued (the device did not subscribe)",
                    self.config.expire_after_secs
                );
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.update(
                    device,
                    d.id,
                    DownlinkUpdate::failed(why, now).expecting(DownlinkState::Queued),
                )
                .await;
                continue;
            }
            if retry && d.attempts >= self.config.max_attempts {
                let why = format!("not acknowledged after {} attempts", d.attempts);
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.update(device, d.id, DownlinkUpdate::failed(why, now))
                    .await;
                continue;
            }
            let Some((topic, payload)) = message(device, &d, &filters) else {
                return;
            };
            {
                let mut sessions = self.sessions();
                let Some(session) = sessions.get_mut(device) else {
                    return;
                };
                if session.in_flight.is_some() {
                    return;
                }
                session.in_flight = Some(InFlight {
                    id: d.id,
                    topic: topic.clone(),
                    payload: payload.clone(),
                    pkids: Vec::new(),
                    written: false,
                    since: Instant::now(),
                });
            }
            if let Err(e) = link.publish(topic, payload) {
                tracing::error!(%device, downlink = d.id, error = %e, "cannot hand a downlink to the broker");
                if let Some(s) = self.sessions().get_mut(device) {
                    s.in_flight = None;
                }
            }
            return;
        }
    }
}

/// A PUBLISH's QoS and packet id, read from rumqttd's serialisation (`[header, pkid_hi, pkid_lo, …]`).
fn qos_and_pkid(publish: &rumqttd::protocol::Publish) -> (QoS, u16) {
    let bytes = publish.serialize();
    let qos = match bytes.first().map(|h| (h >> 1) & 0b11) {
        Some(1) => QoS::AtLeastOnce,
        Some(2) => QoS::ExactlyOnce,
        _ => QoS::AtMostOnce,
    };
    let pkid = match (bytes.get(1), bytes.get(2)) {
        (Some(hi), Some(lo)) => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    };
    (qos, pkid)
}

/// The topic and payload for `d` given the device's granted filters: raw bytes on `down/{fport}` if a filter
/// matches it, else the JSON envelope on `down` if a filter matches that; `None` if neither.
fn message(
    device: &DeviceId,
    d: &Downlink,
    filters: &[(String, QoS)],
) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let raw = format!("devices/{device}/down/{}", d.fport);
    if filters.iter().any(|(f, _)| matches(f, &raw)) {
        return Some((raw, d.bytes.clone()));
    }
    let plain = format!("devices/{device}/down");
    if filters.iter().any(|(f, _)| matches(f, &plain)) {
        let envelope = serde_json::json!({
            "id": d.id,
            "fport": d.fport,
            "confirmed": d.confirmed,
            "bytes": base64::engine::general_purpose::STANDARD.encode(&d.bytes),
            "hex": d.bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        return Some((plain, envelope.to_string().into_bytes()));
    }
    None
}

/// Whether an MQTT topic filter (`+` one level, `#` the rest, including the parent) matches a topic.
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match part {
            "#" => return true,
            "+" => {
                if levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    levels.next().is_none()
}

/// Connects the delivery's local link to rumqttd's router (blocking briefly: the router answers the link's
/// CONNECT on its own thread). The link may publish to topics no filter matches yet (`dynamic_filters`);
/// without that rumqttd would disconnect it.
pub(crate) fn link(
    router: impl FnOnce(&'static str) -> rumqttd::local::LinkBuilder<'static>,
) -> Result<(rumqttd::local::LinkTx, rumqttd::local::LinkRx), String> {
    router(LINK_CLIENT_ID)
        .dynamic_filters(true)
        .build()
        .map(|(tx, rx, _)| (tx, rx))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "downlink_tests.rs"]
mod tests;
