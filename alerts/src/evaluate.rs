//! One evaluation pass: every enabled rule over the objects it selects, each through the state machine,
//! giving what to commit (alerts, history, notifications) in one registry transaction.
//!
//! Cheap for many devices: an object whose condition does not hold and that has no alert costs a few
//! comparisons and no allocation; values are read from the store only for level rules, and only for devices
//! whose status moved since the value was read.
use crate::alert::{Alert, Event, State, alert_id, notification_key, step};
use crate::duration::human;
use crate::index::{DeviceEntry, GatewayEntry, Index};
use crate::rule::{Check, Kind, Rule, Silence};
use crate::silence::{Subject, Window};
use crate::sink::{Notification, NotificationKind};
use bydata_schemas::{DeviceId, MeasurementName, UnixNanos, format_rfc3339};
use bydata_store::{AlertCommit, PendingNotification, SeriesFilter, SeriesReader, StoredAlert};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How often an alert's value and summary are rewritten while its state stays the same.
const VIEW_EVERY: i64 = 60_000_000_000;

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
    seen: Option<UnixNanos>,
    value: Option<(UnixNanos, f64)>,
}

/// Latest values by (measurement, field), then device.
pub(crate) type LatestCache =
    HashMap<(MeasurementName, MeasurementName), HashMap<DeviceId, Cached>>;

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

fn observe_device(
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

impl Evaluator {
    /// Moves one alert and records what that means.
    fn judge(
        &mut self,
        rule: &Rule,
        object: &str,
        obs: Option<Observation>,
        subject: Subject<'_>,
        now: UnixNanos,
        out: &mut PassOutput,
    ) {
        let id = alert_id(&rule.id, object);
        let prev = self.alerts.get(&id);
        let holds = obs.as_ref().is_some_and(|o| o.holds);
        let (next, event) = step(prev.map(|a| a.phase), holds, now, rule.hold);
        let Some(phase) = next else {
            if prev.is_some() {
                self.forget(&id);
                out.commit.removed.push(id.clone());
                if let Some(e) = event {
                    out.commit.history.push((
                        id,
                        history(e, None, "the condition cleared before it fired", false, now),
                    ));
                }
            }
            return;
        };
        let obs = obs.unwrap_or(Observation {
            holds: false,
            value: None,
            summary: format!("{object}: the rule cannot judge it now"),
            group: format!("rule:{}", rule.id),
        });
        let mut alert = match prev {
            Some(a) => a.clone(),
            None => Alert {
                id: id.clone(),
                rule: rule.id.clone(),
                rule_name: rule.name.clone(),
                kind: rule.kind(),
                org: rule.org.clone(),
                object: object.to_owned(),
                phase,
                value: None,
                summary: String::new(),
                group: obs.group.clone(),
                silenced: false,
                notified: false,
                updated_at: now,
            },
        };
        // A new value alone (a silence a second longer) is written at most once a minute per alert, so a
        // thousand firing alerts do not rewrite a thousand rows every pass.
        let seen_anew = (alert.value != obs.value || alert.summary != obs.summary)
            && now.saturating_sub(alert.updated_at) >= VIEW_EVERY;
        if alert.phase == phase && event.is_none() && !seen_anew {
            return;
        }
        alert.phase = phase;
        alert.rule_name = rule.name.clone();
        alert.value = obs.value;
        alert.summary = obs.summary.clone();
        alert.updated_at = now;
        if event == Some(Event::Firing) {
            // A new episode: its group and notifications are decided now.
            alert.group = obs.group.clone();
            alert.silenced = self.silenced(rule, subject, now);
            alert.notified = false;
            if !alert.silenced {
                notify(rule, &alert, Event::Firing, now, out);
                alert.notified = true;
            }
        }
        if event == Some(Event::Resolved) && alert.notified {
            // Whoever was told it fired is told it resolved, silence or not.
            notify(rule, &alert, Event::Resolved, now, out);
        }
        if let Some(e) = event {
            let note = match (e, alert.silenced) {
                (Event::Firing, true) => "notifications held back by a silence",
                (Event::Resolved, _) if !alert.notified => {
                    "resolved; nobody had been told it fired"
                }
                _ => "",
            };
            out.commit.history.push((
                id.clone(),
                history(e, alert.value, &alert.summary, alert.silenced, now),
            ));
            if !note.is_empty()
                && let Some((_, h)) = out.commit.history.last_mut()
            {
                h["note"] = json!(note);
            }
        }
        out.commit.alerts.push(stored(&alert));
        self.remember(alert);
    }

    /// Keeps an alert in memory (and which device it is about).
    pub fn remember(&mut self, alert: Alert) {
        if let Some(d) = alert
            .object
            .strip_prefix("device:")
            .and_then(|d| DeviceId::new(d).ok())
        {
            self.device_alerts
                .entry(alert.rule.clone())
                .or_default()
                .insert(d);
        }
        self.alerts.insert(alert.id.clone(), alert);
    }

    /// Forgets an alert (and, with its rule, every alert of a rule that is gone).
    fn forget(&mut self, id: &str) {
        if let Some(alert) = self.alerts.remove(id)
            && let Some(d) = alert
                .object
                .strip_prefix("device:")
                .and_then(|d| DeviceId::new(d).ok())
            && let Some(set) = self.device_alerts.get_mut(&alert.rule)
        {
            set.remove(&d);
        }
    }

    /// Drops the alerts of rules that no longer exist (the registry deleted them with their rule).
    pub fn retain_rules(&mut self) {
        let ids: HashSet<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        self.alerts.retain(|_, a| ids.contains(a.rule.as_str()));
        self.device_alerts.retain(|r, _| ids.contains(r.as_str()));
    }

    fn silenced(&self, rule: &Rule, subject: Subject<'_>, now: UnixNanos) -> bool {
        self.silences
            .iter()
            .any(|s| s.covers(&rule.org, &rule.id, subject, now))
    }

    /// Firing alerts whose notifications a silence held back: told now if the silence is over.
    fn release_silenced(&mut self, rules: &[Rule], now: UnixNanos, out: &mut PassOutput) {
        let held: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.phase.state == State::Firing && a.silenced && !a.notified)
            .map(|a| a.id.clone())
            .collect();
        for id in held {
            let Some(alert) = self.alerts.get(&id) else {
                continue;
            };
            let Some(rule) = rules.iter().find(|r| r.id == alert.rule) else {
                continue;
            };
            let tags = BTreeMap::new();
            let device = alert
                .object
                .strip_prefix("device:")
                .and_then(|d| DeviceId::new(d).ok());
            let gateway = alert
                .object
                .strip_prefix("gateway:")
                .and_then(|g| bydata_schemas::Eui64::new(g).ok());
            let still = match (&device, &gateway) {
                (Some(d), _) => {
                    let tags = self.index.device(d).map_or(&tags, |e| &e.tags);
                    self.silenced(rule, Subject::Device(d, tags), now)
                }
                (None, Some(g)) => self.silenced(rule, Subject::Gateway(g), now),
                _ => false,
            };
            if still {
                continue;
            }
            let mut alert = alert.clone();
            alert.notified = true;
            alert.updated_at = now;
            notify(rule, &alert, Event::Firing, now, out);
            out.commit.history.push((id.clone(), {
                let mut h = history(Event::Firing, alert.value, &alert.summary, false, now);
                h["note"] = json!("the silence ended while it was firing: notified now");
                h
            }));
            out.commit.alerts.push(stored(&alert));
            self.alerts.insert(id, alert);
        }
    }

    /// Counts of alerts by state and kind (for metrics and the dashboard).
    pub fn counts(&self) -> BTreeMap<(State, Kind), i64> {
        let mut out = BTreeMap::new();
        for a in self.alerts.values() {
            *out.entry((a.phase.state, a.kind)).or_insert(0) += 1;
        }
        out
    }
}

fn observe_gateway(rule: &Rule, g: &GatewayEntry, now: UnixNanos) -> Option<Observation> {
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

fn history(
    event: Event,
    value: Option<f64>,
    summary: &str,
    silenced: bool,
    now: UnixNanos,
) -> serde_json::Value {
    json!({
        "at": format_rfc3339(now),
        "event": event,
        "value": value,
        "summary": summary,
        "silenced": silenced,
    })
}

fn stored(alert: &Alert) -> StoredAlert {
    StoredAlert {
        id: alert.id.clone(),
        org: alert.org.clone(),
        rule: alert.rule.clone(),
        alert: serde_json::to_value(alert).unwrap_or(serde_json::Value::Null),
    }
}

/// The alert as notifications carry it (and the API shows it).
pub fn alert_json(alert: &Alert) -> serde_json::Value {
    json!({
        "id": alert.id,
        "rule": alert.rule,
        "rule_name": alert.rule_name,
        "kind": alert.kind,
        "org": alert.org,
        "object": alert.object,
        "state": alert.phase.state,
        "since": format_rfc3339(alert.phase.since),
        "seq": alert.phase.seq,
        "value": alert.value,
        "summary": alert.summary,
        "group": alert.group,
        "silenced": alert.silenced,
        "updated_at": format_rfc3339(alert.updated_at),
    })
}

fn notify(rule: &Rule, alert: &Alert, event: Event, now: UnixNanos, out: &mut PassOutput) {
    let (kind, subject) = match event {
        Event::Resolved => (
            NotificationKind::Resolved,
            format!("resolved: {} — rule '{}'", alert.summary, rule.name),
        ),
        _ => (
            NotificationKind::Firing,
            format!("{} — rule '{}'", alert.summary, rule.name),
        ),
    };
    for channel in &rule.channels {
        let key = notification_key(alert, event, channel);
        let n = Notification {
            org: alert.org.clone(),
            channel: channel.clone(),
            key: key.clone(),
            kind,
            subject: subject.clone(),
            body: alert_json(alert),
            group: Some(alert.group.clone()),
            at: now,
        };
        out.commit.outbox.push(PendingNotification {
            channel: channel.clone(),
            key: key.clone(),
            notification: serde_json::to_value(&n).unwrap_or(serde_json::Value::Null),
        });
        out.notifications.push(n);
    }
}

/// Reads an alert stored by [`Evaluator::pass`].
pub fn parse_alert(stored: &StoredAlert) -> Option<Alert> {
    serde_json::from_value(stored.alert.clone()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rule::{RuleBody, compile};
    use bydata_schemas::{Eui64, OrgId, Reception};
    use bydata_store::{Device, DeviceStatus, Gateway, StatusChanges};

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
