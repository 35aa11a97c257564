//! Simulated LoRaWAN: end devices that build real LoRaWAN 1.0.x frames with the `lorawan` crate (=0.9.0),
//! gateways that forward them to bydata over the Semtech UDP packet-forwarder protocol (v2), and a fleet
//! runner that registers both over the HTTP API and runs them — the device side of bydata's embedded
//! network server, for demos, end-to-end tests and load.
//!
//! Data flows: [`ClimateSensor`] reading → [`PayloadFormat`] bytes (Cayenne LPP or a vendor-style TLV) →
//! [`AbpDevice::uplink`] / [`OtaaDevice::uplink`] PHYPayload (FRMPayload encrypted with the AppSKey, MIC with
//! the NwkSKey over the full 32-bit FCnt) → [`SimGateway::uplink`] PUSH_DATA `rxpk`, re-sent until its
//! PUSH_ACK. Downstream, a PULL_RESP is answered with a TX_ACK and its `txpk` heard by every
//! [`DownlinkListener`]; [`OtaaDevice::join`] sends a join-request and takes the join-accept meant for it.
//!
//! [`run_lorawan_fleet`] does it all from one [`LorawanFleetConfig`]: gateways (registered, 409 is fine),
//! devices `{prefix}-lora-abp-{n}` and `{prefix}-lora-otaa-{n}` (a 409 means an earlier run:
//! delete and re-create, which resets the server's frame counter and DevNonce memory; the keys, derived from
//! seed and id, stay the same), joins, then an uplink per device per interval through every gateway.
//!
//! Devices and payloads are pure (no I/O, no clock; DevNonces and readings from seeds); only the gateway
//! and the fleet do I/O, and every loop of theirs selects on a `CancellationToken`.
mod class_a;
mod device;
mod downlink;
mod fleet;
mod fleet_device;
mod forwarder;
mod gateway;
mod join;
mod onboard;
mod payload;
mod plan;
mod wire;

pub use class_a::{ClassAOutcome, RxWindow};
pub use device::{
    AbpDevice, AppKey, AppSKey, DevAddr, FrameError, MAX_PAYLOAD_LEN, NwkSKey, OtaaDevice, Session,
};
pub use downlink::ReceivedDownlink;
pub use fleet::{
    LorawanFleetConfig, LorawanFleetReport, run_lorawan_fleet, run_lorawan_fleet_with_clock,
};
pub use gateway::{Downlink, DownlinkListener, GatewayOptions, GatewayStats, RxParams, SimGateway};
pub use join::JOIN_ATTEMPTS;
pub use payload::{CayenneWriter, ClimateReading, ClimateSensor, PayloadFormat, cayenne, vendor};
