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
  // A worker must never keep the Node process alive on its own: the runtime terminates
  // all of them when a run ends, and an abandoned run must not hang the process.
  w.unref();
  let onError = () => {};
  let exited = false;
  w.on('error', (e) => onError(e));
  w.on('exit', (code) => {
    exited = true;
    if (code !== 0) onError(new Error(`worker exited with code ${code}`));
  });
  return {
    post: (m, t) => w.postMessage(m, t),
    onMessage: (fn) => w.on('message', fn),
    onError: (fn) => {
      onError = fn;
    },
    terminate: () => (exited ? Promise.resolve() : w.terminate()),
  };
}
