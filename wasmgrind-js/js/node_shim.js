// The Node.js part of the platform layer (shim.js): worker_threads, the V8 flag and the
// filesystem. Only Node.js loads it, as the package import `#node-shim` under the `node`
// condition; bundles for browsers get no_node.js in its place (see package.json).

import { readFile } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { Worker, parentPort } from 'node:worker_threads';

/** This is the real thing (no_node.js says `false`). */
export const available = true;

/** In a worker: the port to the thread that started it. */
export { parentPort };

/** Turns V8's baseline WebAssembly compiler off (see `configureEngine` in shim.js). */
export function disableLiftoff() {
  setFlagsFromString('--no-liftoff');
}

/**
 * Lets V8 use the branch hints (`metadata.code.branch_hint`) that the instrumenter writes
 * with sampling: the code of a hook call that a sampled run rarely makes is then laid out
 * and register-allocated as cold. Node.js 20's V8 reads them only behind this flag (an
 * engine that does not read them ignores the section); a module without hints is
 * compiled as before.
 */
export function enableBranchHints() {
  setFlagsFromString('--experimental-wasm-branch-hinting');
}

/**
 * Lets the workers started from now on begin with a young generation of 4 MiB rather
 * than V8's smallest: a thread worker allocated enough while it booted to collect it
 * three times, and with 64 workers booting at once on two cores those collections waited
 * for each other (5 to 9% of the CPU time of a 64-thread start, measured). A process-wide
 * V8 flag like `--no-liftoff`; the heap still grows and shrinks as before.
 */
export function enlargeYoungGeneration() {
  setFlagsFromString('--min-semi-space-size=4');
}

/** The bytes of a path (relative to the working directory) or of a `file:` URL. */
export async function readBytes(pathOrUrl) {
  const buf = await readFile(pathOrUrl);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A worker_threads worker running `script` (next to this file); see `startWorker` in shim.js. */
export function startWorker(script, name) {
  const w = new Worker(new URL(script, import.meta.url), { name });
  let onError = () => {};
  let onMessage = () => {};
  let exited = false;
  w.on('message', (m) => onMessage(m));
  w.on('error', (e) => onError(e));
  w.on('exit', (code) => {
    exited = true;
    if (code !== 0) onError(new Error(`worker exited with code ${code}`));
  });
  // A worker keeps the Node process alive only while the runtime says so (`ref`: the
  // manager of a call in progress); never the thread workers, nor a manager kept for the
  // next call (see closeIdleWorkers). After the listeners: the first `message` listener
  // refs the worker's port again.
  w.unref();
  return {
    post: (m, t) => w.postMessage(m, t),
    // One handler at a time: a kept worker gets the handler of the run it serves next.
    onMessage: (fn) => {
      onMessage = fn;
    },
    onError: (fn) => {
      onError = fn;
    },
    terminate: () => (exited ? Promise.resolve() : w.terminate()),
    ref: () => w.ref(),
    unref: () => w.unref(),
  };
}
