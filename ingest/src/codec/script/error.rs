//! Why a script codec could not be loaded or could not decode, as data; the `Display` text is what the sensor's
//! owner reads, so it names the limit or the codec's own words rather than engine internals.

use std::fmt;

/// Why a script codec was refused at load or a decode produced nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error("the codec script is {size} bytes; at most {limit} bytes are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("the codec script has a syntax error{}: {message}", at_line(*line))]
    Syntax { message: String, line: Option<u32> },
    #[error(
        "the codec script defines no function decodeUplink(input) (LoRa Alliance TS013); \
         define it at the top level of the script"
    )]
    NoDecodeUplink,
    #[error(
        "the codec defines no function encodeDownlink(input) (LoRa Alliance TS013), so it cannot turn JSON \
         into a downlink: add `function encodeDownlink(input) {{ return {{ bytes: [...], fPort: input.fPort }}; }}` \
         to the codec (input is {{data, fPort}}), or send the downlink's bytes (\"bytes\" in base64 or \"hex\")"
    )]
    NoEncodeDownlink,
    #[error("the codec ran longer than its {limit_ms} ms limit and was stopped")]
    TimeLimit { limit_ms: u64 },
    #[error(
        "the codec is still stuck in an earlier run that exceeded its time limit; it is not started again \
         until that run ends"
    )]
    StillRunning,
    /// Also what `throw null` reads as: QuickJS throws null when it cannot even allocate the error object.
    #[error("the codec used more than its {} memory limit and was stopped", mebibytes(*limit_bytes))]
    MemoryLimit { limit_bytes: usize },
    #[error("the codec ran out of stack (recursion or nesting too deep) and was stopped")]
    StackOverflow,
    #[error("the codec threw an error{}: {message}", at_line(*line))]
    Exception { message: String, line: Option<u32> },
    #[error("the codec's result cannot be used: {reason}")]
    BadOutput { reason: String },
    #[error("the codec returned {value} for {path}; only finite numbers can be stored")]
    NonFinite { path: String, value: &'static str },
    #[error("the codec's result is {size} bytes as JSON; at most {limit} bytes are accepted")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("the codec reported {}: {}", count(errors.len(), "error"), errors.join("; "))]
    CodecErrors { errors: Vec<String> },
    /// The sandbox itself failed (no thread, no runtime); not the codec's fault. Logged by the caller.
    #[error("the codec could not be run: {reason}")]
    Internal { reason: String },
}

impl ScriptError {
    /// A stable, low-cardinality name for counting failures by reason.
    pub fn code(&self) -> &'static str {
        match self {
            ScriptError::TooLarge { .. } => "too_large",
            ScriptError::Syntax { .. } => "syntax",
            ScriptError::NoDecodeUplink => "no_decode_uplink",
            ScriptError::NoEncodeDownlink => "no_encode_downlink",
            ScriptError::TimeLimit { .. } => "time_limit",
            ScriptError::StillRunning => "still_running",
            ScriptError::MemoryLimit { .. } => "memory_limit",
            ScriptError::StackOverflow => "stack_overflow",
            ScriptError::Exception { .. } => "exception",
            ScriptError::BadOutput { .. } => "bad_output",
            ScriptError::NonFinite { .. } => "non_finite",
            ScriptError::OutputTooLarge { .. } => "output_too_large",
            ScriptError::CodecErrors { .. } => "codec_errors",
            ScriptError::Internal { .. } => "internal",
        }
    }

    /// Whether the runtime that produced this error must be thrown away: after a limit was hit the script's
    /// state may be half-updated (or its heap full), so the script is evaluated afresh before the next decode.
    pub(super) fn poisons_runtime(&self) -> bool {
        matches!(
            self,
            ScriptError::TimeLimit { .. }
                | ScriptError::MemoryLimit { .. }
                | ScriptError::StackOverflow
                | ScriptError::Internal { .. }
        )
    }
}

/// Why a codec was not accepted: its script does not load, its examples cannot be read, or some do not decode
/// to what they say. Every problem of every example is listed, not just the first.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecCheckError {
    #[error("the script does not load: {0}")]
    Load(#[source] ScriptError),
    #[error(transparent)]
    Example(#[from] ExampleFailures),
}

/// A problem in a request body, at a dotted path into it (`examples[1].input.bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// `n problems: a; b; c`.
struct Listed<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Listed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", count(self.0.len(), "problem"))?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Why [`ScriptCodec::check_examples`](super::ScriptCodec::check_examples) refused a codec: every difference
/// of every example.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the examples do not decode as stated: {}", Listed(.0))]
pub struct ExampleFailures(pub Vec<ExampleDifference>);

/// One difference between what an example states and what the codec gave (as bydata would store it).
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleDifference {
    /// Counts from 1 (the first example is example 1).
    pub example: usize,
    pub description: Option<String>,
    /// Where in the codec's result, e.g. `data.temperature`, `data.values[2]` or `errors`; empty for the
    /// decode as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ExampleDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "example {}", self.example)?;
        if let Some(d) = self.description.as_deref().filter(|d| !d.is_empty()) {
            write!(
                f,
                " ({})",
                shown(Some(&serde_json::Value::String(d.to_owned())))
            )?;
        }
        if !self.path.is_empty() {
            write!(f, ", {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

fn at_line(line: Option<u32>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

fn mebibytes(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A JSON value in a message, shortened: a codec's output can be 64 KiB.
pub(super) fn shown(value: Option<&serde_json::Value>) -> String {
    const MAX: usize = 80;
    let Some(value) = value else {
        return "absent".to_owned();
    };
    let text = value.to_string();
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}
