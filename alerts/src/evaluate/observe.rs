//! What a rule's condition says about one device or gateway now.
use crate::duration::human;
use crate::index::{DeviceEntry, GatewayEntry, Index};
use crate::rule::{Check, Kind, Rule, Silence};
use bydata_schemas::{DeviceId, MeasurementName, UnixNanos};
use std::collections::HashMap;

/// What the condition says about one object now.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub(crate) holds: bool,
    pub(crate) value: Option<f64>,
    pub(crate) summary: String,
    pub(crate) group: String,
}

/// A level rule's latest value of a device's series, and the device's last seen time when it was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached {
    pub(crate) seen: Option<UnixNanos>,
    pub(crate) value: Option<(UnixNanos, f64)>,
}

/// Latest values by (measurement, field), then device.
pub(crate) type LatestCache =
    HashMap<(MeasurementName, MeasurementName), HashMap<DeviceId, Cached>>;

pub(super) fn observe_device(
    index: &Index,
    latest: &LatestCache,
    rule: &Rule,
    d: &DeviceEntry,
    now: UnixNanos,
    has_alert: bool,
) -> Option<Observation> {
    let group = || format!("rule:{}", rule.id);
    match &rule.check {
        Check::Silence(s) => {
            let expected = expected_interval(s, d)?;
            let since = d.last_seen.unwrap_or(d.created_at);
            let silent = now.saturating_sub(since);
            let holds = silent > expected;
            if !holds && !has_alert {
                return Some(Observation {
                    holds,
                    value: None,
                    summary: String::new(),
                    group: String::new(),
                });
            }
            let summary = match d.last_seen {
                Some(_) => format!(
                    "{} silent for {} (expected every {})",
                    d.id,
                    human(silent),
                    human(expected)
                ),
                None => format!(
                    "{} never heard in the {} since it was registered (expected every {})",
                    d.id,
                    human(silent),
                    human(expected)
                ),
            };
            // A silent device whose gateway was not heard since the device was due is down with it.
            let group = match d.gateway.and_then(|eui| index.gateways.get(&eui)) {
                Some(g)
                    if holds
                        && g.last_seen
                            .is_none_or(|t| t < since.saturating_add(expected)) =>
                {
                    format!("gateway:{}", g.eui)
                }
                _ => group(),
            };
            Some(Observation {
                holds,
                value: Some((silent / 1_000_000) as f64 / 1000.0),
                summary,
                group,
            })
        }
        Check::Level {
            kind,
            measurement,
            field,
            above,
            below,
        } => {
            let cached = latest
                .get(&(measurement.clone(), field.clone()))
                .and_then(|c| c.get(&d.id))?;
            let (_, v) = cached.value?;
            let (holds, word, level) = match (above, below) {
                (Some(a), _) => (v > *a, "above", *a),
                (None, Some(b)) => (v < *b, "below", *b),
                (None, None) => return None,
            };
            let what = if *kind == Kind::Battery {
                "battery".to_owned()
            } else if field.as_str() == "value" {
                measurement.to_string()
            } else {
                format!("{measurement}.{field}")
            };
            Some(Observation {
                holds,
                value: Some(v),
                summary: if holds {
                    format!("{} {what} {v} {word} {level}", d.id)
                } else {
                    format!("{} {what} {v}", d.id)
                },
                group: group(),
            })
        }
        Check::Refusals { window, above } => {
            let n = d.refusals_within(*window, now);
            Some(Observation {
                holds: n > *above,
                value: Some(n as f64),
                summary: format!(
                    "{}: {n} messages refused or undecodable in the last {}",
                    d.id,
                    human(*window)
                ),
                group: group(),
            })
        }
    }
}

pub(super) fn observe_gateway(
    rule: &Rule,
    g: &GatewayEntry,
    now: UnixNanos,
) -> Option<Observation> {
    let Check::Silence(s) = &rule.check else {
        return None;
    };
    let expected = s.every?;
    let since = g.last_seen.unwrap_or(g.created_at);
    let silent = now.saturating_sub(since);
    Some(Observation {
        holds: silent > expected,
        value: Some((silent / 1_000_000) as f64 / 1000.0),
        summary: format!(
            "gateway {} ({}) silent for {} (expected every {})",
            g.name,
            g.eui,
            human(silent),
            human(expected)
        ),
        group: format!("gateway:{}", g.eui),
    })
}

/// A device's expected interval: by device, tag, codec, then learned, then the rule's `every`.
pub(crate) fn expected_interval(s: &Silence, d: &DeviceEntry) -> Option<i64> {
    if let Some(e) = s.by_device.get(&d.id) {
        return Some(*e);
    }
    if let Some((_, _, e)) = s
        .by_tag
        .iter()
        .find(|(k, v, _)| d.tags.get(k).is_some_and(|t| t == v))
    {
        return Some(*e);
    }
    if let Some((_, e)) = s.by_codec.iter().find(|(c, _)| {
        d.codec == *c
            || d.codec
                .strip_prefix(c.as_str())
                .is_some_and(|rest| rest.starts_with('@'))
    }) {
        return Some(*e);
    }
    s.learn
        .and_then(|l| d.learned_interval(l.uplinks, l.factor, l.floor))
        .or(s.every)
}
