//! Silences (maintenance windows): while one is active for an alert, its notifications are held back; the
//! alert itself still changes state and shows in the API. A silence names a rule, devices, tags or gateways
//! (all that it names must match; naming nothing silences every alert of the organisation).
use crate::duration::parse_duration;
use crate::error::{Error, Result};
use bydata_schemas::{DeviceId, Eui64, OrgId, TagKey, UnixNanos, parse_rfc3339};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// Only this rule's alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Devices with all of these tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// RFC 3339; default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// RFC 3339. Give this or `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// From the start, e.g. `2h`. Give this or `ends_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]+(ms|s|m|h|d)$")]
    pub duration: Option<String>,
    /// Why (shown beside the alerts it holds back).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub comment: String,
    /// The organisation it belongs to; needed only by someone who may create in several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub org: Option<OrgId>,
}

/// A silence as the evaluator checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub id: String,
    pub org: OrgId,
    pub rule: Option<String>,
    pub devices: HashSet<DeviceId>,
    pub tags: Vec<(TagKey, String)>,
    pub gateways: HashSet<Eui64>,
    pub starts_at: UnixNanos,
    pub ends_at: UnixNanos,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Device(&'a DeviceId, &'a BTreeMap<TagKey, String>),
    Gateway(&'a Eui64),
}

impl Window {
    pub fn active(&self, now: UnixNanos) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether this silence holds back the notifications of `rule`'s alert about `subject` at `now`.
    pub fn covers(&self, org: &OrgId, rule: &str, subject: Subject<'_>, now: UnixNanos) -> bool {
        if !self.active(now) || &self.org != org || self.rule.as_deref().is_some_and(|r| r != rule)
        {
            return false;
        }
        match subject {
            Subject::Device(id, tags) => {
                self.gateways.is_empty()
                    && (self.devices.is_empty() || self.devices.contains(id))
                    && self
                        .tags
                        .iter()
                        .all(|(k, v)| tags.get(k).is_some_and(|t| t == v))
            }
            Subject::Gateway(eui) => {
                self.devices.is_empty()
                    && self.tags.is_empty()
                    && (self.gateways.is_empty() || self.gateways.contains(eui))
            }
        }
    }

    pub fn from_stored(s: &bydata_store::StoredSilence) -> Result<Window> {
        let body: SilenceBody =
            serde_json::from_value(s.silence.clone()).map_err(|e| Error::Invalid {
                field: String::new(),
                message: format!("stored silence {} is unreadable: {e}", s.id),
            })?;
        compile(&s.id, s.org.clone(), &body, s.created_at)
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Checks a silence and compiles it (`now`: when it was created, the default start).
pub fn compile(id: &str, org: OrgId, body: &SilenceBody, now: UnixNanos) -> Result<Window> {
    let time = |field: &str, t: &str| {
        parse_rfc3339(t).map_err(|_| {
            invalid(
                field,
                format!("{t:?} is not an RFC 3339 time like 2026-12-24T08:00:00Z"),
            )
        })
    };
    let starts_at = match &body.starts_at {
        Some(t) => time("starts_at", t)?,
        None => now,
    };
    let ends_at = match (&body.ends_at, &body.duration) {
        (Some(t), None) => time("ends_at", t)?,
        (None, Some(d)) => starts_at.saturating_add(parse_duration(d).ok_or_else(|| {
            invalid(
                "duration",
                format!("{d:?} is not a duration like 30m, 2h or 1d"),
            )
        })?),
        _ => {
            return Err(invalid(
                "ends_at",
                "give exactly one of ends_at or duration",
            ));
        }
    };
    if ends_at <= starts_at {
        return Err(invalid("ends_at", "the silence must end after it starts"));
    }
    if body.comment.chars().count() > 500 {
        return Err(invalid("comment", "at most 500 characters"));
    }
    let mut w = Window {
        id: id.to_owned(),
        org,
        rule: body.rule.clone(),
        devices: HashSet::new(),
        tags: Vec::new(),
        gateways: HashSet::new(),
        starts_at,
        ends_at,
    };
    for (k, v) in &body.tags {
        let key = TagKey::new(k).map_err(|e| invalid(&format!("tags.{k}"), e.to_string()))?;
        w.tags.push((key, v.clone()));
    }
    for (i, d) in body.devices.iter().enumerate() {
        w.devices.insert(
            DeviceId::new(d).map_err(|e| invalid(&format!("devices[{i}]"), e.to_string()))?,
        );
    }
    for (i, g) in body.gateways.iter().enumerate() {
        w.gateways
            .insert(Eui64::new(g).map_err(|e| invalid(&format!("gateways[{i}]"), e.to_string()))?);
    }
    if !w.gateways.is_empty() && (!w.devices.is_empty() || !w.tags.is_empty()) {
        return Err(invalid(
            "gateways",
            "a silence names gateways or devices and tags, not both: make two",
        ));
    }
    Ok(w)
}

/// A new silence id: `s` and 10 hex digits.
pub fn new_id() -> String {
    format!("s{}", hex::encode(rand::random::<[u8; 5]>()))
}
