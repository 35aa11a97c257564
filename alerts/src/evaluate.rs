//! One evaluation pass: every enabled rule over the objects it selects, each through the state machine,
//! giving what to commit (alerts, history, notifications) in one registry transaction.
//!
//! Cheap for many devices: an object whose condition does not hold and that has no alert costs a few
//! comparisons and no allocation; values are read from the store only for level rules, and only for devices
//! whose status moved since the value was read.
//!
//! The pass itself is here; what the condition says about an object is in `observe`, how an alert moves and
//! what that records in `judge`, and the shapes a pass writes (history, stored alerts, notifications) in
//! `record`.
mod judge;
mod observe;
mod record;

use crate::alert::{Alert, State, alert_id};
use crate::index::Index;
use crate::rule::{Check, Rule};
use crate::silence::{Subject, Window};
use crate::sink::Notification;
use bydata_schemas::{DeviceId, MeasurementName, UnixNanos};
use bydata_store::{AlertCommit, SeriesFilter, SeriesReader};
use observe::{Cached, LatestCache, Observation, observe_device, observe_gateway};
use std::collections::{BTreeMap, HashMap, HashSet};

pub use record::{alert_json, parse_alert};
/// The evaluator's memory: objects, rules, silences, current alerts and latest values.
#[derive(Debug, Default)]
pub struct Evaluator {
    pub index: Index,
    pub rules: Vec<Rule>,
    pub silences: Vec<Window>,
    pub alerts: HashMap<String, Alert>,
    pub(crate) latest: LatestCache,
    /// The devices each rule has an alert about (any state): the others need no lookup by alert id.
    device_alerts: HashMap<String, HashSet<DeviceId>>,
}

/// A pass's result: what to commit, then hand to the notifier.
#[derive(Debug, Default)]
pub struct PassOutput {
    pub commit: AlertCommit,
    pub notifications: Vec<Notification>,
}

impl Evaluator {
    /// The longest refusal window of any rule (how long refusal samples are kept).
    pub fn longest_window(&self) -> i64 {
        self.rules
            .iter()
            .filter_map(|r| match r.check {
                Check::Refusals { window, .. } => Some(window),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Reads the latest values level rules need, for devices whose status moved since they were read.
    pub async fn read_levels(&mut self, reader: &dyn SeriesReader) -> bydata_store::Result<()> {
        let mut wanted: HashSet<(MeasurementName, MeasurementName)> = HashSet::new();
        for rule in self.rules.iter().filter(|r| r.enabled) {
            if let Check::Level {
                measurement, field, ..
            } = &rule.check
            {
                wanted.insert((measurement.clone(), field.clone()));
            }
        }
        self.latest.retain(|k, _| wanted.contains(k));
        for rule in self.rules.iter().filter(|r| r.enabled) {
            let Check::Level {
                measurement, field, ..
            } = &rule.check
            else {
                continue;
            };
            let cache = self
                .latest
                .entry((measurement.clone(), field.clone()))
                .or_default();
            for d in self
                .index
                .devices
                .iter()
                .filter(|d| d.org == rule.org && rule.select.device(&d.id, &d.tags))
            {
                if cache.get(&d.id).is_some_and(|c| c.seen == d.last_seen) {
                    continue;
                }
                let filter = SeriesFilter {
                    scope: None,
                    measurement: Some(measurement.clone()),
                    field: Some(field.clone()),
                    tags: BTreeMap::from([("device".to_owned(), d.id.to_string())]),
                };
                let mut value: Option<(UnixNanos, f64)> = None;
                for s in reader.series(&filter).await? {
                    if let Some(v) = reader.last_before(&s.key, i64::MAX).await?
                        && value.is_none_or(|(t, _)| v.0 > t)
                    {
                        value = Some(v);
                    }
                }
                cache.insert(
                    d.id.clone(),
                    Cached {
                        seen: d.last_seen,
                        value,
                    },
                );
            }
        }
        Ok(())
    }

    /// Evaluates every enabled rule at `now`.
    pub fn pass(&mut self, now: UnixNanos) -> PassOutput {
        let mut out = PassOutput::default();
        let rules = std::mem::take(&mut self.rules);
        let index = std::mem::take(&mut self.index);
        let latest = std::mem::take(&mut self.latest);
        let mut visited: HashSet<String> = HashSet::new();
        for rule in rules.iter().filter(|r| r.enabled) {
            match &rule.check {
                Check::Silence(_) if rule.select.wants_gateways() => {
                    for g in index.gateways.values() {
                        if g.org != rule.org || !rule.select.gateway(&g.eui) {
                            continue;
                        }
                        let obs = observe_gateway(rule, g, now);
                        let object = format!("gateway:{}", g.eui);
                        self.judge(rule, &object, obs, Subject::Gateway(&g.eui), now, &mut out);
                        visited.insert(alert_id(&rule.id, &object));
                    }
                }
                _ => {
                    for d in &index.devices {
                        if d.org != rule.org || !rule.select.device(&d.id, &d.tags) {
                            continue;
                        }
                        let has = self
                            .device_alerts
                            .get(&rule.id)
                            .is_some_and(|s| s.contains(&d.id));
                        let obs = observe_device(&index, &latest, rule, d, now, has);
                        // The common case, kept cheap: nothing wrong, and no alert to move.
                        if !has && obs.as_ref().is_none_or(|o| !o.holds) {
                            continue;
                        }
                        let object = format!("device:{}", d.id);
                        self.judge(
                            rule,
                            &object,
                            obs,
                            Subject::Device(&d.id, &d.tags),
                            now,
                            &mut out,
                        );
                        visited.insert(alert_id(&rule.id, &object));
                    }
                }
            }
        }
        // Alerts of objects no longer selected (deleted, retagged) or of disabled rules: the condition no
        // longer holds for them.
        let orphans: Vec<String> = self
            .alerts
            .iter()
            .filter(|(id, a)| a.phase.state != State::Resolved && !visited.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in orphans {
            let Some(alert) = self.alerts.get(&id) else {
                continue;
            };
            let Some(rule) = rules.iter().find(|r| r.id == alert.rule) else {
                continue;
            };
            let (object, summary) = (
                alert.object.clone(),
                "no longer watched by this rule".to_owned(),
            );
            let gone = Observation {
                holds: false,
                value: None,
                summary,
                group: alert.group.clone(),
            };
            let tags = BTreeMap::new();
            let device = object
                .strip_prefix("device:")
                .and_then(|d| DeviceId::new(d).ok());
            let subject = match &device {
                Some(d) => Subject::Device(d, &tags),
                None => match object
                    .strip_prefix("gateway:")
                    .and_then(|g| bydata_schemas::Eui64::new(g).ok())
                {
                    Some(eui) => {
                        self.judge(
                            rule,
                            &object,
                            Some(gone),
                            Subject::Gateway(&eui),
                            now,
                            &mut out,
                        );
                        continue;
                    }
                    None => continue,
                },
            };
            self.judge(rule, &object, Some(gone), subject, now, &mut out);
        }
        self.index = index;
        self.latest = latest;
        self.release_silenced(&rules, now, &mut out);
        self.rules = rules;
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rule::{RuleBody, compile};
    use bydata_schemas::{Eui64, OrgId, Reception};
    use bydata_store::{Device, DeviceStatus, Gateway, StatusChanges};
    use serde_json::json;

    const S: i64 = 1_000_000_000;

    fn device(id: &str) -> Device {
        Device {
            id: DeviceId::new(id).unwrap(),
            name: id.into(),
            transport: bydata_schemas::Transport::Mqtt,
            domain: bydata_schemas::Domain::new("building").unwrap(),
            location: None,
            tags: BTreeMap::new(),
            codec: Default::default(),
            created_at: 0,
            org: OrgId::default(),
        }
    }

    fn evaluator(rule: serde_json::Value, devices: &[&str], seen: i64) -> Evaluator {
        let mut ev = Evaluator::default();
        let ds: Vec<Device> = devices.iter().map(|d| device(d)).collect();
        ev.index.set_devices(&ds, 0);
        let statuses = ds
            .iter()
            .map(|d| {
                let status = DeviceStatus {
                    last_seen: Some(seen),
                    received: 1,
                    last_radio: vec![Reception {
                        gateway: "0016c001ff10a235".into(),
                        rssi: Some(-80.0),
                        snr: None,
                    }],
                    ..DeviceStatus::default()
                };
                (d.id.clone(), status)
            })
            .collect();
        ev.index.apply(
            &StatusChanges {
                full: true,
                statuses,
                ..StatusChanges::default()
            },
            0,
            0,
        );
        let body: RuleBody = serde_json::from_value(rule).unwrap();
        ev.rules
            .push(compile("r1", OrgId::default(), &body).unwrap());
        ev
    }

    fn quiet() -> serde_json::Value {
        json!({"name": "quiet", "condition": {"kind": "silence", "every": "60s"},
               "select": {"all": "devices"}, "channels": ["ops", "mail"]})
    }

    #[test]
    fn one_alert_per_rule_and_object_however_many_passes() {
        let mut ev = evaluator(quiet(), &["a", "b"], 0);
        assert!(ev.pass(30 * S).notifications.is_empty());
        let mut keys = Vec::new();
        for i in 0..10 {
            keys.extend(
                ev.pass((61 + i) * S)
                    .notifications
                    .into_iter()
                    .map(|n| (n.channel, n.key)),
            );
        }
        assert_eq!(ev.alerts.len(), 2);
        keys.sort();
        assert_eq!(
            keys,
            [
                (
                    "mail".to_owned(),
                    "alert:r1:device:a:1:firing@mail".to_owned()
                ),
                (
                    "mail".to_owned(),
                    "alert:r1:device:b:1:firing@mail".to_owned()
                ),
                (
                    "ops".to_owned(),
                    "alert:r1:device:a:1:firing@ops".to_owned()
                ),
                (
                    "ops".to_owned(),
                    "alert:r1:device:b:1:firing@ops".to_owned()
                ),
            ]
        );
        let a = &ev.alerts["r1:device:a"];
        assert_eq!(a.group, "rule:r1", "its gateway is not registered here");
    }

    #[test]
    fn a_silence_holds_notifications_back_until_it_ends() {
        let mut ev = evaluator(quiet(), &["a"], 0);
        let body: crate::SilenceBody =
            serde_json::from_value(json!({"devices": ["a"], "duration": "100s"})).unwrap();
        ev.silences
            .push(crate::silence::compile("s1", OrgId::default(), &body, 0).unwrap());
        let out = ev.pass(61 * S);
        assert!(out.notifications.is_empty(), "silenced");
        assert_eq!(
            ev.alerts["r1:device:a"].phase.state,
            State::Firing,
            "still visible"
        );
        assert!(ev.alerts["r1:device:a"].silenced);
        assert!(ev.pass(90 * S).notifications.is_empty());
        let out = ev.pass(101 * S);
        assert_eq!(out.notifications.len(), 2, "told once the silence is over");
        assert!(
            out.notifications[0]
                .key
                .starts_with("alert:r1:device:a:1:firing@")
        );
        assert!(ev.pass(102 * S).notifications.is_empty());
    }

    #[test]
    fn devices_silent_with_their_gateway_are_grouped_by_the_gateway() {
        let mut ev = evaluator(quiet(), &["a", "b"], 10 * S);
        let eui = Eui64::new("0016c001ff10a235").unwrap();
        ev.index.set_gateways(&[Gateway {
            eui,
            name: "roof".into(),
            location: None,
            created_at: 0,
            org: OrgId::default(),
        }]);
        let heard = |t| {
            vec![(
                eui,
                bydata_store::GatewayStatus {
                    last_seen: Some(t),
                    ..Default::default()
                },
            )]
        };
        // The gateway was heard after the devices were due: they are silent on their own.
        ev.index.set_gateway_statuses(&heard(75 * S));
        let out = ev.pass(80 * S);
        assert!(
            out.notifications
                .iter()
                .all(|n| n.group.as_deref() == Some("rule:r1"))
        );
        // A second rule's view, with the gateway last heard before they were due: grouped by the gateway.
        let mut ev = evaluator(quiet(), &["a", "b"], 10 * S);
        ev.index.set_gateways(&[Gateway {
            eui,
            name: "roof".into(),
            location: None,
            created_at: 0,
            org: OrgId::default(),
        }]);
        ev.index.set_gateway_statuses(&heard(12 * S));
        let out = ev.pass(80 * S);
        assert_eq!(out.notifications.len(), 4);
        assert!(
            out.notifications
                .iter()
                .all(|n| n.group.as_deref() == Some("gateway:0016c001ff10a235"))
        );
    }
}
