//! Domain types shared by every bydata crate: validated identifiers, units, measurements, series keys and the
//! raw-journal entry. Pure data and validation only — no I/O, no clock, no globals.
//!
//! Data flows through these types as: edge (`JournalEntry`) → decoder (`Reading`) → store (`Point` under a
//! `SeriesKey`). Every newtype enforces its invariant in its constructor and (de)serialises as a string.

mod device;
mod downlink;
mod error;
mod eui;
mod ingest;
mod integration;
mod journal;
pub mod line_protocol;
pub mod listen;
pub mod lorawan;
pub mod opendata;
mod org;
mod series;
mod slug;
mod target;
mod time;
mod unit;

pub use device::{
    BuildingId, Codec, CodecName, DeviceId, Domain, Location, ScriptRef, TagKey, Transport,
};
pub use downlink::{Downlink, DownlinkState, DownlinkUpdate, NewDownlink};
pub use error::{Error, Result};
pub use eui::Eui64;
pub use ingest::{CodecTrial, RedecodeReport, TrialReading};
pub use integration::{IntegrationId, NetworkServer};
pub use journal::{EdgeRejection, JournalEntry, Reception, RejectReason, Source, Uplink};
pub use org::{OrgId, Role};
pub use series::{MeasurementName, Point, Reading, SeriesKey};
pub use slug::slugify;
pub use target::TargetId;
pub use time::{UnixNanos, format_rfc3339, parse_rfc3339};
pub use unit::Unit;
