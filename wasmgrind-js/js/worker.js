// worker.js: a thread worker of the Wasmgrind runtime.
//
// The manager (wasmgrind.js, running in wgrind_worker.js) starts a pool of these workers
// before the run needs them. Each one receives an `init` message with
//   - the compiled utility module (wasmgrind-js) and the utility's shared memory,
//   - the compiled target module and the target's shared memory,
//   - the control block (a SharedArrayBuffer: thread table, job queue, flags),
// instantiates the utility module once, and then serves threads, one after the other:
// it waits (Atomics.wait) for a job in the control block's queue, which is a thread id
// whose start argument is in the thread table, and runs that thread:
//   1. it tells the utility instance the thread id (threadBegin), so that the hooks record
//      the thread's events under it;
//   2. it instantiates the target module on the target memory (the patched start function
//      gives the instance its own stack and TLS), with the utility instance's raw hook
//      exports as the target's imports, so traced memory accesses and lock operations are
//      WebAssembly-to-WebAssembly calls;
//   3. it calls `thread_start(start_arg)` (thread 0: `__wasmgrind_init()` and then the
//      function the user asked for);
//   4. it calls `__wasmgrind_thread_destroy(0, 0)` as the thread's last call into the
//      target instance, which frees the instance's stack and TLS block (the patcher runs
//      the freeing on its reserved temporary stack, so the instance does not free the
//      stack it is running on);
//   5. it publishes the thread's end in the thread table, which wakes a joiner.
// A wasi-threads module (`run.abi === 'wasi'`) is not patched: its threads come from
// `wasi.thread-spawn(start_arg)`, which takes a thread id and queues a job as
// `thread_create` does and returns the id; the thread runs `wasi_thread_start(tid,
// start_arg)` (thread 0: the entry, `_start` by default) and its libc gives it its stack
// and TLS and frees them, so step 4 is left out. Nobody joins such a thread through the
// runtime (std joins on a futex in memory), so it gives its id back when it ends. Its
// WASI preview1 functions are in wasi.js; `proc_exit` from any thread ends the run.
// Then it takes the next job, with a fresh target instance. When too many workers were
// idle for a while (`lingerMs`), a worker closes: it calls `__wbindgen_thread_destroy()`
// on its utility instance as its last call into it and ends. When the run ends while the
// worker waits for a job, it says so (`released`) and waits for another `init`: a manager
// that runs another run keeps such workers for it (on the same utility memory, so the
// worker keeps its utility instance; the target, the control block and the run's
// settings are the new run's). A `close` message ends a kept worker between runs.
//
// An `init` of type `analyze` makes this worker the run's analysis worker instead: it
// instantiates the utility module and runs the detectors on the chunks the manager drains
// (`analysisRun`), beside the manager, until the trace finishes.
//
// `cargo xtask dist` ships this file with the modules it imports inlined (pkg/worker.js),
// and the same code as a CommonJS script (pkg/worker.cjs, which Node.js starts).
//
// Thread creation never depends on this worker starting another Worker: `thread_create`
// only allocates an id and queues a job, which an idle pool worker picks up, and it asks
// the manager (which never blocks) to top the pool up. That is what makes it work in
// browsers, where a Worker created by a worker does not start while its creator blocks.

import {
  isNode,
  nodeShim,
  readString,
  utilityTrapCause,
  controlViews,
  parkForever,
  C_NEXT_TID,
  C_JOB_HEAD,
  C_JOB_TAIL,
  C_JOB_SEQ,
  C_IDLE,
  C_STOPPING,
  C_UTIL_BUSY,
  C_FIRST_ERROR,
  C_FREE_LOCK,
  C_FREE_COUNT,
  C_FORKS,
  T_FREE,
  T_PENDING,
  T_RUNNING,
  T_DONE,
  T_FAILED,
} from './shim.js';
import {
  analysisRun,
  failedAllocation,
  initSync,
  panicMessageLen,
  panicMessagePtr,
  statusCodes,
  threadBegin,
  threadEnd,
  threadExit,
  traceIgnore,
} from './wasmgrind_js.js';
import { ERRNO, ProcExit, outputWriter, wasiImports } from './wasi.js';

/** What a trap of this worker's utility instance left of its cause (see utilityTrapCause). */
const UTILITY_FAILURE = { failedAllocation, panicMessageLen, panicMessagePtr };


/** A guest's call of `wasmgrind.panic`: thrown to unwind the thread. */
class GuestPanic extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'GuestPanic';
    this.code = code;
  }
}

// The port to the manager, set up synchronously in browsers so that the init message
// cannot arrive before the handler. Messages wait in `inbox` until `nextMessage` takes them.
let post;
let closePort;
const inbox = [];
let waiting = null;
function receive(m) {
  if (waiting !== null) {
    const w = waiting;
    waiting = null;
    w(m);
  } else inbox.push(m);
}
/** The next message from the manager. */
function nextMessage() {
  if (inbox.length > 0) return Promise.resolve(inbox.shift());
  return new Promise((resolve) => {
    waiting = resolve;
  });
}
if (!isNode) {
  post = (m) => globalThis.postMessage(m);
  closePort = () => globalThis.close();
  globalThis.onmessage = (e) => receive(e.data);
} else {
  nodeShim().then(({ parentPort }) => {
    post = (m) => parentPort.postMessage(m);
    closePort = () => process.exit(0);
    parentPort.on('message', receive);
  });
}

/**
 * Serves `init` (one run), and then the next run's `init` if the manager keeps this
 * worker for it (see `serve`).
 */
function handle(init) {
  try {
    if (init.type === 'close') {
      // A kept worker that the manager no longer keeps (between runs): the last call into
      // its utility instance frees the instance's stack and TLS block.
      u.__wbindgen_thread_destroy();
      post({ type: 'closed', index: -1 });
      closePort();
      return;
    }
    if (init.type === 'analyze') analyze(init);
    else if (serve(init)) nextMessage().then(handle);
  } catch (e) {
    // A bug of the runtime itself (not of the guest), or its utility module out of memory:
    // report it (with what the utility module left of its cause) and stop.
    const cause =
      e instanceof WebAssembly.RuntimeError && init.util
        ? utilityTrapCause(UTILITY_FAILURE, init.util.memory)
        : null;
    post({
      type: 'crashed',
      index: init.index,
      message: cause !== null ? cause.message : String((e && e.stack) || e),
      outOfMemory: cause !== null && cause.outOfMemory,
      // A trap of the utility instance (the runtime's own code here): its locks may be held.
      trapped: e instanceof WebAssembly.RuntimeError,
    });
    if (init.control instanceof SharedArrayBuffer) parkForever(new Int32Array(init.control, 0, 16));
  }
}

// No top-level await in a worker's script: bundlers may emit workers as classic scripts.
nextMessage().then(handle);

/**
 * The analysis worker (an `init` of type `analyze`): instantiates the utility module and
 * runs the detectors on the chunks the manager drains (`analysisRun`, see `Offload` in
 * stream.rs) until the trace finishes, beside the manager, which meanwhile drains and
 * encodes the next chunks. Then it frees its utility instance's stack, tells the manager
 * and waits to be terminated.
 */
function analyze({ index, util, control, maxThreads }) {
  const { ctrl } = controlViews(control, maxThreads);
  if (!enterUtil(ctrl)) {
    // Started as the run ended: it analyzed nothing (the manager analyzed every chunk).
    post({ type: 'closed', index });
    parkForever(ctrl);
  }
  let a;
  try {
    a = initSync({ module: util.module, memory: util.memory, thread_stack_size: util.stackSize });
  } finally {
    leaveUtil(ctrl);
  }
  analysisRun();
  // The utility memory may serve the manager's next run: this instance frees its stack
  // and TLS block before it says it is done (the manager waits for that).
  a.__wbindgen_thread_destroy();
  post({ type: 'closed', index });
  parkForever(ctrl);
}

/**
 * Enters the utility module's start or destroy: counted in the control block, so that the
 * end of a run does not read the trace meanwhile. Returns false, having entered nothing,
 * when the run is ending: the worker must then leave the utility module alone (and say
 * so to the manager, which waits for its workers at the end of a clean run).
 */
function enterUtil(ctrl) {
  Atomics.add(ctrl, C_UTIL_BUSY, 1);
  if (Atomics.load(ctrl, C_STOPPING) !== 0) {
    Atomics.sub(ctrl, C_UTIL_BUSY, 1);
    return false;
  }
  return true;
}

/** Leaves what `enterUtil` entered. */
function leaveUtil(ctrl) {
  Atomics.sub(ctrl, C_UTIL_BUSY, 1);
}

/**
 * This worker's utility instance (its exports), made by its first run and kept for the
 * next ones: a manager that keeps its workers runs every run on the same utility memory.
 */
let u = null;
let codes = null;

/**
 * Serves one run (`init`): the thread jobs of its control block, until the run ends or too
 * many workers are idle. Returns true when the run ended while this worker was idle: it
 * holds nothing of the run then, and says so (`released`), and the manager may give it
 * the `init` of its next run. Returns false when the worker closed.
 */
function serve(init) {
  const { index, util, target, control, output, run } = init;
  const wasi = run.abi === 'wasi';
  const v = controlViews(control, run.maxThreads);
  const { ctrl, status, joined, arg, joining, worker, free, jobs } = v;
  const ring = jobs.length;
  const traced = run.traced;

  // --- the utility instance --------------------------------------------------------------
  // Instantiation allocates this instance's stack and TLS in the utility memory: it must
  // not overlap the end of the run, when the manager reads the trace.
  // ANCHOR: utility-instance
  if (u === null) {
    if (!enterUtil(ctrl)) {
      // The run ended before this worker started: it holds nothing, and serves the next.
      post({ type: 'released', index });
      return true;
    }
    try {
      u = initSync({
        module: util.module,
        memory: util.memory,
        thread_stack_size: util.stackSize,
      });
      codes = statusCodes();
    } finally {
      leaveUtil(ctrl);
    }
  }
  // ANCHOR_END: utility-instance
  // Status codes of the runtime ABI, from wasmgrind_core::abi::ErrorCode.
  const {
    Ok: OK,
    ThreadLimit: THREAD_LIMIT,
    UnknownThread: UNKNOWN_THREAD,
    AlreadyJoined: ALREADY_JOINED,
    JoinSelf: JOIN_SELF,
    ThreadTrapped: THREAD_TRAPPED,
  } = codes;

  // --- the target's imports --------------------------------------------------------------
  let current = -1;
  const memory = target.memory;
  const wasmgrind = {
    thread_create: threadCreate,
    thread_join: threadJoin,
    panic(code, ptr, len) {
      throw new GuestPanic(code, readString(memory, ptr, len));
    },
  };
  if (traced) {
    wasmgrind.start_lock = u.wgrind_start_lock;
    wasmgrind.finish_lock = u.wgrind_finish_lock;
    wasmgrind.start_unlock = u.wgrind_start_unlock;
    wasmgrind.finish_unlock = u.wgrind_finish_unlock;
    wasmgrind.mem_read = u.wgrind_mem_read;
    wasmgrind.mem_write = u.wgrind_mem_write;
    wasmgrind.mem_atomic_begin = u.wgrind_mem_atomic_begin;
    wasmgrind.mem_atomic_value = u.wgrind_mem_atomic_value;
    // Allocations matter only to the race detector, which needs the memory accesses.
    wasmgrind.heap_alloc = run.memoryTrace ? u.wgrind_heap_alloc : u.wgrind_untraced_heap;
    wasmgrind.heap_free = run.memoryTrace ? u.wgrind_heap_free : u.wgrind_untraced_heap;
    // The instrumenter's wrappers of a C allocator (malloc, free, ...) free without a size.
    wasmgrind.heap_malloc = run.memoryTrace ? u.wgrind_heap_malloc : u.wgrind_untraced_heap;
    wasmgrind.heap_free_unsized = run.memoryTrace
      ? u.wgrind_heap_free_unsized
      : u.wgrind_untraced_heap_free_unsized;
    // The instrumenter's wrappers of libc's pthread_create, pthread_join, pthread_detach.
    wasmgrind.pthread_created = u.wgrind_pthread_created;
    wasmgrind.pthread_joined = u.wgrind_pthread_joined;
    wasmgrind.pthread_detached = u.wgrind_pthread_detached;
  } else {
    wasmgrind.start_lock = u.wgrind_untraced_lock;
    wasmgrind.finish_lock = u.wgrind_untraced_lock;
    wasmgrind.start_unlock = u.wgrind_untraced_lock;
    wasmgrind.finish_unlock = u.wgrind_untraced_lock;
    wasmgrind.heap_alloc = u.wgrind_untraced_heap;
    wasmgrind.heap_free = u.wgrind_untraced_heap;
    wasmgrind.heap_malloc = u.wgrind_untraced_heap;
    wasmgrind.heap_free_unsized = u.wgrind_untraced_heap_free_unsized;
    wasmgrind.pthread_created = u.wgrind_untraced_pthread;
    wasmgrind.pthread_joined = u.wgrind_untraced_pthread;
    wasmgrind.pthread_detached = u.wgrind_untraced_pthread;
  }
  const imports = { wasmgrind };
  if (wasi) {
    imports.wasi = { 'thread-spawn': threadSpawn };
    imports.wasi_snapshot_preview1 = wasiImports({
      memory,
      names: run.wasiNames,
      args: run.args,
      env: run.env,
      write: outputWriter(output, stopIfEnding),
      onExit(code) {
        throw new ProcExit(code);
      },
    });
  }
  const mi = target.memoryImport;
  imports[mi.module] = { ...(imports[mi.module] || {}), [mi.name]: memory };

  function stopIfEnding() {
    if (Atomics.load(ctrl, C_STOPPING) !== 0) parkForever(ctrl);
  }

  function lockFree() {
    while (Atomics.compareExchange(ctrl, C_FREE_LOCK, 0, 1) !== 0) {
      Atomics.wait(ctrl, C_FREE_LOCK, 1, 1);
    }
  }
  function unlockFree() {
    Atomics.store(ctrl, C_FREE_LOCK, 0);
    Atomics.notify(ctrl, C_FREE_LOCK, 1);
  }

  /**
   * A thread id: a new one while there are, then one of a joined thread (-1 if none).
   * Ids stay unique, as trace tools want, until `maxThreads` ids were handed out; only a
   * run with more threads than that reuses the ids of joined threads, like POSIX does.
   */
  function allocTid() {
    for (;;) {
      const n = Atomics.load(ctrl, C_NEXT_TID);
      if (n >= run.maxThreads) break;
      if (Atomics.compareExchange(ctrl, C_NEXT_TID, n, n + 1) === n) return n;
    }
    lockFree();
    let tid = -1;
    const n = Atomics.load(ctrl, C_FREE_COUNT);
    if (n > 0) {
      tid = Atomics.load(free, n - 1);
      Atomics.store(ctrl, C_FREE_COUNT, n - 1);
    }
    unlockFree();
    return tid;
  }

  function recycleTid(tid) {
    lockFree();
    const n = Atomics.load(ctrl, C_FREE_COUNT);
    Atomics.store(free, n, tid);
    Atomics.store(ctrl, C_FREE_COUNT, n + 1);
    unlockFree();
  }

  // ANCHOR: push-job
  function pushJob(tid) {
    const t = Atomics.add(ctrl, C_JOB_TAIL, 1);
    Atomics.store(jobs, t % ring, tid + 1);
    Atomics.add(ctrl, C_JOB_SEQ, 1);
    Atomics.notify(ctrl, C_JOB_SEQ);
  }
  // ANCHOR_END: push-job

  /**
   * Starts a thread: takes an id, records the fork and queues the job. `tidPtr` (the
   * wasmgrind ABI) receives the id before the child can run. Returns the id, or -1 when
   * all `maxThreads` ids are taken.
   */
  // ANCHOR: spawn-thread
  function spawn(startArg, loc, tidPtr) {
    stopIfEnding();
    const tid = allocTid();
    if (tid < 0) return -1;
    Atomics.store(joined, tid, 0);
    Atomics.store(joining, tid, 0);
    Atomics.store(worker, tid, 0);
    Atomics.store(arg, tid, startArg);
    // The fork is recorded before the child can run, so it precedes all its events.
    if (traced) u.wgrind_fork(tid, loc === undefined ? -1 : loc);
    if (tidPtr !== undefined) new DataView(memory.buffer).setUint32(tidPtr >>> 0, tid, true);
    Atomics.add(ctrl, C_FORKS, 1);
    Atomics.store(status, tid, T_PENDING);
    pushJob(tid);
    const pending = Atomics.load(ctrl, C_JOB_TAIL) - Atomics.load(ctrl, C_JOB_HEAD);
    if (Atomics.load(ctrl, C_IDLE) - pending < run.spare) post({ type: 'demand' });
    return tid;
  }
  // ANCHOR_END: spawn-thread

  function threadCreate(tidPtr, startArg, loc) {
    return spawn(startArg, loc, tidPtr) < 0 ? THREAD_LIMIT : OK;
  }

  /**
   * wasi-threads' `thread-spawn(start_arg)`: a positive thread id (the main thread is 0,
   * so every spawned thread's id is at least 1), or, as the proposal says, a negative
   * error: `-EAGAIN` when all `maxThreads` ids are taken.
   */
  function threadSpawn(startArg, loc) {
    const tid = spawn(startArg, loc, undefined);
    return tid < 0 ? -ERRNO.AGAIN : tid;
  }

  // ANCHOR: join
  function threadJoin(tid, loc) {
    const self = current;
    if (tid === self) return JOIN_SELF;
    if (tid < 0 || tid >= run.maxThreads || Atomics.load(status, tid) === T_FREE) {
      return UNKNOWN_THREAD;
    }
    if (Atomics.compareExchange(joined, tid, 0, 1) !== 0) return ALREADY_JOINED;
    Atomics.store(joining, self, tid + 1);
    if (traced) u.wgrind_join_wait(tid, loc === undefined ? -1 : loc);
    let s;
    while ((s = Atomics.load(status, tid)) < T_DONE) Atomics.wait(status, tid, s);
    if (traced) u.wgrind_join_wait(-1, -1);
    Atomics.store(joining, self, 0);
    if (s === T_FAILED) return THREAD_TRAPPED;
    // Recorded after the child finished, so it follows all the child's events.
    if (traced) u.wgrind_join(tid, loc === undefined ? -1 : loc);
    // A joined thread's id can be reused once all ids are taken (see allocTid).
    Atomics.store(status, tid, T_FREE);
    recycleTid(tid);
    return OK;
  }
  // ANCHOR_END: join

  // --- running threads ---------------------------------------------------------------------
  function describe(e) {
    if (e instanceof GuestPanic) return { kind: 'GuestPanic', code: e.code, message: e.message };
    const message = String((e && e.message) || e);
    const stack = String((e && e.stack) || '');
    if (e instanceof WebAssembly.RuntimeError) return { kind: 'Trap', message, stack };
    if (e instanceof RangeError) {
      return { kind: 'Trap', message: `${message} (the thread's call stack overflowed)`, stack };
    }
    if (e instanceof WebAssembly.LinkError) return { kind: 'LinkError', message, stack };
    return { kind: 'RuntimeError', message, stack };
  }

  function runThread(tid) {
    current = tid;
    const was = Atomics.compareExchange(status, tid, T_PENDING, T_RUNNING);
    if (was !== T_PENDING) {
      throw new Error(`internal error: job for thread ${tid} taken in state ${was}, not pending`);
    }
    Atomics.store(worker, tid, index + 1);
    if (traced) threadBegin(tid);
    let failure = null;
    let exitCode = null;
    let entryMs = 0;
    // The function's own run: from its call (after instantiation and init) to its return
    // or to `proc_exit`.
    let t0 = performance.now();
    // ANCHOR: run-thread
    try {
      const ex = new WebAssembly.Instance(target.module, imports).exports;
      if (tid === 0) {
        // The patcher's reserved page ends at the (moved) heap base: its lock and the
        // temporary stack that dying threads free their stacks on are the runtime's own.
        if (traced && !wasi && ex.__heap_base instanceof WebAssembly.Global) {
          traceIgnore(ex.__heap_base.value - run.reservedBytes, run.reservedBytes);
        }
        if (run.hasInit) ex.__wasmgrind_init();
        t0 = performance.now();
        ex[run.entry]();
        entryMs = performance.now() - t0;
      } else if (wasi) {
        ex.wasi_thread_start(tid, Atomics.load(arg, tid));
      } else {
        ex.thread_start(Atomics.load(arg, tid));
      }
      if (!wasi) ex.__wasmgrind_thread_destroy(0, 0);
    } catch (e) {
      if (e instanceof ProcExit) exitCode = e.code;
      // A trap of the utility module in a hook the target called (it ran out of memory,
      // it panicked) is the runtime's failure, not the program's, and may have left the
      // recorder's locks held: nothing here calls into it again (see `handle`).
      else if (
        e instanceof WebAssembly.RuntimeError &&
        utilityTrapCause(UTILITY_FAILURE, util.memory) !== null
      ) {
        throw e;
      } else failure = describe(e);
    }
    // ANCHOR_END: run-thread
    // A wasi thread that finished records its end: nobody joins it through the runtime,
    // and its id goes back to the free list (see below).
    if (traced) {
      if (wasi && tid !== 0 && failure === null && exitCode === null) threadExit();
      else threadEnd();
    }
    if (exitCode !== null) {
      // proc_exit ends the run. The first of the exits and failures decides its outcome.
      const first = Atomics.compareExchange(ctrl, C_FIRST_ERROR, 0, tid + 1) === 0;
      post({ type: 'procExit', tid, first, code: exitCode, entryMs: performance.now() - t0 });
      Atomics.store(status, tid, T_DONE);
      Atomics.notify(status, tid);
      parkForever(ctrl);
    }
    if (failure !== null) {
      // The instance is broken (a lock may be held, its stack pointer is wherever the trap
      // left it): it is not destroyed, and the run ends with this error.
      const first = Atomics.compareExchange(ctrl, C_FIRST_ERROR, 0, tid + 1) === 0;
      post({ type: 'failed', tid, first, ...failure });
      Atomics.store(status, tid, T_FAILED);
      Atomics.notify(status, tid);
      parkForever(ctrl);
    }
    Atomics.store(status, tid, T_DONE);
    Atomics.notify(status, tid);
    current = -1;
    if (wasi && tid !== 0) {
      // Nobody joins it through the runtime: it gives its id back now (see allocTid).
      Atomics.store(status, tid, T_FREE);
      recycleTid(tid);
    }
    if (tid === 0) post({ type: 'exit', tid: 0, entryMs });
  }

  /**
   * The next thread id to run; -1 when the run is ending, -2 when this worker should close:
   * more than `maxIdle` workers were idle, with it, for `lingerMs` without a job.
   */
  // ANCHOR: take-job
  function takeJob() {
    Atomics.add(ctrl, C_IDLE, 1);
    let closeAt = null;
    for (;;) {
      const seq = Atomics.load(ctrl, C_JOB_SEQ);
      if (Atomics.load(ctrl, C_STOPPING) !== 0) return -1;
      const h = Atomics.load(ctrl, C_JOB_HEAD);
      if (h < Atomics.load(ctrl, C_JOB_TAIL)) {
        const slot = h % ring;
        const job = Atomics.load(jobs, slot);
        if (job === 0) {
          // Reserved but not written yet: the producer writes it right away.
          Atomics.wait(jobs, slot, 0, 1);
          continue;
        }
        if (Atomics.compareExchange(ctrl, C_JOB_HEAD, h, h + 1) === h) {
          Atomics.store(jobs, slot, 0);
          Atomics.sub(ctrl, C_IDLE, 1);
          return job - 1;
        }
        continue;
      }
      if (Atomics.load(ctrl, C_IDLE) > run.maxIdle) {
        // One idle worker too many: it lingers (a burst of threads often comes again, and
        // a worker that boots again costs tens of milliseconds), then closes.
        const now = performance.now();
        closeAt ??= now + run.lingerMs;
        if (now >= closeAt) {
          Atomics.sub(ctrl, C_IDLE, 1);
          return -2;
        }
        Atomics.wait(ctrl, C_JOB_SEQ, seq, closeAt - now);
      } else {
        closeAt = null;
        Atomics.wait(ctrl, C_JOB_SEQ, seq);
      }
    }
  }
  // ANCHOR_END: take-job

  // ANCHOR: serve-loop
  post({ type: 'ready', index });
  for (;;) {
    const tid = takeJob();
    if (tid === -1) {
      // The run ended while this worker waited for a job.
      post({ type: 'released', index });
      return true;
    }
    // Too many idle workers for too long: this one closes.
    if (tid === -2) break;
    runThread(tid);
  }
  // The last call into the utility instance frees its stack and TLS block; unless the run
  // is ending: then this worker, which holds nothing of the run, is released instead (as
  // `enterUtil` would park it, and the end of the run would wait for it in vain).
  if (!enterUtil(ctrl)) {
    post({ type: 'released', index });
    return true;
  }
  u.__wbindgen_thread_destroy();
  leaveUtil(ctrl);
  post({ type: 'closed', index });
  closePort();
  return false;
  // ANCHOR_END: serve-loop
}

export {};
