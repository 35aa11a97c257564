//! JavaScript payload codecs (LoRa Alliance TS013): a device owner's script defining `decodeUplink(input)`, run
//! in a QuickJS sandbox (rquickjs).
//!
//! - **Isolation.** Each [`ScriptCodec`] has its own runtime and context, so what one codec adds to
//!   `Object.prototype` or the globals is invisible to every other. The context has the standard built-ins
//!   only (no module loader, files, network, timers or host objects; `console` exists and discards what it is
//!   given), and `Date.now()` / `new Date()` give the message's receive time, so a decode depends on its input
//!   and the codec's own globals alone.
//! - **Limits** ([`Limits`]): CPU time per decode (and for the script's top level) through QuickJS's interrupt
//!   handler, memory per runtime, native stack, script size and output size. After a limit was hit the runtime
//!   is thrown away and the script evaluated afresh on the next decode, so no half-updated state survives.
//! - **Thread.** The runtime lives on a thread of its own, which makes the codec `Send` (an rquickjs runtime is
//!   not) and bounds the caller's wait: some QuickJS built-ins run long loops in C without polling the
//!   interrupt handler (e.g. `Array.prototype.sort` on an array whose length was set to 2^32, or `indexOf` of a
//!   long string in a longer one). If no answer comes within twice the CPU limit plus one second, the decode
//!   fails with [`ScriptError::TimeLimit`] and the thread is abandoned to finish on its own, which can take
//!   hours; until it has, the codec answers [`ScriptError::StillRunning`] at once instead of starting another.
//!   Only a separate process could take that CPU back.
//! - **Input.** `{bytes, fPort, recvTime}`: `bytes` a plain Array of numbers made in the codec's own context
//!   (so the codec's prototype additions apply to it), `recvTime` a Date.
//! - **Output.** The result goes through `JSON.stringify` inside the context, so `undefined` values and
//!   functions are dropped from objects (and become `null` in arrays), as in any JSON, and `toJSON` applies;
//!   BigInts become numbers. A NaN or ±Infinity in `data` refuses the decode naming its path (JSON has no such
//!   numbers, and every format here refuses a message whole rather than store part of it). A non-empty
//!   `errors` is [`ScriptError::CodecErrors`]: TS013's decode with errors has no data.
//!   The keys set to `undefined` are noted ([`Output::undefined_keys`]) so that an example expecting one is
//!   told why it is absent.
//! - [`readings`] flattens `data` into readings and [`stored`] says what bydata would keep of a decode (numbers
//!   and text state); [`parse_examples`] reads examples in bydata's or TTN's shape and
//!   [`ScriptCodec::check_examples`] checks a codec against them on what would be stored; [`trial`] runs a
//!   codec once for `POST /api/v1/codecs/test`.
//! - **Downlinks.** [`ScriptCodec::encode_downlink`] calls TS013's `encodeDownlink({data, fPort})` (optional in
//!   a codec; its absence is [`ScriptError::NoEncodeDownlink`]) under the same limits; its result
//!   `{bytes, fPort, warnings, errors}` is read as a decode's is, `bytes` checked to be integers 0–255.

mod engine;
mod error;
mod example_fields;
mod example_shape;
mod examples;
mod output;
mod readings;
mod stored;
mod trial;

pub use error::{CodecCheckError, ExampleDifference, ExampleFailures, Problem, ScriptError};
pub use example_fields::{decode_base64, decode_hex};
pub use example_shape::{examples_json, parse_examples};
pub use examples::{EXAMPLE_RECV_TIME, Example};
pub use readings::readings;
pub use stored::{Stored, stored};
pub use trial::trial;

use bydata_schemas::UnixNanos;
use engine::Engine;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What a codec may use. The defaults suit vendor codecs, including minified bundles of a few hundred KB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU time for one decode, and for evaluating the script's top level (default 100 ms).
    pub cpu: Duration,
    /// Memory of the codec's runtime: its script, globals and each decode's garbage (default 32 MiB; at least
    /// 1 MiB is used, as QuickJS reads 0 as "unlimited").
    pub memory_bytes: usize,
    /// Size of the script's source (default 1 MiB).
    pub max_script_bytes: usize,
    /// Size of `decodeUplink`'s result as JSON (default 64 KiB).
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(100),
            memory_bytes: 32 << 20,
            max_script_bytes: 1 << 20,
            max_output_bytes: 64 << 10,
        }
    }
}

const MIN_MEMORY_BYTES: usize = 1 << 20;

/// The codec thread's stack: QuickJS may use [`engine::JS_STACK_BYTES`] of it, the rest is for Rust frames.
const THREAD_STACK_BYTES: usize = 4 << 20;

/// How long past its CPU limits a codec thread may take to answer before it is abandoned: the interrupt
/// handler normally stops a codec within milliseconds of its deadline; this is for built-ins that do not poll.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// A successful decode: TS013's `data` and `warnings` (its `errors` were empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub data: Map<String, Value>,
    pub warnings: Vec<String>,
    /// Keys (at any depth) the codec set to `undefined`, which JSON drops: not in `data`, named when an
    /// example expects them.
    pub undefined_keys: Vec<String>,
}

/// A successful `encodeDownlink`: the bytes to send and the FPort to send them on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub fport: u8,
    pub warnings: Vec<String>,
}

/// A loaded JavaScript codec: a thread (4 MiB of stack, reserved rather than used) holding a QuickJS runtime
/// (from a few hundred KB to its memory limit). Decoding blocks the calling thread for up to the CPU limit (and,
/// when a built-in ignores it, up to twice that plus a second), so call it from `spawn_blocking` or a thread of
/// its own in async code. One codec decodes one message at a time; its globals persist between decodes, as in
/// other TS013 runners, until a limit renews the runtime.
pub struct ScriptCodec {
    source: Arc<str>,
    limits: Limits,
    worker: Worker,
}

enum Worker {
    Running(Handle),
    /// Abandoned after it did not answer in time; replaced once it has finished.
    Stuck(JoinHandle<()>),
    /// Its thread ended unexpectedly (it panicked); replaced on the next call.
    Stopped,
}

struct Handle {
    requests: SyncSender<Request>,
    replies: Receiver<Result<Reply, ScriptError>>,
    thread: JoinHandle<()>,
}

enum Request {
    Load,
    Decode {
        fport: u8,
        bytes: Vec<u8>,
        recv_time: UnixNanos,
    },
    Encode {
        fport: u8,
        data_json: String,
    },
}

enum Reply {
    Loaded,
    Decoded(Output),
    Encoded(Encoded),
}

impl ScriptCodec {
    /// Loads a codec: evaluates `source` in a fresh runtime with the limits on and checks that it defines a
    /// function `decodeUplink`.
    pub fn new(source: &str, limits: Limits) -> Result<Self, ScriptError> {
        if source.len() > limits.max_script_bytes {
            return Err(ScriptError::TooLarge {
                size: source.len(),
                limit: limits.max_script_bytes,
            });
        }
        let limits = Limits {
            memory_bytes: limits.memory_bytes.max(MIN_MEMORY_BYTES),
            ..limits
        };
        let mut codec = Self {
            source: source.into(),
            limits,
            worker: Worker::Stopped,
        };
        let wait = codec.limits.cpu.saturating_add(WATCHDOG_GRACE);
        codec.ask(Request::Load, wait)?;
        Ok(codec)
    }

    /// The limits this codec runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Calls `decodeUplink({bytes, fPort, recvTime})`; see the module docs for how its result is read.
    pub fn decode_uplink(
        &mut self,
        fport: u8,
        bytes: &[u8],
        recv_time: UnixNanos,
    ) -> Result<Output, ScriptError> {
        let request = Request::Decode {
            fport,
            bytes: bytes.to_vec(),
            recv_time,
        };
        // The script may have to be evaluated again first (after a limit was hit), then the decode runs.
        let wait = self
            .limits
            .cpu
            .saturating_mul(2)
            .saturating_add(WATCHDOG_GRACE);
        match self.ask(request, wait)? {
            Reply::Decoded(output) => Ok(output),
            Reply::Loaded | Reply::Encoded(_) => Err(ScriptError::Internal {
                reason: "the codec thread answered a decode with something else".to_owned(),
            }),
        }
    }

    /// Calls `encodeDownlink({data, fPort})` (TS013) under the same limits as a decode; the bytes and FPort it
    /// returned, or why not ([`ScriptError::NoEncodeDownlink`] if the codec has no such function).
    pub fn encode_downlink(
        &mut self,
        fport: u8,
        data: &serde_json::Value,
    ) -> Result<Encoded, ScriptError> {
        let request = Request::Encode {
            fport,
            data_json: data.to_string(),
        };
        let wait = self
            .limits
            .cpu
            .saturating_mul(2)
            .saturating_add(WATCHDOG_GRACE);
        match self.ask(request, wait)? {
            Reply::Encoded(encoded) => Ok(encoded),
            Reply::Loaded | Reply::Decoded(_) => Err(ScriptError::Internal {
                reason: "the codec thread answered an encode with something else".to_owned(),
            }),
        }
    }

    fn ask(&mut self, request: Request, wait: Duration) -> Result<Reply, ScriptError> {
        let handle = self.running()?;
        if handle.requests.send(request).is_err() {
            self.worker = Worker::Stopped;
            return Err(stopped());
        }
        match spin_then_wait(&handle.replies, wait) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                if let Worker::Running(handle) =
                    std::mem::replace(&mut self.worker, Worker::Stopped)
                {
                    // Dropping the channels lets the thread end as soon as the built-in returns.
                    self.worker = Worker::Stuck(handle.thread);
                }
                Err(ScriptError::TimeLimit {
                    limit_ms: u64::try_from(self.limits.cpu.as_millis()).unwrap_or(u64::MAX),
                })
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.worker = Worker::Stopped;
                Err(stopped())
            }
        }
    }

    /// The running codec thread, started afresh if there is none (it then evaluates the script on its first
    /// request).
    fn running(&mut self) -> Result<&Handle, ScriptError> {
        match &self.worker {
            Worker::Running(_) => {}
            Worker::Stuck(thread) if !thread.is_finished() => {
                return Err(ScriptError::StillRunning);
            }
            Worker::Stuck(_) | Worker::Stopped => {
                self.worker =
                    Worker::Running(spawn(Arc::clone(&self.source), self.limits.clone())?);
            }
        }
        match &self.worker {
            Worker::Running(handle) => Ok(handle),
            _ => Err(stopped()),
        }
    }
}

impl fmt::Debug for ScriptCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.worker {
            Worker::Running(_) => "running",
            Worker::Stuck(_) => "stuck",
            Worker::Stopped => "stopped",
        };
        f.debug_struct("ScriptCodec")
            .field("source_bytes", &self.source.len())
            .field("limits", &self.limits)
            .field("worker", &state)
            .finish()
    }
}

fn stopped() -> ScriptError {
    ScriptError::Internal {
        reason: "the codec's thread stopped unexpectedly".to_owned(),
    }
}

/// How long either side polls for the other's next message before it sleeps. Waking a sleeping thread costs
/// 30–80 µs on a virtual machine, several times a typical decode (15–20 µs), so back-to-back decodes (a
/// pipeline batch) hand over by polling; an idle codec thread sleeps after this.
const SPIN: Duration = Duration::from_micros(100);

/// Polls `f` until it yields something other than `Empty`, for at most `limit`.
fn spin_for<T>(
    limit: Duration,
    mut f: impl FnMut() -> Result<T, TryRecvError>,
) -> Option<Result<T, TryRecvError>> {
    let start = std::time::Instant::now();
    loop {
        match f() {
            Err(TryRecvError::Empty) if start.elapsed() < limit => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return None,
            other => return Some(other),
        }
    }
}

fn spin_then_wait<T>(replies: &Receiver<T>, wait: Duration) -> Result<T, RecvTimeoutError> {
    match spin_for(SPIN, || replies.try_recv()) {
        Some(Ok(reply)) => Ok(reply),
        Some(Err(_)) => Err(RecvTimeoutError::Disconnected),
        None => replies.recv_timeout(wait.saturating_sub(SPIN)),
    }
}

fn spawn(source: Arc<str>, limits: Limits) -> Result<Handle, ScriptError> {
    // Bounded at one: the codec sends a request only after the reply to the previous one (or abandons the thread).
    let (requests, inbox) = mpsc::sync_channel(1);
    let (outbox, replies) = mpsc::sync_channel(1);
    let thread = thread::Builder::new()
        .name("js-codec".to_owned())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || serve(&source, limits, &inbox, &outbox))
        .map_err(|e| ScriptError::Internal {
            reason: format!("cannot start a codec thread: {e}"),
        })?;
    Ok(Handle {
        requests,
        replies,
        thread,
    })
}

/// The codec thread: owns the runtime, answers requests until the codec is dropped or abandons it.
fn serve(
    source: &str,
    limits: Limits,
    inbox: &Receiver<Request>,
    outbox: &SyncSender<Result<Reply, ScriptError>>,
) {
    let mut engine: Option<Engine> = None;
    loop {
        let request = match spin_for(SPIN, || inbox.try_recv()) {
            Some(Ok(request)) => request,
            Some(Err(TryRecvError::Disconnected)) => break,
            _ => match inbox.recv() {
                Ok(request) => request,
                Err(_) => break,
            },
        };
        let reply = answer(source, &limits, &mut engine, request);
        if outbox.send(reply).is_err() {
            break;
        }
    }
}

fn answer(
    source: &str,
    limits: &Limits,
    engine: &mut Option<Engine>,
    request: Request,
) -> Result<Reply, ScriptError> {
    let loaded = match engine {
        Some(loaded) => loaded,
        None => engine.insert(Engine::load(source, limits.clone())?),
    };
    match request {
        Request::Load => Ok(Reply::Loaded),
        Request::Decode {
            fport,
            bytes,
            recv_time,
        } => {
            let result = loaded.decode(fport, &bytes, recv_time);
            let poisoned = result.as_ref().is_err_and(ScriptError::poisons_runtime);
            if poisoned || loaded.worn_out() {
                *engine = None;
            }
            result.map(Reply::Decoded)
        }
        Request::Encode { fport, data_json } => {
            let result = loaded.encode(fport, &data_json);
            let poisoned = result.as_ref().is_err_and(ScriptError::poisons_runtime);
            if poisoned || loaded.worn_out() {
                *engine = None;
            }
            result.map(Reply::Encoded)
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "script/encode_tests.rs"]
mod encode_tests;
