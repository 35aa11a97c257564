//! Data targets: where an organisation's decoded readings are forwarded (an HTTP endpoint, an outside MQTT
//! broker).
use crate::device::{check_slug, string_newtype};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A data target's id: a slug like a device id (`city-webhook`, `ops.broker`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetId(String);
string_newtype!(TargetId, "target id", check_slug);
