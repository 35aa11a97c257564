//! What the evaluator knows about devices and gateways, in memory, so a pass costs a lookup per object and
//! not a registry read: the device list (reloaded when the registry's change counter moves), each device's
//! last seen time, counters, recent gaps and the gateway that last heard it (from the statuses that changed
//! since the last pass, `RegistryPort::statuses_since`), and the gateways' last seen times.
use bydata_schemas::{DeviceId, Eui64, OrgId, TagKey, UnixNanos};
use bydata_store::{Device, DeviceStatus, Gateway, GatewayStatus, StatusChanges, StatusCursor};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Most gaps kept per device (a rule learns from at most this many uplinks).
pub const MAX_GAPS: usize = 32;
/// Most refusal samples kept per device.
const MAX_SAMPLES: usize = 64;

/// One device as the evaluator sees it.
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    pub id: DeviceId,
    pub org: OrgId,
    pub name: String,
    pub tags: BTreeMap<TagKey, String>,
    pub codec: String,
    pub created_at: UnixNanos,
    pub last_seen: Option<UnixNanos>,
    pub received: u64,
    pub rejected: u64,
    /// Recent gaps between uplinks, in milliseconds, newest last.
    pub gaps: VecDeque<u32>,
    /// The gateway with the strongest reception of its last LoRaWAN uplink.
    pub gateway: Option<Eui64>,
    /// `(when, rejected so far)`, oldest first: the first is the baseline.
    pub refusals: VecDeque<(UnixNanos, u64)>,
}

impl DeviceEntry {
    fn new(d: &Device, now: UnixNanos) -> DeviceEntry {
        DeviceEntry {
            id: d.id.clone(),
            org: d.org.clone(),
            name: d.name.clone(),
            tags: d.tags.clone(),
            codec: d.codec.to_string(),
            created_at: d.created_at,
            last_seen: None,
            received: 0,
            rejected: 0,
            gaps: VecDeque::new(),
            gateway: None,
            refusals: VecDeque::from([(now, 0)]),
        }
    }

    /// Takes a new status: the gap since the last one (spread over the uplinks between them), counters.
    fn observe(&mut self, s: &DeviceStatus, first: bool, now: UnixNanos) {
        match (self.last_seen, s.last_seen) {
            (Some(old), Some(new)) if new > old => {
                let uplinks = s.received.saturating_sub(self.received).max(1);
                let gap = (new - old) / uplinks as i64;
                self.push_gap(gap);
            }
            (None, Some(_)) if first => {
                // Seed from the codec run of its latest uplinks: its mean gap, counted as three.
                if let Some(run) = s.decoded_by.last().filter(|r| r.uplinks >= 4) {
                    let gap = (run.to - run.from) / (run.uplinks as i64 - 1);
                    for _ in 0..3 {
                        self.push_gap(gap);
                    }
                }
            }
            _ => {}
        }
        self.last_seen = self.last_seen.max(s.last_seen);
        self.received = s.received;
        if s.rejected != self.rejected {
            if first {
                // Counted before we watched: the baseline, not refusals within any window.
                self.refusals = VecDeque::from([(now, s.rejected)]);
            } else {
                self.refusals.push_back((now, s.rejected));
                if self.refusals.len() > MAX_SAMPLES {
                    self.refusals.pop_front();
                }
            }
            self.rejected = s.rejected;
        }
        self.gateway = s
            .last_radio
            .iter()
            .max_by(|a, b| {
                a.rssi
                    .unwrap_or(f64::MIN)
                    .total_cmp(&b.rssi.unwrap_or(f64::MIN))
            })
            .and_then(|r| Eui64::new(&r.gateway).ok())
            .or(self.gateway);
    }

    fn push_gap(&mut self, gap_ns: i64) {
        let ms = u32::try_from((gap_ns / 1_000_000).max(0)).unwrap_or(u32::MAX);
        if self.gaps.len() == MAX_GAPS {
            self.gaps.pop_front();
        }
        self.gaps.push_back(ms);
    }

    /// `factor` × the median of the last `uplinks` gaps, at least `floor`; `None` with fewer than three.
    pub fn learned_interval(&self, uplinks: usize, factor: f64, floor: i64) -> Option<i64> {
        let n = self.gaps.len().min(uplinks);
        if n < 3 {
            return None;
        }
        let mut recent: Vec<u32> = self.gaps.iter().rev().take(n).copied().collect();
        recent.sort_unstable();
        let median_ms = if n % 2 == 1 {
            f64::from(recent[n / 2])
        } else {
            (f64::from(recent[n / 2 - 1]) + f64::from(recent[n / 2])) / 2.0
        };
        Some(((median_ms * factor * 1e6) as i64).max(floor))
    }

    /// Messages refused or undecodable within `window` before `now`.
    pub fn refusals_within(&self, window: i64, now: UnixNanos) -> u64 {
        let start = now.saturating_sub(window);
        let baseline = self
            .refusals
            .iter()
            .rev()
            .find(|(t, _)| *t <= start)
            .or(self.refusals.front())
            .map_or(self.rejected, |(_, n)| *n);
        self.rejected.saturating_sub(baseline)
    }

    /// Drops refusal samples older than `keep` but the newest of those (the baseline of the longest window).
    fn trim(&mut self, keep: i64, now: UnixNanos) {
        let start = now.saturating_sub(keep);
        while self.refusals.len() > 1 && self.refusals[1].0 <= start {
            self.refusals.pop_front();
        }
    }
}

/// A gateway as the evaluator sees it.
#[derive(Debug, Clone)]
pub struct GatewayEntry {
    pub eui: Eui64,
    pub org: OrgId,
    pub name: String,
    pub created_at: UnixNanos,
    pub last_seen: Option<UnixNanos>,
}

/// Devices and gateways, by organisation.
#[derive(Debug, Default)]
pub struct Index {
    pub devices: Vec<DeviceEntry>,
    positions: HashMap<DeviceId, usize>,
    pub gateways: HashMap<Eui64, GatewayEntry>,
    cursor: StatusCursor,
}

impl Index {
    /// The device list changed: keep what is known of devices still there, add new ones, drop the rest.
    pub fn set_devices(&mut self, devices: &[Device], now: UnixNanos) {
        let mut old: HashMap<DeviceId, DeviceEntry> = std::mem::take(&mut self.devices)
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        self.positions.clear();
        for d in devices {
            let entry = match old.remove(&d.id) {
                Some(mut e) => {
                    e.org = d.org.clone();
                    e.name = d.name.clone();
                    e.tags = d.tags.clone();
                    e.codec = d.codec.to_string();
                    e
                }
                None => DeviceEntry::new(d, now),
            };
            self.positions.insert(d.id.clone(), self.devices.len());
            self.devices.push(entry);
        }
    }

    pub fn set_gateways(&mut self, gateways: &[Gateway]) {
        let old = std::mem::take(&mut self.gateways);
        for g in gateways {
            self.gateways.insert(
                g.eui,
                GatewayEntry {
                    eui: g.eui,
                    org: g.org.clone(),
                    name: g.name.clone(),
                    created_at: g.created_at,
                    last_seen: old.get(&g.eui).and_then(|o| o.last_seen),
                },
            );
        }
    }

    pub fn set_gateway_statuses(&mut self, statuses: &[(Eui64, GatewayStatus)]) {
        for (eui, s) in statuses {
            if let Some(g) = self.gateways.get_mut(eui) {
                g.last_seen = g.last_seen.max(s.last_seen);
            }
        }
    }

    /// Where to read statuses from next.
    pub fn cursor(&self) -> StatusCursor {
        self.cursor
    }

    /// Takes the statuses changed since the cursor; `keep`: the longest refusal window of any rule.
    pub fn apply(&mut self, changes: &StatusChanges, keep: i64, now: UnixNanos) {
        for (id, status) in &changes.statuses {
            if let Some(&i) = self.positions.get(id) {
                let entry = &mut self.devices[i];
                entry.observe(status, changes.full, now);
                entry.trim(keep, now);
            }
        }
        self.cursor = changes.cursor;
    }

    pub fn device(&self, id: &DeviceId) -> Option<&DeviceEntry> {
        self.positions.get(id).map(|&i| &self.devices[i])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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

    #[test]
    fn learns_a_robust_interval_and_counts_refusals_in_a_window() {
        let mut ix = Index::default();
        ix.set_devices(&[device("a")], 0);
        let id = DeviceId::new("a").unwrap();
        let mut rejected = 0;
        // Every 60 s, one outlier of 1 h: the median ignores it.
        for (i, t) in [0, 60, 120, 3720, 3780, 3840].iter().enumerate() {
            let received = i as u64 + 1;
            if i == 4 {
                rejected += 2;
            }
            let status = DeviceStatus {
                last_seen: Some(t * S),
                received,
                rejected,
                ..DeviceStatus::default()
            };
            let changes = StatusChanges {
                cursor: StatusCursor::default(),
                full: false,
                statuses: vec![(id.clone(), status)],
            };
            ix.apply(&changes, 600 * S, t * S);
        }
        let d = ix.device(&id).unwrap();
        assert_eq!(d.learned_interval(16, 3.0, 0), Some(180 * S));
        assert_eq!(
            d.learned_interval(16, 3.0, 3600 * S),
            Some(3600 * S),
            "the floor"
        );
        assert_eq!(d.learned_interval(2, 3.0, 0), None, "fewer than three gaps");
        assert_eq!(d.refusals_within(600 * S, 3840 * S), 2);
        assert_eq!(d.refusals_within(30 * S, 3840 * S), 0);
    }
}
