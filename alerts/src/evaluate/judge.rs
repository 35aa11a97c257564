//! How one alert moves through the state machine, what each move records, and silences holding back or
//! releasing notifications.
use super::record::{history, notify, stored};
use super::{Evaluator, Observation, PassOutput};
use crate::alert::{Alert, Event, State, alert_id, step};
use crate::rule::{Kind, Rule};
use crate::silence::Subject;
use bydata_schemas::{DeviceId, UnixNanos};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};

/// How often an alert's value and summary are rewritten while its state stays the same.
const VIEW_EVERY: i64 = 60_000_000_000;

impl Evaluator {
    /// Moves one alert and records what that means.
    pub(super) fn judge(
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
    pub(super) fn release_silenced(
        &mut self,
        rules: &[Rule],
        now: UnixNanos,
        out: &mut PassOutput,
    ) {
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
