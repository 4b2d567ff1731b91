// The test page's script. It runs on the page's main thread, which must never block: every
// run goes through `pkg/wgrind_worker.js`, a module Worker that the page starts and talks
// to with messages. The driver (run.mjs, bench.mjs) calls `window.wgTest.*` through
// Playwright and gets back plain, small objects.

import { summarize } from './trace_checks.mjs';

const WORKER_URL = new URL('../../pkg/wgrind_worker.js', import.meta.url);

function log(line) {
  const el = document.getElementById('log');
  if (el) el.textContent += `${line}\n`;
}

/** A plain object for an error that came back from the worker (or happened here). */
function plainError(e) {
  if (e === null || typeof e !== 'object') return { message: String(e) };
  return {
    name: e.name,
    message: String(e.message ?? e),
    kind: e.kind,
    variant: e.variant,
    thread: e.thread,
    code: e.code,
    blockedOnLocks: e.blockedOnLocks,
    threadStates: e.threadStates,
    cycle: e.cycle,
    findings: e.findings ?? null,
    report: e.report ?? null,
  };
}

/**
 * The page's preconditions: cross-origin isolation, SharedArrayBuffer and shared
 * WebAssembly memory, and `application/wasm` for the guests (compileStreaming insists on it).
 */
async function preflight(guestUrl) {
  const out = {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    sharedMemory: false,
    wasmContentType: null,
    compileStreaming: null,
  };
  try {
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    out.sharedMemory = mem.buffer instanceof SharedArrayBuffer;
  } catch (e) {
    out.sharedMemory = `${e}`;
  }
  if (guestUrl) {
    const response = await fetch(guestUrl);
    out.wasmContentType = response.headers.get('content-type');
    try {
      await WebAssembly.compileStreaming(fetch(guestUrl));
      out.compileStreaming = true;
    } catch (e) {
      out.compileStreaming = `${e}`;
    }
  }
  return out;
}

/**
 * Runs `functionName` of the guest at `guestUrl` through a new `wgrind_worker.js` (one
 * worker serves one run), and resolves to
 * `{ ok: true, ms, status, events, rapidbinBytes, detached, summary, metadataCounts, ... }`
 * or `{ ok: false, ms, error }`. The proxy worker is terminated afterwards either way.
 *
 * The protocol of `wgrind_worker.js`: post `{ binary, functionName, options }` (`binary`
 * an absolute URL here), get back `{ result }` or `{ error }`, `error` a plain object
 * with `message`, `kind` and more.
 *
 * `watchdogMs` bounds the wait for the proxy's reply on the page itself, so that a proxy
 * that never answers is reported as such rather than hanging the page.
 */
async function run(guestUrl, functionName, options = {}, watchdogMs = 60000) {
  const binary = new URL(guestUrl, location.href).href;
  const worker = new Worker(WORKER_URL, { type: 'module', name: 'wgrind_worker' });
  const started = performance.now();
  let timer;
  try {
    const reply = await new Promise((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            error: {
              kind: 'PageWatchdog',
              message: `wgrind_worker.js did not answer within ${watchdogMs} ms`,
            },
          }),
        watchdogMs,
      );
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        resolve({
          error: { kind: 'WorkerError', message: `wgrind_worker.js failed: ${e.message}` },
        });
      };
      worker.onmessageerror = () =>
        resolve({ error: { kind: 'WorkerError', message: 'unreadable reply from wgrind_worker.js' } });
      worker.postMessage({ binary, functionName, options });
    });
    const ms = performance.now() - started;
    if (reply === null || typeof reply !== 'object' || reply.result === undefined) {
      const error = plainError(reply?.error ?? { message: `unexpected reply ${JSON.stringify(reply)}` });
      log(`${functionName}: error ${error.kind ?? error.name}: ${error.message}`);
      return { ok: false, ms, error };
    }
    const result = reply.result;
    const out = {
      ok: true,
      ms,
      status: result.status,
      events: result.events,
      detached: Array.isArray(result.detached) ? result.detached.length : null,
      threads: result.threads ?? null,
      timing: result.timing ?? null,
      rapidbinBytes: result.rapidbin ? result.rapidbin.byteLength : null,
      lockConsistency: result.lockConsistency ?? null,
      forkJoinConsistency: result.forkJoinConsistency ?? null,
      findings: result.findings ?? null,
      summary: null,
      metadataCounts: null,
    };
    if (typeof result.std === 'string') {
      const metadata =
        typeof result.metadata === 'string' ? JSON.parse(result.metadata) : result.metadata;
      out.summary = summarize(result.std, metadata);
      out.metadataCounts = metadata?.counts ?? null;
    }
    log(`${functionName}: ok, ${result.events} events in ${ms.toFixed(0)} ms`);
    return out;
  } finally {
    clearTimeout(timer);
    worker.terminate();
  }
}

globalThis.wgTest = { preflight, run };
globalThis.wgTestReady = true;
