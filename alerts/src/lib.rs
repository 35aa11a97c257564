//! Alerts: rules on devices and gateways (silent too long, a value above or below a level for a while,
//! messages refused, a low battery), the alerts they raise — one per rule and object, pending → firing →
//! resolved, with history — silences, and the notifications handed to the notifier.
//!
//! Data flow: the API stores rules and silences in the registry (validated by [`rule::compile`] and
//! [`silence::compile`]). The server runs [`run`]: each pass reads only what changed (the device list when
//! the registry's change counter moves, device statuses changed since its cursor, latest values of level
//! rules for devices that sent since), runs every rule through the state machine ([`alert::step`]), commits
//! the pass — alerts, history, notifications — in one registry transaction, then hands the notifications
//! to an [`AlertSink`] (the notifier) and forgets them from the outbox. A restart hands on again what was
//! committed but not handed on; the notifier drops keys it has, so nothing is lost or sent twice.
pub mod alert;
pub mod duration;
mod engine;
mod error;
pub mod evaluate;
pub mod index;
mod metrics;
pub mod rule;
pub mod silence;
mod sink;

pub use alert::{Alert, State};
pub use engine::{Deps, Engine, Settings, run};
pub use error::{Error, Result};
pub use evaluate::{alert_json, parse_alert};
pub use metrics::Metrics;
pub use rule::{Kind, RuleBody};
pub use silence::SilenceBody;
pub use sink::{AlertSink, Notification, NotificationKind, SinkError};
