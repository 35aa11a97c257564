//! One codec's QuickJS runtime and context, living on the codec's own thread: evaluating the script, one
//! `decodeUplink` call, each under the CPU deadline, and JavaScript's failures sorted into [`ScriptError`]s.

use super::{Encoded, Limits, Output, ScriptError, output};
use bydata_schemas::UnixNanos;
use rquickjs::context::{EvalOptions, intrinsic};
use rquickjs::{
    Array, CatchResultExt, CaughtError, Context, Ctx, Function, Object, Runtime, Type, Value,
};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

/// The built-ins a codec gets: ES2020's standard library with JSON, Date, RegExp, Map/Set, typed arrays, Proxy
/// and Promise (whose jobs never run: `decodeUplink` is synchronous). `Eval` is QuickJS's compiler, needed to
/// evaluate any script; the `eval` it also exposes stays inside this context. Left out: `performance`,
/// WeakRef/FinalizationRegistry and DOMException; rquickjs adds no module loader unless asked and has none of
/// quickjs-libc (`std`, `os`, timers, files, sockets), so nothing reaches the host.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

const PRELUDE: &str = include_str!("prelude.js");
const PRELUDE_NAME: &str = "bydata-prelude.js";
/// The file name QuickJS gives the codec's frames in stack traces; lines are read back from it.
const SCRIPT_NAME: &str = "codec.js";
/// The host helpers the prelude installs (non-writable, so the codec cannot swap them).
const HOST: &str = "__bydata";

/// How much native stack QuickJS may use before throwing "Maximum call stack size exceeded"; the codec thread's
/// stack ([`super::THREAD_STACK_BYTES`]) leaves room above it for the Rust frames.
pub(super) const JS_STACK_BYTES: usize = 1 << 20;

/// After this many decodes the heap is measured (a walk of every object, so not after each one); a runtime
/// that has kept three quarters of its memory limit is replaced before it fails a decode.
const MEASURE_EVERY: u32 = 64;

/// The CPU deadline the interrupt handler checks. QuickJS calls the handler every few thousand bytecode
/// branches, including inside long regular-expression matches.
#[derive(Debug, Default)]
struct Deadline {
    until: Cell<Option<Instant>>,
    fired: Cell<bool>,
}

impl Deadline {
    fn expired(&self) -> bool {
        let expired = self
            .until
            .get()
            .is_some_and(|until| Instant::now() >= until);
        if expired {
            self.fired.set(true);
        }
        expired
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Load,
    Decode,
}

/// A failure inside the context, before it is classified (classifying may need the runtime, which is locked
/// while the context is in use).
enum Fault {
    Thrown {
        name: Option<String>,
        message: String,
        stack: Option<String>,
        /// QuickJS throws `null` when it runs out of memory even for the error object; so does `throw null`,
        /// which is therefore read as out of memory too.
        null: bool,
    },
    Engine(rquickjs::Error),
    Script(ScriptError),
}

fn fault(error: CaughtError<'_>) -> Fault {
    match error {
        CaughtError::Exception(e) => Fault::Thrown {
            name: e
                .as_object()
                .get::<_, Option<String>>("name")
                .ok()
                .flatten(),
            message: e.message().unwrap_or_default(),
            stack: e.stack(),
            null: false,
        },
        CaughtError::Value(v) => Fault::Thrown {
            name: None,
            message: describe_thrown(&v),
            stack: None,
            null: v.is_null(),
        },
        CaughtError::Error(e) => Fault::Engine(e),
    }
}

/// Runs one rquickjs call, turning a JavaScript exception into a [`Fault`].
fn js<'js, T>(ctx: &Ctx<'js>, result: rquickjs::Result<T>) -> Result<T, Fault> {
    result.catch(ctx).map_err(fault)
}

pub(super) struct Engine {
    // The context holds its own handle to the runtime, so the drop order of these two does not matter.
    context: Context,
    runtime: Runtime,
    deadline: Rc<Deadline>,
    limits: Limits,
    decodes: u32,
}

impl Engine {
    /// A fresh runtime and context with the limits on, the prelude and then the codec evaluated (its top level
    /// under the CPU deadline too), and `decodeUplink` checked to be a function.
    pub(super) fn load(source: &str, limits: Limits) -> Result<Self, ScriptError> {
        let runtime =
            Runtime::new().map_err(|e| internal("cannot create a JavaScript runtime", &e))?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(JS_STACK_BYTES);
        let deadline = Rc::new(Deadline::default());
        let handler = Rc::clone(&deadline);
        runtime.set_interrupt_handler(Some(Box::new(move || handler.expired())));
        let context = Context::custom::<Intrinsics>(&runtime).map_err(|e| match e {
            rquickjs::Error::Allocation => ScriptError::MemoryLimit {
                limit_bytes: limits.memory_bytes,
            },
            e => internal("cannot create a JavaScript context", &e),
        })?;
        let engine = Self {
            context,
            runtime,
            deadline,
            limits,
            decodes: 0,
        };
        engine.guarded(Phase::Load, |ctx| {
            js(
                ctx,
                ctx.eval_with_options::<(), _>(PRELUDE, options(PRELUDE_NAME, true)),
            )?;
            js(
                ctx,
                ctx.eval_with_options::<(), _>(source, options(SCRIPT_NAME, false)),
            )?;
            let decode: Value = js(ctx, ctx.globals().get("decodeUplink"))?;
            if decode.is_function() {
                Ok(())
            } else {
                Err(Fault::Script(ScriptError::NoDecodeUplink))
            }
        })?;
        Ok(engine)
    }

    /// Calls `decodeUplink({bytes, fPort, recvTime})` and reads its result as JSON.
    pub(super) fn decode(
        &mut self,
        fport: u8,
        bytes: &[u8],
        recv_time: UnixNanos,
    ) -> Result<Output, ScriptError> {
        self.decodes = self.decodes.wrapping_add(1);
        let json = self.guarded(Phase::Decode, |ctx| {
            let globals = ctx.globals();
            let host: Object = js(ctx, globals.get(HOST))?;
            let decode: Value = js(ctx, globals.get("decodeUplink"))?;
            let Some(decode) = decode.into_function() else {
                return Err(Fault::Script(ScriptError::NoDecodeUplink));
            };
            // Created in the codec's context, so what the codec added to Array.prototype applies to it.
            let array = js(ctx, Array::new(ctx.clone()))?;
            for (i, byte) in bytes.iter().enumerate() {
                js(ctx, array.set(i, *byte))?;
            }
            let input_fn: Function = js(ctx, host.get("input"))?;
            // Whole milliseconds, as Date.now() gives them.
            let recv_ms = recv_time.div_euclid(1_000_000) as f64;
            let input: Value = js(ctx, input_fn.call((array, fport, recv_ms)))?;
            let result: Value = js(ctx, decode.call((input,)))?;
            let found = describe_type(&result);
            if found != "an object" {
                return Err(Fault::Script(ScriptError::BadOutput {
                    reason: format!(
                        "decodeUplink returned {found}; expected an object {{data, warnings, errors}}"
                    ),
                }));
            }
            let stringify: Function = js(ctx, host.get("stringify"))?;
            let json: Option<String> = js(ctx, stringify.call((result,)))?;
            let undefined: Function = js(ctx, host.get("undefinedKeys"))?;
            let undefined: String = js(ctx, undefined.call(()))?;
            let json = json.ok_or_else(|| {
                Fault::Script(ScriptError::BadOutput {
                    reason: "decodeUplink's result has no JSON form".to_owned(),
                })
            })?;
            Ok((json, undefined))
        })?;
        let (json, undefined) = json;
        let mut output = output::parse(&json, &self.limits)?;
        output.undefined_keys = undefined_keys(&undefined);
        Ok(output)
    }

    /// Calls `encodeDownlink({data, fPort})` (`data` made from `data_json` inside the context) and reads its
    /// result as JSON: `{bytes, fPort, warnings, errors}`.
    pub(super) fn encode(&mut self, fport: u8, data_json: &str) -> Result<Encoded, ScriptError> {
        self.decodes = self.decodes.wrapping_add(1);
        let json = self.guarded(Phase::Decode, |ctx| {
            let globals = ctx.globals();
            let host: Object = js(ctx, globals.get(HOST))?;
            let encode: Value = js(ctx, globals.get("encodeDownlink"))?;
            let Some(encode) = encode.into_function() else {
                return Err(Fault::Script(ScriptError::NoEncodeDownlink));
            };
            let input_fn: Function = js(ctx, host.get("encodeInput"))?;
            let input: Value = js(ctx, input_fn.call((data_json, fport)))?;
            let result: Value = js(ctx, encode.call((input,)))?;
            let found = describe_type(&result);
            if found != "an object" {
                return Err(Fault::Script(ScriptError::BadOutput {
                    reason: format!(
                        "encodeDownlink returned {found}; expected an object {{bytes, fPort, warnings, errors}}"
                    ),
                }));
            }
            let stringify: Function = js(ctx, host.get("stringify"))?;
            let json: Option<String> = js(ctx, stringify.call((result,)))?;
            json.ok_or_else(|| {
                Fault::Script(ScriptError::BadOutput {
                    reason: "encodeDownlink's result has no JSON form".to_owned(),
                })
            })
        })?;
        output::parse_encoded(&json, &self.limits, fport)
    }

    /// Whether the runtime has kept so much memory that it should be replaced (measured every
    /// [`MEASURE_EVERY`] decodes; always false in between).
    pub(super) fn worn_out(&self) -> bool {
        self.decodes.is_multiple_of(MEASURE_EVERY)
            && self.heap_above(self.limits.memory_bytes / 4 * 3)
    }

    fn heap_above(&self, bytes: usize) -> bool {
        let used = self.runtime.memory_usage().malloc_size;
        usize::try_from(used).is_ok_and(|used| used > bytes)
    }

    /// Runs `f` in the context with the CPU deadline armed, then classifies what went wrong.
    fn guarded<T>(
        &self,
        phase: Phase,
        f: impl FnOnce(&Ctx<'_>) -> Result<T, Fault>,
    ) -> Result<T, ScriptError> {
        self.deadline.fired.set(false);
        self.deadline
            .until
            .set(Instant::now().checked_add(self.limits.cpu));
        let result = self.context.with(|ctx| f(&ctx));
        self.deadline.until.set(None);
        result.map_err(|fault| self.classify(fault, phase))
    }

    fn classify(&self, fault: Fault, phase: Phase) -> ScriptError {
        // The interrupt's exception is uncatchable, so whatever else was thrown, the deadline is the cause.
        if self.deadline.fired.get() {
            return ScriptError::TimeLimit {
                limit_ms: u64::try_from(self.limits.cpu.as_millis()).unwrap_or(u64::MAX),
            };
        }
        let memory = ScriptError::MemoryLimit {
            limit_bytes: self.limits.memory_bytes,
        };
        match fault {
            Fault::Script(e) => e,
            Fault::Engine(rquickjs::Error::Allocation) => memory,
            Fault::Engine(e) => internal("the JavaScript engine failed", &e),
            Fault::Thrown {
                name,
                message,
                stack,
                null,
            } => {
                let name = name.as_deref().unwrap_or_default();
                let line = stack.as_deref().and_then(script_line);
                if null || (name == "InternalError" && message == "out of memory") {
                    memory
                } else if name == "RangeError" && message == "Maximum call stack size exceeded" {
                    ScriptError::StackOverflow
                } else if phase == Phase::Load && name == "SyntaxError" && is_parse_error(&stack) {
                    ScriptError::Syntax { message, line }
                } else {
                    ScriptError::Exception { message, line }
                }
            }
        }
    }
}

/// The prelude's NUL-separated list of keys set to undefined, each once, at most 32.
fn undefined_keys(joined: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for key in joined.split('\u{0}').filter(|k| !k.is_empty()) {
        if keys.len() == 32 {
            break;
        }
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    keys
}

fn options(file_name: &str, strict: bool) -> EvalOptions {
    let mut options = EvalOptions::default();
    // Vendor codecs are sloppy scripts that assign to undeclared variables; rquickjs defaults to strict.
    options.strict = strict;
    options.global = true;
    options.filename = Some(file_name.to_owned());
    options
}

fn internal(what: &str, e: &rquickjs::Error) -> ScriptError {
    ScriptError::Internal {
        reason: format!("{what}: {e}"),
    }
}

/// A parse error's stack is just the position (`at codec.js:2:5`); an error thrown by running code names the
/// function (`at <eval> (codec.js:2:5)`), e.g. JSON.parse's SyntaxError, which is an exception, not bad syntax.
fn is_parse_error(stack: &Option<String>) -> bool {
    stack
        .as_deref()
        .and_then(|s| s.lines().next())
        .is_some_and(|first| first.trim_start().starts_with("at ") && !first.contains('('))
}

/// The line of the innermost frame in the codec's own script (frames in the prelude are skipped).
fn script_line(stack: &str) -> Option<u32> {
    let marker = format!("{SCRIPT_NAME}:");
    let at = stack.find(&marker)? + marker.len();
    stack[at..].split(':').next()?.parse().ok()
}

/// What a non-Error `throw` threw, as the codec's owner would want it: the string or number itself.
fn describe_thrown(value: &Value<'_>) -> String {
    if let Some(s) = value.as_string() {
        return s
            .to_string()
            .unwrap_or_else(|_| "a string that is not valid text".to_owned());
    }
    match value.type_of() {
        Type::Int | Type::Float => value.as_number().map(|n| n.to_string()).unwrap_or_default(),
        Type::Bool => value.as_bool().map(|b| b.to_string()).unwrap_or_default(),
        Type::Uninitialized | Type::Undefined => "undefined".to_owned(),
        Type::Null => "null".to_owned(),
        _ => format!("{} (not an Error)", describe_type(value)),
    }
}

fn describe_type(value: &Value<'_>) -> &'static str {
    if value.is_promise() {
        return "a Promise (decodeUplink must not be async)";
    }
    match value.type_of() {
        Type::Uninitialized | Type::Undefined => "undefined",
        Type::Null => "null",
        Type::Bool => "a boolean",
        Type::Int | Type::Float | Type::BigInt => "a number",
        Type::String => "a string",
        Type::Symbol => "a symbol",
        Type::Array => "an array",
        Type::Function | Type::Constructor => "a function",
        _ => "an object",
    }
}
