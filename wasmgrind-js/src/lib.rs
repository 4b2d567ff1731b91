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
//!   the state queries the runtime reports on a timeout, [`trace_drain`], which the
//!   manager calls while the program runs to stream the trace out chunk by chunk
//!   ([`stream`]), [`trace_limit`], [`trace_stop`] and [`trace_finish`], which ends the
//!   trace with its last chunk, the final headers, the JSON metadata and the report;
//! - the hooks ([`hooks`]), raw WebAssembly exports that the runtime passes to the target
//!   module as its imports, so that a traced memory access or lock operation is a
//!   WebAssembly-to-WebAssembly call;
//! - [`encode_trace`], the encoders for a trace given as JSON;
//! - [`demangle`] and [`demangle_stack`], for the names in error messages and trap stacks.
//!
//! Every error reaches JavaScript as an `Error` with the Rust message and the properties
//! `kind` and `variant` ([`error`]).
//!
//! The crate also builds on the host, where its logic is unit-tested; the `wasm_bindgen`
//! functions can only be called from JavaScript.

pub mod entry;
pub mod error;
pub mod failure;
pub mod hooks;
pub mod session;
pub mod stream;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasmgrind_core::analysis::LiveDeadlock;
use wasmgrind_core::location::Location;
use wasmgrind_core::trace::{export, ExportOptions, Trace};

pub use entry::{check_entry as check_entry_rs, EntryError};
use error::{Failure, SessionError};
use hooks::{current_session, dispose_session, install_session, CURRENT};
use session::{Config, Session};
use stream::Chunk;

/// The system allocator, which remembers an allocation it could not make (see [`failure`]).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: failure::FailureAllocator = failure::FailureAllocator;

type JsResult<T> = Result<T, JsValue>;

fn fail<E: std::error::Error>(kind: &'static str, e: E) -> JsValue {
    Failure::new(kind, &e).into_js()
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &key.into(), value);
}

fn session() -> JsResult<&'static Session> {
    current_session().ok_or_else(|| fail("SessionError", SessionError::NotStarted))
}

/// Makes V8 see other threads' `memory.grow` before the operations it bounds-checks
/// against an instance's own view of the memory's size (`wasmgrind-patch`'s
/// `refresh_bounds`). The runtime applies it to every module it runs, last.
#[wasm_bindgen(js_name = refreshBounds)]
pub fn refresh_bounds(wasm: &[u8]) -> JsResult<Vec<u8>> {
    wasmgrind_patch::refresh_bounds(wasm).map_err(|e| fail("PatchError", e))
}

/// Patches `wasm` for multithreading (`wasmgrind-patch`) with stacks of `stack_size`
/// bytes for every thread but the first. `validate` is off when [`instrument`] runs next:
/// it validates its input, the patched module, which covers the patch.
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
/// `{ wasm: Uint8Array, locations: string }`, the location table as JSON. `atomic_values`
/// (optional, default false) adds the `mem_atomic_value` hook that lock recognition needs;
/// `sampling` (optional, default false) samples the plain accesses
/// (`InstrumentConfig::sampling`).
#[wasm_bindgen]
pub fn instrument(
    wasm: &[u8],
    memory_tracing: bool,
    atomic_values: Option<bool>,
    sampling: Option<bool>,
) -> JsResult<Object> {
    let config = wasmgrind_instrument::InstrumentConfig {
        memory_tracing,
        atomic_values: atomic_values.unwrap_or(false),
        sampling: sampling.unwrap_or(false),
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

/// The exported functions of `wasm` that Wasmgrind can run (`() -> ()`, not named
/// `__…`), in export order.
#[wasm_bindgen(js_name = runnableFunctions)]
pub fn runnable_functions(wasm: &[u8]) -> JsResult<Vec<String>> {
    entry::runnable_functions(wasm).map_err(|e| fail("EntryError", e))
}

/// The thread ABI of `wasm`, from its imports: `'wasi'` (wasi-threads and WASI preview1:
/// the module is not patched) or `'wasmgrind'` (see [`entry::module_abi`]).
#[wasm_bindgen(js_name = moduleAbi)]
pub fn module_abi(wasm: &[u8]) -> JsResult<String> {
    entry::module_abi(wasm)
        .map(|abi| abi.name().to_string())
        .map_err(|e| fail("EntryError", e))
}

/// The function names of `wasm`'s name section as JSON, `[[index, name], ...]`, or `null`
/// when it has none (the CLI's `analyze --module` compares them with the location table).
/// Fails with a `PatchError` when `wasm` cannot be parsed.
#[wasm_bindgen(js_name = functionNames)]
pub fn function_names(wasm: &[u8]) -> JsResult<String> {
    let malformed = |e: wasmparser::BinaryReaderError| {
        Failure {
            kind: "PatchError",
            variant: "Parse".into(),
            message: format!("not a valid WebAssembly module: {e}"),
        }
        .into_js()
    };
    let mut names: Option<Vec<(u32, String)>> = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(section) = payload.map_err(malformed)? {
            if let wasmparser::KnownCustom::Name(reader) = section.as_known() {
                for sub in reader {
                    if let wasmparser::Name::Function(map) = sub.map_err(malformed)? {
                        let list = names.get_or_insert_with(Vec::new);
                        for naming in map {
                            let naming = naming.map_err(malformed)?;
                            list.push((naming.index, naming.name.to_string()));
                        }
                    }
                }
            }
        }
    }
    serde_json::to_string(&names).map_err(|e| fail("SessionError", e))
}

/// Checks that `wasm` is a valid WebAssembly module (with the features the runtime
/// enables), as the patcher does for the modules it patches; for modules that are run
/// without patching or instrumenting.
#[wasm_bindgen]
pub fn validate(wasm: &[u8]) -> JsResult<()> {
    wasmparser::Validator::new_with_features(
        wasmparser::WasmFeatures::default() | wasmparser::WasmFeatures::THREADS,
    )
    .validate_all(wasm)
    .map(|_| ())
    .map_err(|e| {
        Failure {
            kind: "PatchError",
            variant: "Invalid".into(),
            message: format!("the module is not valid WebAssembly: {e}"),
        }
        .into_js()
    })
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
        // Handled here: no cause of a later trap.
        failure::clear_failed_allocation();
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

/// `name` demangled as the reports show it (both of rustc's manglings, without the hash);
/// a name that is not a Rust symbol comes back unchanged.
#[wasm_bindgen]
pub fn demangle(name: &str) -> String {
    wasmgrind_core::analysis::symbolize::demangle(name)
}

/// A JavaScript stack trace (an `Error`'s `stack`) with the function name of every
/// WebAssembly frame demangled: V8 writes a frame as `at <name> (wasm://...)`, where
/// `<name>` is the name section's function name, after `<module name>.` when the module
/// has a name. Every other part of the text is left as it is.
#[wasm_bindgen(js_name = demangleStack)]
pub fn demangle_stack(stack: &str) -> String {
    const FRAME_END: &str = " (wasm://";
    let mut out = String::with_capacity(stack.len());
    for (i, line) in stack.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let frame = line
            .find("at ")
            .map(|at| at + 3)
            .and_then(|start| Some((start, start + line[start..].find(FRAME_END)?)));
        match frame {
            Some((start, end)) if !line[start..end].contains(' ') => {
                out.push_str(&line[..start]);
                out.push_str(&demangle_frame_name(&line[start..end]));
                out.push_str(&line[end..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// A frame's function name demangled; a `<module name>.` before the symbol is kept.
fn demangle_frame_name(name: &str) -> String {
    let whole = demangle(name);
    if whole != name {
        return whole;
    }
    for (dot, _) in name.match_indices('.') {
        let (module, symbol) = name.split_at(dot + 1);
        let demangled = demangle(symbol);
        if demangled != symbol {
            return format!("{module}{demangled}");
        }
    }
    whole
}

/// A limit given as a JS number: a finite number of at least 1 is the limit, anything
/// else (`Infinity`) none.
fn limit(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 1.0).then_some(value as u64)
}

/// Starts the tracing session of this utility memory: thread ids `0..max_threads`, at
/// most `max_events` events and `max_trace_bytes` bytes of trace (`Infinity`: no limit),
/// exported with `atomics_as_locks` and `lock_requests`; `locations_json` is the location
/// table from [`instrument`]; `original` and `patched` are the module before and after
/// [`patch`], for `file:line` in the reports; `recognize_locks` turns lock words among the
/// atomics into lock events ([`Config::recognize_locks`]; the module must have been
/// instrumented with `atomic_values`); `timeline` writes a timeline too, and
/// `export_trace` false (`exportTrace`) leaves the trace's formats out, for the findings
/// alone ([`Config::export_trace`]). Recording threads wait while more than
/// [`Config::DEFAULT_MAX_PENDING`] events wait for [`trace_drain`].
#[wasm_bindgen(js_name = traceStart)]
#[allow(clippy::too_many_arguments)]
pub fn trace_start(
    max_threads: u32,
    max_events: f64,
    max_trace_bytes: f64,
    atomics_as_locks: bool,
    lock_requests: bool,
    locations_json: &str,
    original: Vec<u8>,
    patched: Vec<u8>,
    recognize_locks: Option<bool>,
    timeline: Option<bool>,
    export_trace: Option<bool>,
) -> JsResult<()> {
    failure::install_panic_hook();
    // A run's traps are its own: nothing an earlier run of this memory handled.
    failure::clear_failed_allocation();
    let locations: Vec<Location> = serde_json::from_str(locations_json)
        .map_err(|e| fail("SessionError", SessionError::BadLocations(e.to_string())))?;
    let config = Config {
        max_threads,
        max_events: limit(max_events),
        max_trace_bytes: limit(max_trace_bytes),
        max_pending: Some(Config::DEFAULT_MAX_PENDING),
        export: ExportOptions {
            atomics_as_locks,
            lock_requests,
        },
        recognize_locks: recognize_locks.unwrap_or(false),
        timeline: timeline.unwrap_or(false),
        export_trace: export_trace.unwrap_or(true),
    };
    let session = Session::new(config, locations).map_err(|e| fail("SessionError", e))?;
    session.set_modules(original, patched);
    install_session(session).map_err(|e| fail("SessionError", e))
}

/// Frees the finished run's session (its trace, the detectors' state) so that the next
/// run on this utility memory can `traceStart` its own. The runtime calls it once every
/// thread of the run ended, its analysis worker returned, and the trace was finished:
/// nothing may use the session afterwards.
#[wasm_bindgen(js_name = traceDispose)]
pub fn trace_dispose() {
    dispose_session();
}

/// A chunk as JS sees it: `{ index, events, rapidbin, std, native, timeline }`, the three
/// formats' bytes as `Uint8Array`s (STD as its ASCII bytes) and the timeline's part as a
/// string (empty without a timeline).
fn chunk_object(chunk: &Chunk) -> Object {
    let obj = Object::new();
    set(&obj, "index", &(chunk.index as f64).into());
    set(&obj, "events", &(chunk.events as f64).into());
    set(
        &obj,
        "rapidbin",
        &Uint8Array::from(&chunk.rapid_bin[..]).into(),
    );
    set(&obj, "std", &Uint8Array::from(&chunk.std[..]).into());
    set(&obj, "native", &Uint8Array::from(&chunk.native[..]).into());
    set(&obj, "timeline", &chunk.timeline.as_str().into());
    obj
}

/// Moves at most `max_events` of the oldest recorded events out of the recorder, runs
/// the detectors and the exporter over them and returns their chunk (see
/// [`stream`]), or `undefined` when nothing new was recorded. Chunk 0 starts with
/// placeholder headers: the chunks' bytes, concatenated, are the trace files, whose
/// headers [`trace_finish`] gives. Fails with a `FormatError` when the trace passes a
/// limit of RapidBin.
#[wasm_bindgen(js_name = traceDrain)]
pub fn trace_drain(max_events: u32) -> JsResult<JsValue> {
    let chunk = session()?
        .drain(max_events.max(1) as usize)
        .map_err(Failure::into_js)?;
    Ok(chunk.map_or(JsValue::UNDEFINED, |c| chunk_object(&c).into()))
}

/// The analysis worker's loop (worker.js in its `analyze` role): analyzes the chunks the
/// stream hands over until the trace finishes; see `Offload::run` in `stream.rs`. Blocks
/// (in short timed waits), so only a worker calls it.
#[wasm_bindgen(js_name = analysisRun)]
pub fn analysis_run() -> JsResult<()> {
    failure::install_panic_hook();
    session()?.offload().run();
    Ok(())
}

/// Whether the analysis worker has as many events to analyze as it may have: the manager
/// drains no more until it has fewer.
#[wasm_bindgen(js_name = traceAnalysisFull)]
pub fn trace_analysis_full() -> JsResult<bool> {
    Ok(session()?.offload().full())
}

/// Whether the analysis worker has chunks to analyze still: the trace is finished
/// (`traceFinish`) only once it has none.
#[wasm_bindgen(js_name = traceAnalysisBusy)]
pub fn trace_analysis_busy() -> JsResult<bool> {
    Ok(session()?.offload().busy())
}

/// Events recorded and not drained yet.
#[wasm_bindgen(js_name = tracePending)]
pub fn trace_pending() -> JsResult<f64> {
    Ok(session()?.pending() as f64)
}

/// The limit the trace reached (`maxEvents` or `maxTraceBytes`), as `{ kind: 'LimitError',
/// variant, message, events }`, or `null` while none was reached.
#[wasm_bindgen(js_name = traceLimit)]
pub fn trace_limit() -> JsResult<JsValue> {
    let Some(limit) = session()?.limit() else {
        return Ok(JsValue::NULL);
    };
    let failure = Failure::new("LimitError", &limit);
    let obj = Object::new();
    set(&obj, "kind", &failure.kind.into());
    set(&obj, "variant", &failure.variant.as_str().into());
    set(&obj, "message", &failure.message.as_str().into());
    set(&obj, "events", &(limit.events() as f64).into());
    Ok(obj.into())
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

/// This utility instance's thread ended and nobody joins it through the runtime (a
/// wasi-threads thread): records its end ([`Op::End`](wasmgrind_core::trace::Op::End)),
/// after which the runtime may give its id to a new thread, and ends as [`thread_end`].
#[wasm_bindgen(js_name = threadExit)]
pub fn thread_exit() {
    if let Some(ctx) = CURRENT.with(|c| c.borrow_mut().take()) {
        ctx.exit();
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

/// The thread that thread `tid` waits for in `pthread_join` (a wasi program), or -1.
#[wasm_bindgen(js_name = traceJoining)]
pub fn trace_joining(tid: u32) -> JsResult<f64> {
    Ok(session()?.joining(tid).map_or(-1.0, f64::from))
}

/// The thread that holds `lock`, or -1.
#[wasm_bindgen(js_name = traceLockOwner)]
pub fn trace_lock_owner(lock: u32) -> JsResult<f64> {
    Ok(session()?.lock_owner(lock).map_or(-1.0, f64::from))
}

/// The locks thread `tid` holds, as the thread states of a report list them
/// ([`Session::listed_held_locks`]).
#[wasm_bindgen(js_name = traceHeldLocks)]
pub fn trace_held_locks(tid: u32) -> JsResult<Vec<u32>> {
    Ok(session()?.listed_held_locks(tid))
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

/// Ends recording and the trace: `{ chunk, rapidbinHeader: Uint8Array, nativeHeader:
/// Uint8Array, metadataBytes: Uint8Array (UTF-8 JSON), metadataCounts: { threads, locks,
/// variables, locations, events }, events, acquisitions, chunks, bytes,
/// lockConsistency: string | null, forkJoinConsistency: string | null, findings: string
/// (the report as JSON), report: string (the report as text), timings: { collectMs,
/// analysisMs, nativeMs, denseMs, rapidbinMs, stdMs, metadataMs } }` (milliseconds each
/// step took over all chunks; see [`stream::Timings`]), timelineEnd: string (the end of
/// the timeline; empty without one) }`. `chunk` holds the events
/// that were not drained yet (as [`trace_drain`] returns them), or is `null`;
/// `rapidbinHeader` (18 bytes) and `nativeHeader` (24 bytes) go over the placeholders at
/// the start of chunk 0. `live_deadlock_json` is the wait-for cycle the run ended in
/// (`{ threads: [{ thread, waiting_on, holder }] }`), if it did.
#[wasm_bindgen(js_name = traceFinish)]
pub fn trace_finish(live_deadlock_json: Option<String>) -> JsResult<Object> {
    let live = match live_deadlock_json {
        Some(json) => Some(
            serde_json::from_str::<LiveDeadlock>(&json)
                .map_err(|e| fail("SessionError", SessionError::BadTrace(e.to_string())))?,
        ),
        None => None,
    };
    let finished = session()?.finish(live).map_err(Failure::into_js)?;
    let obj = Object::new();
    let chunk = finished
        .chunk
        .as_ref()
        .map_or(JsValue::NULL, |c| chunk_object(c).into());
    set(&obj, "chunk", &chunk);
    set(
        &obj,
        "rapidbinHeader",
        &Uint8Array::from(&finished.totals.rapid_bin_header[..]).into(),
    );
    set(
        &obj,
        "nativeHeader",
        &Uint8Array::from(&finished.totals.native_header[..]).into(),
    );
    set(&obj, "timelineEnd", &finished.timeline_end.as_str().into());
    let t0 = session::now_ms();
    let metadata = &finished.totals.metadata;
    set(
        &obj,
        "metadataBytes",
        &Uint8Array::from(&metadata.to_json_bytes()[..]).into(),
    );
    let counts = Object::new();
    let c = metadata.counts;
    for (key, value) in [
        ("threads", c.threads),
        ("locks", c.locks),
        ("variables", c.variables),
        ("locations", c.locations),
        ("events", c.events),
    ] {
        set(&counts, key, &(value as f64).into());
    }
    set(&obj, "metadataCounts", &counts.into());
    // Milliseconds of each step over all chunks (the copies of the chunks out of the
    // utility module are not included).
    let t = finished.totals.timings;
    let timings = Object::new();
    set(&timings, "collectMs", &t.collect_ms.into());
    set(&timings, "analysisMs", &t.analysis_ms.into());
    set(&timings, "nativeMs", &t.native_ms.into());
    set(&timings, "denseMs", &t.dense_ms.into());
    set(&timings, "rapidbinMs", &t.rapid_bin_ms.into());
    set(&timings, "stdMs", &t.std_ms.into());
    set(
        &timings,
        "metadataMs",
        &(t.metadata_ms + session::now_ms() - t0).into(),
    );
    set(&obj, "timings", &timings.into());
    set(&obj, "events", &(finished.totals.events as f64).into());
    set(
        &obj,
        "acquisitions",
        &(finished.totals.acquisitions as f64).into(),
    );
    set(&obj, "chunks", &(finished.totals.chunks as f64).into());
    set(&obj, "bytes", &(finished.totals.bytes as f64).into());
    set(&obj, "findings", &finished.report.json().into());
    set(&obj, "report", &finished.report.text().into());
    let opt = |s: Option<String>| s.map_or(JsValue::NULL, |s| s.into());
    set(
        &obj,
        "lockConsistency",
        &opt(finished.totals.lock_consistency),
    );
    set(
        &obj,
        "forkJoinConsistency",
        &opt(finished.totals.fork_join_consistency),
    );
    Ok(obj)
}

/// Runs the detectors again on a saved trace: `native` (Wasmgrind's own trace format, as
/// `traceFinish` returns it), `locations_json` (the location table), and optionally the
/// original module, which is patched again to resolve `file:line`. Returns `{ findings:
/// string (JSON), report: string (text) }`. [`TraceAnalysis`] does the same for a trace
/// read piece by piece.
#[wasm_bindgen(js_name = analyzeTrace)]
pub fn analyze_trace(
    native: &[u8],
    locations_json: &str,
    original: Option<Vec<u8>>,
    stack_size: u32,
) -> JsResult<Object> {
    let mut analysis = TraceAnalysis::new(locations_json)?;
    analysis.feed(native)?;
    analysis.finish(original, stack_size, None)
}

/// The detectors run again on a saved trace that is read piece by piece (the CLI's
/// `analyze` reads `trace.wgtrace` in blocks), in bounded memory:
/// `new TraceAnalysis(locationsJson)`, `feed(bytes)` for every piece in order, then
/// `finish(original, stackSize, liveDeadlock)`, which returns what [`analyze_trace`]
/// returns.
#[wasm_bindgen]
pub struct TraceAnalysis {
    locations: Vec<Location>,
    inner: Option<session::Reanalysis>,
}

#[wasm_bindgen]
impl TraceAnalysis {
    /// An analysis of a trace whose locations index `locations_json` (the location table).
    #[wasm_bindgen(constructor)]
    pub fn new(locations_json: &str) -> JsResult<TraceAnalysis> {
        failure::install_panic_hook();
        let locations: Vec<Location> = serde_json::from_str(locations_json)
            .map_err(|e| fail("SessionError", SessionError::BadLocations(e.to_string())))?;
        Ok(TraceAnalysis {
            inner: Some(session::Reanalysis::with_locations(locations.len())),
            locations,
        })
    }

    /// Decodes and analyzes the next bytes of the trace.
    pub fn feed(&mut self, bytes: &[u8]) -> JsResult<()> {
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| fail("SessionError", SessionError::Finished))?;
        for piece in bytes.chunks(session::Reanalysis::PIECE_BYTES) {
            inner.feed(piece).map_err(Failure::into_js)?;
        }
        Ok(())
    }

    /// Ends the trace: `{ findings: string (JSON), report: string (text) }`, with
    /// `file:line` when `original` (the module that was run) is given; `stack_size` is
    /// the run's, for patching it again. `live_deadlock` (optional) is the deadlock the
    /// run ended in, which the trace cannot show: `{ threads: [{ thread, waiting_on,
    /// holder, requested_at }] }` as JSON (the serde form of
    /// [`LiveDeadlock`](wasmgrind_core::analysis::LiveDeadlock); the CLI takes it from
    /// the run's `report.json`).
    pub fn finish(
        &mut self,
        original: Option<Vec<u8>>,
        stack_size: u32,
        live_deadlock: Option<String>,
    ) -> JsResult<Object> {
        let live = match live_deadlock {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                fail(
                    "SessionError",
                    SessionError::BadTrace(format!("the live deadlock: {e}")),
                )
            })?),
            None => None,
        };
        let inner = self
            .inner
            .take()
            .ok_or_else(|| fail("SessionError", SessionError::Finished))?;
        // A wasi-threads module runs as it is (not patched): its code offsets are its own.
        let patched = match &original {
            Some(bytes) if matches!(entry::module_abi(bytes), Ok(entry::Abi::Wasi)) => {
                Some(bytes.clone())
            }
            Some(bytes) => Some(patch(bytes, stack_size, false)?),
            None => None,
        };
        let modules = original.as_deref().zip(patched.as_deref());
        let (_, report) = inner
            .finish(&self.locations, modules, live)
            .map_err(Failure::into_js)?;
        let obj = Object::new();
        set(&obj, "findings", &report.json().into());
        set(&obj, "report", &report.text().into());
        Ok(obj)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_get_demangled_frame_names_and_keep_everything_else() {
        let stack = "RuntimeError: unreachable\n    \
            at _ZN8failures10child_trap28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE \
            (wasm://wasm/0011aabb:wasm-function[42]:0x1a2b)\n    \
            at plain_name (wasm://wasm/0011aabb:wasm-function[7]:0x10)\n    \
            at failures.wasm._RNvCs3wkRGRW8H05_8failures10child_trap \
            (wasm://wasm/failures.wasm-0068f662:wasm-function[28]:0x1522)\n    \
            at wasm://wasm/0011aabb:wasm-function[3]:0x5\n    \
            at runThread (file:///pkg/worker.js:10:5)";
        let out = demangle_stack(stack);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "RuntimeError: unreachable");
        assert_eq!(
            lines[1],
            "    at failures::child_trap::{{closure}} (wasm://wasm/0011aabb:wasm-function[42]:0x1a2b)"
        );
        assert_eq!(
            lines[2],
            "    at plain_name (wasm://wasm/0011aabb:wasm-function[7]:0x10)"
        );
        assert_eq!(
            lines[3],
            "    at failures.wasm.failures::child_trap (wasm://wasm/failures.wasm-0068f662:wasm-function[28]:0x1522)"
        );
        assert_eq!(lines[4], "    at wasm://wasm/0011aabb:wasm-function[3]:0x5");
        assert_eq!(lines[5], "    at runThread (file:///pkg/worker.js:10:5)");
        assert_eq!(demangle_stack(""), "");
    }

    #[test]
    fn names_are_demangled_without_the_hash() {
        assert_eq!(
            demangle("_ZN4core9panicking5panic17h0123456789abcdefE"),
            "core::panicking::panic"
        );
        assert_eq!(demangle("thread_start"), "thread_start");
        assert_eq!(
            demangle_frame_name("failures.wasm.thread_start"),
            "failures.wasm.thread_start"
        );
        assert_eq!(
            demangle_frame_name("m._ZN4core3ptr13drop_in_place17h0123456789abcdefE"),
            "m.core::ptr::drop_in_place"
        );
    }
}
