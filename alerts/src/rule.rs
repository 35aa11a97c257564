//! Alert rules as people write them (`POST /api/v1/alert-rules`; the same types are the OpenAPI schema), and
//! compiled once into what the evaluator checks ([`Rule`]): durations in nanoseconds, ids parsed, sets built.
use crate::duration::parse_duration;
use crate::error::{Error, Result};
use bydata_schemas::{DeviceId, Eui64, MeasurementName, OrgId, TagKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An alert rule: what to watch, on which objects, for how long, and whom to tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// A name people recognise, e.g. `quiet sensors`.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub condition: Condition,
    pub select: Selector,
    /// How long the condition must hold before the alert fires, and be gone before a firing alert resolves
    /// (`0s`, `90s`, `5m`, `1h`), so a value flapping around its threshold does not flap the alert.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]+(ms|s|m|h|d)$")]
    pub hold: Option<String>,
    /// The notification channels (their ids, the organisation's) told when an alert fires and resolves.
    #[serde(default)]
    pub channels: Vec<String>,
    /// A disabled rule is not evaluated (its alerts stay as they were).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The organisation it belongs to; needed only by someone who may create in several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub org: Option<OrgId>,
}

fn yes() -> bool {
    true
}

/// What makes an alert, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// A device or gateway not heard for longer than its expected interval: the first of `intervals` that
    /// names it (device, then tag, then codec), else the interval learned from its recent uplinks (`learn`),
    /// else `every`. Objects with none of these are not judged.
    Silence {
        /// The expected interval of every selected object (`30s`, `15m`, `1h`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<String>,
        /// Expected intervals by device, tag (`type=climate`) or codec (`cayenne`, `js:elsys`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        intervals: Vec<Expected>,
        /// Learn each device's interval from its recent uplinks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        learn: Option<Learn>,
    },
    /// A measurement's latest value above or below a level.
    Threshold {
        measurement: String,
        /// The field (default `value`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<f64>,
    },
    /// More than `above` messages refused or undecodable within `window` (from the device's status).
    Refusals {
        window: String,
        #[serde(default)]
        above: u64,
    },
    /// A battery level the codec reports, below `below`.
    Battery {
        /// The measurement that carries it (default `battery`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        measurement: Option<String>,
        below: f64,
    },
}

// The condition's fields are checked by `compile`, not by patterns in the schema: inside a `oneOf` the
// schema check could only say that no kind matched, not which field is wrong.

/// An expected interval for one device, the devices with one tag value, or those of one codec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `key=value`, e.g. `type=climate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `cayenne`, `json`, `senml`, `js:NAME` (any version) or `js:NAME@V`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    pub every: String,
}

/// How a device's interval is learned: `factor` × the median gap of its last `uplinks` uplinks, at least
/// `floor`. Until it has three gaps (or a codec run to seed from, see the README), `every` applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Learn {
    #[serde(default = "default_uplinks")]
    #[schema(minimum = 3, maximum = 100)]
    pub uplinks: usize,
    #[serde(default = "default_factor")]
    #[schema(minimum = 1.0, maximum = 100.0)]
    pub factor: f64,
    #[serde(default = "default_floor")]
    pub floor: String,
}

fn default_uplinks() -> usize {
    16
}
fn default_factor() -> f64 {
    3.0
}
fn default_floor() -> String {
    "1m".into()
}

/// Which objects a rule watches: named devices, devices with all of `tags`, named gateways, or all of the
/// organisation's devices or gateways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// `devices` or `gateways`: every one of the organisation's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Devices,
    Gateways,
}

/// A rule's kind, for metrics and lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Silence,
    Threshold,
    Refusals,
    Battery,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Silence,
        Kind::Threshold,
        Kind::Refusals,
        Kind::Battery,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Silence => "silence",
            Kind::Threshold => "threshold",
            Kind::Refusals => "refusals",
            Kind::Battery => "battery",
        }
    }
}

/// A rule as the evaluator checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub org: OrgId,
    pub name: String,
    pub check: Check,
    pub select: Select,
    pub hold: i64,
    pub channels: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Silence(Silence),
    /// Threshold and battery rules: the latest value of a series against a level.
    Level {
        kind: Kind,
        measurement: MeasurementName,
        field: MeasurementName,
        above: Option<f64>,
        below: Option<f64>,
    },
    Refusals {
        window: i64,
        above: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Silence {
    pub every: Option<i64>,
    pub by_device: HashMap<DeviceId, i64>,
    pub by_tag: Vec<(TagKey, String, i64)>,
    pub by_codec: Vec<(String, i64)>,
    pub learn: Option<Learning>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learning {
    pub uplinks: usize,
    pub factor: f64,
    pub floor: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    pub devices: HashSet<DeviceId>,
    pub tags: Vec<(TagKey, String)>,
    pub gateways: HashSet<Eui64>,
    pub all: Option<Target>,
}

impl Select {
    pub fn wants_devices(&self) -> bool {
        self.all == Some(Target::Devices) || !self.devices.is_empty() || !self.tags.is_empty()
    }
    pub fn wants_gateways(&self) -> bool {
        self.all == Some(Target::Gateways) || !self.gateways.is_empty()
    }
    /// Whether a device (its id and tags) is selected.
    pub fn device(&self, id: &DeviceId, tags: &BTreeMap<TagKey, String>) -> bool {
        self.all == Some(Target::Devices)
            || self.devices.contains(id)
            || (!self.tags.is_empty()
                && self
                    .tags
                    .iter()
                    .all(|(k, v)| tags.get(k).is_some_and(|t| t == v)))
    }
    pub fn gateway(&self, eui: &Eui64) -> bool {
        self.all == Some(Target::Gateways) || self.gateways.contains(eui)
    }
}

impl Rule {
    pub fn kind(&self) -> Kind {
        match &self.check {
            Check::Silence(_) => Kind::Silence,
            Check::Level { kind, .. } => *kind,
            Check::Refusals { .. } => Kind::Refusals,
        }
    }

    /// Compiles a stored rule; its body was checked when it was stored, so an error here means the stored
    /// JSON no longer reads (it is then skipped and logged by the caller).
    pub fn from_stored(stored: &bydata_store::StoredAlertRule) -> Result<Rule> {
        let body: RuleBody =
            serde_json::from_value(stored.rule.clone()).map_err(|e| Error::Invalid {
                field: String::new(),
                message: format!("stored rule {} is unreadable: {e}", stored.id),
            })?;
        compile(&stored.id, stored.org.clone(), &body)
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn duration(field: &str, text: &str) -> Result<i64> {
    parse_duration(text).ok_or_else(|| {
        invalid(
            field,
            format!("{text:?} is not a duration: write a whole number and a unit, like 30s, 15m, 2h or 1d"),
        )
    })
}

/// Checks a rule body and compiles it; every error names the field to fix.
pub fn compile(id: &str, org: OrgId, body: &RuleBody) -> Result<Rule> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "give the rule a name of 1 to 200 characters, without control characters",
        ));
    }
    let hold = match &body.hold {
        Some(t) => duration("for", t)?,
        None => 0,
    };
    let select = select(&body.select)?;
    let check = match &body.condition {
        Condition::Silence {
            every,
            intervals,
            learn,
        } => {
            let mut s = Silence {
                every: every
                    .as_deref()
                    .map(|t| duration("condition.every", t))
                    .transpose()?,
                ..Silence::default()
            };
            for (i, e) in intervals.iter().enumerate() {
                let field = format!("condition.intervals[{i}]");
                let every = duration(&format!("{field}.every"), &e.every)?;
                match (&e.device, &e.tag, &e.codec) {
                    (Some(d), None, None) => {
                        let id = DeviceId::new(d)
                            .map_err(|e| invalid(&format!("{field}.device"), e.to_string()))?;
                        s.by_device.insert(id, every);
                    }
                    (None, Some(t), None) => {
                        let (k, v) = t
                            .split_once('=')
                            .filter(|(k, _)| !k.is_empty())
                            .ok_or_else(|| {
                                invalid(
                                    &format!("{field}.tag"),
                                    format!("{t:?} is not key=value, e.g. type=climate"),
                                )
                            })?;
                        let key = TagKey::new(k)
                            .map_err(|e| invalid(&format!("{field}.tag"), e.to_string()))?;
                        s.by_tag.push((key, v.to_owned(), every));
                    }
                    (None, None, Some(c)) if !c.is_empty() => s.by_codec.push((c.clone(), every)),
                    _ => {
                        return Err(invalid(
                            &field,
                            "name exactly one of device, tag or codec beside every",
                        ));
                    }
                }
            }
            if let Some(l) = learn {
                if !(3..=100).contains(&l.uplinks) {
                    return Err(invalid(
                        "condition.learn.uplinks",
                        "learn from 3 to 100 uplinks",
                    ));
                }
                if !(1.0..=100.0).contains(&l.factor) {
                    return Err(invalid(
                        "condition.learn.factor",
                        "the factor is 1 to 100 (3 is usual)",
                    ));
                }
                s.learn = Some(Learning {
                    uplinks: l.uplinks,
                    factor: l.factor,
                    floor: duration("condition.learn.floor", &l.floor)?,
                });
            }
            if s.every.is_none()
                && s.by_device.is_empty()
                && s.by_tag.is_empty()
                && s.by_codec.is_empty()
                && s.learn.is_none()
            {
                return Err(invalid(
                    "condition",
                    "say how often the objects are expected: every, intervals, or learn",
                ));
            }
            if select.wants_gateways() && s.every.is_none() {
                return Err(invalid(
                    "condition.every",
                    "gateways need an expected interval in every (they are not learned)",
                ));
            }
            Check::Silence(s)
        }
        Condition::Threshold {
            measurement,
            field,
            above,
            below,
        } => {
            if above.is_none() == below.is_none() {
                return Err(invalid("condition", "give exactly one of above or below"));
            }
            if above.or(*below).is_some_and(|v| !v.is_finite()) {
                return Err(invalid("condition", "the level must be a finite number"));
            }
            Check::Level {
                kind: Kind::Threshold,
                measurement: measurement_name("condition.measurement", measurement)?,
                field: measurement_name("condition.field", field.as_deref().unwrap_or("value"))?,
                above: *above,
                below: *below,
            }
        }
        Condition::Battery { measurement, below } => {
            if !below.is_finite() {
                return Err(invalid(
                    "condition.below",
                    "the level must be a finite number",
                ));
            }
            Check::Level {
                kind: Kind::Battery,
                measurement: measurement_name(
                    "condition.measurement",
                    measurement.as_deref().unwrap_or("battery"),
                )?,
                field: measurement_name("condition.field", "value")?,
                above: None,
                below: Some(*below),
            }
        }
        Condition::Refusals { window, above } => Check::Refusals {
            window: duration("condition.window", window)?,
            above: *above,
        },
    };
    if select.wants_gateways() && !matches!(check, Check::Silence(_)) {
        return Err(invalid(
            "select",
            "only silence rules watch gateways; select devices for this kind",
        ));
    }
    let mut channels = Vec::new();
    for (i, c) in body.channels.iter().enumerate() {
        if c.is_empty()
            || c.len() > 64
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
        {
            return Err(invalid(
                &format!("channels[{i}]"),
                format!("{c:?} is not a channel id"),
            ));
        }
        if !channels.contains(c) {
            channels.push(c.clone());
        }
    }
    Ok(Rule {
        id: id.to_owned(),
        org,
        name: name.to_owned(),
        check,
        select,
        hold,
        channels,
        enabled: body.enabled,
    })
}

fn measurement_name(field: &str, text: &str) -> Result<MeasurementName> {
    MeasurementName::new(text).map_err(|e| invalid(field, e.to_string()))
}

fn select(s: &Selector) -> Result<Select> {
    let mut out = Select {
        all: s.all,
        ..Select::default()
    };
    for (k, v) in &s.tags {
        let key =
            TagKey::new(k).map_err(|e| invalid(&format!("select.tags.{k}"), e.to_string()))?;
        out.tags.push((key, v.clone()));
    }
    for (i, d) in s.devices.iter().enumerate() {
        out.devices.insert(
            DeviceId::new(d)
                .map_err(|e| invalid(&format!("select.devices[{i}]"), e.to_string()))?,
        );
    }
    for (i, g) in s.gateways.iter().enumerate() {
        out.gateways.insert(
            Eui64::new(g).map_err(|e| invalid(&format!("select.gateways[{i}]"), e.to_string()))?,
        );
    }
    if !out.wants_devices() && !out.wants_gateways() {
        return Err(invalid(
            "select",
            "select what to watch: devices, tags, gateways, or all (\"devices\" or \"gateways\")",
        ));
    }
    if out.wants_devices() && out.wants_gateways() {
        return Err(invalid(
            "select",
            "a rule watches devices or gateways, not both: make two rules",
        ));
    }
    Ok(out)
}

/// A new rule id: `r` and 10 hex digits.
pub fn new_id() -> String {
    format!("r{}", hex::encode(rand::random::<[u8; 5]>()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> RuleBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rules_compile_and_errors_name_the_field() {
        let ok = body(
            json!({"name": "quiet", "condition": {"kind": "silence", "every": "2s",
            "intervals": [{"tag": "type=climate", "every": "10m"}], "learn": {}},
            "select": {"all": "devices"}, "for": "0s", "channels": ["ops"]}),
        );
        let r = compile("r1", OrgId::default(), &ok).unwrap();
        assert_eq!(r.kind(), Kind::Silence);
        let Check::Silence(s) = &r.check else {
            panic!()
        };
        assert_eq!(s.every, Some(2_000_000_000));
        assert_eq!(s.learn.unwrap().uplinks, 16);
        let cases = [
            (
                json!({"name": "x", "condition": {"kind": "silence"}, "select": {"all": "devices"}}),
                "condition",
            ),
            (
                json!({"name": "x", "condition": {"kind": "silence", "every": "5 minutes"}, "select": {"all": "devices"}}),
                "condition.every",
            ),
            (
                json!({"name": "x", "condition": {"kind": "threshold", "measurement": "temperature"}, "select": {"all": "devices"}}),
                "condition",
            ),
            (
                json!({"name": "x", "condition": {"kind": "battery", "below": 10}, "select": {}}),
                "select",
            ),
            (
                json!({"name": "x", "condition": {"kind": "battery", "below": 10}, "select": {"all": "gateways"}}),
                "select",
            ),
            (
                json!({"name": "x", "condition": {"kind": "silence", "learn": {}}, "select": {"gateways": ["0016c001ff10a235"]}}),
                "condition.every",
            ),
            (
                json!({"name": " ", "condition": {"kind": "refusals", "window": "1m"}, "select": {"all": "devices"}}),
                "name",
            ),
            (
                json!({"name": "x", "condition": {"kind": "refusals", "window": "1m"}, "select": {"devices": ["a/b"]}}),
                "select.devices[0]",
            ),
        ];
        for (v, field) in cases {
            match compile("r", OrgId::default(), &body(v.clone())) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{v}"),
                other => panic!("{v}: {other:?}"),
            }
        }
    }
}
