//! Everything bydata keeps on disk, behind small interfaces:
//!
//! - [`journal`]: the raw journal, an append-only segmented log of what the edges accepted (durable before
//!   acknowledgement, replayable);
//! - [`RegistryPort`]: devices, hashed credentials and tokens, per-device ingest status, consumer positions,
//!   and the [`audit`] log, each entry committed in the transaction of the change it records;
//!   the secrets it must read back (LoRaWAN keys, remote broker passwords) [`sealed`](SecretKey) at rest;
//! - [`series`]: the time-series port (`SeriesWriter`/`SeriesReader`) and its embedded engine;
//! - [`query`]: bucketed aggregates computed against any `SeriesReader`, priced and bounded before they read;
//! - [`kpi`]: a building's consumption KPIs (per m², a year earlier, CO2e) on top of `query`;
//! - [`refusals`]: what the edges refused, aggregated per device and kept out of the journal;
//! - [`health`]: the supervised components' states and the intake gate every edge asks before accepting;
//! - [`logins`]: the password gate every device login passes (MQTT and HTTP push), bounded and backing off;
//! - [`intake`]: an authenticated device's uplink into the journal — the one append MQTT and HTTP push share.
//!
//! Data flows: edge → `Journal::append` → ingest consumer → `SeriesWriter::write` + `RegistryPort::commit_ingest`.
mod aggregate;
pub mod audit;
mod error;
pub mod health;
pub mod intake;
pub mod journal;
pub mod kpi;
pub mod logins;
pub mod query;
pub mod refusals;
mod registry;
mod sealed;
mod secret;
pub mod series;

pub use audit::{AuditEntry, AuditFilter};
pub use bydata_schemas::{OrgId, Role};
pub use error::{Error, Result};
pub use registry::MAX_STATE_FIELDS;
pub use registry::{
    ALERT_HISTORY_MAX, AlertCommit, PendingNotification, StatusChanges, StatusCursor, StoredAlert,
    StoredAlertRule, StoredSilence,
};
pub use registry::{
    Advanced, Building, CodecAdded, CodecSummary, CounterAdvance, DEVICE_KEY_PREFIX, DecodeRun,
    Device, DeviceKey, DeviceStatus, ExternalDevice, Gateway, GatewayStatus, Integration,
    IntegrationMode, LastError, LorawanSession, Member, MqttCredentials, NewToken, OrgContents,
    Organisation, OtaaDevice, PasswordCheck, RedbRegistry, RegistryPort, Restriction, Session,
    SessionForAddr, SharedRegistry, StoredCodec, StoredDataset, TextState, TokenInfo,
};
pub use registry::{
    Attempt, Channel, ChannelId, ChannelKind, ChannelTarget, Delivery, DeliveryState,
    DeliveryStatus, Notification, NotificationKind, Outbox, Stored, WebhookSecrets,
};
pub use registry::{DOWNLINK_HISTORY, MAX_OPEN_DOWNLINKS};
// --- forward (data targets) ---
pub use registry::{
    DeadLetter, DeliveryKind, DeliveryOutcome, HttpAuth, Target, TargetCommit, TargetDelivery,
    TargetFilter, TargetKind, TargetSecrets, TargetState, TargetStatus,
};
// --- energy imports ---
pub use registry::EnergyCursor;
pub use sealed::SecretKey;
pub use secret::{decoy_password_hash, verify_password};
pub use series::influx::{InfluxConfig, InfluxStore};
pub use series::{
    EmbeddedEngine, EngineConfig, Scope, SeriesFilter, SeriesInfo, SeriesPoints, SeriesReader,
    SeriesWriter, VerifyReport,
};
