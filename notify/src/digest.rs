//! Folding pending notifications into deliveries (pure: no I/O, no clock).
//!
//! Notifications without a group are sent one by one at once. Those with a group wait in a *bucket* — one per
//! organisation, channel, group and kind (firing and resolved are never mixed) — until the digest window has
//! passed since the bucket's first arrival: then more than `threshold` of them become one digest (at most
//! `max_members` each), fewer are sent one by one. So a gateway going down with 200 devices behind it is one
//! message, and a single alert is late by at most the window.
use bydata_schemas::UnixNanos;
use bydata_store::{ChannelKind, Delivery, DeliveryStatus, NotificationKind, OrgId, Stored};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// How pending notifications are folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) window: UnixNanos,
    pub(crate) threshold: usize,
    pub(crate) max_members: usize,
}

/// The deliveries to create now, and when the next bucket's window closes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Folded {
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) next_close: Option<UnixNanos>,
}

type Bucket<'a> = (&'a OrgId, &'a str, &'a str, NotificationKind);

/// Folds `pending` at `now`; `kind_of` gives a channel's kind (`None`: no such channel).
pub(crate) fn fold(
    pending: &[Stored],
    now: UnixNanos,
    rules: Rules,
    kind_of: impl Fn(&str) -> Option<ChannelKind>,
) -> Folded {
    let mut out = Folded::default();
    let mut buckets: BTreeMap<Bucket<'_>, Vec<&Stored>> = BTreeMap::new();
    for s in pending {
        let n = &s.notification;
        match &n.group {
            None => out.deliveries.push(single(s, now, &kind_of)),
            Some(group) => buckets
                .entry((&n.org, n.channel.as_str(), group.as_str(), n.kind))
                .or_default()
                .push(s),
        }
    }
    for ((_, channel, group, kind), mut members) in buckets {
        let first = members.iter().map(|s| s.enqueued_at).min().unwrap_or(now);
        let closes = first.saturating_add(rules.window);
        if now < closes {
            out.next_close = Some(out.next_close.map_or(closes, |c| c.min(closes)));
            continue;
        }
        members.sort_by(|a, b| {
            (a.enqueued_at, a.notification.at, &a.notification.key).cmp(&(
                b.enqueued_at,
                b.notification.at,
                &b.notification.key,
            ))
        });
        if members.len() <= rules.threshold {
            out.deliveries
                .extend(members.iter().map(|s| single(s, now, &kind_of)));
            continue;
        }
        for chunk in members.chunks(rules.max_members.max(1)) {
            out.deliveries
                .push(digest(chunk, channel, group, kind, now, &kind_of));
        }
    }
    out
}

fn base(s: &Stored, now: UnixNanos, kind_of: &impl Fn(&str) -> Option<ChannelKind>) -> Delivery {
    let n = &s.notification;
    Delivery {
        key: n.key.clone(),
        org: n.org.clone(),
        channel: n.channel.clone(),
        kind: n.kind,
        subject: n.subject.clone(),
        group: n.group.clone(),
        members: vec![n.key.clone()],
        digest: false,
        status: DeliveryStatus::Queued,
        attempts: 0,
        channel_kind: kind_of(&n.channel),
        last_error: None,
        answer: None,
        created_at: now,
        updated_at: now,
        next_attempt_at: now,
        delivered_at: None,
    }
}

fn single(s: &Stored, now: UnixNanos, kind_of: &impl Fn(&str) -> Option<ChannelKind>) -> Delivery {
    base(s, now, kind_of)
}

fn digest(
    members: &[&Stored],
    channel: &str,
    group: &str,
    kind: NotificationKind,
    now: UnixNanos,
    kind_of: &impl Fn(&str) -> Option<ChannelKind>,
) -> Delivery {
    // The key follows from the members, so folding the same members again (a crash before the commit) gives
    // the same key; different members give another.
    let mut hash = Sha256::new();
    for s in members {
        hash.update(s.notification.key.as_bytes());
        hash.update(b"\n");
    }
    let id = hex::encode(&hash.finalize()[..12]);
    let mut d = base(members[0], now, kind_of);
    d.key = format!("digest:{channel}:{id}");
    d.members = members.iter().map(|s| s.notification.key.clone()).collect();
    d.digest = true;
    d.subject = digest_subject(
        members.len(),
        kind,
        group,
        members.iter().map(|s| s.notification.subject.as_str()),
    );
    d
}

/// "200 firing in gateway:aa01…: room-1 silent for 2h, room-2 silent for 2h and 198 more" (at most ~200
/// characters; the message itself lists every one).
pub(crate) fn digest_subject<'a>(
    count: usize,
    kind: NotificationKind,
    group: &str,
    subjects: impl Iterator<Item = &'a str>,
) -> String {
    const MAX: usize = 200;
    let mut out = format!("{count} {} in {group}: ", kind.as_str());
    let mut shown = 0;
    for (i, s) in subjects.enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        if out.len() + sep.len() + s.len() > MAX && shown > 0 {
            break;
        }
        out.push_str(sep);
        out.extend(s.chars().take(MAX));
        shown += 1;
    }
    if shown < count {
        out.push_str(&format!(" and {} more", count - shown));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bydata_store::Notification;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const S: i64 = 1_000_000_000;
    const RULES: Rules = Rules {
        window: 30 * S,
        threshold: 5,
        max_members: 1000,
    };

    fn stored(key: &str, group: Option<&str>, kind: NotificationKind, at: i64) -> Stored {
        Stored {
            notification: Notification {
                org: OrgId::default(),
                channel: "ops".into(),
                key: key.into(),
                kind,
                subject: format!("{key} went silent"),
                body: serde_json::json!({}),
                group: group.map(str::to_owned),
                at,
            },
            enqueued_at: at,
            delivery: None,
        }
    }

    fn webhook(_: &str) -> Option<ChannelKind> {
        Some(ChannelKind::Webhook)
    }

    #[test]
    fn a_gateway_going_down_is_one_message() {
        let pending: Vec<Stored> = (0..200)
            .map(|i| {
                stored(
                    &format!("d{i}"),
                    Some("gateway:aa"),
                    NotificationKind::Firing,
                    i,
                )
            })
            .collect();
        let early = fold(&pending, 10 * S, RULES, webhook);
        assert!(early.deliveries.is_empty());
        assert_eq!(early.next_close, Some(30 * S));
        let folded = fold(&pending, 30 * S, RULES, webhook);
        assert_eq!(folded.deliveries.len(), 1);
        let d = &folded.deliveries[0];
        assert!(d.digest && d.key.starts_with("digest:ops:"));
        assert_eq!(d.members.len(), 200);
        assert!(
            d.subject
                .starts_with("200 firing in gateway:aa: d0 went silent, d1 went silent"),
            "{}",
            d.subject
        );
        assert!(d.subject.ends_with("more"), "{}", d.subject);
        assert_eq!(
            fold(&pending, 31 * S, RULES, webhook).deliveries[0].key,
            d.key
        );
    }

    #[test]
    fn few_go_one_by_one_and_ungrouped_at_once_and_kinds_apart() {
        let mut pending: Vec<Stored> = (0..5)
            .map(|i| stored(&format!("f{i}"), Some("g"), NotificationKind::Firing, i))
            .collect();
        pending.extend(
            (0..6).map(|i| stored(&format!("r{i}"), Some("g"), NotificationKind::Resolved, i)),
        );
        pending.push(stored("now", None, NotificationKind::Firing, 0));
        let at_once = fold(&pending, 1, RULES, webhook);
        assert_eq!(at_once.deliveries.len(), 1);
        assert_eq!(at_once.deliveries[0].key, "now");
        let later = fold(&pending, 40 * S, RULES, webhook);
        let singles: Vec<&str> = later
            .deliveries
            .iter()
            .filter(|d| !d.digest)
            .map(|d| d.key.as_str())
            .collect();
        assert_eq!(singles, ["now", "f0", "f1", "f2", "f3", "f4"]);
        let digests: Vec<&Delivery> = later.deliveries.iter().filter(|d| d.digest).collect();
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].kind, NotificationKind::Resolved);
        assert_eq!(digests[0].members.len(), 6);
    }

    fn kind_strategy() -> impl Strategy<Value = NotificationKind> {
        prop_oneof![
            Just(NotificationKind::Firing),
            Just(NotificationKind::Resolved)
        ]
    }

    proptest! {
        #[test]
        fn every_due_notification_is_in_exactly_one_delivery_of_its_bucket(
            items in proptest::collection::vec(
                (proptest::option::of(0u8..3), kind_strategy(), 0i64..60),
                0..80,
            ),
            now_secs in 0i64..120,
            threshold in 0usize..8,
            max_members in 1usize..10,
        ) {
            let pending: Vec<Stored> = items
                .iter()
                .enumerate()
                .map(|(i, (g, k, t))| {
                    let group = g.map(|g| format!("g{g}"));
                    stored(&format!("n{i}"), group.as_deref(), *k, t * S)
                })
                .collect();
            let rules = Rules { window: 30 * S, threshold, max_members };
            let folded = fold(&pending, now_secs * S, rules, webhook);
            let mut seen = BTreeSet::new();
            for d in &folded.deliveries {
                prop_assert!(d.members.len() <= max_members.max(1) || !d.digest);
                prop_assert_eq!(d.digest, d.key.starts_with("digest:"));
                for m in &d.members {
                    prop_assert!(seen.insert(m.clone()), "{} twice", m);
                    let s = pending.iter().find(|s| &s.notification.key == m).unwrap();
                    prop_assert_eq!(s.notification.kind, d.kind);
                    prop_assert_eq!(&s.notification.group, &d.group);
                }
            }
            // What was not folded is grouped and its bucket's window is still open.
            for s in &pending {
                if !seen.contains(&s.notification.key) {
                    prop_assert!(s.notification.group.is_some());
                    let close = folded.next_close.unwrap();
                    prop_assert!(close > now_secs * S);
                }
            }
            // A bucket is a digest exactly when it is larger than the threshold.
            for d in folded.deliveries.iter().filter(|d| d.group.is_some()) {
                let bucket = pending
                    .iter()
                    .filter(|s| s.notification.group == d.group && s.notification.kind == d.kind)
                    .count();
                prop_assert_eq!(d.digest, bucket > threshold);
            }
        }

        #[test]
        fn digest_subjects_stay_short(count in 1usize..500, len in 0usize..400) {
            let subject = "x".repeat(len);
            let s = digest_subject(count, NotificationKind::Firing, "g", std::iter::repeat_n(subject.as_str(), count));
            prop_assert!(s.len() <= 200 + 40 + len.min(200), "{}", s.len());
        }
    }
}
