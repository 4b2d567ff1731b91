//! Wasmgrind's utility module for the JS runtime.
//!
//! This crate is built for `wasm32-unknown-unknown` with a shared, imported memory
//! (`cargo xtask dist`) and bound to JavaScript with wasm-bindgen. The JS runtime
//! (`wasmgrind.js`, `worker.js`, `wgrind_worker.js` in `js/`) instantiates it once per
//! thread on one utility memory. It provides:
//!
//! - the module transformations: [`patch`], [`instrument`], [`memory_limits`] and
//!   [`check_entry`];
//! - the tracing session: [`trace_start`], per-thread [`thread_begin`]/[`thread_end`],
//!   the state queries the runtime reports on a timeout, [`trace_stop`] and
//!   [`trace_finish`], which exports RapidBin, STD and the JSON metadata;
//! - the hooks ([`hooks`]), raw WebAssembly exports that the runtime passes to the target
//!   module as its imports, so that a traced memory access or lock operation is a
//!   WebAssembly-to-WebAssembly call;
//! - [`encode_trace`], the encoders for a trace given as JSON.
//!
//! Every error reaches JavaScript as an `Error` with the Rust message and the properties
//! `kind` and `variant` ([`error`]).
//!
//! The crate also builds on the host, where its logic is unit-tested; the `wasm_bindgen`
//! functions can only be called from JavaScript.

pub mod entry;
pub mod error;
pub mod hooks;
pub mod session;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasmgrind_core::analysis::LiveDeadlock;
use wasmgrind_core::location::Location;
use wasmgrind_core::trace::{export, ExportOptions, Trace};

pub use entry::{check_entry as check_entry_rs, EntryError};
use error::{Failure, SessionError};
use hooks::{CURRENT, SESSION};
use session::Session;

type JsResult<T> = Result<T, JsValue>;

fn fail<E: std::error::Error>(kind: &'static str, e: E) -> JsValue {
    Failure::new(kind, &e).into_js()
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &key.into(), value);
}

fn session() -> JsResult<&'static Session> {
    SESSION
        .get()
        .ok_or_else(|| fail("SessionError", SessionError::NotStarted))
}

/// Patches `wasm` for multithreading (`wasmgrind-patch`) with stacks of `stack_size`
/// bytes for every thread but the first. `validate` is off when [`instrument`] runs next:
/// it validates its output, which covers the patch.
#[wasm_bindgen]
pub fn patch(wasm: &[u8], stack_size: u32, validate: bool) -> JsResult<Vec<u8>> {
    let config = wasmgrind_patch::PatchConfig {
        stack_size,
        validate,
    };
    wasmgrind_patch::patch(wasm, &config).map_err(|e| fail("PatchError", e))
}

/// The runtime ABI's status codes by name (`Ok`, `ThreadLimit`, ...), from
/// [`wasmgrind_core::abi::ErrorCode`], so that the JS runtime does not repeat them.
#[wasm_bindgen(js_name = statusCodes)]
pub fn status_codes() -> Object {
    let obj = Object::new();
    for code in wasmgrind_core::abi::ErrorCode::ALL {
        set(&obj, &format!("{code:?}"), &code.code().into());
    }
    obj
}

/// The default stack size of [`patch`].
#[wasm_bindgen(js_name = defaultStackSize)]
pub fn default_stack_size() -> u32 {
    wasmgrind_patch::DEFAULT_STACK_SIZE
}

/// Instruments a patched module (`wasmgrind-instrument`). Returns
/// `{ wasm: Uint8Array, locations: string }`, the location table as JSON.
#[wasm_bindgen]
pub fn instrument(wasm: &[u8], memory_tracing: bool) -> JsResult<Object> {
    let config = wasmgrind_instrument::InstrumentConfig {
        memory_tracing,
        ..Default::default()
    };
    let out =
        wasmgrind_instrument::instrument(wasm, &config).map_err(|e| fail("InstrumentError", e))?;
    let obj = Object::new();
    set(&obj, "wasm", &Uint8Array::from(&out.wasm[..]).into());
    let locations = serde_json::to_string(&out.locations).map_err(|e| fail("SessionError", e))?;
    set(&obj, "locations", &locations.into());
    Ok(obj)
}

/// The memory limits of a module, `[min, max]` in 64 KiB pages.
#[wasm_bindgen(js_name = memoryLimits)]
pub fn memory_limits(wasm: &[u8]) -> JsResult<Vec<u32>> {
    let (min, max) = wasmgrind_patch::memory_limits(wasm).map_err(|e| fail("PatchError", e))?;
    Ok(vec![min, max])
}

/// Checks that `wasm` exports a function `name` without parameters and results.
#[wasm_bindgen(js_name = checkEntry)]
pub fn check_entry(wasm: &[u8], name: &str) -> JsResult<()> {
    entry::check_entry(wasm, name).map_err(|e| fail("EntryError", e))
}

/// Grows the utility heap by `bytes` now and keeps it free for later allocations.
///
/// The runtime calls it once before it starts the thread workers, so that instantiating
/// a worker's utility instance (its stack and TLS block) and the first recorder buffers
/// take memory that already exists instead of growing the shared memory while other
/// threads run: an engine instance may see another thread's growth late, and a bulk
/// memory instruction (such as the TLS initialization) on the new pages then traps.
#[wasm_bindgen(js_name = reserveHeap)]
pub fn reserve_heap(bytes: u32) -> JsResult<()> {
    let mut block: Vec<u8> = Vec::new();
    block.try_reserve_exact(bytes as usize).map_err(|e| {
        Failure {
            kind: "SessionError",
            variant: "ReserveFailed".into(),
            message: format!("cannot reserve {bytes} bytes of utility memory: {e}"),
        }
        .into_js()
    })?;
    drop(block);
    Ok(())
}

/// The description of a status code of the runtime ABI, with the code:
/// `the guest panicked (code 100)`; unknown codes say so.
#[wasm_bindgen(js_name = errorCodeText)]
pub fn error_code_text(code: i32) -> String {
    match wasmgrind_core::abi::ErrorCode::from_code(code) {
        Ok(c) => c.to_string(),
        Err(e) => e.to_string(),
    }
}

/// Starts the tracing session of this utility memory: thread ids `0..max_threads`, at
/// most `capacity` events, `locations_json` the location table from [`instrument`];
/// `original` and `patched` are the module before and after [`patch`], for `file:line`
/// in the reports.
#[wasm_bindgen(js_name = traceStart)]
pub fn trace_start(
    max_threads: u32,
    capacity: f64,
    locations_json: &str,
    original: Vec<u8>,
    patched: Vec<u8>,
) -> JsResult<()> {
    let locations: Vec<Location> = serde_json::from_str(locations_json)
        .map_err(|e| fail("SessionError", SessionError::BadLocations(e.to_string())))?;
    let capacity = if capacity.is_finite() && capacity >= 1.0 {
        capacity as u64
    } else {
        wasmgrind_core::trace::Recorder::DEFAULT_CAPACITY
    };
    let session =
        Session::new(max_threads, capacity, locations).map_err(|e| fail("SessionError", e))?;
    session.set_modules(original, patched);
    SESSION
        .set(session)
        .map_err(|_| fail("SessionError", SessionError::AlreadyStarted))
}

/// The default event capacity of a session.
#[wasm_bindgen(js_name = defaultCapacity)]
pub fn default_capacity() -> f64 {
    wasmgrind_core::trace::Recorder::DEFAULT_CAPACITY as f64
}

/// Makes this utility instance record as thread `tid` from now on.
#[wasm_bindgen(js_name = threadBegin)]
pub fn thread_begin(tid: u32) -> JsResult<()> {
    let ctx = session()?
        .begin_thread(tid)
        .map_err(|e| fail("SessionError", e))?;
    let old = CURRENT.with(|c| c.borrow_mut().replace(ctx));
    if let Some(old) = old {
        old.end();
    }
    Ok(())
}

/// This utility instance's thread finished: later hook calls are not attributed to it.
#[wasm_bindgen(js_name = threadEnd)]
pub fn thread_end() {
    if let Some(ctx) = CURRENT.with(|c| c.borrow_mut().take()) {
        ctx.end();
    }
}

/// Makes the accesses of `[start, start + len)` of the target's memory the runtime's own:
/// they are not recorded (the patcher's reserved page).
#[wasm_bindgen(js_name = traceIgnore)]
pub fn trace_ignore(start: u32, len: u32) -> JsResult<()> {
    session()?.ignore_range(start, len);
    Ok(())
}

/// Bytes the patcher reserves below the moved `__heap_base`
/// ([`wasmgrind_patch::RESERVED_BYTES`]).
#[wasm_bindgen(js_name = reservedBytes)]
pub fn reserved_bytes() -> u32 {
    wasmgrind_patch::RESERVED_BYTES
}

/// Lets no thread record or enter the recorder any more (threads that try are parked).
#[wasm_bindgen(js_name = traceStop)]
pub fn trace_stop() -> JsResult<()> {
    session()?.stop();
    Ok(())
}

/// The threads below `upto` that are inside the utility module's recorder right now.
#[wasm_bindgen(js_name = traceBusy)]
pub fn trace_busy(upto: u32) -> JsResult<Vec<u32>> {
    Ok(session()?.busy(upto))
}

/// The lock thread `tid` waits for (requested, not yet held), or -1.
#[wasm_bindgen(js_name = traceWaitingOn)]
pub fn trace_waiting_on(tid: u32) -> JsResult<f64> {
    Ok(session()?.waiting_on(tid).map_or(-1.0, f64::from))
}

/// The thread that holds `lock`, or -1.
#[wasm_bindgen(js_name = traceLockOwner)]
pub fn trace_lock_owner(lock: u32) -> JsResult<f64> {
    Ok(session()?.lock_owner(lock).map_or(-1.0, f64::from))
}

/// The locks thread `tid` holds.
#[wasm_bindgen(js_name = traceHeldLocks)]
pub fn trace_held_locks(tid: u32) -> JsResult<Vec<u32>> {
    Ok(session()?.held_locks(tid))
}

/// Whether some lock owner could not be tracked (more distinct locks than the table).
#[wasm_bindgen(js_name = traceLockTableOverflowed)]
pub fn trace_lock_table_overflowed() -> JsResult<bool> {
    Ok(session()?.lock_table_overflowed())
}

/// Events recorded so far.
#[wasm_bindgen(js_name = traceRecorded)]
pub fn trace_recorded() -> JsResult<f64> {
    Ok(session()?.recorded() as f64)
}

/// Location `loc` as text for error messages.
#[wasm_bindgen(js_name = locationText)]
pub fn location_text(loc: u32) -> JsResult<String> {
    Ok(session()?.location_text(loc))
}

/// Ends recording, runs the detectors and exports the trace: `{ rapidbin: Uint8Array,
/// std: string, metadata: string (JSON), native: Uint8Array, events: number,
/// lockConsistency: string | null, forkJoinConsistency: string | null, findings: string
/// (the report as JSON), report: string (the report as text) }`. `live_deadlock_json` is
/// the wait-for cycle the run ended in (`{ threads: [{ thread, waiting_on, holder }] }`),
/// if it did.
#[wasm_bindgen(js_name = traceFinish)]
pub fn trace_finish(
    atomics_as_locks: bool,
    lock_requests: bool,
    live_deadlock_json: Option<String>,
) -> JsResult<Object> {
    let live = match live_deadlock_json {
        Some(json) => Some(
            serde_json::from_str::<LiveDeadlock>(&json)
                .map_err(|e| fail("SessionError", SessionError::BadTrace(e.to_string())))?,
        ),
        None => None,
    };
    let finished = session()?
        .finish(
            ExportOptions {
                atomics_as_locks,
                lock_requests,
            },
            live,
        )
        .map_err(Failure::into_js)?;
    let obj = Object::new();
    let t0 = session::now_ms();
    set(
        &obj,
        "rapidbin",
        &Uint8Array::from(&finished.rapid_bin[..]).into(),
    );
    let t1 = session::now_ms();
    set(&obj, "std", &finished.export.std_text().into());
    let t2 = session::now_ms();
    set(&obj, "metadata", &finished.export.metadata_json().into());
    let t3 = session::now_ms();
    // Milliseconds of each step: the RapidBin and STD exports each include the dense ids
    // they share, and everything includes the copy out of the utility module.
    let t = finished.timings;
    let timings = Object::new();
    set(&timings, "collectMs", &t.collect_ms.into());
    set(&timings, "analysisMs", &t.analysis_ms.into());
    set(&timings, "nativeMs", &t.native_ms.into());
    set(&timings, "denseMs", &t.dense_ms.into());
    set(&timings, "rapidbinMs", &(t.rapid_bin_ms + (t1 - t0)).into());
    set(&timings, "stdMs", &(t2 - t1).into());
    set(&timings, "metadataMs", &(t3 - t2).into());
    set(&obj, "timings", &timings.into());
    set(&obj, "events", &(finished.events as f64).into());
    set(
        &obj,
        "native",
        &Uint8Array::from(&finished.native[..]).into(),
    );
    set(&obj, "findings", &finished.report.json().into());
    set(&obj, "report", &finished.report.text().into());
    let opt = |s: Option<String>| s.map_or(JsValue::NULL, |s| s.into());
    set(&obj, "lockConsistency", &opt(finished.lock_consistency));
    set(
        &obj,
        "forkJoinConsistency",
        &opt(finished.fork_join_consistency),
    );
    Ok(obj)
}

/// Runs the detectors again on a saved trace: `native` (Wasmgrind's own trace format, as
/// `traceFinish` returns it), `locations_json` (the location table), and optionally the
/// original module, which is patched again to resolve `file:line`. Returns `{ findings:
/// string (JSON), report: string (text) }`.
#[wasm_bindgen(js_name = analyzeTrace)]
pub fn analyze_trace(
    native: &[u8],
    locations_json: &str,
    original: Option<Vec<u8>>,
    stack_size: u32,
) -> JsResult<Object> {
    let locations: Vec<Location> = serde_json::from_str(locations_json)
        .map_err(|e| fail("SessionError", SessionError::BadLocations(e.to_string())))?;
    let patched = match &original {
        Some(bytes) => Some(patch(bytes, stack_size, false)?),
        None => None,
    };
    let modules = original.as_deref().zip(patched.as_deref());
    let (_, report) = session::reanalyze(native, &locations, modules).map_err(Failure::into_js)?;
    let obj = Object::new();
    set(&obj, "findings", &report.json().into());
    set(&obj, "report", &report.text().into());
    Ok(obj)
}

/// Encodes a trace given as JSON (the serde form of `wasmgrind_core::trace::Trace`):
/// `{ rapidbin: Uint8Array, std: string, metadata: string }`.
#[wasm_bindgen(js_name = encodeTrace)]
pub fn encode_trace(
    trace_json: &str,
    atomics_as_locks: bool,
    lock_requests: bool,
) -> JsResult<Object> {
    let trace: Trace = serde_json::from_str(trace_json)
        .map_err(|e| fail("SessionError", SessionError::BadTrace(e.to_string())))?;
    let options = ExportOptions {
        atomics_as_locks,
        lock_requests,
    };
    let export = export(&trace, options).map_err(|e| fail("FormatError", e))?;
    let rapid_bin = export.rapid_bin().map_err(|e| fail("FormatError", e))?;
    let obj = Object::new();
    set(&obj, "rapidbin", &Uint8Array::from(&rapid_bin[..]).into());
    set(&obj, "std", &export.std_text().into());
    set(&obj, "metadata", &export.metadata_json().into());
    Ok(obj)
}
