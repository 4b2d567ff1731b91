// The small platform layer that lets the same runtime run in browsers and in Node.js 20:
// workers (Web Workers or worker_threads), the worker's own message port, reading files,
// and text decoding from shared memory. This file imports nothing: what only Node.js has
// is in node_shim.js (see `nodeShim`).

/** Whether we run in Node.js (as opposed to a browser). */
export const isNode =
  typeof process !== 'undefined' &&
  process.versions != null &&
  process.versions.node != null &&
  typeof globalThis.WorkerGlobalScope === 'undefined' &&
  typeof globalThis.window === 'undefined';

/**
 * The Node.js part of this layer (`node_shim.js`: worker_threads, the V8 flag, the
 * filesystem), loaded on first use. It is the package import `#node-shim`, which
 * package.json maps to `node_shim.js` under the `node` condition and to `no_node.js` (which
 * has none of it) under `browser` and by default: a bundle for browsers thus contains no
 * `node:` module. Browsers never call this.
 */
export function nodeShim() {
  if (nodeShimLoaded === null) {
    nodeShimLoaded = import('#node-shim').then((m) => {
      if (m.available !== true) {
        throw new Error(
          'Wasmgrind runs in Node.js here, but `#node-shim` was resolved for browsers (the `browser` ' +
            'condition); import the package from Node.js directly, or bundle it for Node.js',
        );
      }
      return m;
    });
  }
  return nodeShimLoaded;
}
let nodeShimLoaded = null;

/**
 * Works around an engine bug before any module is compiled.
 *
 * Node 20's V8 (11.3) miscompiles `memory.atomic.wait32` in its baseline compiler
 * (Liftoff): after the wait returns, locals and parameters of the calling function read
 * as 0. Code that keeps a value in a local across an inline wait (a lock's slow path, the
 * patcher's and wasm-bindgen's temporary-stack locks) then misbehaves: a lock is never
 * released, a start function takes the wrong branch. The optimizing compiler is correct,
 * so in Node the runtime turns the baseline compiler off (`--no-liftoff`, a process-wide V8
 * flag that only changes how WebAssembly is compiled). Browsers are left as they are.
 * It also gives the workers a larger first young generation (`enlargeYoungGeneration` in
 * node_shim.js), so that the many that a run starts at once boot without collections, and
 * lets V8 read the branch hints of a sampled module (`enableBranchHints`).
 */
export async function configureEngine() {
  if (!isNode || engineConfigured) return;
  engineConfigured = true;
  const shim = await nodeShim();
  shim.disableLiftoff();
  shim.enableBranchHints();
  shim.enlargeYoungGeneration();
}
// V8 flags are meant to be set before the engine runs: `wasmgrind()` sets these once, in
// the calling thread, before it starts any worker.
let engineConfigured = false;

/**
 * A worker running `script`, a module of this package (`'./worker.js'`), with one
 * interface on both platforms: `post(message, transfer)`, `onMessage(fn)`, `onError(fn)`
 * (an uncaught error or an unexpected exit), `terminate()`, and `ref()` / `unref()` (whether
 * it keeps a Node.js process alive; nothing in browsers; it starts unref'd).
 *
 * In browsers, `create()` makes the Worker. Its caller spells the script out in it, as
 * `() => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`: that is
 * the form in which bundlers (Vite, webpack) recognize a worker and bundle its script. In
 * Node.js, worker_threads starts `script` instead (see node_shim.js).
 */
export async function startWorker(create, script, name) {
  if (isNode) return (await nodeShim()).startWorker(script, name);
  const w = create();
  let onError = () => {};
  w.onerror = (e) => {
    e.preventDefault?.();
    onError(
      new Error(
        e.message ||
          `worker ${name} failed to load or threw (is its script served, as JavaScript, with the ` +
            '`Cross-Origin-Embedder-Policy: require-corp` header the page has?)',
      ),
    );
  };
  w.onmessageerror = () => onError(new Error(`worker ${name} received a message it cannot read`));
  return {
    post: (m, t) => w.postMessage(m, t),
    onMessage: (fn) => {
      w.onmessage = (e) => fn(e.data);
    },
    onError: (fn) => {
      onError = fn;
    },
    terminate: () => {
      w.terminate();
      return Promise.resolve();
    },
    // What keeps a Node.js process alive: nothing to do in a browser.
    ref: () => {},
    unref: () => {},
  };
}

/** The bytes at a URL: `fetch` in browsers, the filesystem for `file:` URLs in Node. */
export async function readUrl(url) {
  if (isNode && url.protocol === 'file:') return (await nodeShim()).readBytes(url);
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`cannot fetch ${url}: HTTP ${[response.status, response.statusText].filter((x) => x !== '').join(' ')}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * What a trap of Wasmgrind's utility module left of its cause (see `failure.rs` of the
 * crate): a failed allocation (its memory is full) or a panic's message, as
 * `{ outOfMemory, head, message }` (`head`: what happened; `message`: that and what to
 * do), or null when it left nothing. `glue` is the module's bindings (wasmgrind_js.js),
 * `memory` its memory.
 */
export function utilityTrapCause(glue, memory) {
  const recordLess =
    'The race detector keeps 8 bytes of state per byte the program accessed, and the trace a variable per ' +
    'address: record less, with `--report-only` (`exportTrace: false`: the findings without the trace), ' +
    '`--sample` (`sampling: true`) or `--no-memory-trace` (`memoryTrace: false`)';
  try {
    const failed = glue.failedAllocation();
    if (failed >= 0) {
      const mib = Math.round(memory.buffer.byteLength / 2 ** 20);
      const head =
        `Wasmgrind's utility module ran out of memory: an allocation of ${failed} bytes failed with its memory at ` +
        `${mib} MiB (a WebAssembly memory holds at most 4096 MiB).`;
      return { outOfMemory: true, head, message: `${head} ${recordLess}` };
    }
    const len = glue.panicMessageLen();
    if (len > 0) {
      const text = readString(memory, glue.panicMessagePtr(), len);
      // A collection of 2 GiB or more (wasm32's limit) is too much memory as well.
      if (text.startsWith('capacity overflow')) {
        const head = "Wasmgrind's utility module ran out of memory: it needed a collection of 2 GiB or more.";
        return { outOfMemory: true, head, message: `${head} ${recordLess}` };
      }
      const head = `Wasmgrind's utility module failed (a bug of Wasmgrind: please report it with this message): ${text}`;
      return { outOfMemory: false, head, message: head };
    }
  } catch {
    // Bindings of a utility module without these functions, or a memory that is gone.
  }
  return null;
}

/** The bytes of a path in Node (relative to the working directory). */
export async function readPath(path) {
  return (await nodeShim()).readBytes(path);
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 text of `len` bytes at `ptr` in a (possibly shared) memory. */
export function readString(memory, ptr, len) {
  if (len <= 0) return '';
  const view = new Uint8Array(memory.buffer, ptr >>> 0, len >>> 0);
  // TextDecoder refuses views of a SharedArrayBuffer in browsers: copy first.
  return decoder.decode(view.slice());
}

// ---------------------------------------------------------------------------------------
// The control block: one SharedArrayBuffer of Int32 cells that the manager and every
// thread worker share. It holds the thread table, the job queue of the worker pool and
// the flags that end a run. Header cells:

/** Next never-used thread id (thread 0 is the main thread). */
export const C_NEXT_TID = 0;
/** Ring index of the next job to take. */
export const C_JOB_HEAD = 1;
/** Ring index of the next job to publish. */
export const C_JOB_TAIL = 2;
/** Bumped on every new job; idle workers wait on it. */
export const C_JOB_SEQ = 3;
/** Workers waiting for a job. */
export const C_IDLE = 4;
/* Cell 5 is unused. */
/** The run is ending: threads park at their next safe point. */
export const C_STOPPING = 6;
/** Workers inside a utility instantiation or destruction. */
export const C_UTIL_BUSY = 7;
/** `tid + 1` of the first thread that failed, 0 while none did. */
export const C_FIRST_ERROR = 8;
/** Spin lock of the free thread-id list. */
export const C_FREE_LOCK = 9;
/** Number of entries in the free thread-id list. */
export const C_FREE_COUNT = 10;
/** Never changes: parked threads wait on it until they are terminated. */
export const C_PARK = 11;
/* Cell 12 is unused. */
/** Threads ever created (forks), including recycled ids. */
export const C_FORKS = 13;
/** Number of header cells. */
export const C_HEADER = 16;

/** Thread states in the status table. */
export const T_FREE = 0;
export const T_PENDING = 1;
export const T_RUNNING = 2;
export const T_DONE = 3;
export const T_FAILED = 4;

/** Names of the thread states for reports. */
export const STATE_NAMES = ['free', 'pending', 'running', 'finished', 'failed'];

/** The views of a control block for `maxThreads` threads. */
export function controlViews(sab, maxThreads) {
  const n = maxThreads;
  const i32 = (offset, len) => new Int32Array(sab, offset * 4, len);
  let at = C_HEADER;
  const take = (len) => {
    const v = i32(at, len);
    at += len;
    return v;
  };
  return {
    ctrl: i32(0, C_HEADER),
    status: take(n),
    joined: take(n),
    arg: take(n),
    joining: take(n),
    worker: take(n),
    free: take(n),
    jobs: take(2 * n),
  };
}

/** Bytes of a control block for `maxThreads` threads. */
export function controlBytes(maxThreads) {
  return (C_HEADER + 8 * maxThreads) * 4;
}

/** Blocks the calling worker until it is terminated. */
export function parkForever(ctrl) {
  for (;;) Atomics.wait(ctrl, C_PARK, 0);
}
