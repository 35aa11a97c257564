//! Simulated city devices for bydata: seeded, replayable models of Aarhus buildings and roads, and a fleet
//! runner that onboards them over the HTTP API and publishes their readings over MQTT — for demos
//! (`bydata serve --demo`), backfilling dashboards with history, and load tests.
//!
//! Data flows: [`FleetConfig`] → a device plan (ids `{prefix}-{kind}-{n}`, tags, places, per-device seeds,
//! all from one seed) → `POST /api/v1/devices` per device (409 ⇒ rotate credentials) → one rumqttc client
//! per device publishing flat JSON (`{"co2": 812, "time": "…"}`) with QoS 1 on `devices/{id}/up` →
//! [`FleetReport`] of published and acknowledged messages.
//!
//! The models ([`BuildingClimate`], [`ElectricityMeter`], [`TrafficCounter`]) are pure: time is passed in and
//! randomness comes from a seeded `StdRng`, so the same seed and times give the same payloads. Live samples
//! are stamped by an injected [`Clock`]. Daily patterns use Europe/Copenhagen as a fixed UTC+1 (no DST).
//!
//! [`lorawan`] does the same over LoRaWAN: devices building real LoRaWAN 1.0.x frames, gateways speaking
//! Semtech UDP to bydata's network server, and [`lorawan::run_lorawan_fleet`] to onboard and run them.

mod clock;
mod device;
mod error;
mod fleet;
pub mod lorawan;
mod models;
mod onboard;
mod plan;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, Result};
pub use fleet::{FleetConfig, FleetReport, run_fleet, run_fleet_with_clock};
pub use models::{
    BuildingClimate, DeviceKind, DeviceModel, ElectricityMeter, Sample, TrafficCounter,
};
