//! One log line per key per interval.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lets one event per key and interval be logged and counts the others, so that a flood of refusals from
/// one source (or about one device) writes one line a minute, not one per packet. At most `max_keys` keys
/// are tracked; past that, keys that have been quiet for an interval are forgotten, and if all are recent the
/// newcomer shares a single overflow slot (it may be logged once per interval for all of them together).
#[derive(Debug)]
pub struct LogLimiter<K> {
    every: Duration,
    max_keys: usize,
    state: Mutex<Inner<K>>,
}

#[derive(Debug)]
struct Inner<K> {
    keys: HashMap<K, (Option<Instant>, u64)>,
    overflow: (Option<Instant>, u64),
}

impl<K: Hash + Eq + Clone> LogLimiter<K> {
    pub fn new(every: Duration, max_keys: usize) -> Self {
        Self {
            every,
            max_keys: max_keys.max(1),
            state: Mutex::new(Inner {
                keys: HashMap::new(),
                overflow: (None, 0),
            }),
        }
    }

    /// `Some(held_back)` if this event may be logged (with how many were held back since the last one).
    pub fn check(&self, key: K) -> Option<u64> {
        self.check_at(key, Instant::now())
    }

    /// [`Self::check`] at a given instant.
    pub fn check_at(&self, key: K, now: Instant) -> Option<u64> {
        let mut inner = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let every = self.every;
        if !inner.keys.contains_key(&key) && inner.keys.len() >= self.max_keys {
            inner.keys.retain(|_, (at, _)| {
                at.is_some_and(|at| now.saturating_duration_since(at) < every)
            });
        }
        let slot = if inner.keys.contains_key(&key) || inner.keys.len() < self.max_keys {
            inner.keys.entry(key).or_insert((None, 0))
        } else {
            &mut inner.overflow
        };
        if slot
            .0
            .is_none_or(|at| now.saturating_duration_since(at) >= every)
        {
            let held_back = slot.1;
            *slot = (Some(now), 0);
            Some(held_back)
        } else {
            slot.1 += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_and_bounded() {
        let log = LogLimiter::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        assert_eq!(log.check_at("a", t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.check_at("a", t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(log.check_at("b", t0), Some(0));
        // A third key while both are recent shares the overflow slot.
        assert_eq!(log.check_at("c", t0), Some(0));
        assert_eq!(log.check_at("d", t0), None);
        assert_eq!(log.check_at("a", t0 + Duration::from_secs(61)), Some(1000));
        assert!(log.state.lock().expect("lock").keys.len() <= 2);
    }
}
