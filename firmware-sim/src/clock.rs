use bydata_schemas::UnixNanos;
use std::fmt::Debug;

/// Where the fleet runner gets "now" from when it stamps live samples; injected so a test or a replay can
/// run the same fleet at a chosen time.
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> UnixNanos;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
    }
}

/// A clock that always says the same time, for tests and reproducible runs.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub UnixNanos);

impl Clock for FixedClock {
    fn now(&self) -> UnixNanos {
        self.0
    }
}
