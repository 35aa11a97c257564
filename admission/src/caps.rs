//! Connection caps, in total and per source.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The edge holds its most connections.
    Total,
    /// This source holds its most connections.
    Source,
}

impl Refused {
    /// A label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Total => "total_cap",
            Refused::Source => "source_cap",
        }
    }
}

/// The address connections are counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Default)]
struct State {
    open: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// At most `total` connections, and at most `per_source` from one source.
#[derive(Debug)]
pub struct ConnectionCaps {
    total: usize,
    per_source: usize,
    state: Mutex<State>,
}

/// A place taken by one connection; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    caps: Arc<ConnectionCaps>,
    source: IpAddr,
}

impl ConnectionCaps {
    pub fn new(total: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_source: per_source.max(1),
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for a connection from `source`, or says which cap it hit.
    pub fn try_admit(self: &Arc<Self>, source: IpAddr) -> Result<Ticket, Refused> {
        let source = source_key(source);
        let mut state = self.lock();
        if state.open >= self.total {
            return Err(Refused::Total);
        }
        let held = state.by_source.entry(source).or_default();
        if *held >= self.per_source {
            return Err(Refused::Source);
        }
        *held += 1;
        state.open += 1;
        Ok(Ticket {
            caps: self.clone(),
            source,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// The caps: (total, per source).
    pub fn limits(&self) -> (usize, usize) {
        (self.total, self.per_source)
    }
}

impl Ticket {
    /// The source (as counted: IPv6 by /64).
    pub fn source(&self) -> IpAddr {
        self.source
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.caps.lock();
        state.open = state.open.saturating_sub(1);
        if let Some(held) = state.by_source.get_mut(&self.source) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                state.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_source_and_free_on_drop() {
        let caps = ConnectionCaps::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let t1 = caps.try_admit(a).expect("first");
        let _t2 = caps.try_admit(a).expect("second");
        assert_eq!(caps.try_admit(a).err(), Some(Refused::Source));
        let _t3 = caps.try_admit(b).expect("other source");
        assert_eq!(caps.try_admit(b).err(), Some(Refused::Total));
        assert_eq!(caps.open(), 3);
        drop(t1);
        assert_eq!(caps.open(), 2);
        caps.try_admit(a).expect("a place again");
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let caps = ConnectionCaps::new(10, 1);
        let _t = caps
            .try_admit("2001:db8:1:2::1".parse().expect("ip"))
            .expect("first");
        assert_eq!(
            caps.try_admit("2001:db8:1:2:ffff::9".parse().expect("ip"))
                .err(),
            Some(Refused::Source)
        );
        caps.try_admit("2001:db8:1:3::1".parse().expect("ip"))
            .expect("other /64");
        assert_eq!(
            source_key("::ffff:10.1.2.3".parse().expect("ip")),
            "10.1.2.3".parse::<IpAddr>().expect("ip")
        );
    }
}
