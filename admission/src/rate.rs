//! A token bucket per source.
use crate::caps::source_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// At most `per_sec` events per second from one source on average, bursts up to `burst`. Tracks at most
/// `max_sources` sources: when full, buckets that have refilled completely (idle sources) are dropped first,
/// and if none has, the map is cleared (a flood of fresh sources cannot grow it; it only resets the buckets).
#[derive(Debug)]
pub struct SourceRate {
    per_sec: f64,
    burst: f64,
    max_sources: usize,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl SourceRate {
    pub fn new(per_sec: u32, burst: u32, max_sources: usize) -> Self {
        Self {
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `source`; `false` when its bucket is empty.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        let key = source_key(source);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_sources {
            let (per_sec, burst) = (self.per_sec, self.burst);
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec < burst
            });
            if self.buckets.len() >= self.max_sources {
                self.buckets.clear();
            }
        }
        let (tokens, at) = self.buckets.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec)
            .min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `source` has a token left, without taking it.
    pub fn has_tokens(&self, source: IpAddr, now: Instant) -> bool {
        self.buckets
            .get(&source_key(source))
            .is_none_or(|(tokens, at)| {
                tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec >= 1.0
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills() {
        let mut rate = SourceRate::new(10, 5, 100);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| rate.allow(ip, t0)).count(), 5);
        assert!(rate.allow(ip, t0 + Duration::from_millis(100)));
        assert!(!rate.allow(ip, t0 + Duration::from_millis(100)));
        assert!(!rate.has_tokens(ip, t0 + Duration::from_millis(100)));
        assert!(rate.has_tokens(ip, t0 + Duration::from_millis(200)));
        // Another source has its own bucket.
        assert!(rate.allow("10.0.0.2".parse().expect("ip"), t0));
    }
}
