//! One alert per (rule, object) and the state machine that moves it: pending → firing → resolved.
//!
//! The condition must hold at every evaluation for the rule's `for` before a pending alert fires, and be
//! gone at every evaluation for as long before a firing alert resolves; a condition that clears while
//! pending cancels it (nothing was told). Each firing is an episode numbered by `seq`, which names its
//! notifications' idempotency keys.
use crate::rule::Kind;
use bydata_schemas::{OrgId, UnixNanos};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Firing,
    Resolved,
}

impl State {
    pub const ALL: [State; 3] = [State::Pending, State::Firing, State::Resolved];
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolved => "resolved",
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub state: State,
    /// When it entered `state`.
    pub since: UnixNanos,
    /// Firing episodes so far.
    pub seq: u64,
    /// Firing, and the condition gone since then (resolves after the rule's `for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing_since: Option<UnixNanos>,
    /// When it last resolved (kept while it is pending again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<UnixNanos>,
}

/// A change of state that is recorded in the alert's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Pending,
    Firing,
    Resolved,
    /// A pending alert whose condition cleared before it fired.
    Cancelled,
}

/// The next phase of an alert (`None`: no alert) given whether its condition holds `now`, and the event.
pub fn step(
    prev: Option<Phase>,
    holds: bool,
    now: UnixNanos,
    hold: i64,
) -> (Option<Phase>, Option<Event>) {
    let fire = |p: Option<Phase>| Phase {
        state: State::Firing,
        since: now,
        seq: p.map_or(0, |p| p.seq) + 1,
        clearing_since: None,
        resolved_at: p.and_then(|p| p.resolved_at),
    };
    match (prev, holds) {
        (None, false) => (None, None),
        (Some(p), false) if p.state == State::Resolved => (Some(p), None),
        (None, true)
        | (
            Some(Phase {
                state: State::Resolved,
                ..
            }),
            true,
        ) => {
            if hold <= 0 {
                (Some(fire(prev)), Some(Event::Firing))
            } else {
                let pending = Phase {
                    state: State::Pending,
                    since: now,
                    seq: prev.map_or(0, |p| p.seq),
                    clearing_since: None,
                    resolved_at: prev.and_then(|p| p.resolved_at),
                };
                (Some(pending), Some(Event::Pending))
            }
        }
        (Some(p), true) if p.state == State::Pending => {
            if now.saturating_sub(p.since) >= hold {
                (Some(fire(prev)), Some(Event::Firing))
            } else {
                (Some(p), None)
            }
        }
        (Some(p), false) if p.state == State::Pending => {
            let back = p.resolved_at.map(|at| Phase {
                state: State::Resolved,
                since: at,
                seq: p.seq,
                clearing_since: None,
                resolved_at: Some(at),
            });
            (back, Some(Event::Cancelled))
        }
        (Some(p), true) => (
            Some(Phase {
                clearing_since: None,
                ..p
            }),
            None,
        ),
        (Some(p), false) => {
            let clearing = p.clearing_since.unwrap_or(now);
            if now.saturating_sub(clearing) >= hold {
                let resolved = Phase {
                    state: State::Resolved,
                    since: now,
                    seq: p.seq,
                    clearing_since: None,
                    resolved_at: Some(now),
                };
                (Some(resolved), Some(Event::Resolved))
            } else {
                (
                    Some(Phase {
                        clearing_since: Some(clearing),
                        ..p
                    }),
                    None,
                )
            }
        }
    }
}

/// An alert as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `{rule}:{object}`.
    pub id: String,
    pub rule: String,
    pub rule_name: String,
    pub kind: Kind,
    pub org: OrgId,
    /// `device:{id}` or `gateway:{eui}`.
    pub object: String,
    #[serde(flatten)]
    pub phase: Phase,
    /// The value that made it (a level, the seconds silent, a count of refusals).
    pub value: Option<f64>,
    /// One line saying what is wrong (or, resolved, how it is now).
    pub summary: String,
    /// The notifications' digest group.
    pub group: String,
    /// Notifications of this episode held back by a silence (sent when it ends, if still firing).
    #[serde(default)]
    pub silenced: bool,
    /// The firing of this episode went to the outbox.
    #[serde(default)]
    pub notified: bool,
    pub updated_at: UnixNanos,
}

/// The id of `rule`'s alert about `object`.
pub fn alert_id(rule: &str, object: &str) -> String {
    format!("{rule}:{object}")
}

/// The idempotency key of an alert's notification to `channel`: `alert:{rule}:{object}:{seq}:{firing|resolved}`
/// and `@{channel}`, since the notifier drops a key it has whatever the channel, and a rule may name several.
pub fn notification_key(alert: &Alert, event: Event, channel: &str) -> String {
    let what = if event == Event::Resolved {
        "resolved"
    } else {
        "firing"
    };
    format!(
        "alert:{}:{}:{}:{what}@{channel}",
        alert.rule, alert.object, alert.phase.seq
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn fires_after_hold_resolves_after_hold_and_cancels_a_short_blip() {
        let (p, e) = step(None, true, 0, 5 * S);
        assert_eq!(
            (p.map(|p| p.state), e),
            (Some(State::Pending), Some(Event::Pending))
        );
        let (p2, e) = step(p, true, 4 * S, 5 * S);
        assert_eq!((p2, e), (p, None));
        let (p3, e) = step(p2, false, 4 * S + 1, 5 * S);
        assert_eq!(
            (p3, e),
            (None, Some(Event::Cancelled)),
            "a blip shorter than `for`"
        );
        let (p, _) = step(None, true, 10 * S, 5 * S);
        let (p, e) = step(p, true, 15 * S, 5 * S);
        assert_eq!(e, Some(Event::Firing));
        assert_eq!(p.map(|p| p.seq), Some(1));
        let (p, e) = step(p, false, 16 * S, 5 * S);
        assert_eq!(
            e, None,
            "not resolved yet: the condition must be gone for `for`"
        );
        let (p, e) = step(p, true, 17 * S, 5 * S);
        assert_eq!(e, None);
        let (p, e) = step(p, false, 18 * S, 5 * S);
        assert_eq!(e, None);
        let (p, e) = step(p, false, 23 * S, 5 * S);
        assert_eq!(e, Some(Event::Resolved));
        assert_eq!(p.map(|p| (p.state, p.seq)), Some((State::Resolved, 1)));
        // Pending again, cancelled: back to resolved as it was.
        let (q, _) = step(p, true, 30 * S, 5 * S);
        let (q, e) = step(q, false, 31 * S, 5 * S);
        assert_eq!((q, e), (p, Some(Event::Cancelled)));
        // Without `for`: fires and resolves at once.
        let (p, e) = step(None, true, 0, 0);
        assert_eq!(e, Some(Event::Firing));
        let (_, e) = step(p, false, 1, 0);
        assert_eq!(e, Some(Event::Resolved));
    }

    proptest! {
        /// Any sequence of observations: firings and resolutions alternate, each firing is preceded by the
        /// condition holding at every observation for at least `for`, each resolution by it being gone as
        /// long, and the episode number counts the firings.
        #[test]
        fn no_flapping_and_one_episode_at_a_time(
            hold in 0i64..5,
            obs in proptest::collection::vec((any::<bool>(), 0i64..4), 1..80),
        ) {
            let hold = hold * S;
            let mut phase = None;
            let mut now = 0;
            let (mut true_since, mut false_since): (Option<i64>, Option<i64>) = (None, None);
            let mut firings = 0u64;
            let mut last_event = None;
            for (holds, dt) in obs {
                now += dt * S;
                if holds { true_since.get_or_insert(now); false_since = None; }
                else { false_since.get_or_insert(now); true_since = None; }
                let (next, event) = step(phase, holds, now, hold);
                match event {
                    Some(Event::Firing) => {
                        prop_assert!(last_event != Some(Event::Firing), "two firings in a row");
                        prop_assert!(now - true_since.unwrap_or(now) >= hold, "fired before `for`");
                        firings += 1;
                        prop_assert_eq!(next.map(|p| p.seq), Some(firings));
                        last_event = event;
                    }
                    Some(Event::Resolved) => {
                        prop_assert_eq!(last_event, Some(Event::Firing), "resolved without firing");
                        prop_assert!(now - false_since.unwrap_or(now) >= hold, "resolved before `for`");
                        last_event = event;
                    }
                    _ => {}
                }
                if let Some(p) = next {
                    prop_assert_eq!(p.seq, firings);
                    prop_assert_eq!(p.state == State::Firing, last_event == Some(Event::Firing));
                }
                phase = next;
            }
        }
    }
}
