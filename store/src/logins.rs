//! The password gate: every device and integration login passes here — MQTT CONNECTs and HTTP pushes with
//! HTTP Basic alike, through one gate, so a device verified on one is remembered on the other, a stranger's
//! failures back off across both, and the Argon2 pool bounds memory for both — and it stays cheap for
//! legitimate devices while a stranger hammers it. Each edge counts its own checks ([`GateCounters`],
//! [`Gate::counting`]).
//!
//! - **Verified credentials are remembered** for `verified_cache_secs`, keyed by a keyed SHA-256 of identity and
//!   password (the key is random per process), together with a digest of the stored hash they matched. A
//!   reconnect storm of devices that logged in before costs one registry read each, not an Argon2 check; a
//!   rotated or deleted credential no longer matches the stored hash, so it stops working at once.
//! - **Argon2 checks are bounded**: a fixed pool of `password_checks` threads (so memory is at most that many
//!   times Argon2's 19 MiB, and those threads' allocator arenas are all it ever touches), fed by a bounded
//!   queue; a login waits at most `password_queue_ms` for its check, else it is refused as busy. One source
//!   address, and one identity, have at most [`PER_KEY_CHECKS`] checks in the pool at a time; their other
//!   logins wait their turn. So a hundred devices behind one address log in one after another, while a hundred
//!   parallel guesses from one address cannot crowd out other addresses, and guesses at one id wait behind
//!   each other until the id's backoff refuses them.
//! - **Failures back off**, per source address and per identity: after [`SOURCE_FREE_FAILURES`] (source) or
//!   [`ID_FREE_FAILURES`] (identity) failures in a row, further attempts are refused without a check for a
//!   time that doubles with each failure (up to [`SOURCE_MAX_BLOCK`] / [`ID_MAX_BLOCK`]); a streak is forgiven
//!   after a success or [`FORGET_AFTER`] of quiet. A remembered credential passes even then, so an attack on
//!   a device's id does not cut off the device once it has logged in.
//! - **Unknown identities cost the same**: they are checked against a decoy hash with the same parameters,
//!   and share the backoff rules, so neither timing nor answers tell which ids exist.
use crate::SharedRegistry;
use bydata_schemas::{DeviceId, IntegrationId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Checks one source address, or one identity, may have in the pool (queued or running) at once.
pub(crate) const PER_KEY_CHECKS: usize = 2;
/// Failures in a row from one source before it must wait.
pub(crate) const SOURCE_FREE_FAILURES: u32 = 20;
/// Failures in a row for one identity before it must wait.
pub(crate) const ID_FREE_FAILURES: u32 = 5;
/// Longest wait imposed on a source.
pub(crate) const SOURCE_MAX_BLOCK: Duration = Duration::from_secs(300);
/// Longest wait imposed on an identity (short: a stranger must not lock a device out for long).
pub(crate) const ID_MAX_BLOCK: Duration = Duration::from_secs(60);
/// A streak without a new failure for this long is forgotten.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most remembered credentials, streaks, and sources with checks in flight (each map); full maps are pruned,
/// and if that frees nothing, cleared (failing open on backoff rather than growing).
const MAX_ENTRIES: usize = 100_000;
/// Checks waiting for a worker at most.
const QUEUE: usize = 256;

/// Who logs in over MQTT: a device (client id = its id) or an inbound integration (`integration:{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Device(DeviceId),
    Integration(IntegrationId),
}

impl Identity {
    /// The identity a client id names, if it names one.
    pub fn parse(client_id: &str) -> Option<Identity> {
        if let Some(integration) = IntegrationId::from_mqtt_identity(client_id) {
            return Some(Identity::Integration(integration));
        }
        DeviceId::new(client_id).ok().map(Identity::Device)
    }

    fn key(&self) -> String {
        match self {
            Identity::Device(d) => format!("d:{d}"),
            Identity::Integration(i) => format!("i:{i}"),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Device(d) => write!(f, "device {d}"),
            Identity::Integration(i) => write!(f, "integration {i}"),
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// A known identity, a wrong password.
    Wrong,
    /// No such identity (checked against the decoy, answered like `Wrong`).
    Unknown,
    /// Too many failures from this source or for this identity: refused without a check.
    Backoff,
    /// No check could run in time (or this source has too many running).
    Busy,
    /// The registry failed.
    Error,
}

/// Settings of the gate.
#[derive(Debug, Clone, Copy)]
pub struct GateConfig {
    /// Argon2 checks run at once (threads in the pool).
    pub checks: usize,
    /// How long a login may wait for its check before it is refused as busy.
    pub queue_wait: Duration,
    /// How long a verified login is remembered.
    pub remember: Duration,
}

/// Where an edge counts the checks its logins cost: an Argon2 hash computed, or a login answered from memory.
pub trait GateCounters: Send + Sync {
    fn argon2(&self);
    fn remembered(&self);
}

struct Job {
    password: String,
    phc: String,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Option<bool>>,
}

type Digest32 = [u8; 32];

/// A verified login, under the keyed digest of (identity, password): the digest of the stored hash it
/// matched, and until when it is trusted.
type Remembered = (Digest32, Instant);

#[derive(Debug, Clone, Copy)]
struct Streak {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
struct Failures {
    by_source: HashMap<IpAddr, Streak>,
    by_identity: HashMap<String, Streak>,
}

/// The gate as one edge uses it: the shared pool, memory and backoff, and that edge's counters.
pub struct Gate {
    shared: Arc<Shared>,
    counters: Arc<dyn GateCounters>,
}

/// What every edge's handle on the gate shares.
struct Shared {
    registry: SharedRegistry,
    config: GateConfig,
    key: [u8; 32],
    decoy: String,
    verified: Mutex<HashMap<Digest32, Remembered>>,
    failures: Mutex<Failures>,
    /// Turns in the pool per source address (`s:…`) and per identity (`d:…`, `i:…`).
    turns: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Keeps `map` under [`MAX_ENTRIES`] before an insert: drops what `stale` says, then everything.
fn make_room<K, V>(map: &mut HashMap<K, V>, stale: impl FnMut(&K, &mut V) -> bool) {
    if map.len() >= MAX_ENTRIES {
        let mut stale = stale;
        map.retain(|k, v| !stale(k, v));
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
}

/// A turn in the pool for one key (a source or an identity); when the last holder or waiter of a key is
/// gone, the key is forgotten, so the map only holds keys with logins in progress.
struct Turn {
    permit: Option<OwnedSemaphorePermit>,
    turns: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    key: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = lock(&self.turns);
        drop(self.permit.take());
        if turns
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

impl Gate {
    /// Starts `config.checks` worker threads (they end when the last handle on the gate is dropped).
    pub fn new(
        registry: SharedRegistry,
        counters: Arc<dyn GateCounters>,
        config: GateConfig,
    ) -> Result<Arc<Self>, crate::Error> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..config.checks.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || work(&rx))
                .map_err(|e| crate::Error::Task {
                    detail: format!("cannot start a password-check thread: {e}"),
                })?;
        }
        let shared = Arc::new(Shared {
            registry,
            config,
            key: rand::random(),
            decoy: crate::decoy_password_hash()?,
            verified: Mutex::default(),
            failures: Mutex::default(),
            turns: Arc::default(),
            jobs,
        });
        Ok(Arc::new(Self { shared, counters }))
    }

    /// Another edge's handle on the same gate (pool, remembered logins, backoff), counting into `counters`.
    pub fn counting(&self, counters: Arc<dyn GateCounters>) -> Arc<Self> {
        Arc::new(Self {
            shared: self.shared.clone(),
            counters,
        })
    }

    /// Whether this login was verified recently (no check is run, nothing is counted).
    pub async fn verified(&self, who: &Identity, password: &str) -> bool {
        self.shared.verified(who, password).await
    }

    /// Checks a login from the address `source`.
    pub async fn check(&self, source: IpAddr, who: &Identity, password: &str) -> Verdict {
        self.shared
            .check(source, who, password, self.counters.as_ref())
            .await
    }
}

impl Shared {
    async fn stored_hash(&self, who: &Identity) -> Result<Option<String>, crate::Error> {
        match who {
            Identity::Device(d) => self.registry.device_password_hash(d).await,
            Identity::Integration(i) => self.registry.inbound_integration_password_hash(i).await,
        }
    }

    fn cache_key(&self, who: &Identity, password: &str) -> [u8; 32] {
        digest(&[&self.key, who.key().as_bytes(), password.as_bytes()])
    }

    /// Whether this identity and password were verified recently against the hash stored now.
    fn remembered(&self, key: &[u8; 32], stored: &str, now: Instant) -> bool {
        lock(&self.verified)
            .get(key)
            .is_some_and(|(matched, until)| {
                *until > now && *matched == digest(&[stored.as_bytes()])
            })
    }

    fn remember(&self, key: [u8; 32], stored: &str, now: Instant) {
        let mut verified = lock(&self.verified);
        make_room(&mut verified, |_, (_, until)| *until <= now);
        verified.insert(
            key,
            (digest(&[stored.as_bytes()]), now + self.config.remember),
        );
    }

    async fn verified(&self, who: &Identity, password: &str) -> bool {
        match self.stored_hash(who).await {
            Ok(Some(stored)) => {
                self.remembered(&self.cache_key(who, password), &stored, Instant::now())
            }
            _ => false,
        }
    }

    async fn check(
        &self,
        source: IpAddr,
        who: &Identity,
        password: &str,
        counters: &dyn GateCounters,
    ) -> Verdict {
        let stored = match self.stored_hash(who).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%who, error = %e, "cannot read a stored password hash");
                return Verdict::Error;
            }
        };
        let now = Instant::now();
        let key = self.cache_key(who, password);
        if let Some(stored) = &stored
            && self.remembered(&key, stored, now)
        {
            counters.remembered();
            return Verdict::Valid;
        }
        if self.blocked(source, who, now) {
            return Verdict::Backoff;
        }
        // One deadline for the whole wait: for the address's turn, the identity's, and a pool thread.
        let until = tokio::time::Instant::now() + self.config.queue_wait;
        let mut turns = Vec::with_capacity(2);
        for key in [format!("s:{source}"), who.key()] {
            match self.turn(key, until).await {
                Some(turn) => turns.push(turn),
                None => return Verdict::Busy,
            }
        }
        // Failures while this login waited may have started a backoff.
        if self.blocked(source, who, Instant::now()) {
            return Verdict::Backoff;
        }
        let phc = stored.clone().unwrap_or_else(|| self.decoy.clone());
        let Some(matched) = self.verify(password, phc, until, counters).await else {
            return Verdict::Busy;
        };
        match stored {
            Some(stored) if matched => {
                self.remember(key, &stored, Instant::now());
                self.forgive(source, who);
                Verdict::Valid
            }
            Some(_) => {
                self.fail(source, who, Instant::now());
                Verdict::Wrong
            }
            None => {
                self.fail(source, who, Instant::now());
                Verdict::Unknown
            }
        }
    }

    /// Runs one Argon2 verification on the pool; `None` if it could not start before `until`.
    async fn verify(
        &self,
        password: &str,
        phc: String,
        until: tokio::time::Instant,
        counters: &dyn GateCounters,
    ) -> Option<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            password: password.to_owned(),
            phc,
            deadline: until.into_std(),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return None,
        }
        counters.argon2();
        // The worker answers `None` itself for a job that waited past its deadline; the extra second covers a
        // check that started just before it.
        tokio::time::timeout_at(until + Duration::from_secs(1), answer)
            .await
            .ok()?
            .ok()?
    }

    /// Waits (until `until`) for one of `key`'s turns in the pool.
    async fn turn(&self, key: String, until: tokio::time::Instant) -> Option<Turn> {
        // The waiting future owns the only other handle on the semaphore, so once it is done (or timed out)
        // the turn's drop can tell whether anyone else still uses the key.
        let acquire = lock(&self.turns)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_KEY_CHECKS)))
            .clone()
            .acquire_owned();
        let mut turn = Turn {
            permit: None,
            turns: self.turns.clone(),
            key,
        };
        turn.permit = tokio::time::timeout_at(until, acquire).await.ok()?.ok();
        turn.permit.is_some().then_some(turn)
    }

    fn blocked(&self, source: IpAddr, who: &Identity, now: Instant) -> bool {
        let failures = lock(&self.failures);
        let blocked = |s: Option<&Streak>| {
            s.and_then(|s| s.blocked_until)
                .is_some_and(|until| until > now)
        };
        blocked(failures.by_source.get(&source)) || blocked(failures.by_identity.get(&who.key()))
    }

    fn fail(&self, source: IpAddr, who: &Identity, now: Instant) {
        let mut failures = lock(&self.failures);
        let Failures {
            by_source,
            by_identity,
        } = &mut *failures;
        add_failure(
            by_source,
            source,
            now,
            SOURCE_FREE_FAILURES,
            SOURCE_MAX_BLOCK,
        );
        add_failure(by_identity, who.key(), now, ID_FREE_FAILURES, ID_MAX_BLOCK);
    }

    fn forgive(&self, source: IpAddr, who: &Identity) {
        let mut failures = lock(&self.failures);
        failures.by_source.remove(&source);
        failures.by_identity.remove(&who.key());
    }
}

/// Counts a failure; from the `free`-th in a row on, blocks for 1 s, 2 s, 4 s, … up to `max`.
fn add_failure<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Streak>,
    key: K,
    now: Instant,
    free: u32,
    max: Duration,
) {
    make_room(map, |_, s| {
        now.saturating_duration_since(s.last) > FORGET_AFTER
    });
    let streak = map.entry(key).or_insert(Streak {
        failures: 0,
        last: now,
        blocked_until: None,
    });
    if now.saturating_duration_since(streak.last) > FORGET_AFTER {
        streak.failures = 0;
    }
    streak.failures += 1;
    streak.last = now;
    if streak.failures >= free {
        let doublings = (streak.failures - free).min(16);
        let block = Duration::from_secs(1u64 << doublings).min(max);
        streak.blocked_until = Some(now + block);
    }
}

/// A password-check worker: takes jobs until the gate (the sender) is gone.
fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match lock(rx).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        if Instant::now() > job.deadline {
            let _ = job.reply.send(None);
            continue;
        }
        let matched = crate::verify_password(&job.password, &job.phc).unwrap_or(false);
        let _ = job.reply.send(Some(matched));
    }
}

#[cfg(test)]
#[path = "logins_tests.rs"]
mod tests;
