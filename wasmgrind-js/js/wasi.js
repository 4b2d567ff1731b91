// wasi.js: the WASI preview1 functions that Wasmgrind gives a wasi-threads module, and
// the output channel that carries what its threads write to stdout and stderr.
//
// Every thread of a run is its own instance on its own worker, and all of them share one
// memory, so the functions must work from any worker, on a SharedArrayBuffer, in Node and
// in browsers alike. They are the small set that `std` programs use:
//
//   fd_write (stdout, stderr)       args_get, args_sizes_get      clock_time_get, clock_res_get
//   fd_fdstat_get (0, 1, 2)         environ_get, environ_sizes_get random_get, sched_yield
//   poll_oneoff (clocks: sleeping)  proc_exit
//
// Every other function of `wasi_snapshot_preview1` that a module imports is there too and
// fails: the `fd_*` ones with EBADF (there are no files and no preopened directories: a
// libc that asks `fd_prestat_get(3)` learns that there are none), the rest with ENOSYS.
//
// Output: `fd_write` appends a record to the output channel, one SharedArrayBuffer of all
// threads, under a lock, so the records are in the order in which the writes happened
// (per stream and across streams). The run's manager drains it every few milliseconds and
// once more after the last thread stopped, so nothing written is lost. A writer waits
// while the channel is full.
//
// This file imports nothing, so bundlers take it as it is.

/** WASI errno values (wasi_snapshot_preview1's `errno`). */
export const ERRNO = Object.freeze({
  SUCCESS: 0,
  AGAIN: 6,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOSYS: 52,
});

// --- the output channel --------------------------------------------------------------------

/** Header cells (Int32) of the output channel. */
const O_LOCK = 0;
const O_USED = 1;
const O_HEADER_BYTES = 16;
/** Bytes of record data the channel holds before writers wait for the manager. */
export const OUTPUT_CAPACITY = 1 << 20;
/** The stream of a record is its header's top bit: 0 stdout, 1 stderr. */
const STDERR_BIT = 0x80000000;

/** A new output channel (a SharedArrayBuffer). */
export function createOutputChannel() {
  return new SharedArrayBuffer(O_HEADER_BYTES + OUTPUT_CAPACITY);
}

/**
 * The writing side of an output channel: `write(stream, bytes)` with `stream` 1 (stdout)
 * or 2 (stderr). `waiting()` is called while the channel is full, between short waits
 * (the worker parks there when the run is ending).
 */
export function outputWriter(sab, waiting) {
  const header = new Int32Array(sab, 0, O_HEADER_BYTES / 4);
  const data = new Uint8Array(sab, O_HEADER_BYTES);
  const view = new DataView(sab, O_HEADER_BYTES);
  const lock = () => {
    while (Atomics.compareExchange(header, O_LOCK, 0, 1) !== 0) Atomics.wait(header, O_LOCK, 1, 1);
  };
  const unlock = () => {
    Atomics.store(header, O_LOCK, 0);
    Atomics.notify(header, O_LOCK, 1);
  };
  // The largest piece one record carries (a longer write becomes several records).
  const maxPiece = OUTPUT_CAPACITY - 4;
  return function write(stream, bytes) {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, maxPiece);
      const size = 4 + ((n + 3) & ~3);
      for (;;) {
        lock();
        const used = Atomics.load(header, O_USED);
        if (used + size <= OUTPUT_CAPACITY) {
          view.setUint32(used, (stream === 2 ? STDERR_BIT : 0) | n, true);
          data.set(bytes.subarray(at, at + n), used + 4);
          // Published last: the manager reads only what `used` covers.
          Atomics.store(header, O_USED, used + size);
          unlock();
          break;
        }
        unlock();
        waiting();
        Atomics.wait(header, O_USED, used, 10);
      }
      at += n;
    }
  };
}

/**
 * The reading side of an output channel, for the run's manager: `drain(final)` moves the
 * records out and hands each to `onText(stream, text, bytes)` (`'stdout'` or `'stderr'`;
 * `bytes` exactly as written, `text` decoded as UTF-8 across records, so that a character
 * split between two writes comes with the second, and a write of bytes that are no UTF-8
 * comes as U+FFFD). Without `final` it skips a round when a writer holds
 * the lock (the manager never blocks); with `final` (every writer has stopped) it reads
 * what was published, decodes the rest of a split character and ends.
 */
export function outputReader(sab, onText) {
  const header = new Int32Array(sab, 0, O_HEADER_BYTES / 4);
  const data = new Uint8Array(sab, O_HEADER_BYTES);
  const view = new DataView(sab, O_HEADER_BYTES);
  const decoders = { stdout: new TextDecoder('utf-8'), stderr: new TextDecoder('utf-8') };
  return function drain(final = false) {
    if (!final && Atomics.compareExchange(header, O_LOCK, 0, 1) !== 0) return;
    const used = Atomics.load(header, O_USED);
    // TextDecoder refuses views of a SharedArrayBuffer in browsers: copy first.
    const copy = data.slice(0, used);
    const heads = [];
    for (let at = 0; at < used; ) {
      const h = view.getUint32(at, true);
      const n = h & ~STDERR_BIT;
      heads.push({ stream: h & STDERR_BIT ? 'stderr' : 'stdout', at: at + 4, n });
      at += 4 + ((n + 3) & ~3);
    }
    if (!final) {
      Atomics.store(header, O_USED, 0);
      Atomics.store(header, O_LOCK, 0);
      Atomics.notify(header, O_LOCK, 1);
      Atomics.notify(header, O_USED);
    } else {
      Atomics.store(header, O_USED, 0);
    }
    for (const { stream, at, n } of heads) {
      const bytes = copy.slice(at, at + n);
      const text = decoders[stream].decode(bytes, { stream: true });
      if (n > 0) onText(stream, text, bytes);
    }
    if (final) {
      // The end of a split character that never came: its bytes were handed on already.
      for (const stream of ['stdout', 'stderr']) {
        const text = decoders[stream].decode();
        if (text !== '') onText(stream, text, new Uint8Array(0));
      }
    }
  };
}

// --- the functions ------------------------------------------------------------------------

const encoder = new TextEncoder();

/** A thread's `proc_exit(code)`: thrown to unwind the thread; the run ends with `code`. */
export class ProcExit extends Error {
  constructor(code) {
    super(`proc_exit(${code})`);
    this.name = 'ProcExit';
    this.code = code;
  }
}

/** Nanoseconds since the epoch, the same in every worker (each has its own timeOrigin). */
function nowNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/**
 * The `wasi_snapshot_preview1` import object of one thread's instance.
 *
 * - `memory`: the target's WebAssembly.Memory;
 * - `names`: the names the module imports from `wasi_snapshot_preview1` (each gets a
 *   function; those without an implementation fail with EBADF or ENOSYS);
 * - `args`: argv, `args[0]` being the program's name; `env`: `{ NAME: value }`;
 * - `write(stream, bytes)`: stdout (1) and stderr (2), see `outputWriter`;
 * - `onExit(code)`: a thread called `proc_exit`; it does not return (it throws).
 */
export function wasiImports({ memory, names, args, env, write, onExit }) {
  const argBytes = args.map((a) => encoder.encode(`${a}\0`));
  const envBytes = Object.entries(env).map(([k, v]) => encoder.encode(`${k}=${v}\0`));
  const dv = () => new DataView(memory.buffer);
  const bytes = () => new Uint8Array(memory.buffer);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));

  /** Writes a string list (argv or environ) as `*_get` does. */
  function putList(list, ptrsPtr, bufPtr) {
    const v = dv();
    const b = bytes();
    let at = bufPtr >>> 0;
    list.forEach((s, i) => {
      v.setUint32((ptrsPtr >>> 0) + 4 * i, at, true);
      b.set(s, at);
      at += s.length;
    });
    return ERRNO.SUCCESS;
  }
  function putSizes(list, countPtr, sizePtr) {
    const v = dv();
    v.setUint32(countPtr >>> 0, list.length, true);
    v.setUint32(sizePtr >>> 0, list.reduce((n, s) => n + s.length, 0), true);
    return ERRNO.SUCCESS;
  }
  /** Out-of-bounds pointers fail with EFAULT instead of trapping the thread. */
  const guarded =
    (fn) =>
    (...a) => {
      try {
        return fn(...a);
      } catch (e) {
        if (e instanceof RangeError) return ERRNO.FAULT;
        throw e;
      }
    };

  const impl = {
    args_get: guarded((argv, buf) => putList(argBytes, argv, buf)),
    args_sizes_get: guarded((count, size) => putSizes(argBytes, count, size)),
    environ_get: guarded((environ, buf) => putList(envBytes, environ, buf)),
    environ_sizes_get: guarded((count, size) => putSizes(envBytes, count, size)),

    clock_res_get: guarded((id, resPtr) => {
      if (id < 0 || id > 3) return ERRNO.INVAL;
      dv().setBigUint64(resPtr >>> 0, 1000n, true);
      return ERRNO.SUCCESS;
    }),
    // Realtime and monotonic are one clock here: the high-resolution time since the
    // epoch; the CPU-time clocks (2, 3) read it too.
    clock_time_get: guarded((id, _precision, timePtr) => {
      if (id < 0 || id > 3) return ERRNO.INVAL;
      dv().setBigUint64(timePtr >>> 0, nowNs(), true);
      return ERRNO.SUCCESS;
    }),

    fd_write: guarded((fd, iovs, iovsLen, nwrittenPtr) => {
      if (fd !== 1 && fd !== 2) return ERRNO.BADF;
      const v = dv();
      const b = bytes();
      const parts = [];
      let total = 0;
      for (let i = 0; i < iovsLen >>> 0; i++) {
        const ptr = v.getUint32((iovs >>> 0) + 8 * i, true);
        const len = v.getUint32((iovs >>> 0) + 8 * i + 4, true);
        if (ptr + len > b.length) return ERRNO.FAULT;
        parts.push(b.subarray(ptr, ptr + len));
        total += len;
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      if (total > 0) write(fd, out);
      v.setUint32(nwrittenPtr >>> 0, total, true);
      return ERRNO.SUCCESS;
    }),
    fd_fdstat_get: guarded((fd, statPtr) => {
      if (fd < 0 || fd > 2) return ERRNO.BADF;
      const v = dv();
      const p = statPtr >>> 0;
      bytes().fill(0, p, p + 24);
      v.setUint8(p, 2); // filetype: character device
      // Rights: fd_read (bit 1) for stdin, fd_write (bit 6) for stdout and stderr.
      v.setBigUint64(p + 8, fd === 0 ? 1n << 1n : 1n << 6n, true);
      return ERRNO.SUCCESS;
    }),

    // Clock subscriptions wait (the earliest deadline first); fd subscriptions are
    // answered at once with EBADF (there are no pollable files).
    poll_oneoff: guarded((inPtr, outPtr, nsubs, neventsPtr) => {
      const v = dv();
      const n = nsubs >>> 0;
      if (n === 0) return ERRNO.INVAL;
      const start = nowNs();
      const subs = [];
      for (let i = 0; i < n; i++) {
        const s = (inPtr >>> 0) + 48 * i;
        const userdata = v.getBigUint64(s, true);
        const tag = v.getUint8(s + 8);
        if (tag === 0) {
          const id = v.getUint32(s + 16, true);
          const timeout = v.getBigUint64(s + 24, true);
          const abs = (v.getUint16(s + 40, true) & 1) !== 0;
          const valid = id >= 0 && id <= 3;
          subs.push({ userdata, tag, error: valid ? 0 : ERRNO.INVAL, deadline: abs ? timeout : start + timeout });
        } else {
          subs.push({ userdata, tag, error: ERRNO.BADF, deadline: 0n });
        }
      }
      let ready = subs.filter((s) => s.tag !== 0 || s.error !== 0);
      if (ready.length === 0) {
        const deadline = subs.reduce((m, s) => (s.deadline < m ? s.deadline : m), subs[0].deadline);
        for (;;) {
          const left = Number(deadline - nowNs()) / 1e6;
          if (left <= 0) break;
          Atomics.wait(sleeper, 0, 0, left);
        }
        const now = nowNs();
        ready = subs.filter((s) => s.deadline <= now);
      }
      const o = dv();
      ready.forEach((s, i) => {
        const e = (outPtr >>> 0) + 32 * i;
        o.setBigUint64(e, s.userdata, true);
        o.setUint16(e + 8, s.error, true);
        o.setUint8(e + 10, s.tag);
        o.setBigUint64(e + 16, 0n, true);
        o.setUint16(e + 24, 0, true);
      });
      o.setUint32(neventsPtr >>> 0, ready.length, true);
      return ERRNO.SUCCESS;
    }),

    proc_exit: (code) => onExit(code >>> 0),

    random_get: guarded((ptr, len) => {
      const b = bytes();
      const p = ptr >>> 0;
      const n = len >>> 0;
      if (p + n > b.length) return ERRNO.FAULT;
      // getRandomValues refuses shared memory and more than 65536 bytes at once.
      const tmp = new Uint8Array(Math.min(n, 65536));
      for (let at = 0; at < n; at += tmp.length) {
        const k = Math.min(tmp.length, n - at);
        crypto.getRandomValues(tmp.subarray(0, k));
        b.set(tmp.subarray(0, k), p + at);
      }
      return ERRNO.SUCCESS;
    }),

    sched_yield: () => ERRNO.SUCCESS,
  };

  const out = {};
  for (const name of names) {
    if (Object.hasOwn(impl, name)) out[name] = impl[name];
    else out[name] = name.startsWith('fd_') ? () => ERRNO.BADF : () => ERRNO.NOSYS;
  }
  return out;
}
