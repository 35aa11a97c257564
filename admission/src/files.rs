//! The process's file limit, and how it is shared out between the edges.

/// Raises the soft limit on open files to the hard limit (where the system allows) and returns the limit in
/// force afterwards. Every connection costs descriptors, so this is how many the edges can hold.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// How many connections each edge may hold within the file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub file_limit: u64,
    pub mqtt: usize,
    pub http: usize,
    /// Descriptors kept for everything else (store files, the journal, the registry, UDP, outgoing clients).
    pub reserved: u64,
}

impl Budget {
    /// Shares `file_limit` between the MQTT and HTTP edges, beside a reserve (a quarter of the limit, at least
    /// 256) for everything else. HTTP — the API, dashboards, `/health` — gets what it asks for first, up to half
    /// of what is left; MQTT gets what it asks for within the rest. An MQTT connection costs `mqtt_fds`
    /// descriptors.
    pub fn share(file_limit: u64, mqtt_wanted: usize, mqtt_fds: u64, http_wanted: usize) -> Self {
        let reserved = (file_limit / 4).max(256).min(file_limit);
        let available = file_limit - reserved;
        let http = (http_wanted as u64).min(available / 2);
        let mqtt = (mqtt_wanted as u64).min((available - http) / mqtt_fds.max(1));
        Self {
            file_limit,
            mqtt: (mqtt as usize).max(1),
            http: (http as usize).max(1),
            reserved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_fit_within_the_limit() {
        let b = Budget::share(1_048_576, 10_000, 3, 1024);
        assert_eq!((b.mqtt, b.http), (10_000, 1024));
        let b = Budget::share(20_000, 10_000, 3, 1024);
        assert!(
            b.mqtt as u64 * 3 + b.http as u64 + b.reserved <= 20_000,
            "{b:?}"
        );
        assert!(b.mqtt > 4000 && b.http > 400, "{b:?}");
        let b = Budget::share(100, 10, 3, 10);
        assert!(b.mqtt >= 1 && b.http >= 1);
    }
}
