//! A listener address in the config that can be turned off: `"127.0.0.1:1883"`, or `"off"` (`None`).
//! Use as `#[serde(with = "bydata_schemas::listen")]` on an `Option<SocketAddr>`.
use serde::{Deserialize, Deserializer, Serializer};
use std::net::SocketAddr;

/// The word that turns a listener off.
pub const OFF: &str = "off";

pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match addr {
        Some(addr) => s.collect_str(addr),
        None => s.serialize_str(OFF),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `"off"` or an address.
pub fn parse(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.trim() == OFF {
        return Ok(None);
    }
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is neither an address like \"127.0.0.1:1883\" nor \"off\""))
}

/// How a listener address reads in the config and at start: the address, or `off`.
pub fn display(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| OFF.to_owned(), |a| a.to_string())
}
