// ANCHOR: overview
// wasmgrind.js: run an exported function of a multithreaded WebAssembly module with real
// threads and get back a trace of what the threads did.
//
//   import { wasmgrind } from 'wasmgrind';
//   const { rapidbin, std, metadata, status } = await wasmgrind('app.wasm', 'run');
//
// `wasmgrind()` can be called from any thread, including a browser page's main thread:
// the run itself happens in a dedicated worker, `wgrind_worker.js`, which never blocks.
// There, `runSession()` does the steps of a run:
//   1. instantiate the wasmgrind-js utility module (on its own shared memory);
//   2. take the binary (bytes, or fetched/read from a URL);
//   3. patch it for multithreading (each instance gets its own stack and TLS);
//   4. instrument it (lock hooks with locations, and memory hooks unless memoryTrace is off);
//   5. compile it to a WebAssembly.Module;
//   6. create the shared WebAssembly.Memory with the limits read from the instrumented module;
//   7. start the thread workers (worker.js), which instantiate it with the runtime ABI, the
//      lock callbacks and the memory hooks (the utility instance's raw exports); the first
//      ones (`workers`) are started before step 1, so that they boot while the module
//      is prepared, and are sent the modules once step 6 is done;
//   8. run the exported function on thread 0 and wait for the outcome.
// While the function runs, the manager drains the recorder every few milliseconds: each
// chunk of events goes through the detectors and the incremental exporter in the utility
// module and comes back as the chunk's RapidBin, STD and native bytes, which go to the
// caller's `onChunk` (the CLI appends them to its files) or are collected for the result.
// Then it stops every thread that is still running, terminates all workers and returns the
// trace as RapidBin bytes, STD text and the JSON metadata (or, when streaming, the final
// headers and the metadata).
//
// A wasi-threads module (one that imports `wasi.thread-spawn` or WASI preview1 functions;
// `abi: 'wasi'`) runs the same way, except that step 3 is left out (its libc gives each
// thread its stack and TLS), it runs `_start` unless told otherwise, its threads come from
// `wasi.thread-spawn`, and it gets the WASI preview1 functions of wasi.js: its stdout and
// stderr come back in the result (and to `onOutput` as they are written), and
// `proc_exit` from any thread ends the run with that exit code.
// ANCHOR_END: overview

import {
  isNode,
  configureEngine,
  startWorker,
  readUrl,
  readPath,
  utilityTrapCause,
  controlViews,
  controlBytes,
  STATE_NAMES,
  C_NEXT_TID,
  C_JOB_HEAD,
  C_JOB_TAIL,
  C_JOB_SEQ,
  C_IDLE,
  C_STOPPING,
  C_UTIL_BUSY,
  C_FIRST_ERROR,
  C_FORKS,
  T_FREE,
  T_PENDING,
  T_RUNNING,
  T_DONE,
} from './shim.js';
import { createOutputChannel, outputReader } from './wasi.js';

/** The options of `wasmgrind()` and their defaults. */
export const DEFAULT_OPTIONS = Object.freeze({
  /** Record every memory access (reads and writes with address and width). */
  memoryTrace: true,
  /**
   * Sample the plain memory accesses instead of recording every one (LiteRace-style: each
   * code site, a function's body outside its loops or one loop, records its first 8
   * executions in a thread, a call or an iteration, then fewer and fewer, down to one in
   * 1000). Atomics, waits, locks, forks and joins are always recorded, so every race
   * reported is real; a race is missed when one of its two accesses was not sampled, which
   * is likely in code that runs often. For long memory-heavy runs whose full trace would
   * be too slow. The report says the run was sampled, and `findings.sampled` is true.
   * Needs `memoryTrace`. Default `false`: every access is recorded and the reports are
   * exact.
   */
  sampling: false,
  /** Instrument and record at all. `false` runs the patched module untraced. */
  trace: true,
  /** Stack size in bytes of every thread but the first (a multiple of 16, >= 4096). */
  stackSize: 2 * 1024 * 1024,
  /** Milliseconds until the run is stopped and rejected with the state of every thread. */
  timeout: 60_000,
  /** Thread ids available at once (joined threads give theirs back). */
  maxThreads: 1024,
  /**
   * Most events recorded (`Infinity`: no limit). A run that records more stops and fails
   * with a `LimitError`; the trace up to the limit comes with the error.
   */
  maxEvents: Infinity,
  /**
   * Most bytes of trace (RapidBin, STD and the native format together; `Infinity`: no
   * limit), checked after every chunk. A run whose trace passes it stops and fails with a
   * `LimitError`; the trace up to the chunk that passed it comes with the error.
   */
  maxTraceBytes: Infinity,
  /** Most events per chunk of the streamed trace. */
  chunkEvents: 131_072,
  /**
   * `(chunk) => void | Promise`: receives the trace chunk by chunk while the program runs,
   * `{ index, events, rapidbin, std, native }` (bytes; see README.md). The result then
   * carries the final headers instead of the whole trace. `null`: the result carries the
   * whole trace.
   */
  onChunk: null,
  /** Export atomic accesses as acquire/release of a per-address pseudo-lock. */
  atomicsAsLocks: false,
  /**
   * Export lock requests too (`req(L)` in STD, op 8 in RapidBin). Off by default: upstream
   * RAPID's STD parser does not know `req`.
   */
  lockRequests: false,
  /**
   * Also write a timeline of the run: Chrome trace-event JSON that Perfetto and
   * chrome://tracing open (threads as tracks, lock holds as slices, forks and joins as
   * arrows, findings as marks); `result.timeline`, or with `onChunk` each chunk's
   * `timeline` and then `result.timelineEnd`. Its time axis is the position of events in
   * the trace, not wall time.
   */
  timeline: false,
  /**
   * Make the trace's formats: RapidBin, STD, Wasmgrind's own format and the metadata.
   * `false`: only the detectors (and the timeline) see the events, and the result has
   * `findings` and `report` but no trace (`rapidbin`, `std`, `native` and `metadata` are
   * null); with memory tracing, a run then takes about a third less time. Cannot be
   * combined with `onChunk` or `maxTraceBytes`, which are about the trace's bytes.
   */
  exportTrace: true,
  /**
   * Recognise lock words among the atomics (std's futex `Mutex`, spin locks): their
   * acquisitions and releases become lock events for deadlock prediction, and a thread
   * waiting on a held one counts for the live deadlock watchdog. Needs `memoryTrace`
   * (without it, it does nothing). `null` (the default): on for wasi-threads modules, whose
   * std locks are only atomics, and off for wasmgrind-ABI modules, whose locks are traced.
   * See "Finding races and deadlocks" in the book.
   */
  recognizeLocks: null,
  /** Idle workers kept ready for new threads (they start a thread in well under 1 ms). */
  spareWorkers: 2,
  /**
   * Thread workers started with the run, in parallel, while the module is prepared (0: one
   * for the first thread plus `spareWorkers`). A program with many threads alive at once
   * starts them sooner when this is their number plus one: starting a worker takes tens of
   * milliseconds of CPU time, which is then spent before the function runs. Up to this many
   * idle workers stay through idle moments (more linger for LINGER_MS), and for the next
   * call (see closeIdleWorkers).
   */
  workers: 0,
  /**
   * wasi modules: the program's arguments after its name (argv[1..]); argv[0] is the
   * module's file name, or `main.wasm` when it was given as bytes.
   */
  args: Object.freeze([]),
  /**
   * wasi modules: argv[0], the program's name. `null` (the default): the module's file
   * name, or `main.wasm` when it was given as bytes. (The CLI reads the module itself and
   * gives its file name here.)
   */
  programName: null,
  /** wasi modules: the environment variables, `{ NAME: value }`. */
  env: Object.freeze({}),
  /**
   * wasi modules: `(stream, text) => void`, called with what the program writes to
   * `'stdout'` or `'stderr'` as it is written (in order per stream). The result (and an
   * error) carries the whole output as `stdout` and `stderr` either way.
   */
  onOutput: null,
  /**
   * An `AbortSignal`: aborting it stops the run as its timeout does (the threads are
   * stopped, and the run rejects with a `Stopped` error that carries the trace and the
   * findings so far). Default `null`.
   */
  signal: null,
});

/** The first line of the report of a run with `sampling`. */
export const SAMPLED_NOTE =
  'Sampled run (option `sampling`): only some plain memory accesses were recorded. Every race ' +
  'reported is real, but a race is missed when one of its accesses was not sampled, which is ' +
  'likely in code that runs often; run without sampling for an exact report.\n';

/**
 * The first line of the report of a run without memory tracing (`memoryTrace: false`,
 * `--no-memory-trace`), and what a wasi program adds: its std locks are recognized from
 * its memory accesses, so none were recorded.
 */
const LOCKS_ONLY_NOTE =
  'Locks-only run (`--no-memory-trace`, `memoryTrace: false`): memory accesses were not recorded, so no data race can be ' +
  'found; potential deadlocks are predicted from the locks that were recorded.\n';
const LOCKS_ONLY_WASI_NOTE =
  "This program's std locks (futex words) are recognized from its memory accesses, so none were recorded " +
  'either: nothing was checked; run with memory tracing to check it.\n';

/**
 * The notes a report starts with for what its run did not record, from its findings
 * (`sampled`, `locksOnly`; a saved run's report.json): SAMPLED_NOTE, the locks-only note.
 */
export function findingsNotes(findings) {
  let notes = findings?.sampled === true ? SAMPLED_NOTE : '';
  if (findings?.locksOnly === 'locks' || findings?.locksOnly === 'nothing') {
    notes += LOCKS_ONLY_NOTE + (findings.locksOnly === 'nothing' ? LOCKS_ONLY_WASI_NOTE : '');
  }
  return notes;
}

/** Stack size of the utility module's instances (a multiple of 64 KiB). */
const UTIL_STACK_SIZE = 1 << 20;
/** Utility memory one thread worker's instance takes: its stack, TLS block and slack. */
const UTIL_WORKER_BYTES = UTIL_STACK_SIZE + (64 << 10);
/** The most thread workers `workers` may ask for. */
const MAX_WORKERS = 4096;
/**
 * Utility memory grown up front: the stacks of the first workers and the first trace
 * buffers then need no memory growth while threads run (see reserveHeap in lib.rs).
 */
const UTIL_RESERVE_BYTES = 32 << 20;
/** How long the end of a run waits for threads to leave the recorder. */
const QUIESCE_MS = 5_000;
/**
 * How long the end of a clean run waits for its idle workers to say they are released (and
 * for its analysis worker to free its utility stack) before it gives up keeping them.
 */
const RELEASE_MS = 2_000;
/**
 * A manager keeps its workers (and its utility memory) for its next run only while the
 * utility memory is at most this large: the memory of a long trace is not kept around.
 */
const KEEP_MAX_UTIL_BYTES = 256 << 20;

/**
 * The thread workers that runs of this manager released and no run took since, oldest
 * first, as `{ handle, since }` (when it was released): the next run of this manager starts
 * with them (the newest first) instead of booting new ones. Their utility instances are on
 * this manager's utility memory, whose session that run disposed of.
 */
const keptWorkers = [];
/**
 * How long an idle worker beyond a run's `maxIdle` lingers before it closes: during a run
 * (a burst of threads often comes again), and after a clean run, for the next one.
 */
const LINGER_MS = 2_000;
/** How many kept workers stay after their linger: the `maxIdle` of the last clean run. */
let keepAtMost = 0;
/** The timer of `trimKept`. */
let trimTimer;

/**
 * Closes the kept workers beyond `keepAtMost` whose linger is over, oldest first, and
 * sets the timer for the next one. A run that takes some kept workers does not restart
 * the linger of those it leaves (a `close` message: the worker frees its utility
 * instance's stack and TLS block and ends).
 */
function trimKept() {
  clearTimeout(trimTimer);
  const now = performance.now();
  while (keptWorkers.length > keepAtMost && keptWorkers[0].since + LINGER_MS <= now) {
    keptWorkers.shift().handle.post({ type: 'close' });
  }
  if (keptWorkers.length > keepAtMost) trimTimer = setTimeout(trimKept, keptWorkers[0].since + LINGER_MS - now);
}
/** How long the caller waits beyond the timeout for the manager to answer. */
const ANSWER_GRACE_MS = 20_000;
/** How long the manager waits between drains of the recorder when it caught up. */
const DRAIN_MS = 10;
/** How often the manager moves what the program wrote out of the output channel. */
const OUTPUT_MS = 10;
/** How often a traced run looks for threads that wait for each other's locks. */
const DEADLOCK_POLL_MS = 100;
/** How many polls in a row must see the same wait-for cycle before the run is stopped. */
const DEADLOCK_CONFIRM = 3;

/** An Error with a `kind` (and more properties) as every Wasmgrind error has. */
export class WasmgrindError extends Error {
  constructor(kind, message, props = {}) {
    super(message);
    this.name = 'WasmgrindError';
    this.kind = kind;
    Object.assign(this, props);
  }
}

/** The longest `timeout` (ms): what `setTimeout` can wait for, less the answer's grace. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1 - ANSWER_GRACE_MS;

/**
 * The options with the defaults filled in. Throws one `UsageError` that names every wrong
 * option at once, and the function name's problem with them (see functionNameProblems).
 */
function checkOptions(options, functionName) {
  const problems = functionNameProblems(functionName);
  const fail = () => {
    if (problems.length === 1) throw new WasmgrindError('UsageError', problems[0]);
    if (problems.length > 1) {
      const what = problems.some((p) => p.startsWith('the function name'))
        ? `${problems.length} problems`
        : `${problems.length} options are wrong`;
      throw new WasmgrindError('UsageError', `${what}: ${problems.map((p, i) => `(${i + 1}) ${p}`).join('; ')}`);
    }
  };
  if (options === undefined || options === null) {
    fail();
    return { ...DEFAULT_OPTIONS };
  }
  if (typeof options !== 'object' || Array.isArray(options)) {
    problems.push(`options must be an object, not ${Array.isArray(options) ? 'an array' : typeof options}`);
    fail();
  }
  const out = { ...DEFAULT_OPTIONS };
  let unknown = 0;
  for (const [key, value] of Object.entries(options)) {
    // Own keys only: `constructor` or `hasOwnProperty` are no options either.
    if (!Object.hasOwn(DEFAULT_OPTIONS, key)) {
      const near = nearestOption(key);
      problems.push(`unknown option \`${key}\`${near === null ? '' : ` (did you mean \`${near}\`?)`}`);
      unknown++;
      continue;
    }
    if (value === undefined) continue;
    if (key === 'signal') {
      if (value !== null && !(typeof value === 'object' && typeof value.aborted === 'boolean' && typeof value.addEventListener === 'function')) {
        problems.push(`option \`signal\` must be an AbortSignal or null, not ${typeof value}`);
      } else {
        out.signal = value;
      }
      continue;
    }
    if (key === 'onChunk' || key === 'onOutput') {
      if (value !== null && typeof value !== 'function') {
        problems.push(`option \`${key}\` must be a function or null, not ${typeof value}`);
      } else {
        out[key] = value;
      }
      continue;
    }
    if (key === 'args') {
      if (!Array.isArray(value) || value.some((a) => typeof a !== 'string')) {
        problems.push('option `args` must be an array of strings (argv[1..])');
      } else {
        out.args = [...value];
      }
      continue;
    }
    if (key === 'env') {
      const bad =
        value === null || typeof value !== 'object' || Array.isArray(value)
          ? ['it is not an object']
          : Object.entries(value)
              .filter(([k, v]) => typeof v !== 'string' || k === '' || k.includes('=') || k.includes('\0'))
              .map(([k]) => `\`${k}\``);
      if (bad.length > 0) {
        problems.push(
          `option \`env\` must be an object of strings whose names are not empty and contain no \`=\`; wrong: ${bad.join(', ')}`,
        );
      } else {
        out.env = { ...value };
      }
      continue;
    }
    if (key === 'programName') {
      if (value !== null && (typeof value !== 'string' || value === '')) {
        problems.push(`option \`programName\` must be a string that is not empty, or null (the module's file name), not ${typeof value}`);
      } else {
        out.programName = value;
      }
      continue;
    }
    if (key === 'recognizeLocks') {
      // null: the default, on for wasi-threads modules and off for wasmgrind-ABI ones.
      if (value !== null && typeof value !== 'boolean') {
        problems.push(`option \`recognizeLocks\` must be a boolean or null (the default for the module), not ${typeof value}`);
      } else {
        out.recognizeLocks = value;
      }
      continue;
    }
    const want = typeof DEFAULT_OPTIONS[key];
    if (typeof value !== want) {
      problems.push(`option \`${key}\` must be a ${want}, not ${typeof value} (${String(value)})`);
      continue;
    }
    out[key] = value;
  }
  const positive = (key, max, unlimited = false) => {
    const v = out[key];
    if (typeof v !== 'number' || (unlimited && v === Infinity)) return;
    if (!(v > 0) || (Number.isFinite(max) && v > max) || (key !== 'timeout' && !Number.isInteger(v))) {
      problems.push(
        `option \`${key}\` must be a positive ${key === 'timeout' ? 'number of milliseconds' : 'integer'}${
          Number.isFinite(max) ? ` of at most ${max}` : ''
        }${unlimited ? ' or Infinity (no limit)' : ''}, not ${v}`,
      );
    }
  };
  positive('timeout', MAX_TIMEOUT_MS, true);
  positive('maxThreads', 1 << 20);
  positive('maxEvents', Number.MAX_SAFE_INTEGER, true);
  positive('maxTraceBytes', Number.MAX_SAFE_INTEGER, true);
  positive('chunkEvents', 2 ** 31);
  positive('stackSize', 2 ** 31);
  // The patcher's rule (wasmgrind_patch::PatchError::InvalidStackSize), checked here with
  // the other options rather than after the module was read and patched.
  if (Number.isInteger(out.stackSize) && out.stackSize > 0 && (out.stackSize < 4096 || out.stackSize % 16 !== 0)) {
    problems.push(`option \`stackSize\` must be a multiple of 16 and at least 4096 (bytes), not ${out.stackSize}`);
  }
  if (!Number.isInteger(out.spareWorkers) || out.spareWorkers < 0 || out.spareWorkers > 64) {
    problems.push(`option \`spareWorkers\` must be an integer from 0 to 64, not ${out.spareWorkers}`);
  }
  if (!Number.isInteger(out.workers) || out.workers < 0 || out.workers > MAX_WORKERS) {
    problems.push(`option \`workers\` must be an integer from 0 to ${MAX_WORKERS}, not ${out.workers}`);
  }
  if (out.sampling === true && (out.memoryTrace === false || out.trace === false)) {
    problems.push(`option \`sampling\` needs \`memoryTrace\` and \`trace\` (it samples the recorded memory accesses)`);
  }
  if (out.recognizeLocks === true && out.memoryTrace === false) {
    problems.push('option `recognizeLocks` needs `memoryTrace` (it reads the values of the atomics)');
  }
  if (out.trace === false) {
    // Untraced runs record nothing: what needs a trace would silently get nothing.
    for (const [key, set] of [
      ['onChunk', out.onChunk !== null],
      ['timeline', out.timeline === true],
      ['maxEvents', out.maxEvents !== Infinity],
      ['maxTraceBytes', out.maxTraceBytes !== Infinity],
    ]) {
      if (set) problems.push(`option \`${key}\` needs \`trace\` (an untraced run records nothing)`);
    }
  }
  if (out.exportTrace === false && out.onChunk !== null) {
    problems.push('option `onChunk` needs `exportTrace` (without it there is no trace to stream)');
  }
  if (out.exportTrace === false && out.maxTraceBytes !== Infinity) {
    problems.push('option `maxTraceBytes` needs `exportTrace` (without it the trace has no bytes)');
  }
  // The list of the options once, after the last unknown one.
  if (unknown > 0) {
    const last = problems.findLastIndex((p) => p.startsWith('unknown option'));
    problems[last] += ` (the options are ${Object.keys(DEFAULT_OPTIONS).join(', ')})`;
  }
  fail();
  return out;
}

/** The option whose name is nearest to `key` (case aside, at most 2 edits away), or null. */
function nearestOption(key) {
  const distance = (a, b) => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const cur = [i];
      for (let j = 1; j <= b.length; j++) {
        cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      }
      prev = cur;
    }
    return prev[b.length];
  };
  let best = null;
  let bestDistance = 3;
  for (const name of Object.keys(DEFAULT_OPTIONS)) {
    const d = distance(key.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

function isUrlLike(s) {
  return /^(https?|file|blob|data):/i.test(s);
}

/** `bytes` if they own their whole buffer (so it can be transferred), else a copy. */
function whole(bytes) {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * `read()`, the bytes of the module at `where` (a path or a URL), or a `UsageError` that
 * names it and says what is wrong: a missing file, a directory, a failed fetch.
 */
async function readInput(where, read) {
  try {
    return await read();
  } catch (e) {
    if (e instanceof WasmgrindError) throw e;
    const code = e && e.code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory, not a .wasm file'
          : code === 'EACCES'
            ? 'permission denied'
            : `${e && e.message ? e.message : String(e)}${e && e.cause && e.cause.message ? ` (${e.cause.message})` : ''}`;
    throw new WasmgrindError('UsageError', `cannot read the module \`${where}\`: ${why}`, { cause: e });
  }
}

/** The module's bytes from a path (Node), a URL, or bytes. Always a fresh copy. */
async function loadBinary(binary) {
  if (binary instanceof ArrayBuffer) return new Uint8Array(binary.slice(0));
  if (typeof SharedArrayBuffer !== 'undefined' && binary instanceof SharedArrayBuffer) return new Uint8Array(binary).slice();
  // A fetch's Response (not read yet) or a Blob (a File from an <input type=file>).
  if (typeof Response !== 'undefined' && binary instanceof Response) {
    if (!binary.ok) {
      const status = [binary.status, binary.statusText].filter((x) => x !== '').join(' ');
      throw new WasmgrindError(
        'UsageError',
        `cannot read the module: the response is HTTP ${status}${binary.url ? ` (${binary.url})` : ''}`,
      );
    }
    // A body can be read once: a used Response (read already, or given to another call)
    // is a UsageError that says so.
    const where = binary.url ? `the Response of ${binary.url}` : 'the Response';
    const why = binary.bodyUsed ? ' (its body was read already: pass each call a Response of its own, or the bytes)' : '';
    return new Uint8Array(await readInput(`${where}${why}`, () => binary.arrayBuffer()));
  }
  if (typeof Blob !== 'undefined' && binary instanceof Blob) {
    return new Uint8Array(await readInput('the Blob', () => binary.arrayBuffer()));
  }
  // Every view, Node's Buffer included, is copied through a plain Uint8Array: a Buffer's
  // own `slice()` is a view of the same memory, which transferring would detach.
  if (ArrayBuffer.isView(binary)) {
    return new Uint8Array(binary.buffer, binary.byteOffset, binary.byteLength).slice();
  }
  if (binary instanceof URL) return whole(await readInput(binary, () => readUrl(binary)));
  if (typeof binary === 'string') {
    if (isUrlLike(binary)) {
      let url;
      try {
        url = new URL(binary);
      } catch (e) {
        throw new WasmgrindError('UsageError', `the module's URL \`${binary}\` is not a valid URL: ${e.message}`, { cause: e });
      }
      return whole(await readInput(binary, () => readUrl(url)));
    }
    if (isNode) return whole(await readInput(binary, () => readPath(binary)));
    return whole(await readInput(binary, () => readUrl(new URL(binary, globalThis.location.href))));
  }
  throw new WasmgrindError(
    'UsageError',
    `the binary must be a path, a URL, bytes (an ArrayBuffer, SharedArrayBuffer or typed array), a Response or a Blob, not ${
      binary === null ? 'null' : typeof binary
    }`,
  );
}

/**
 * In a browser, what the run's manager can read itself instead of the calling thread: the
 * absolute URL of a URL or a URL string (a relative one is resolved against the page, as
 * `loadBinary` would), or a Blob. `null`: the caller reads the binary (bytes, a Response,
 * anything in Node.js). A URL string that is no valid URL fails here, as in `loadBinary`.
 */
function managerReads(binary) {
  if (isNode) return null;
  if (binary instanceof URL) return binary.href;
  if (typeof Blob !== 'undefined' && binary instanceof Blob) return binary;
  if (typeof binary !== 'string') return null;
  try {
    return isUrlLike(binary) ? new URL(binary).href : new URL(binary, globalThis.location.href).href;
  } catch (e) {
    throw new WasmgrindError('UsageError', `the module's URL \`${binary}\` is not a valid URL: ${e.message}`, { cause: e });
  }
}

/** A plain object carrying every property of an error, for postMessage. */
export function serializeError(e) {
  if (e === null || typeof e !== 'object') {
    return { message: String(e), kind: 'RuntimeError' };
  }
  const out = { message: String(e.message), kind: e.kind || 'RuntimeError' };
  for (const key of Object.keys(e)) {
    if (key !== 'message' && key !== 'stack') out[key] = e[key];
  }
  if (e.variant !== undefined) out.variant = e.variant;
  return out;
}

function deserializeError(o) {
  const { message, kind, ...rest } = o;
  if (rest.trace) lazyTrace(rest.trace);
  return new WasmgrindError(kind, message, rest);
}

/**
 * Gives a result or trace as the manager sends it (the STD text and the metadata as bytes,
 * `stdBytes` and `metadataBytes`, transferred rather than copied) its `std` and `metadata`:
 * properties that decode the bytes on their first access and keep what they decoded. So
 * the thread that receives the result (a page's main thread) spends no time on them until
 * they are asked for; the first access then takes the time of `TextDecoder` (and of
 * `JSON.parse` for the metadata), which for a trace of millions of events is a large part
 * of a second. Both can be assigned, too.
 */
function lazyTrace(r) {
  if (r === null || typeof r !== 'object' || !('stdBytes' in r)) return r;
  const lazy = (name, decode) => {
    let value;
    let decoded = false;
    Object.defineProperty(r, name, {
      enumerable: true,
      configurable: true,
      get() {
        if (!decoded) {
          value = decode();
          decoded = true;
        }
        return value;
      },
      set(v) {
        value = v;
        decoded = true;
      },
    });
  };
  lazy('std', () => (r.stdBytes ? decodeWhole(r.stdBytes, 'std', 'stdBytes') : null));
  lazy('metadata', () =>
    r.metadataBytes ? JSON.parse(decodeWhole(r.metadataBytes, 'metadata', 'metadataBytes')) : null,
  );
  return r;
}

/**
 * `bytes` as one string, or a `LimitError` that says to use `bytesName` when the engine
 * cannot make a string that long (V8: about 2^29 characters).
 */
function decodeWhole(bytes, name, bytesName) {
  try {
    return new TextDecoder().decode(bytes);
  } catch (e) {
    // Node.js: an Error with code ERR_STRING_TOO_LONG; browsers: a RangeError.
    if (!(e instanceof RangeError) && e?.code !== 'ERR_STRING_TOO_LONG') throw e;
    throw new WasmgrindError(
      'LimitError',
      `\`${name}\` is ${bytes.length} bytes, more than this engine can hold in one string (${e.message}): ` +
        `read \`${bytesName}\` (the same text as UTF-8 bytes) instead, or stream the trace with \`onChunk\``,
      { variant: 'StringTooLong' },
    );
  }
}

/**
 * Runs `functionName` of the module `binary` (a path in Node, a URL, or bytes) with real
 * threads and resolves to `{ rapidbin, std, metadata, status, ... }`; see README.md.
 * With `options.onChunk`, the trace goes to that callback chunk by chunk while the program
 * runs, and the result carries the final headers instead. Rejects with a
 * `WasmgrindError` (with `kind`) when the module cannot run, a thread traps or panics,
 * the run exceeds `options.timeout` or a limit of the trace, or `onChunk` fails.
 */
export async function wasmgrind(binary, functionName, options) {
  if (typeof SharedArrayBuffer === 'undefined') {
    throw new WasmgrindError(
      'UsageError',
      'shared memory is not available here (crossOriginIsolated is false): serve the page with the headers ' +
        '`Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` ' +
        '(see the book\'s chapter "Running in a browser")',
    );
  }
  const { onChunk, onOutput, signal, ...opts } = checkOptions(options, functionName);
  const stream = typeof onChunk === 'function';
  if (signal !== null && signal.aborted) {
    throw new WasmgrindError('Stopped', 'the run was not started: its signal was aborted already');
  }
  const programName = opts.programName ?? programNameOf(binary);
  // In a browser the run's manager fetches a URL (or reads a Blob) itself: the body of a
  // fetch arrives in pieces on the thread that reads it, and on a page's main thread a
  // module of a few megabytes kept it busy for 15 ms and more per call.
  const source = managerReads(binary);
  // Reading may take as long as the server or stream takes: the signal stops it too.
  const bytes = source === null ? await untilAborted(loadBinary(binary), signal) : null;
  await configureEngine();
  // The utility module compiled by an earlier call's manager, else null: the manager then
  // fetches and compiles it itself and sends it here for the next calls (on a page's main
  // thread, reading and compiling its 3 MB took 15 to 25 ms of the first call).
  const utilModule = compiledUtilityModule;
  // ANCHOR: manager-worker
  // The manager of an earlier run that kept its workers, else a new one.
  const proxy =
    idleManagers.pop() ??
    (await startWorker(
      // Spelled out so that bundlers bundle the script (see startWorker in shim.js).
      () => new Worker(new URL('./wgrind_worker.js', import.meta.url), { type: 'module', name: 'wasmgrind-manager' }),
      './wgrind_worker.js',
      'wasmgrind-manager',
    ));
  // The call in progress keeps a Node.js process alive, as pending I/O does (a kept manager
  // does not: see `finish`).
  proxy.ref();
  // ANCHOR_END: manager-worker
  return new Promise((resolve, reject) => {
    let done = false;
    // The chunks are handed to `onChunk` one after the other; each is acknowledged when
    // its callback has finished, which lets the manager send more (see wgrind_worker.js).
    let delivered = Promise.resolve();
    // Aborting the signal asks the manager to stop the run; its answer is the error.
    const onAbort = () => {
      if (!done) proxy.post({ stop: true });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // Whether the manager's answer said it kept its workers for another run.
    let reusable = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(backstop);
      // A manager that kept its workers after a clean run waits for the next call (at
      // most MAX_IDLE_MANAGERS of them; see closeIdleWorkers). Otherwise nothing of the
      // run outlives it: terminating the manager ends its thread workers.
      if (reusable && fn === resolve && idleManagers.length < MAX_IDLE_MANAGERS) {
        proxy.onMessage(() => {});
        proxy.onError(() => {});
        proxy.unref();
        idleManagers.push(proxy);
        fn(value);
        return;
      }
      proxy.terminate().then(
        () => fn(value),
        () => fn(value),
      );
    };
    // The manager's own timeout counts from the start of the function (after the module
    // is prepared), so the caller's backstop is armed again when the manager says it has
    // started the function (`{ started }`). A manager that is waiting for the caller is
    // not hung: as long as its messages keep coming (a slow `onOutput` makes them queue
    // up here) or `onChunk` keeps finishing chunks, the backstop waits another grace
    // period; an `onChunk` that finishes nothing for that long is named as the cause.
    let lastHeard = performance.now();
    let chunksOut = 0;
    // Whether the manager said that the function started (its module is prepared).
    let startedSeen = false;
    const arm = (ms = opts.timeout + ANSWER_GRACE_MS) =>
      Number.isFinite(opts.timeout) ? setTimeout(onBackstop, ms) : undefined;
    const onBackstop = () => {
      const quiet = performance.now() - lastHeard;
      if (quiet < ANSWER_GRACE_MS) {
        backstop = arm(ANSWER_GRACE_MS - quiet);
        return;
      }
      // A run stopped after a failed callback whose answer did not come: that failure.
      if (failure !== null) return finish(reject, failure);
      finish(
        reject,
        new WasmgrindError(
          'Timeout',
          chunksOut > 0
            ? `the onChunk callback did not finish chunk ${nextChunk} within ${ANSWER_GRACE_MS} ms, ` +
                `${opts.timeout + ANSWER_GRACE_MS} ms or more after the function started (the timeout plus ` +
                `${ANSWER_GRACE_MS} ms); the run was stopped`
            : startedSeen
              ? `the Wasmgrind manager did not answer within ${opts.timeout + ANSWER_GRACE_MS} ms ` +
                `(the timeout plus ${ANSWER_GRACE_MS} ms) of starting the function, and sent nothing for the ` +
                `last ${ANSWER_GRACE_MS} ms; it was terminated`
              : `the module was not prepared (read, patched, instrumented, compiled) within ` +
                `${opts.timeout + ANSWER_GRACE_MS} ms (the timeout plus ${ANSWER_GRACE_MS} ms), and the function ` +
                'never started; the manager was terminated (a module URL whose server does not answer ends ' +
                'this way: `signal` stops such a call at once)',
        ),
      );
    };
    let backstop = arm();
    // A callback of the caller (onChunk, onOutput) failed: the run is stopped, and its
    // answer (the trace so far, the output, the threads' states) completes this error.
    let failure = null;
    const callbackFailed = (err) => {
      if (done || failure !== null) return;
      failure = err;
      proxy.post({ stop: true });
    };
    // The fields of the manager's answer that a failure of the caller's callback keeps:
    // those of a failed run's error. (A run that ended before it could be stopped answers
    // with its result, which is then the error's `trace`; its `threads` counts differ
    // from an error's thread states.)
    const ANSWER_FIELDS = ['trace', 'findings', 'report', 'stdout', 'stderr', 'exitCode', 'abi', 'threadStates', 'threads'];
    const failWith = (answer, isResult) => {
      for (const key of ANSWER_FIELDS) {
        if (isResult && key === 'threads') continue;
        if (answer[key] !== undefined && answer[key] !== null) failure[key] = answer[key];
      }
      if (isResult) failure.trace = answer;
      finish(reject, failure);
    };
    // The index of the chunk `onChunk` works on (or gets next).
    let nextChunk = 0;
    // What a run stopped by its caller while `onChunk` still works on a chunk leaves out.
    const undelivered = () =>
      `onChunk had not finished chunk ${nextChunk}, so ${chunksOut - 1} later chunk(s) were not delivered`;
    const deliver = (chunk) => {
      chunksOut++;
      delivered = delivered
        .then(() => {
          nextChunk = chunk.index;
          return done || failure !== null ? undefined : onChunk(chunk);
        })
        .then(
          () => {
            nextChunk = chunk.index + 1;
            chunksOut--;
            lastHeard = performance.now();
            if (!done) proxy.post({ ack: chunk.index });
          },
          (e) => {
            chunksOut--;
            callbackFailed(
              new WasmgrindError(
                'ChunkError',
                `the onChunk callback failed on chunk ${chunk.index}: ${e && e.message ? e.message : String(e)}; ` +
                  'the run was stopped',
                { cause: e },
              ),
            );
          },
        );
    };
    // What a wasi program writes, as it comes (before the result, in order).
    const outputFailed = (e) =>
      callbackFailed(
        new WasmgrindError(
          'OutputError',
          `the onOutput callback failed: ${e && e.message ? e.message : String(e)}; the run was stopped`,
          { cause: e },
        ),
      );
    const output = ({ stream, text, bytes }) => {
      if (typeof onOutput !== 'function' || done || failure !== null) return;
      try {
        const returned = onOutput(stream, text, bytes);
        // An async callback fails by rejecting: that stops the run the same way (its
        // promise is not awaited; the output keeps coming in order).
        if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
          returned.then(undefined, outputFailed);
        }
      } catch (e) {
        outputFailed(e);
      }
    };
    // ANCHOR: caller-messages
    proxy.onMessage((m) => {
      lastHeard = performance.now();
      if (m.utilModule !== undefined) {
        if (m.utilModule instanceof WebAssembly.Module) compiledUtilityModule ??= m.utilModule;
        return;
      }
      if (m.started !== undefined) {
        startedSeen = true;
        clearTimeout(backstop);
        if (!done) backstop = arm();
        return;
      }
      if (m.output !== undefined) return output(m.output);
      if (failure !== null) {
        // Stopping after a failed callback: no more chunks for the caller; the answer.
        if (m.result !== undefined) failWith(lazyTrace(m.result), true);
        else if (m.error !== undefined) failWith(deserializeError(m.error), false);
        return;
      }
      if (m.chunk !== undefined) deliver(m.chunk);
      // The result and errors come after the last chunk: they wait for its delivery.
      else if (m.result !== undefined) {
        reusable = m.reusable === true;
        if (signal?.aborted && chunksOut > 0) {
          // Stopped by its caller while onChunk still works on a chunk, after the function
          // returned: the run is stopped all the same, and does not wait for onChunk. The
          // error has what any failed run's has (the findings, the output, ...), and the
          // result as its trace.
          const trace = lazyTrace(m.result);
          const props = { trace };
          for (const key of ANSWER_FIELDS) {
            if (key !== 'trace' && key !== 'threads' && trace[key] !== undefined && trace[key] !== null) {
              props[key] = trace[key];
            }
          }
          finish(
            reject,
            new WasmgrindError(
              'Stopped',
              `the run of \`${functionName ?? '_start'}\` was stopped by its caller (its signal was aborted) after the ` +
                `function had returned; ${undelivered()}`,
              props,
            ),
          );
        } else {
          // onChunk may fail on one of the last chunks after the result came: the run then
          // fails with that (ChunkError), not resolve without the chunks.
          delivered.then(() =>
            failure !== null ? failWith(lazyTrace(m.result), true) : finish(resolve, lazyTrace(m.result)),
          );
        }
      }
      else if (m.error !== undefined) {
        const err = deserializeError(m.error);
        if (signal?.aborted && chunksOut > 0) {
          // Stopped by its caller while onChunk still works on a chunk: the answer does
          // not wait for it (it may never finish); the chunks after it are not delivered.
          err.message += `; ${undelivered()}`;
          finish(reject, err);
        } else delivered.then(() => (failure !== null ? failWith(err, false) : finish(reject, err)));
      }
    });
    proxy.onError((e) =>
      finish(reject, new WasmgrindError('WorkerError', `the Wasmgrind manager failed: ${e.message}`)),
    );
    proxy.post(
      {
        binary: source ?? bytes,
        functionName,
        options: opts,
        stream,
        output: typeof onOutput === 'function',
        programName,
        started: true,
        ...(utilModule === null ? { sendUtilModule: true } : { utilModule }),
      },
      bytes === null ? [] : [bytes.buffer],
    );
    // Aborted while the module was loaded or the manager started: the run is stopped as
    // soon as it can be (the listener is not called for a signal aborted before). After
    // the run message: a manager that is between runs ignores a stop (it came too late
    // for the run before).
    if (signal?.aborted) onAbort();
    // ANCHOR_END: caller-messages
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * How long a run whose timeout came just after a thread ended it waits for that thread's
 * message to the manager, which then decides the outcome (see Session.run).
 */
const ENDING_GRACE_MS = 1000;

/** Whether this thread (a manager) instantiated the utility module for a run already. */
let utilityStarted = false;

/** Managers that kept their workers after a clean run, waiting for the next call. */
const idleManagers = [];

/**
 * How many such managers wait at most: one, with the workers its run had idle at the end
 * (those beyond the run's `maxIdle` close after LINGER_MS unless a call takes them).
 */
const MAX_IDLE_MANAGERS = 1;

/**
 * Ends the workers that `wasmgrind()` keeps between calls. A call that ended cleanly
 * leaves its manager and its idle thread workers running, so that the next call starts
 * without booting new ones (a worker boots in tens of milliseconds of CPU time); they
 * hold a few megabytes each and the utility memory of that run (at most 256 MiB). In
 * Node.js they never keep the process alive. Resolves when they are terminated.
 */
export async function closeIdleWorkers() {
  const all = idleManagers.splice(0);
  await Promise.all(all.map((p) => p.terminate()));
}

/**
 * The thread worker's script in Node.js: `cargo xtask dist` writes worker.js with the
 * modules it imports inlined, and the same code as this CommonJS script, which a Node.js
 * worker loads without the ES module loader (a worker boots in about two thirds of the
 * CPU time).
 */
const NODE_WORKER_SCRIPT = './worker.cjs';

/**
 * The utility module, compiled once per thread that compiles it (a run's manager) and
 * handed to that run's workers. The manager of the first `wasmgrind()` call of a thread
 * sends it to the calling thread (`compiledUtilityModule`), which hands it to the managers
 * of later calls. A compiled module that is posted to a worker keeps its code, so what the
 * engine compiled lazily in one run (with `--no-liftoff` in Node.js, optimized code for
 * every function on its first call: about 0.4 s for the patcher and the instrumenter) is
 * ready in the next. A failed compile is not kept.
 */
function utilityModule() {
  const url = new URL('./wasmgrind_js_bg.wasm', import.meta.url);
  utilityModulePromise ??= readUrl(url)
    .then((bytes) => WebAssembly.compile(bytes))
    .catch((e) => {
      utilityModulePromise = null;
      throw new WasmgrindError(
        'RuntimeError',
        `cannot load Wasmgrind's utility module ${url}: ${e && e.message}; the package is incomplete ` +
          '(reinstall it, or rebuild pkg/ with `cargo xtask dist`) or, in a browser, the file is not served',
      );
    });
  return utilityModulePromise;
}
let utilityModulePromise = null;

/**
 * The utility module as the manager of this thread's first `wasmgrind()` call compiled
 * it (its `{ utilModule }` message), or null before that.
 */
let compiledUtilityModule = null;

/** A function name is a non-empty string, or missing (wasi modules: `_start`): else its problem. */
function functionNameProblems(functionName) {
  if (functionName === undefined || functionName === null) return [];
  if (typeof functionName !== 'string' || functionName === '') {
    return ['the function name must be a non-empty string (or missing: `_start` of a wasi module)'];
  }
  return [];
}

/**
 * argv[0] of a wasi program: the file name of its path, URL, Response's URL or File, else
 * `main.wasm`.
 */
export function programNameOf(binary) {
  const urlPath = (url) => {
    // A URL's path is percent-encoded: `my%20prog.wasm` is the file `my prog.wasm`.
    try {
      return decodeURIComponent(url.pathname);
    } catch {
      return url.pathname;
    }
  };
  let path = null;
  if (binary instanceof URL) path = urlPath(binary);
  else if (typeof Response !== 'undefined' && binary instanceof Response && binary.url) {
    path = urlPath(new URL(binary.url));
  } else if (typeof File !== 'undefined' && binary instanceof File) path = binary.name;
  else if (typeof binary === 'string') {
    // An invalid URL is reported when the module is read; its name here is its text's.
    path = binary;
    if (isUrlLike(binary)) {
      try {
        path = urlPath(new URL(binary));
      } catch {}
    }
  }
  const name = path === null ? '' : path.split(/[\\/]/).pop();
  return name === '' ? 'main.wasm' : name;
}

/**
 * What the utility module measured of its work on the trace over the whole run (chunk by
 * chunk, and at the end): `collectMs` (moving events into chunks), `analysisMs` (the
 * detectors and their report), `exportMs` (all trace formats) and its parts in `export`
 * (the dense ids are shared by RapidBin, STD and the metadata).
 */
function finishTimings(trace) {
  const t = trace?.timings;
  if (!t) return {};
  return {
    collectMs: t.collectMs,
    analysisMs: t.analysisMs,
    exportMs: t.nativeMs + t.denseMs + t.rapidbinMs + t.stdMs + t.metadataMs,
    export: {
      nativeMs: t.nativeMs,
      denseMs: t.denseMs,
      rapidbinMs: t.rapidbinMs,
      stdMs: t.stdMs,
      metadataMs: t.metadataMs,
    },
  };
}
const hex = (n) => `0x${(n >>> 0).toString(16)}`;

/**
 * One run, in the calling thread, which must be allowed to block briefly and must be the
 * only run in this realm (the utility module is instantiated once per realm). This is what
 * `wgrind_worker.js` calls; use `wasmgrind()` everywhere else. With `hooks.onChunk`, an
 * async function, the trace goes to it chunk by chunk (the run waits for each call before
 * it drains more); without, the result carries the whole trace. `hooks.onOutput(stream,
 * text, bytes)` gets what a wasi program writes (as `onOutput` of the options),
 * `hooks.programName` is its argv[0], `hooks.onStarted()` is called when the module is
 * prepared and the function starts, `hooks.onStoppable(stop)` gets a function that stops
 * the run, `hooks.onStopping()` is called when the run was stopped from outside,
 * `hooks.utilModule` is the compiled utility module to use (else it is compiled here and
 * handed to `hooks.onUtilModule(module)`, as soon as it is compiled), and
 * `hooks.onReusable()` is called before the result is returned when this thread may run
 * the next run (its workers and utility memory were kept for it; see keptWorkers).
 */
export async function runSession(binary, functionName, options, hooks = {}) {
  const { onChunk: _ignored, onOutput: _alsoIgnored, signal: _notHere, ...opts } = checkOptions(options, functionName);
  const started = performance.now();
  // The first thread workers boot (a new thread, engine and scripts: tens of milliseconds
  // of CPU time each) in parallel with everything below; they get the modules once the
  // target is compiled (Session.attach).
  // ANCHOR: run-session
  const session = new Session(opts, functionName, typeof hooks.onOutput === 'function' ? hooks.onOutput : null);
  if (hooks.utilModule instanceof WebAssembly.Module) session.utilModule = hooks.utilModule;
  else if (typeof hooks.onUtilModule === 'function') session.onUtilModule = hooks.onUtilModule;
  // The caller may stop the run from now on (wgrind_worker.js's `{ stop: true }`).
  hooks.onStoppable?.(() => session.settle({ type: 'stopped' }));
  session.prestart(opts.workers > 0 ? opts.workers : 1 + opts.spareWorkers);
  try {
    const programName = hooks.programName ?? opts.programName ?? programNameOf(binary);
    await prepare(session, binary, functionName, opts, typeof hooks.onChunk === 'function' ? hooks.onChunk : null, programName);
  } catch (e) {
    await session.terminateAll();
    await session.terminateAnalysis();
    throw e;
  }
  session.prepareMs = performance.now() - started;
  if (typeof hooks.onStarted === 'function') session.onStarted = hooks.onStarted;
  if (typeof hooks.onStopping === 'function') session.onStopping = hooks.onStopping;
  const result = await session.run();
  if (session.reusable) hooks.onReusable?.();
  return result;
  // ANCHOR_END: run-session
}

/** The error of a run stopped by its caller before its module was read. */
function stoppedWhileReading() {
  return new WasmgrindError(
    'Stopped',
    'the run was not started: it was stopped by its caller (its signal was aborted) while its module was read',
  );
}

/**
 * `promise`, or a rejection with a `Stopped` error as soon as `signal` is aborted (the
 * work behind `promise` is left to finish on its own; its outcome is ignored).
 */
function untilAborted(promise, signal) {
  if (signal === null) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(stoppedWhileReading());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Steps 1 to 6 of a run: everything before the first thread runs. */
async function prepare(session, binary, functionName, opts, sink, programName) {
  // A stop that comes while the module is read (a URL whose server stalls) ends the wait.
  const stopped = session.outcome.then((o) =>
    o.type === 'stopped' ? Promise.reject(stoppedWhileReading()) : new Promise(() => {}),
  );
  const bytes = await Promise.race([loadBinary(binary), stopped]);

  // 1. The utility module, on a shared memory of its own: the caller's compiled module
  // when `wasmgrind()` started the run (see utilityModule), else compiled here.
  const glue = await import('./wasmgrind_js.js');
  let utilModule = session.utilModule;
  if (utilModule === null) {
    utilModule = await utilityModule();
    session.onUtilModule?.(utilModule);
  }
  // A manager's later runs find the instance of its first run (see keptWorkers).
  const later = utilityStarted;
  const u = glue.initSync({ module: utilModule, thread_stack_size: UTIL_STACK_SIZE });
  utilityStarted = true;
  const utilMemory = u.memory;
  // Room for the first trace buffers (a later run has the room its predecessor freed) and
  // for the utility instances of the new workers that are starting (kept ones have theirs;
  // see Session.reserveUtil).
  glue.reserveHeap((later ? 0 : UTIL_RESERVE_BYTES) + (session.workers.size - session.keptUsed) * UTIL_WORKER_BYTES);

  // 3./4. Patch, check the entry, instrument. Errors reject before anything runs.
  // Without tracing the patched module is the result, so the patcher validates it;
  // otherwise the instrumenter validates its input, the patched module (and the engine
  // the instrumented one, when it compiles it). A wasi module is not patched (its
  // libc gives every thread its stack and TLS), so without tracing it is validated here.
  let abi;
  try {
    abi = glue.moduleAbi(bytes);
  } catch {
    // Not a module at all: the patcher says what is wrong with it, before anything asks
    // for a function name that such a module cannot have.
    abi = 'wasmgrind';
    if (functionName === undefined || functionName === null) glue.patch(bytes, opts.stackSize, true);
  }
  if (functionName === undefined || functionName === null) {
    if (abi !== 'wasi') {
      // What is wrong with the module comes first (the patcher names every problem): a
      // module that is not built for Wasmgrind has no function worth naming.
      glue.patch(bytes, opts.stackSize, true);
      const runnable = glue.runnableFunctions(bytes).map((n) => `\`${n}\``);
      throw new WasmgrindError(
        'UsageError',
        'name the function to run: the module uses the wasmgrind ABI (it imports no WASI ' +
          'functions), so it has no `_start` to run by default; the functions it can run: ' +
          (runnable.length > 0 ? runnable.join(', ') : 'none'),
      );
    }
    functionName = '_start';
  }
  session.functionName = functionName;
  if (abi !== 'wasi' && (opts.args.length > 0 || Object.keys(opts.env).length > 0)) {
    throw new WasmgrindError(
      'UsageError',
      'options `args` and `env` are for wasi programs (built for wasm32-wasip1-threads); this module ' +
        'uses the wasmgrind ABI, whose functions take no arguments',
    );
  }
  const recognizeLocks = opts.recognizeLocks ?? abi === 'wasi';
  let patched;
  if (abi === 'wasi') {
    if (!opts.trace) glue.validate(bytes);
    patched = bytes;
  } else {
    patched = glue.patch(bytes, opts.stackSize, !opts.trace);
  }
  glue.checkEntry(bytes, functionName);
  let wasm = patched;
  let locations = '[]';
  if (opts.trace) {
    const out = glue.instrument(patched, opts.memoryTrace, opts.memoryTrace && recognizeLocks, opts.memoryTrace && opts.sampling);
    wasm = out.wasm;
    locations = out.locations;
  }
  // Last: V8 checks bulk memory operations and `memory.atomic.notify` against the memory
  // size an instance last saw, which lags behind other threads' `memory.grow`; see
  // `refresh_bounds` in wasmgrind-patch.
  wasm = glue.refreshBounds(wasm);

  // 5. Compile, and check that the runtime provides every import. The instrumenter
  // validated its input (the patched module) but not its output: the engine does that
  // here, and refusing it is a bug of Wasmgrind, not of the module.
  const targetModule = await WebAssembly.compile(wasm).catch((e) => {
    if (!opts.trace || !(e instanceof WebAssembly.CompileError)) throw e;
    throw new WasmgrindError(
      'InstrumentError',
      `internal error: the instrumented module does not compile (${e.message}) although the ` +
        'module validates; this is a bug in Wasmgrind\'s instrumenter: please report it with the module',
      { variant: 'InvalidOutput' },
    );
  });
  const { memoryImport, wasiNames } = checkImports(targetModule, abi);
  const exportNames = new Set(WebAssembly.Module.exports(targetModule).map((e) => e.name));
  const hasInit = exportNames.has('__wasmgrind_init');

  // 6. The target's shared memory.
  const [minPages, maxPages] = glue.memoryLimits(wasm);
  const targetMemory = new WebAssembly.Memory({
    initial: minPages,
    maximum: maxPages,
    shared: true,
  });

  glue.traceStart(
    opts.maxThreads,
    opts.maxEvents,
    opts.maxTraceBytes,
    opts.atomicsAsLocks,
    opts.lockRequests,
    locations,
    bytes,
    patched,
    opts.trace && opts.memoryTrace && recognizeLocks,
    opts.trace && opts.timeline,
    opts.exportTrace,
  );
  session.attach({
    glue,
    hasInit,
    abi,
    wasiNames,
    args: [programName, ...opts.args],
    locations,
    util: { module: utilModule, memory: utilMemory, stackSize: UTIL_STACK_SIZE },
    target: { module: targetModule, memory: targetMemory, memoryImport },
    sink,
  });
}

/** The ABI imports the runtime provides; anything else is refused up front. */
const PROVIDED = new Set([
  'thread_create',
  'thread_join',
  'panic',
  'start_lock',
  'finish_lock',
  'start_unlock',
  'finish_unlock',
  'heap_alloc',
  'heap_free',
  'heap_malloc',
  'heap_free_unsized',
  'pthread_created',
  'pthread_joined',
  'pthread_detached',
  'mem_read',
  'mem_write',
  'mem_atomic_begin',
  'mem_atomic_value',
]);

/**
 * The imported memory and, for a wasi module, the names of its WASI preview1 imports.
 * A wasi module may import `wasi.thread-spawn` and any function of
 * `wasi_snapshot_preview1` (those that wasi.js does not implement fail with an errno).
 */
function checkImports(module, abi) {
  let memoryImport = null;
  const wasiNames = [];
  // Every unsupported import is named at once, so that one rebuild can fix them all.
  const unsupported = [];
  let spawns = false;
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind === 'memory') {
      memoryImport = { module: imp.module, name: imp.name };
    } else if (imp.module === 'wasmgrind' && imp.kind === 'function' && PROVIDED.has(imp.name)) {
      // provided
    } else if (abi === 'wasi' && imp.kind === 'function' && imp.module === 'wasi_snapshot_preview1') {
      wasiNames.push(imp.name);
    } else if (abi === 'wasi' && imp.kind === 'function' && imp.module === 'wasi' && imp.name === 'thread-spawn') {
      spawns = true;
    } else {
      unsupported.push(`the ${imp.kind} \`${imp.module}.${imp.name}\``);
    }
  }
  const provided = [...PROVIDED].map((n) => `wasmgrind.${n}`);
  if (abi === 'wasi') provided.push('wasi.thread-spawn', 'every function of wasi_snapshot_preview1');
  if (unsupported.length > 0) {
    throw new WasmgrindError(
      'UnsupportedImport',
      `the module imports ${unsupported.join(', ')}, which the Wasmgrind runtime does not ` +
        `provide; it provides the memory and the functions ${provided.join(', ')}`,
    );
  }
  if (memoryImport === null) {
    throw new WasmgrindError(
      'UnsupportedImport',
      'the module imports no memory; it needs an imported shared memory' +
        (abi === 'wasi'
          ? ': build a WASI program for wasm32-wasip1-threads (wasm32-wasip1 exports an unshared memory)'
          : ''),
    );
  }
  if (spawns && !WebAssembly.Module.exports(module).some((e) => e.name === 'wasi_thread_start' && e.kind === 'function')) {
    throw new WasmgrindError(
      'EntryError',
      'the module imports `wasi.thread-spawn` but exports no function `wasi_thread_start`, where its ' +
        'threads start; build it for wasm32-wasip1-threads (its libc exports it)',
    );
  }
  return { memoryImport, wasiNames };
}

/** The bytes of `parts` one after the other. */
function concat(parts) {
  let length = 0;
  for (const p of parts) length += p.byteLength;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A `WasmgrindError` for an error thrown by the utility module (which has `kind`, `variant`). */
function utilityError(e, session = null) {
  if (e instanceof WasmgrindError) return e;
  // A trap of the utility module: what it left of its cause, if anything.
  if (e instanceof WebAssembly.RuntimeError && session?.glue && session.util) {
    const cause = utilityTrapCause(session.glue, session.util.memory);
    if (cause !== null) {
      return new WasmgrindError(cause.outOfMemory ? 'OutOfMemory' : 'RuntimeError', cause.message, { cause: e });
    }
  }
  const props = e && e.variant !== undefined ? { variant: e.variant } : {};
  return new WasmgrindError((e && e.kind) || 'RuntimeError', String((e && e.message) || e), props);
}

/**
 * The manager of one run: the worker pool, the outcome, the streaming of the trace, the
 * end of the run.
 *
 * It exists from the start of the run, so that the first workers boot while the module is
 * prepared; `attach` gives it the modules, and only then do workers get their `init`.
 */
class Session {
  constructor(opts, functionName, onOutput) {
    this.glue = null;
    this.opts = opts;
    this.functionName = functionName;
    this.abi = null;
    // What the program writes (wasi modules), collected for the result and passed on.
    this.output = createOutputChannel();
    this.stdout = [];
    this.stderr = [];
    this.drainOutput = outputReader(this.output, (stream, text, bytes) => {
      if (text !== '') (stream === 'stdout' ? this.stdout : this.stderr).push(text);
      if (onOutput !== null) onOutput(stream, text, bytes);
    });
    this.maxThreads = opts.maxThreads;
    this.control = new SharedArrayBuffer(controlBytes(this.maxThreads));
    this.v = controlViews(this.control, this.maxThreads);
    this.ctrl = this.v.ctrl;
    this.workers = new Map();
    /** Workers of the manager's previous run that this run took (see keptWorkers). */
    this.keptUsed = 0;
    /** Whether the run ended so that its workers and utility memory serve the next run. */
    this.reusable = false;
    /** The released workers to keep, between the end of the run and its disposal. */
    this.keeping = null;
    this.nextIndex = 0;
    this.starting = 0;
    this.failures = new Map();
    this.crashes = [];
    // A worker may fail before the run starts; the run then ends as soon as it starts.
    this.outcome = new Promise((resolve) => {
      this.settle = resolve;
    });
    this.attached = new Promise((resolve) => {
      this.onAttached = resolve;
    });
    /** The compiled utility module given by the caller (runSession's hooks), or null. */
    this.utilModule = null;
    /** Called with the utility module when this run compiled it itself (hooks), or null. */
    this.onUtilModule = null;
    /**
     * Whether the utility module trapped during the run (out of memory, a panic): its
     * locks may be held for good, so the end of the run does not call into the trace.
     */
    this.utilityTrapped = false;
    /** Whether a crash of a worker was its utility instance running out of memory. */
    this.crashOutOfMemory = false;
    /**
     * The analysis worker (see `startAnalysis`): `{ handle, closed }` once started,
     * else null; `analysisFailed` says why it failed, if it did.
     */
    this.analysis = null;
    this.analysisFailed = null;
  }

  /** The modules and the recorder are ready: workers started so far get their `init`. */
  attach({ glue, hasInit, abi, wasiNames, args, locations, util, target, sink }) {
    this.glue = glue;
    this.abi = abi;
    /** Where chunks go (`onChunk`), or null: then they are collected for the result. */
    this.sink = sink;
    this.collected = sink === null ? { rapidbin: [], std: [], native: [], timeline: [] } : null;
    this.locations = locations;
    this.util = util;
    this.target = target;
    this.runInfo = {
      maxThreads: this.maxThreads,
      entry: this.functionName,
      hasInit,
      traced: this.opts.trace,
      memoryTrace: this.opts.trace && this.opts.memoryTrace,
      spare: this.opts.spareWorkers,
      // Workers asked for up front (`workers`) are kept through idle moments, and for the
      // next run of this manager.
      maxIdle: Math.max(4, 2 * this.opts.spareWorkers, this.opts.workers),
      lingerMs: LINGER_MS,
      reservedBytes: glue.reservedBytes(),
      abi,
      wasiNames,
      args,
      env: this.opts.env,
    };
    this.onAttached();
  }

  /** Starts `count` workers at once, before the modules are ready. */
  prestart(count) {
    const n = Math.min(count, this.maxThreads + this.opts.spareWorkers);
    for (let i = 0; i < n; i++) this.startWorker();
  }

  /**
   * Starts the analysis worker: worker.js in its `analyze` role, which runs the detectors
   * on the drained chunks beside the manager (see `Offload` in stream.rs). The pump starts
   * it when the trace comes fast (a full chunk with full memory tracing), where the
   * manager's work paces the run; a small trace is analyzed by the manager alone and
   * costs no worker. Until it is ready, and if it cannot start, the manager analyzes the
   * chunks itself; if it fails once it took chunks, the trace cannot be finished and the
   * run says so.
   */
  startAnalysis() {
    const entry = { handle: null, closed: false, finished: false, initPosted: false };
    this.analysis = entry;
    this.reserveUtil(1);
    const fail = (message, outOfMemory = false) => {
      if (this.analysisFailed !== null || entry.closed) return;
      this.analysisFailed = message;
      this.crashes.push(message);
      if (outOfMemory) this.crashOutOfMemory = true;
      this.settle({ type: 'crashed', message, outOfMemory });
    };
    startWorker(
      () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'wasmgrind-analysis' }),
      NODE_WORKER_SCRIPT,
      'wasmgrind-analysis',
    ).then(
      (handle) => {
        entry.handle = handle;
        if (this.ended) {
          handle.terminate();
          return;
        }
        handle.onMessage((m) => {
          if (m.type === 'closed') {
            entry.closed = true;
            entry.finished = true;
          }
          else if (m.type === 'crashed') {
            // Its utility instance trapped: the trace is not to be touched again.
            if (m.trapped === true) this.utilityTrapped = true;
            fail(`the analysis worker crashed: ${m.message}`, m.outOfMemory === true);
          }
        });
        handle.onError((e) => fail(`the analysis worker failed: ${e.message}`));
        this.attached.then(() => {
          if (this.ended) return;
          handle.post({ type: 'analyze', index: -1, util: this.util, control: this.control, maxThreads: this.maxThreads });
          entry.initPosted = true;
        });
      },
      // Not started: the manager analyzes every chunk itself.
      () => {},
    );
  }

  /** Ends the analysis worker (after the trace is finished, or when the run fails early). */
  async terminateAnalysis() {
    const a = this.analysis;
    if (a === null || a.handle === null) return;
    a.closed = true;
    await a.handle.terminate();
  }

  /**
   * Waits until the analysis worker has analyzed every chunk handed to it (the findings
   * are read only then), or fails if it failed.
   */
  async analysisDone() {
    await this.analysisWait(() => this.glue.traceAnalysisBusy());
  }

  /** Waits until the analysis worker may take more events, or fails if it failed. */
  async analysisRoom() {
    await this.analysisWait(() => this.glue.traceAnalysisFull());
  }

  async analysisWait(waiting) {
    while (waiting()) {
      if (this.analysisFailed !== null) {
        throw new WasmgrindError('RuntimeError', `the trace's analysis did not complete: ${this.analysisFailed}`);
      }
      await sleep(1);
    }
  }

  async run() {
    const { ctrl, v } = this;
    this.runStarted = performance.now();
    this.onStarted?.();
    Atomics.store(ctrl, C_NEXT_TID, 1);
    const outcome = this.outcome;
    // A thread that ended the run (thread 0 returned or failed, a thread called proc_exit)
    // just before the timeout has its message to this manager on the way: that message,
    // not the timeout, decides the outcome (it comes within milliseconds; at most
    // ENDING_GRACE_MS are waited for it).
    const ending = () =>
      Atomics.load(v.status, 0) >= T_DONE || Atomics.load(ctrl, C_FIRST_ERROR) !== 0;
    let graceUntil = null;
    const onTimeout = () => {
      if (ending()) {
        graceUntil ??= performance.now() + ENDING_GRACE_MS;
        if (performance.now() < graceUntil) {
          timer = setTimeout(onTimeout, 5);
          return;
        }
      }
      this.settle({ type: 'timeout' });
    };
    let timer = Number.isFinite(this.opts.timeout) ? setTimeout(onTimeout, this.opts.timeout) : undefined;
    const watchdog = this.opts.trace ? setInterval(() => this.watchDeadlock(), DEADLOCK_POLL_MS) : undefined;
    const printer = setInterval(() => this.drainOutput(false), OUTPUT_MS);
    // ANCHOR: first-job
    if (this.opts.trace) this.pumping = this.pump();
    // Thread 0 is the first job; the pool picks it up as soon as a worker is ready.
    Atomics.store(v.status, 0, T_PENDING);
    Atomics.store(v.jobs, 0, 1);
    Atomics.store(ctrl, C_JOB_TAIL, 1);
    // Workers started early may already wait for a job (see takeJob in worker.js).
    Atomics.add(ctrl, C_JOB_SEQ, 1);
    Atomics.notify(ctrl, C_JOB_SEQ);
    this.topUp();
    // ANCHOR_END: first-job
    let result;
    try {
      result = await outcome;
    } finally {
      clearTimeout(timer);
      clearInterval(watchdog);
      clearInterval(printer);
    }
    // A run stopped from outside (its timeout, its caller) must end even if the chunk
    // sink waits for a caller that does not answer: the caller is told first.
    if (result.type === 'timeout' || result.type === 'stopped') this.onStopping?.();
    return this.end(result);
  }

  /**
   * Streams the trace out while the program runs: drains the recorder (at most
   * `chunkEvents` events at a time, a consistent prefix of the trace), which runs the
   * detectors and the exporter over the chunk in the utility module, and hands the chunk
   * on. Waits for the caller before it drains more, so a slow caller slows the recording
   * threads down (they wait while too many events are pending) instead of filling memory.
   * Stops the run when the trace reaches a limit or cannot be exported.
   */
  // ANCHOR: pump
  async pump() {
    while (!this.pumpStop) {
      let chunk;
      try {
        // The analysis worker has as many events as it may have: drain no more yet.
        if (this.glue.traceAnalysisFull()) {
          await sleep(1);
          continue;
        }
        chunk = this.glue.traceDrain(this.opts.chunkEvents);
      } catch (e) {
        if (e instanceof WebAssembly.RuntimeError) this.utilityTrapped = true;
        this.settle({ type: 'broken', error: utilityError(e, this) });
        return;
      }
      if (chunk !== undefined) {
        if (this.analysis === null && this.opts.memoryTrace && chunk.events >= this.opts.chunkEvents) {
          this.startAnalysis();
        }
        await this.emit(chunk);
      }
      if (!this.limitSeen && this.glue.traceLimit() !== null) {
        this.limitSeen = true;
        this.settle({ type: 'limit' });
      }
      // After a full chunk more may be waiting; yield to the event loop either way.
      await sleep(chunk !== undefined && chunk.events >= this.opts.chunkEvents ? 0 : DRAIN_MS);
    }
  }
  // ANCHOR_END: pump

  /** Hands a chunk to the caller, or keeps it for the result. */
  async emit(chunk) {
    if (this.sink !== null) {
      await this.sink(chunk);
    } else {
      this.collected.rapidbin.push(chunk.rapidbin);
      this.collected.std.push(chunk.std);
      this.collected.native.push(chunk.native);
      if (chunk.timeline) this.collected.timeline.push(chunk.timeline);
    }
  }

  /**
   * Looks for a wait-for cycle on traced locks: thread t waits for a lock that thread u
   * holds, u for one that t (or a thread after it) holds. A cycle is a deadlock for good
   * (a waiting thread releases nothing), but one look may combine states read at different
   * moments, so the run stops only when DEADLOCK_CONFIRM looks in a row see the same cycle.
   */
  // ANCHOR: watch-deadlock
  watchDeadlock() {
    const cycle = this.waitForCycle();
    const key = cycle === null ? null : JSON.stringify(cycle);
    if (key !== null && key === this.lastCycle) {
      this.cycleSeen += 1;
    } else {
      this.cycleSeen = key === null ? 0 : 1;
      this.lastCycle = key;
    }
    if (this.cycleSeen >= DEADLOCK_CONFIRM) this.settle({ type: 'deadlock', cycle });
  }
  // ANCHOR_END: watch-deadlock

  /**
   * A cycle of threads each waiting for the next one: for a lock it holds, or to join it
   * (a joined thread can only end after the cycle is broken); or null.
   */
  waitForCycle() {
    const { ctrl, v, glue } = this;
    const upto = Math.min(Atomics.load(ctrl, C_NEXT_TID), this.maxThreads);
    const next = new Map();
    for (let tid = 0; tid < upto; tid++) {
      if (Atomics.load(v.status, tid) !== T_RUNNING) continue;
      const lock = glue.traceWaitingOn(tid);
      if (lock >= 0) {
        const holder = glue.traceLockOwner(lock);
        // A thread that waits for a lock it holds itself (a non-reentrant mutex locked
        // again) is a cycle of one.
        if (holder >= 0) next.set(tid, { thread: tid, waiting_on: lock, holder });
        continue;
      }
      // A join of a thread that has not ended: the utility module hears of both kinds
      // (the wasmgrind ABI's thread_join through wgrind_join_wait, wasi-libc's
      // pthread_join as a wait in the joined thread's struct pthread).
      const child = glue.traceJoining(tid);
      if (child >= 0 && child < upto && Atomics.load(v.status, child) === T_RUNNING) {
        next.set(tid, { thread: tid, waiting_on: 0, holder: child, joining: child });
      }
    }
    for (const start of next.keys()) {
      const path = [];
      const seen = new Set();
      let t = start;
      while (next.has(t) && !seen.has(t)) {
        seen.add(t);
        path.push(next.get(t));
        t = next.get(t).holder;
      }
      if (t === start) {
        // Start the cycle at its smallest thread id, so that repeated looks compare equal.
        const at = path.reduce((m, e, i) => (e.thread < path[m].thread ? i : m), 0);
        return [...path.slice(at), ...path.slice(0, at)];
      }
    }
    return null;
  }

  /**
   * Starts workers until the idle and starting ones cover the queued jobs plus the spare
   * ones. All of them start at once: a burst of new threads waits for one worker start,
   * not for one after the other.
   */
  // ANCHOR: top-up
  topUp() {
    const { ctrl } = this;
    if (Atomics.load(ctrl, C_STOPPING) !== 0 || this.ended) return;
    const pending = Atomics.load(ctrl, C_JOB_TAIL) - Atomics.load(ctrl, C_JOB_HEAD);
    const idle = Atomics.load(ctrl, C_IDLE);
    const want = pending + this.opts.spareWorkers - idle - this.starting;
    // Every live thread may need a worker; more than that is never useful.
    const cap = this.maxThreads + this.opts.spareWorkers;
    const n = Math.min(want, cap - this.workers.size);
    if (n <= 0) return;
    // Kept workers have their utility instances already.
    this.reserveUtil(Math.max(0, n - keptWorkers.length));
    for (let i = 0; i < n; i++) this.startWorker();
  }
  // ANCHOR_END: top-up

  /**
   * Grows the utility memory now, in the manager, by what `n` new workers' utility
   * instances take, so that they find it there when they instantiate. Otherwise
   * concurrently instantiating workers grow it themselves, and an instance that sees
   * another one's growth late traps in its TLS initialization (see reserveHeap in lib.rs).
   * Before `attach` the reservation is part of the first one (in `prepare`).
   */
  reserveUtil(n) {
    if (this.glue !== null) this.glue.reserveHeap(n * UTIL_WORKER_BYTES);
  }

  /** Starts a worker: one that the manager's previous run released, else a new one. */
  startWorker() {
    const index = this.nextIndex++;
    this.starting++;
    const entry = { handle: null, ready: false, released: false, kept: false, initPosted: false };
    this.workers.set(index, entry);
    const kept = keptWorkers.pop()?.handle;
    if (kept !== undefined) {
      this.keptUsed++;
      entry.kept = true;
    }
    (kept !== undefined
      ? Promise.resolve(kept)
      : startWorker(
          () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'wasmgrind-thread-worker' }),
          NODE_WORKER_SCRIPT,
          `wasmgrind-thread-worker-${index}`,
        )
    ).then(
      (handle) => {
        entry.handle = handle;
        if (this.ended) {
          handle.terminate();
          return;
        }
        handle.onMessage((m) => this.onMessage(m));
        handle.onError((e) => {
          if (!entry.closed) this.settle({ type: 'crashed', message: `thread worker ${index} failed: ${e.message}` });
        });
        // A worker started early boots while the module is prepared and waits for it here.
        this.attached.then(() => {
          if (this.ended) return;
          handle.post({
            type: 'init',
            index,
            util: this.util,
            target: this.target,
            control: this.control,
            output: this.output,
            run: this.runInfo,
          });
          entry.initPosted = true;
        });
      },
      (e) => this.settle({ type: 'crashed', message: `cannot start a thread worker: ${e.message}` }),
    );
  }

  onMessage(m) {
    switch (m.type) {
      case 'ready': {
        const w = this.workers.get(m.index);
        if (w) w.ready = true;
        this.starting--;
        this.topUp();
        break;
      }
      case 'demand':
        this.topUp();
        break;
      case 'released': {
        const w = this.workers.get(m.index);
        if (w) w.released = true;
        break;
      }
      case 'closed': {
        const w = this.workers.get(m.index);
        if (w) w.closed = true;
        this.workers.delete(m.index);
        this.topUp();
        break;
      }
      case 'exit':
        this.entryMs = m.entryMs;
        // A thread that failed first decides the outcome, even if main returned after it.
        if (Atomics.load(this.ctrl, C_FIRST_ERROR) === 0) this.settle({ type: 'exit' });
        break;
      case 'failed':
      case 'procExit':
        if (m.type === 'procExit' && m.tid === 0) this.entryMs = m.entryMs;
        // proc_exit in another thread: the run time as the manager saw it.
        else if (m.type === 'procExit' && this.entryMs === undefined) this.entryMs = performance.now() - this.runStarted;
        this.failures.set(m.tid, m);
        this.checkFailure();
        break;
      case 'crashed': {
        if (m.trapped === true) this.utilityTrapped = true;
        const message = `thread worker ${m.index} crashed: ${m.message}`;
        this.crashes.push(message);
        if (m.outOfMemory === true) this.crashOutOfMemory = true;
        this.settle({ type: 'crashed', message, outOfMemory: m.outOfMemory === true });
        break;
      }
      default:
        break;
    }
  }

  checkFailure() {
    const first = Atomics.load(this.ctrl, C_FIRST_ERROR) - 1;
    if (first >= 0 && this.failures.has(first)) {
      const f = this.failures.get(first);
      // proc_exit: the program ended itself, with that exit code.
      this.settle(f.type === 'procExit' ? { type: 'exit', code: f.code, thread: f.tid } : { type: 'failed', first });
    }
  }

  /**
   * Stops every thread at a safe point. Resolves to null once no thread is inside the
   * utility module any more, else to a description of the threads that are.
   */
  async quiesce() {
    const { ctrl, glue } = this;
    Atomics.store(ctrl, C_STOPPING, 1);
    // Idle workers wake up, see the end of the run and say they are released.
    Atomics.add(ctrl, C_JOB_SEQ, 1);
    Atomics.notify(ctrl, C_JOB_SEQ);
    if (this.opts.trace) glue.traceStop();
    const upto = Math.min(Atomics.load(ctrl, C_NEXT_TID), this.maxThreads);
    const deadline = Date.now() + QUIESCE_MS;
    for (;;) {
      const inits = Atomics.load(ctrl, C_UTIL_BUSY);
      const busy = this.opts.trace ? Array.from(glue.traceBusy(upto)) : [];
      if (inits === 0 && busy.length === 0) return null;
      if (Date.now() > deadline) {
        const parts = [];
        if (busy.length > 0) parts.push(`thread(s) ${busy.join(', ')} inside the trace recorder`);
        if (inits !== 0) parts.push(`${inits} worker(s) inside the utility module's start or destroy`);
        return parts.join(' and ');
      }
      await sleep(1);
    }
  }

  /** The state of every thread that has an id right now. */
  threadStates() {
    const { ctrl, v, glue } = this;
    const traced = this.opts.trace;
    const upto = Math.min(Atomics.load(ctrl, C_NEXT_TID), this.maxThreads);
    const states = [];
    for (let tid = 0; tid < upto; tid++) {
      const s = Atomics.load(v.status, tid);
      if (s === T_FREE) continue;
      const st = { tid, state: STATE_NAMES[s] };
      const w = Atomics.load(v.worker, tid);
      if (w > 0) st.worker = w - 1;
      if (s === T_RUNNING) {
        const j = Atomics.load(v.joining, tid);
        if (j > 0) st.joining = j - 1;
        if (traced) {
          // A wasi program joins in wasi-libc's pthread_join, which the recorder sees.
          const joining = j > 0 ? -1 : glue.traceJoining(tid);
          if (joining >= 0) st.joining = joining;
          const lock = glue.traceWaitingOn(tid);
          if (lock >= 0) {
            st.waitingOn = lock;
            const holder = glue.traceLockOwner(lock);
            if (holder >= 0) {
              st.lockHolder = holder;
              // A holder that ended will never release it (a guard it forgot, a panic).
              const hs = holder < upto ? Atomics.load(v.status, holder) : T_FREE;
              if (hs !== T_RUNNING && hs !== T_PENDING) st.holderEnded = true;
            }
          }
          const held = Array.from(glue.traceHeldLocks(tid));
          if (held.length > 0) st.holds = held;
        }
      }
      states.push(st);
    }
    return states;
  }

  /**
   * Ends the run's workers: after a clean run (every thread ended normally, nothing stuck
   * in the recorder, a utility memory of at most KEEP_MAX_UTIL_BYTES) the idle ones are set
   * aside for the manager's next run (`keep` keeps them once the trace is finished);
   * every other worker is terminated.
   */
  async keepOrTerminate(outcome, states, stuck) {
    const clean =
      stuck === null &&
      outcome.type === 'exit' &&
      outcome.code === undefined &&
      this.crashes.length === 0 &&
      this.util.memory.buffer.byteLength <= KEEP_MAX_UTIL_BYTES &&
      states.every((s) => s.state === 'finished');
    if (!clean) return this.terminateAll();
    this.ended = true;
    // Messages already on their way (`ready`, `released`) arrive first.
    await sleep(1);
    const deadline = performance.now() + RELEASE_MS;
    // Workers that run this run's code (ready), and kept ones that got its `init` (they
    // answer at once, and ending them would leave their utility stacks behind in the kept
    // memory); new workers still booting are ended (they hold no utility instance yet).
    const unreleased = () =>
      [...this.workers.values()].some((w) => !w.closed && !w.released && (w.ready || (w.kept && w.initPosted)));
    while (unreleased() && performance.now() < deadline) await sleep(1);
    const keeping = [];
    const ending = [];
    for (const w of this.workers.values()) {
      if (w.handle === null || w.closed) continue;
      w.closed = true;
      if (w.released) {
        w.handle.onMessage(() => {});
        w.handle.onError(() => {});
        keeping.push(w.handle);
      } else ending.push(w.handle);
    }
    this.workers.clear();
    this.keeping = keeping;
    await Promise.all(ending.map((h) => h.terminate()));
  }

  /**
   * Whether the analysis worker (if the run had one) freed its utility stack and said it
   * is done, which the end of a run waits for (up to RELEASE_MS) before keeping the
   * utility memory for the next run.
   */
  async analysisFinished() {
    const a = this.analysis;
    // Never told to start: it does not touch the utility module (and is terminated).
    if (a === null || !a.initPosted) return true;
    const deadline = performance.now() + RELEASE_MS;
    while (!a.finished && this.analysisFailed === null && performance.now() < deadline) await sleep(1);
    return a.finished;
  }

  /**
   * The run ended cleanly and its result is made: its session is freed and its released
   * workers are kept for the manager's next run.
   */
  keep() {
    if (this.keeping === null) return;
    try {
      this.glue.traceDispose();
    } catch {
      this.dropKept();
      return;
    }
    const since = performance.now();
    keptWorkers.push(...this.keeping.map((handle) => ({ handle, since })));
    this.keeping = null;
    this.reusable = true;
    // Those beyond `maxIdle` linger for the next run, as idle workers do in a run, and
    // then close.
    keepAtMost = this.runInfo.maxIdle;
    trimKept();
  }

  /** The released workers are not kept after all (the run failed after they were released). */
  dropKept() {
    if (this.keeping === null) return;
    for (const h of this.keeping) h.terminate();
    this.keeping = null;
  }

  async terminateAll() {
    this.ended = true;
    const all = [...this.workers.values()].filter((w) => w.handle !== null);
    for (const w of all) w.closed = true;
    await Promise.all(all.map((w) => w.handle.terminate()));
    this.workers.clear();
  }

  /**
   * Drains the rest of the trace and ends it. Streaming, the result has the final headers
   * (`rapidbinHeader`, `nativeHeader`, to be written over chunk 0's placeholders) and no
   * trace bytes; otherwise the collected chunks become `rapidbin`, `std` and `native`.
   */
  async finishTrace(deadlock) {
    if (!this.opts.trace) return null;
    const { glue } = this;
    for (;;) {
      if (glue.traceAnalysisFull()) {
        await this.analysisRoom();
        continue;
      }
      const chunk = glue.traceDrain(this.opts.chunkEvents);
      if (chunk === undefined) break;
      await this.emit(chunk);
    }
    await this.analysisDone();
    const live = deadlock === undefined ? null : JSON.stringify({ threads: deadlock });
    const t = glue.traceFinish(live);
    if (t.chunk !== null) await this.emit(t.chunk);
    // The STD text and the metadata stay bytes (transferred to the caller, and turned into
    // a string and an object only when asked for: see `lazyTrace`).
    const exported = this.opts.exportTrace;
    const trace = {
      rapidbin: null,
      stdBytes: null,
      // Bytes from the utility module: a long run's metadata does not fit in one string.
      metadataBytes: exported ? t.metadataBytes : null,
      metadataCounts: exported ? t.metadataCounts : null,
      events: t.events,
      native: null,
      locations: this.locations,
      lockConsistency: t.lockConsistency,
      forkJoinConsistency: t.forkJoinConsistency,
      findings: JSON.parse(t.findings),
      report: t.report,
      streamed: this.sink !== null,
      rapidbinHeader: exported ? t.rapidbinHeader : null,
      nativeHeader: exported ? t.nativeHeader : null,
      acquisitions: t.acquisitions,
      chunks: t.chunks,
      bytes: t.bytes,
      timings: t.timings,
      // Streaming, the chunks carry the timeline's parts and this ends it.
      timeline: null,
      timelineEnd: this.opts.timeline ? t.timelineEnd : null,
    };
    if (this.opts.memoryTrace && this.opts.sampling) trace.findings.sampled = true;
    if (!this.opts.memoryTrace) trace.findings.locksOnly = this.abi === 'wasi' ? 'nothing' : 'locks';
    trace.report = findingsNotes(trace.findings) + trace.report;
    if (this.collected !== null) {
      const c = this.collected;
      this.collected = null;
      if (exported) {
        trace.rapidbin = concat(c.rapidbin);
        trace.rapidbin.set(t.rapidbinHeader, 0);
        trace.native = concat(c.native);
        trace.native.set(t.nativeHeader, 0);
        trace.stdBytes = concat(c.std);
      }
      if (this.opts.timeline) trace.timeline = c.timeline.join('') + t.timelineEnd;
    }
    return trace;
  }

  async end(outcome) {
    const { ctrl } = this;
    const ending = performance.now();
    // ANCHOR: end
    const stuck = await this.quiesce();
    const states = this.threadStates();
    await this.keepOrTerminate(outcome, states, stuck);
    // Every thread has stopped: what they wrote is all in the channel now.
    this.drainOutput(true);
    const output = { stdout: this.stdout.join(''), stderr: this.stderr.join('') };
    this.pumpStop = true;
    if (this.pumping) await this.pumping;
    const forks = Atomics.load(ctrl, C_FORKS);
    const threadIds = Math.min(Atomics.load(ctrl, C_NEXT_TID), this.maxThreads);
    // The trace can be read only if no thread was stopped inside the recorder.
    let trace = null;
    let traceError = null;
    if (stuck !== null) {
      traceError = new WasmgrindError(
        'StopFailed',
        `the run ended, but after ${QUIESCE_MS} ms there were still ${stuck}, so the trace cannot be read safely` +
          (this.crashes.length > 0 ? `; runtime errors: ${this.crashes.join('; ')}` : ''),
      );
    } else if (this.utilityTrapped) {
      // The utility module trapped (out of memory, a panic) and may have left its locks
      // held: the trace is not touched again (finishing it would wait for ever).
      traceError = new WasmgrindError(
        'RuntimeError',
        `the trace cannot be finished: Wasmgrind's utility module failed during the run` +
          (this.crashes.length > 0 ? ` (${this.crashes.join('; ')})` : ''),
      );
    } else {
      try {
        trace = await this.finishTrace(outcome.type === 'deadlock' ? outcome.cycle : undefined);
      } catch (e) {
        traceError = utilityError(e, this);
      }
    }
    if (this.keeping !== null && !(await this.analysisFinished())) this.dropKept();
    await this.terminateAnalysis();
    // ANCHOR_END: end
    // A limit reached at the very end, before the pump saw it, fails the run too.
    const limit = this.opts.trace && !this.utilityTrapped ? this.glue.traceLimit() : null;

    if (outcome.type === 'exit' && this.crashes.length > 0) {
      outcome = { type: 'crashed', message: this.crashes.join('; '), outOfMemory: this.crashOutOfMemory };
    }
    if (outcome.type === 'exit' && limit !== null) outcome = { type: 'limit' };
    if (outcome.type === 'exit') {
      if (traceError !== null) {
        // The program ended, but its trace could not be finished: the error still carries
        // what the program wrote and how its threads ended.
        Object.assign(traceError, {
          threadStates: states,
          abi: this.abi,
          exitCode: outcome.code ?? 0,
          stdout: output.stdout,
          stderr: output.stderr,
        });
        this.dropKept();
        throw traceError;
      }
      const detached = states.filter((s) => s.tid !== 0 && (s.state === 'running' || s.state === 'pending'));
      const result = {
        rapidbin: trace ? trace.rapidbin : null,
        stdBytes: trace ? trace.stdBytes : null,
        metadataBytes: trace ? trace.metadataBytes : null,
        metadataCounts: trace ? trace.metadataCounts : null,
        status: 'ok',
        detached,
        threads: { forks, ids: threadIds },
        events: trace ? trace.events : 0,
        native: trace ? trace.native : null,
        locations: trace ? trace.locations : null,
        lockConsistency: trace ? trace.lockConsistency : null,
        forkJoinConsistency: trace ? trace.forkJoinConsistency : null,
        findings: trace ? trace.findings : null,
        report: trace ? trace.report : null,
        streamed: trace ? trace.streamed : false,
        rapidbinHeader: trace ? trace.rapidbinHeader : null,
        nativeHeader: trace ? trace.nativeHeader : null,
        timeline: trace ? trace.timeline : null,
        timelineEnd: trace ? trace.timelineEnd : null,
        acquisitions: trace ? trace.acquisitions : 0,
        chunks: trace ? trace.chunks : 0,
        traceBytes: trace ? trace.bytes : 0,
        memory: {
          target: this.target.memory.buffer.byteLength,
          utility: this.util.memory.buffer.byteLength,
        },
        timings: {
          prepareMs: this.prepareMs,
          functionMs: this.entryMs,
          finishMs: performance.now() - ending,
          ...finishTimings(trace),
        },
        ...this.exitFields(outcome, detached, output),
      };
      result.timings.workersKept = this.keptUsed;
      this.keep();
      return result;
    }
    this.dropKept();

    let err;
    if (outcome.type === 'failed') {
      const f = this.failures.get(outcome.first);
      err = this.failureError(f);
      const others = [...this.failures.values()].filter((o) => o.tid !== f.tid && o.type !== 'procExit');
      if (others.length > 0) err.others = others.map((o) => this.failureText(o));
    } else if (outcome.type === 'deadlock') {
      const lines = outcome.cycle.map((e) =>
        e.joining !== undefined
          ? `  thread ${e.thread} waits to join thread ${e.joining} (for it to end)`
          : `  thread ${e.thread} waits for lock ${hex(e.waiting_on)}, held by thread ${e.holder}`,
      );
      const joins = outcome.cycle.some((e) => e.joining !== undefined);
      const what =
        outcome.cycle.length === 1
          ? `thread ${outcome.cycle[0].thread} waits for a lock it holds itself (it locked it again); it was stopped`
          : `${outcome.cycle.length} threads wait for each other${joins ? ' (for locks and to join)' : "'s locks"} in a cycle; they were stopped`;
      err = new WasmgrindError(
        'DeadlockError',
        `the run of \`${this.functionName}\` deadlocked: ${what}:\n${lines.join('\n')}`,
        { cycle: outcome.cycle, threads: states },
      );
    } else if (outcome.type === 'timeout' || outcome.type === 'stopped') {
      const unfinished = states.filter((s) => s.state === 'running' || s.state === 'pending');
      const lines = unfinished.map((s) => `  ${this.stateText(s)}`);
      const why =
        outcome.type === 'timeout'
          ? `did not finish within ${this.opts.timeout} ms`
          : `was stopped by its caller (an aborted signal, a \`{ stop: true }\` message, the CLI's Ctrl-C) after ${Math.round(ending - this.runStarted)} ms`;
      err = new WasmgrindError(
        outcome.type === 'timeout' ? 'Timeout' : 'Stopped',
        `the run of \`${this.functionName}\` ${why}; ` +
          `${unfinished.length} thread(s) had not finished and were stopped:\n${lines.join('\n')}`,
        { threads: states },
      );
      if (this.opts.trace && this.glue.traceLockTableOverflowed()) {
        err.message += '\n  (more distinct locks were taken than the owner table holds: some holders are not shown)';
      }
      const locked = unfinished.filter((s) => s.waitingOn !== undefined);
      if (locked.length > 0) err.blockedOnLocks = locked.map((s) => s.tid);
    } else if (outcome.type === 'limit') {
      const l = limit !== null ? limit : { variant: 'Unknown', message: 'the trace reached a limit', events: 0 };
      err = new WasmgrindError('LimitError', l.message, { variant: l.variant, events: l.events });
    } else if (outcome.type === 'broken') {
      err = outcome.error;
    } else {
      // A worker's utility instance that ran out of memory is not the worker's fault.
      err = new WasmgrindError(outcome.outOfMemory ? 'OutOfMemory' : 'WorkerError', outcome.message);
    }
    if (traceError !== null) {
      // Two things went wrong: the run, and then the end of its trace. Both are told.
      err.message += `\n  (and the trace could not be finished: ${traceError.kind}: ${traceError.message})`;
      err.traceError = traceError;
    }
    err.threadStates = states;
    err.abi = this.abi;
    err.exitCode = null;
    err.stdout = output.stdout;
    err.stderr = output.stderr;
    if (trace) {
      err.trace = trace;
      err.findings = trace.findings;
      err.report = trace.report;
    }
    throw err;
  }

  /**
   * What a result says of how the program ended (both ABIs): `status` (`exit` for a
   * non-zero exit code), `abi`, `exitCode` (0 when the function returned, else the code of
   * `proc_exit`), `exitThread`, the output, and `detached` without the exiting thread.
   */
  exitFields(outcome, detached, output) {
    const exitCode = outcome.code ?? 0;
    const exitThread = outcome.thread ?? 0;
    return {
      status: exitCode === 0 ? 'ok' : 'exit',
      abi: this.abi,
      exitCode,
      exitThread,
      stdout: output.stdout,
      stderr: output.stderr,
      detached: detached.filter((s) => s.tid !== exitThread),
    };
  }

  stateText(s) {
    let t = `thread ${s.tid}: ${s.state}`;
    if (s.state === 'pending') t += ' (created, not started yet)';
    if (s.joining !== undefined) t += `, blocked joining thread ${s.joining}`;
    if (s.waitingOn !== undefined) {
      t += `, blocked on lock ${hex(s.waitingOn)}`;
      if (s.lockHolder !== undefined) t += ` held by thread ${s.lockHolder}`;
      if (s.holderEnded) t += ', which ended without releasing it';
    }
    if (s.holds !== undefined) t += `, holds ${s.holds.map(hex).join(', ')}`;
    return t;
  }

  failureText(f) {
    if (f.kind === 'GuestPanic') {
      return `thread ${f.tid} panicked: ${f.message || '(no message)'}${this.panicHint(f.message)} [${this.codeText(f.code)}]`;
    }
    if (f.kind === 'Trap' && this.isRustPanic(f)) {
      return (
        `thread ${f.tid} panicked (a Rust panic aborts on wasm32-wasip1-threads; its message is on the ` +
        `program's stderr) and trapped: ${f.message}`
      );
    }
    if (f.kind === 'Trap') return `thread ${f.tid} trapped: ${f.message}${this.trapHint(f)}`;
    return `thread ${f.tid} failed (${f.kind}): ${f.message}`;
  }

  /**
   * Advice for a trap whose cause is known: the patcher's thread start traps (an
   * `unreachable` in `__wasmgrind_start`, the innermost frame) when the guest's allocator
   * cannot give the new thread its stack or TLS block.
   */
  trapHint(f) {
    const top = (f.stack || '').split('\n').find((l) => l.includes('wasm://'));
    if (!/unreachable/.test(f.message || '') || top === undefined || !top.includes('__wasmgrind_start')) return '';
    return (
      `; hint: the thread's stack (stackSize ${this.opts.stackSize} bytes, \`--stack-size\`) or TLS block ` +
      'could not be allocated: the memory is full (its maximum is set when the guest is linked, ' +
      '`--max-memory`); use a smaller stackSize, or fewer threads at once'
    );
  }

  /** Whether a trap of a wasi module is the abort of a Rust panic (std's panic functions are on its stack). */
  isRustPanic(f) {
    if (this.abi !== 'wasi' || !f.stack) return false;
    return /\b(rust_panic|__rust_start_panic|std::panicking::)/.test(this.glue.demangleStack(f.stack));
  }

  /** Advice for a panic whose cause is known: std's threads, which wasm32 lacks. */
  panicHint(message) {
    const m = message || '';
    if (m.includes('failed to spawn thread') && /Unsupported|operation not supported on this platform/.test(m)) {
      return (
        '; hint: std::thread cannot start threads on wasm32-unknown-unknown: ' +
        'use wasmgrind_guest::thread::spawn instead of std::thread::spawn (or std::thread::scope)'
      );
    }
    return '';
  }

  codeText(code) {
    return this.glue.errorCodeText(code);
  }

  failureError(f) {
    const props = { thread: f.tid };
    if (f.code !== undefined) {
      props.code = f.code;
      props.panicMessage = f.message;
    }
    if (f.kind === 'Trap') {
      props.trapMessage = f.message;
      if (this.isRustPanic(f)) props.rustPanic = true;
      if (f.stack) {
        // Function names demangled for reading; the raw stack is kept too.
        props.wasmStack = this.glue.demangleStack(f.stack);
        props.rawWasmStack = f.stack;
      }
    }
    return new WasmgrindError(f.kind, this.failureText(f), props);
  }
}
