//! The codecs a pipeline holds: the pure built-in decoders, and uploaded JavaScript codecs loaded once per
//! version into their own sandbox (`codec::script`) and kept while in use.
//!
//! A device naming `js:{name}` follows the newest version: the registry is asked at most once per
//! `LATEST_FOR` per name, so a new upload decodes new uplinks within a second. A script that fails to load
//! is remembered as failed, so each of its uplinks is rejected with the load error instead of re-running it.
use crate::codec::script::{self, Limits, ScriptCodec, ScriptError};
use crate::codec::{DecodeContext, DecodeError, TextValue, decode};
use bydata_schemas::{Codec, CodecName, Reading, ScriptRef, Uplink};
use bydata_store::SharedRegistry;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the newest version of a codec name is trusted before the registry is asked again.
const LATEST_FOR: Duration = Duration::from_secs(1);
/// Most script codec versions held loaded; each is a QuickJS runtime of a few hundred KB to a few MB.
const MAX_LOADED: usize = 64;
/// How long a failed load is remembered before the script is tried again (a load that hit its time limit
/// on a busy machine may well succeed later).
const RETRY_LOAD_AFTER: Duration = Duration::from_secs(30);
/// A codec that hits a limit (time, memory, still running) this many times in a row is suspended…
const TRIPS: u32 = 3;
/// …for this long: its uplinks are refused at once, so one device cannot slow everyone's ingest.
const SUSPENDED_FOR: Duration = Duration::from_secs(30);

/// What one uplink decoded to.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) readings: Vec<Reading>,
    /// Text, for the device's latest state.
    pub(crate) state: Vec<TextValue>,
    /// The codec and version that produced the readings, e.g. `cayenne` or `js:elsys@3`.
    pub(crate) label: String,
    /// The codec's warnings, then what was kept as text or skipped (see `codec::Decoded`).
    pub(crate) warnings: Vec<String>,
}

impl Decoded {
    fn new(values: crate::codec::Decoded, label: String) -> Self {
        Self {
            readings: values.readings,
            state: values.state,
            label,
            warnings: values.warnings,
        }
    }
}

pub(crate) struct Decoders {
    registry: SharedRegistry,
    /// Decoding runs on a blocking thread; registry reads wait on the runtime through this.
    runtime: tokio::runtime::Handle,
    limits: Limits,
    latest: HashMap<CodecName, (Option<u32>, Instant)>,
    loaded: HashMap<(CodecName, u32), Loaded>,
}

struct Loaded {
    codec: Result<ScriptCodec, String>,
    loaded_at: Instant,
    used: Instant,
    /// Limit hits in a row, and until when the codec is suspended.
    trips: u32,
    suspended_until: Option<Instant>,
}

impl std::fmt::Debug for Decoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoders")
            .field("loaded", &self.loaded.len())
            .finish_non_exhaustive()
    }
}

impl Decoders {
    /// Call on the runtime (decoding itself then runs on a blocking thread).
    pub(crate) fn new(registry: SharedRegistry, limits: Limits) -> Self {
        Self {
            registry,
            runtime: tokio::runtime::Handle::current(),
            limits,
            latest: HashMap::new(),
            loaded: HashMap::new(),
        }
    }

    /// Decodes one uplink with `codec`. Blocking: a script codec may run for up to its CPU limit.
    pub(crate) fn decode(
        &mut self,
        codec: &Codec,
        uplink: &Uplink,
        ctx: &DecodeContext,
    ) -> Result<Decoded, DecodeError> {
        let Codec::Script(r) = codec else {
            return Ok(Decoded::new(
                decode(codec, &uplink.payload, ctx)?,
                codec.to_string(),
            ));
        };
        let version = self.version(r)?;
        let label = format!("js:{}@{version}", r.name);
        let limits = self.limits.clone();
        let key = (r.name.clone(), version);
        if self
            .loaded
            .get(&key)
            .is_some_and(|l| l.codec.is_err() && l.loaded_at.elapsed() >= RETRY_LOAD_AFTER)
        {
            self.loaded.remove(&key);
        }
        if !self.loaded.contains_key(&key) {
            if self.loaded.len() >= MAX_LOADED {
                // Unload the least recently used.
                if let Some(oldest) = self
                    .loaded
                    .iter()
                    .min_by_key(|(_, l)| l.used)
                    .map(|(k, _)| k.clone())
                {
                    self.loaded.remove(&oldest);
                }
            }
            let stored = self
                .runtime
                .block_on(self.registry.codec(&r.name, Some(version)));
            let loaded = match stored {
                Ok(Some(stored)) => ScriptCodec::new(&stored.script, limits)
                    .map_err(|e| format!("the script does not load: {e}")),
                Ok(None) => Err("the codec was not found".to_owned()),
                Err(e) => {
                    return Err(script_error(&label, "registry", e.to_string()));
                }
            };
            let now = Instant::now();
            self.loaded.insert(
                key.clone(),
                Loaded {
                    codec: loaded,
                    loaded_at: now,
                    used: now,
                    trips: 0,
                    suspended_until: None,
                },
            );
        }
        let Some(slot) = self.loaded.get_mut(&key) else {
            return Err(script_error(
                &label,
                "not_loaded",
                "the codec is not loaded".into(),
            ));
        };
        slot.used = Instant::now();
        if let Some(until) = slot.suspended_until {
            if Instant::now() < until {
                return Err(script_error(
                    &label,
                    "suspended",
                    format!(
                        "the codec hit its limits {TRIPS} times in a row and is suspended for {} s",
                        SUSPENDED_FOR.as_secs()
                    ),
                ));
            }
            slot.suspended_until = None;
            slot.trips = 0;
        }
        let codec = match &mut slot.codec {
            Ok(c) => c,
            Err(reason) => return Err(script_error(&label, "load_failed", reason.clone())),
        };
        // LoRaWAN uplinks carry their FPort, MQTT ones published on `devices/{id}/up/{fport}` theirs; others
        // (`devices/{id}/up`) pass 1, the first application port, so a codec written for a LoRaWAN device
        // also decodes its bytes sent over MQTT.
        let fport = uplink.fport.unwrap_or(1);
        let decoded = codec.decode_uplink(fport, &uplink.payload, uplink.received_at);
        let output = match decoded {
            Ok(output) => {
                slot.trips = 0;
                output
            }
            Err(e) => {
                if matches!(
                    e,
                    ScriptError::TimeLimit { .. }
                        | ScriptError::StillRunning
                        | ScriptError::MemoryLimit { .. }
                        | ScriptError::StackOverflow
                ) {
                    slot.trips += 1;
                    if slot.trips >= TRIPS {
                        slot.suspended_until = Some(Instant::now() + SUSPENDED_FOR);
                        tracing::warn!(codec = %label, "codec suspended after hitting its limits repeatedly");
                    }
                }
                return Err(script_error(&label, e.code(), e.to_string()));
            }
        };
        Ok(Decoded::new(script::readings(&output, ctx)?, label))
    }

    fn version(&mut self, r: &ScriptRef) -> Result<u32, DecodeError> {
        if let Some(v) = r.version {
            return Ok(v);
        }
        let latest = match self.latest.get(&r.name) {
            Some((v, at)) if at.elapsed() < LATEST_FOR => *v,
            _ => {
                let latest = self
                    .runtime
                    .block_on(self.registry.codec_latest_version(&r.name));
                let v = latest.map_err(|e| {
                    script_error(&format!("js:{}", r.name), "registry", e.to_string())
                })?;
                self.latest.insert(r.name.clone(), (v, Instant::now()));
                v
            }
        };
        latest.ok_or_else(|| {
            script_error(
                &format!("js:{}", r.name),
                "not_found",
                "no such codec: upload it (POST /api/v1/codecs) or change the device's codec"
                    .into(),
            )
        })
    }
}

fn script_error(codec: &str, code: &'static str, message: String) -> DecodeError {
    DecodeError::Script {
        codec: codec.to_owned(),
        code,
        message,
    }
}

/// Loads `script` in the sandbox with the pipeline's limits and decodes each example
/// (`[{fport, bytes_hex, expected}]`); `Err` says what failed, for the uploader.
pub fn check_codec(
    config: &crate::Config,
    script: &str,
    examples: &[script::Example],
) -> Result<(), script::CodecCheckError> {
    let mut codec =
        ScriptCodec::new(script, config.codec_limits()).map_err(script::CodecCheckError::Load)?;
    Ok(codec.check_examples(examples)?)
}
