// wgrind_worker.js: the worker in which a Wasmgrind run happens.
//
// A browser's main thread must never block, and a Worker created by a blocked worker
// never starts, so the run is managed from here: this worker never blocks. It patches and
// instruments the module, starts the thread workers (worker.js), tops their pool up, and
// answers with the trace or the error. `wasmgrind()` in wasmgrind.js starts one of these
// per run from any thread (a page, Node's main thread); a page may also use it directly:
//
//   const w = new Worker(new URL('wasmgrind/wgrind_worker.js', import.meta.url), { type: 'module' });
//   w.postMessage({ binary: bytesOrAbsoluteUrl, functionName: 'run', options: {} });
//   w.onmessage = (e) => e.data.error ? fail(e.data.error) : use(e.data.result);
//
// The answer is `{ result }` or `{ error }` (a plain object with `message`, `kind`, ...).
// `{ stop: true }` stops the run as its timeout does: the answer is then a `Stopped` error
// (a stop that comes when no run is in progress is ignored).
// With `output: true`, what a wasi program writes comes before it as `{ output: { stream,
// text, bytes } }` messages (see `onOutput` in wasmgrind.d.ts); `programName` is its
// argv[0] (default: `main.wasm`). With `started: true`, a `{ started: true }` message says
// when the module is prepared and the function starts: the run's `timeout` counts from
// there. `utilModule` is Wasmgrind's compiled utility module (`wasmgrind_js_bg.wasm`), if
// the caller has it; without it this worker fetches and compiles it, and with
// `sendUtilModule: true` sends it back as `{ utilModule }` (a WebAssembly.Module) to be
// given to the next runs.
// One worker serves one run at a time. An answer with `reusable: true` (a run that ended
// cleanly, with a utility memory that is not too large) means that the worker kept its
// thread workers and may be given the next run, which then starts without booting new
// ones; otherwise terminate it (terminating it also ends every thread worker).
// The result (and a failed run's `error.trace`) carries the STD text and the metadata as
// bytes, `stdBytes` (ASCII) and `metadataBytes` (UTF-8 JSON), whose buffers are
// transferred like those of `rapidbin` and `native`: so the receiving thread neither
// copies nor parses them. `wasmgrind()` adds `std` and `metadata` to the result, decoded
// on first access.
//
// Streaming: with `stream: true` in the run message, the trace comes as `{ chunk }`
// messages while the program runs (`{ index, events, rapidbin, std, native }`, bytes,
// transferred), before the answer. Answer each with `{ ack: chunk.index }` once it is
// consumed: at most CHUNK_WINDOW chunks are on their way unacknowledged, and the run waits
// (its recording threads slow down) rather than piling chunks up in memory.

import { isNode, nodeShim } from './shim.js';
import { runSession, serializeError } from './wasmgrind.js';

/** Chunks sent and not acknowledged yet, at most. */
const CHUNK_WINDOW = 4;

let post;
/** A run is in progress (until its answer is sent). */
let running = false;
/** The last run's answer did not say `reusable: true`: this worker takes no more runs. */
let spent = false;
/** Stops the run (once it can be stopped), and whether the caller asked for that. */
let stop = null;
let stopAsked = false;
let unacknowledged = 0;
let onAck = null;

/**
 * Set when the run is stopped from outside (its timeout, `{ stop: true }`): the rest of
 * the trace is sent without waiting for acknowledgements, so that a caller that stopped
 * acknowledging cannot keep the run from ending.
 */
let flushing = false;

/** Sends the rest of the trace without waiting for acknowledgements (see `flushing`). */
function flush() {
  flushing = true;
  const wake = onAck;
  onAck = null;
  if (wake) wake();
}

/** Sends a chunk to the caller; resolves when fewer than CHUNK_WINDOW are unacknowledged. */
// ANCHOR: chunk-window
async function sendChunk(chunk) {
  while (unacknowledged >= CHUNK_WINDOW && !flushing) {
    await new Promise((resolve) => {
      onAck = resolve;
    });
  }
  unacknowledged++;
  post({ chunk }, [chunk.rapidbin.buffer, chunk.std.buffer, chunk.native.buffer]);
}
// ANCHOR_END: chunk-window

// ANCHOR: ack
function onMessage(msg) {
  if (msg !== null && typeof msg === 'object' && msg.stop === true) {
    // Between runs: a stop that came after its run had answered.
    if (!running) return;
    stopAsked = true;
    // The run may have ended already and be sending its last chunks: those go out
    // without waiting for acknowledgements too.
    flush();
    stop?.();
    return;
  }
  if (msg !== null && typeof msg === 'object' && msg.ack !== undefined) {
    unacknowledged--;
    const wake = onAck;
    onAck = null;
    if (wake) wake();
    return;
  }
  onRun(msg);
}
// ANCHOR_END: ack

// ANCHOR: run-message
async function onRun(msg) {
  if (running || spent) {
    post({
      error: {
        kind: 'UsageError',
        message: running
          ? 'a wgrind_worker.js worker runs one run at a time: wait for the answer of the run in progress (or start ' +
            'another worker)'
          : 'this wgrind_worker.js worker takes no more runs: the answer of its last run did not say `reusable: true` ' +
            '(it failed, or did not end cleanly); terminate it and start a new one',
      },
    });
    return;
  }
  running = true;
  // Stops and acknowledgements of the previous run came before this message: they are not
  // this run's.
  stop = null;
  stopAsked = false;
  unacknowledged = 0;
  onAck = null;
  flushing = false;
  let reusable = false;
  try {
    const hooks = msg.stream === true ? { onChunk: sendChunk } : {};
    // What a wasi program writes goes to the caller as it comes: `{ output: { stream, text } }`.
    if (msg.output === true) {
      hooks.onOutput = (stream, text, bytes) => post({ output: { stream, text, bytes } }, [bytes.buffer]);
    }
    if (typeof msg.programName === 'string') hooks.programName = msg.programName;
    // The caller's compiled utility module, with the code compiled in its earlier runs.
    if (msg.utilModule instanceof WebAssembly.Module) hooks.utilModule = msg.utilModule;
    // Else it is compiled here; with `sendUtilModule: true` it goes to the caller as soon
    // as it is, for the runs that follow (`wasmgrind()` compiles nothing on its thread).
    else if (msg.sendUtilModule === true) hooks.onUtilModule = (m) => post({ utilModule: m });
    // With `started: true`, the caller is told when the function starts: it times its
    // backstop from there, as the run's timeout counts.
    if (msg.started === true) hooks.onStarted = () => post({ started: true });
    hooks.onStoppable = (fn) => {
      stop = fn;
      if (stopAsked) stop();
    };
    hooks.onStopping = flush;
    hooks.onReusable = () => {
      reusable = true;
    };
    const result = await runSession(msg.binary, msg.functionName, msg.options, hooks);
    running = false;
    spent = !reusable;
    post({ result, reusable }, transferable(result));
  } catch (e) {
    running = false;
    spent = true;
    let error;
    try {
      error = serializeError(e);
      // Fail here, not in the caller, if something in it cannot be cloned.
      structuredClone(error);
    } catch (cloneError) {
      error = { kind: (e && e.kind) || 'RuntimeError', message: String((e && e.message) || e) };
    }
    post({ error }, transferable(error.trace));
  }
}
// ANCHOR_END: run-message

/**
 * The buffers of the trace's byte arrays (RapidBin, STD, Wasmgrind's own format, the
 * metadata's JSON), which move to the caller instead of being copied, so the caller's
 * thread does not copy or parse them either.
 */
function transferable(trace) {
  const out = [];
  for (const bytes of [trace?.rapidbin, trace?.stdBytes, trace?.native, trace?.metadataBytes]) {
    if (
      bytes instanceof Uint8Array &&
      bytes.buffer instanceof ArrayBuffer &&
      bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength &&
      !out.includes(bytes.buffer)
    ) {
      out.push(bytes.buffer);
    }
  }
  return out;
}

// ANCHOR: port
if (!isNode) {
  post = (m, t) => globalThis.postMessage(m, t);
  globalThis.onmessage = (e) => onMessage(e.data);
} else {
  // No top-level await in a worker's script: bundlers may emit workers as classic scripts.
  nodeShim().then(({ parentPort }) => {
    post = (m, t) => parentPort.postMessage(m, t);
    parentPort.on('message', onMessage);
  });
}
// ANCHOR_END: port
