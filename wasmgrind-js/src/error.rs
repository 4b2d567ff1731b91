//! Errors as JavaScript sees them.
//!
//! Every error that crosses into JS becomes an `Error` whose `message` is the Rust error's
//! message, with two more properties:
//!
//! - `kind`: the Rust error type (`PatchError`, `InstrumentError`, `EntryError`,
//!   `FormatError`, `LimitError`, `SessionError`);
//! - `variant`: the variant of that type (`MemoryNotShared`, `UnknownExport`, ...).
//!
//! The JS runtime adds its own kinds (`Trap`, `GuestPanic`, `Timeout`, ...) in the same shape.

use std::fmt;

use wasm_bindgen::JsValue;

/// An error on its way to JavaScript: the Rust message plus its `kind` and `variant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The Rust error type, for example `PatchError`.
    pub kind: &'static str,
    /// The variant of the error type, for example `MemoryNotShared`.
    pub variant: String,
    /// The error's message (its `Display`).
    pub message: String,
}

impl Failure {
    /// A failure of type `kind` from `error`; the variant is read from its `Debug` form.
    pub fn new<E: std::error::Error + fmt::Debug>(kind: &'static str, error: &E) -> Failure {
        Failure {
            kind,
            variant: variant_name(&format!("{error:?}")),
            message: error.to_string(),
        }
    }

    /// The JavaScript `Error` for this failure.
    pub fn into_js(self) -> JsValue {
        let error = js_sys::Error::new(&self.message);
        // Setting a property on a fresh, extensible object cannot fail.
        let _ = js_sys::Reflect::set(&error, &"kind".into(), &self.kind.into());
        let _ = js_sys::Reflect::set(&error, &"variant".into(), &self.variant.as_str().into());
        error.into()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}: {}", self.kind, self.variant, self.message)
    }
}

/// The leading identifier of a `Debug` rendering: `Parse(..)` gives `Parse`,
/// `MissingLinkerExports { .. }` gives `MissingLinkerExports`.
pub fn variant_name(debug: &str) -> String {
    let name: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        "Unknown".to_string()
    } else {
        name
    }
}

/// Errors of the tracing session in the utility module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// `traceStart` was called twice in one utility instance.
    #[error("a tracing session is already running in this utility memory; the previous run's session must be disposed of (traceDispose) before the next run starts")]
    AlreadyStarted,
    /// A call that needs a session came before `traceStart`.
    #[error("no tracing session is running: call traceStart first")]
    NotStarted,
    /// A thread id at or above the session's thread limit.
    #[error("thread id {tid} is not below the session's thread limit of {max}; raise the `maxThreads` option")]
    ThreadIdOutOfRange {
        /// The thread id.
        tid: u32,
        /// The limit.
        max: u32,
    },
    /// The location table handed to `traceStart` does not parse.
    #[error("the location table is not valid JSON of the instrumenter's locations: {0}")]
    BadLocations(String),
    /// The trace handed to `encodeTrace` does not parse.
    #[error("the trace is not valid JSON of a Wasmgrind trace (`{{\"events\": [...], \"locations\": [...]}}`): {0}")]
    BadTrace(String),
    /// A saved trace (`cli.js analyze`) holds an event that no run records: the file is
    /// damaged, or its location table is another run's.
    #[error("event {index} of the trace {problem}: the trace file is damaged, or the location table (locations.json) is not the one of its run")]
    DamagedTrace {
        /// The event's index in the trace (from 0).
        index: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// The thread limit is zero or too large.
    #[error("invalid thread limit {0}: it must be between 1 and 1048576")]
    BadThreadLimit(u32),
    /// The trace was finished before (`traceFinish` is called once per run).
    #[error("the trace of this session was finished already; every run needs a fresh session")]
    Finished,
}

/// A limit of the trace that a run reached: the trace ends there and the run fails.
/// Each message names the option that set the limit, in the CLI's and the API's spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The recorder refused events beyond `maxEvents`.
    #[error(
        "the trace reached {events} events, the limit set by --max-events (maxEvents); raise \
         it or record less (--sample or --no-memory-trace; sampling: true or \
         memoryTrace: false)"
    )]
    MaxEvents {
        /// The events in the trace: the limit.
        events: u64,
    },
    /// The trace's files passed `maxTraceBytes`.
    #[error(
        "the trace reached {events} events and {bytes} bytes, more than the limit of {limit} \
         bytes set by --max-trace-bytes (maxTraceBytes); raise it or record less \
         (--sample or --no-memory-trace; sampling: true or memoryTrace: false)"
    )]
    MaxTraceBytes {
        /// The events in the trace.
        events: u64,
        /// Bytes of RapidBin, STD and the native format together.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

impl LimitError {
    /// The events in the trace when the limit was reached.
    pub fn events(&self) -> u64 {
        match *self {
            LimitError::MaxEvents { events } | LimitError::MaxTraceBytes { events, .. } => events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_are_read_from_debug() {
        assert_eq!(variant_name("Parse(BinaryReaderError { .. })"), "Parse");
        assert_eq!(
            variant_name("MissingLinkerExports { names: [\"x\"] }"),
            "MissingLinkerExports"
        );
        assert_eq!(variant_name("NoMemory"), "NoMemory");
        assert_eq!(variant_name("(weird)"), "Unknown");
    }

    #[test]
    fn limit_errors_name_the_option_and_the_events() {
        let e = LimitError::MaxEvents { events: 16_777_216 };
        assert_eq!(
            e.to_string(),
            "the trace reached 16777216 events, the limit set by --max-events (maxEvents); \
             raise it or record less (--sample or --no-memory-trace; sampling: true or \
             memoryTrace: false)"
        );
        let f = Failure::new("LimitError", &e);
        assert_eq!(f.variant, "MaxEvents");
        let e = LimitError::MaxTraceBytes {
            events: 1000,
            bytes: 30_000,
            limit: 20_000,
        };
        let text = e.to_string();
        assert!(text.contains("1000 events"), "{text}");
        assert!(text.contains("--max-trace-bytes (maxTraceBytes)"), "{text}");
        assert_eq!(e.events(), 1000);
    }

    #[test]
    fn failure_keeps_message_kind_and_variant() {
        let f = Failure::new(
            "SessionError",
            &SessionError::ThreadIdOutOfRange { tid: 9, max: 4 },
        );
        assert_eq!(f.kind, "SessionError");
        assert_eq!(f.variant, "ThreadIdOutOfRange");
        assert!(f.message.contains("thread id 9"), "{}", f.message);
        assert!(f
            .to_string()
            .starts_with("SessionError::ThreadIdOutOfRange: "));
    }
}
