//! What is running, and whether new data may come in.
//!
//! `serve` records here the state of every component it supervises; the edges ask [`Health::refusal`] before
//! they accept anything (the journal asks on every append, the line-protocol write handler on every request),
//! so one place decides that bydata stops acknowledging: when an essential component has failed (the process
//! is shutting down) or when the data directory's free space fell below its reserve. The readiness answer
//! and `/metrics` read the same facts.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// A supervised component's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Up,
    /// Ended or panicked; restarted after a pause (`cause` says why it ended).
    Restarting {
        cause: String,
    },
    /// Ended or panicked and not restarted.
    Down {
        cause: String,
    },
    /// Stopped on request (shutdown).
    Stopped,
}

impl State {
    pub fn is_up(&self) -> bool {
        matches!(self, State::Up)
    }

    pub fn name(&self) -> &'static str {
        match self {
            State::Up => "up",
            State::Restarting { .. } => "restarting",
            State::Down { .. } => "down",
            State::Stopped => "stopped",
        }
    }

    pub fn cause(&self) -> Option<&str> {
        match self {
            State::Restarting { cause } | State::Down { cause } => Some(cause),
            State::Up | State::Stopped => None,
        }
    }
}

/// One component as readiness shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: &'static str,
    /// Its failure stops bydata (otherwise it is restarted).
    pub essential: bool,
    pub state: State,
}

/// Why new data is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The data directory's free space is below the reserve.
    DiskFull {
        path: PathBuf,
        free: u64,
        reserve: u64,
    },
    /// An essential component failed; bydata is shutting down.
    Stopping { component: &'static str },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::DiskFull {
                path,
                free,
                reserve,
            } => write!(
                f,
                "disk full: {} free on the filesystem of {}, below the reserve of {} ([store] min_free_bytes); \
                 new data is refused until space is freed, then accepted again by itself",
                mib(*free),
                path.display(),
                mib(*reserve)
            ),
            Refusal::Stopping { component } => write!(
                f,
                "bydata is shutting down because its {component} failed; new data is refused (see the server log)"
            ),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Journal entries and bytes the ingest pipeline has not stored yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    pub entries: u64,
    pub bytes: u64,
}

/// The data directory's free space as last measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub free: u64,
    pub reserve: u64,
    pub full: bool,
}

type LagSource = Box<dyn Fn() -> Lag + Send + Sync>;

/// Shared by `serve`, the journal, the API and the disk watcher.
#[derive(Default)]
pub struct Health {
    components: Mutex<BTreeMap<&'static str, Component>>,
    /// Set once, when an essential component fails.
    stopping: OnceLock<&'static str>,
    disk_full: AtomicBool,
    disk_free: AtomicU64,
    disk_reserve: AtomicU64,
    disk_path: OnceLock<PathBuf>,
    lag: OnceLock<LagSource>,
    /// Every component has been started (until then readiness says no).
    started: AtomicBool,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("components", &*self.lock())
            .field("stopping", &self.stopping.get())
            .field("disk", &self.disk())
            .finish_non_exhaustive()
    }
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Component>> {
        self.components
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a component's state (registering it the first time).
    pub fn set(&self, name: &'static str, essential: bool, state: State) {
        self.lock().insert(
            name,
            Component {
                name,
                essential,
                state,
            },
        );
    }

    /// Every component, by name.
    pub fn components(&self) -> Vec<Component> {
        self.lock().values().cloned().collect()
    }

    /// Stops accepting new data for good: `component` failed. Returns false if this was already done.
    pub fn stop_intake(&self, component: &'static str) -> bool {
        self.stopping.set(component).is_ok()
    }

    /// Why new data is refused now, if it is. Cheap when it is not (two atomic loads).
    pub fn refusal(&self) -> Option<Refusal> {
        if let Some(component) = self.stopping.get() {
            return Some(Refusal::Stopping { component });
        }
        if self.disk_full.load(Ordering::Acquire) {
            let disk = self.disk();
            return Some(Refusal::DiskFull {
                path: disk.path,
                free: disk.free,
                reserve: disk.reserve,
            });
        }
        None
    }

    /// Records a measurement of the data directory's free space; returns whether the disk counts as full
    /// now (free space below `reserve`).
    pub fn set_disk(&self, path: &Path, free: u64, reserve: u64) -> bool {
        let _ = self.disk_path.set(path.to_owned());
        self.disk_free.store(free, Ordering::Relaxed);
        self.disk_reserve.store(reserve, Ordering::Relaxed);
        let full = free < reserve;
        self.disk_full.store(full, Ordering::Release);
        full
    }

    pub fn disk(&self) -> Disk {
        Disk {
            path: self.disk_path.get().cloned().unwrap_or_default(),
            free: self.disk_free.load(Ordering::Relaxed),
            reserve: self.disk_reserve.load(Ordering::Relaxed),
            full: self.disk_full.load(Ordering::Acquire),
        }
    }

    /// Where the ingest lag is measured (set once, by `serve`).
    pub fn set_lag_source(&self, source: impl Fn() -> Lag + Send + Sync + 'static) {
        let _ = self.lag.set(Box::new(source));
    }

    pub fn lag(&self) -> Lag {
        self.lag.get().map(|f| f()).unwrap_or_default()
    }

    /// Every component has been started: from now on readiness depends on their states.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Ready: every component started and up, data accepted.
    pub fn ready(&self) -> bool {
        self.started.load(Ordering::Acquire)
            && self.refusal().is_none()
            && self.lock().values().all(|c| c.state.is_up())
    }
}

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_when_the_disk_is_below_the_reserve_and_resumes_above_it() {
        let h = Health::default();
        assert!(!h.set_disk(Path::new("/data"), 100, 50));
        assert_eq!(h.refusal(), None);
        assert!(h.set_disk(Path::new("/data"), 40, 50));
        let refusal = h.refusal().unwrap();
        assert!(refusal.to_string().starts_with("disk full: "), "{refusal}");
        assert!(!h.set_disk(Path::new("/data"), 60, 50));
        assert_eq!(h.refusal(), None);
    }

    #[test]
    fn a_failed_component_stops_intake_for_good() {
        let h = Health::default();
        h.set("store writer", true, State::Up);
        assert!(!h.ready(), "not before every component started");
        h.set_started();
        assert!(h.ready());
        h.set(
            "store writer",
            true,
            State::Down {
                cause: "gone".into(),
            },
        );
        assert!(!h.ready());
        assert!(h.stop_intake("store writer"));
        assert!(!h.stop_intake("ingest pipeline"));
        assert!(h.set_disk(Path::new("/"), 0, 1));
        assert_eq!(
            h.refusal(),
            Some(Refusal::Stopping {
                component: "store writer"
            })
        );
    }

    #[test]
    fn free_bytes_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
    }
}
