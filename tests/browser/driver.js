// The browser tests' driver. browser.mjs opens the book's example page,
// book/examples/browser/index.html, and adds this module to it: the page a user reads
// about in the book is the page the tests run. It runs on the page's main thread, which
// must never block, and gives the driver scripts (run.mjs, bench.mjs), which call
// `window.wgTest.*` through Playwright, plain, small objects.
//
// The manifest's scenarios, the wasi programs and the streamed runs go through the
// example's own `runModule` (which calls `wasmgrind()` and shows the outcome on the
// page); `run` talks to `pkg/wgrind_worker.js` directly, with the messages of its
// protocol, and `smoothness` calls `wasmgrind()` alone, to measure the main thread.

import { summarize } from './trace_checks.mjs';
import { runModule } from '../../book/examples/browser/main.js';

const WORKER_URL = new URL('../../pkg/wgrind_worker.js', import.meta.url);

/** A line of the page's log (run.mjs --verbose shows the page's console). */
function log(line) {
  console.info(line);
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
    rustPanic: e.rustPanic,
    abi: e.abi,
    exitCode: e.exitCode,
    stdout: e.stdout,
    stderr: e.stderr,
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
 * Runs `functionName` of the guest at `guestUrl` through a new `wgrind_worker.js` of its
 * own (one worker serves one run), without `wasmgrind()`, and resolves to
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
      timings: result.timings ?? null,
      rapidbinBytes: result.rapidbin ? result.rapidbin.byteLength : null,
      lockConsistency: result.lockConsistency ?? null,
      forkJoinConsistency: result.forkJoinConsistency ?? null,
      findings: result.findings ?? null,
      summary: null,
      metadataCounts: null,
    };
    // wgrind_worker.js sends the STD text and the metadata as bytes (`wasmgrind()` would
    // decode them on first access; this page talks to the worker directly).
    if (result.stdBytes instanceof Uint8Array) {
      const text = new TextDecoder();
      const metadata = JSON.parse(text.decode(result.metadataBytes));
      out.summary = summarize(text.decode(result.stdBytes), metadata);
      out.metadataCounts = metadata?.counts ?? null;
    }
    log(`${functionName}: ok, ${result.events} events in ${ms.toFixed(0)} ms`);
    return out;
  } finally {
    clearTimeout(timer);
    worker.terminate();
  }
}

/**
 * Runs `functionName` of the guest at `guestUrl` through the example page's `runModule`
 * (`wasmgrind()`, the outcome shown on the page) and resolves to what `run` resolves to,
 * from the result a user gets: `{ ok: true, ms, status, events, detached, threads,
 * timings, rapidbinBytes, lockConsistency, forkJoinConsistency, findings, summary,
 * metadataCounts, shown }` or `{ ok: false, ms, error, shown }`, `shown` the status line
 * that the page shows.
 */
async function runExample(guestUrl, functionName, options = {}) {
  const started = performance.now();
  let result;
  try {
    result = await runModule(guestUrl, functionName, options);
  } catch (e) {
    const ms = performance.now() - started;
    const error = plainError(e);
    log(`${functionName}: error ${error.kind ?? error.name}: ${error.message}`);
    return { ok: false, ms, error, shown: shownStatus() };
  }
  const ms = performance.now() - started;
  log(`${functionName}: ok, ${result.events} events in ${ms.toFixed(0)} ms`);
  return {
    ok: true,
    ms,
    status: result.status,
    events: result.events,
    detached: result.detached.length,
    threads: result.threads,
    timings: result.timings,
    rapidbinBytes: result.rapidbin ? result.rapidbin.byteLength : null,
    lockConsistency: result.lockConsistency,
    forkJoinConsistency: result.forkJoinConsistency,
    findings: result.findings,
    summary: result.std === null ? null : summarize(result.std, result.metadata),
    metadataCounts: result.metadata?.counts ?? null,
    shown: shownStatus(),
  };
}

/** The example page's status line. */
function shownStatus() {
  return document.getElementById('status').textContent;
}

/** What the example page shows of a program's output. */
function shownOutput() {
  return document.getElementById('output').textContent;
}

/** The bytes of `parts` one after the other. */
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Runs `functionName` through the example page's `runModule` (`wasmgrind()`, which starts
 * its own `wgrind_worker.js`) with `onChunk`, so that the trace streams to the page while the
 * program runs, and resolves to what `run` resolves to, plus what the chunks showed:
 * `{ streamed, resultBytes, chunks, chunksInOrder, chunkEvents, rapidbinBytes,
 * rapidbinHeaderEvents, nativeBytes, nativeHeaderEvents }`. The chunks are assembled here
 * (bytes concatenated, final headers written over chunk 0's placeholders) and checked
 * like a whole trace.
 */
async function runStreamed(guestUrl, functionName, options = {}) {
  const chunks = [];
  const started = performance.now();
  let result;
  try {
    result = await runModule(guestUrl, functionName, {
      ...options,
      onChunk: async (c) => {
        chunks.push(c);
      },
    });
  } catch (e) {
    return { ok: false, ms: performance.now() - started, error: plainError(e) };
  }
  const ms = performance.now() - started;
  const rapidbin = concat(chunks.map((c) => c.rapidbin));
  rapidbin.set(result.rapidbinHeader, 0);
  const native = concat(chunks.map((c) => c.native));
  native.set(result.nativeHeader, 0);
  const std = new TextDecoder().decode(concat(chunks.map((c) => c.std)));
  const out = {
    ok: true,
    ms,
    status: result.status,
    events: result.events,
    detached: result.detached.length,
    lockConsistency: result.lockConsistency,
    forkJoinConsistency: result.forkJoinConsistency,
    findings: result.findings,
    summary: summarize(std, result.metadata),
    metadataCounts: result.metadata.counts,
    streamed: result.streamed,
    resultBytes: [result.rapidbin, result.std, result.native].some((b) => b !== null),
    chunks: chunks.length,
    resultChunks: result.chunks,
    chunksInOrder: chunks.every((c, i) => c.index === i),
    chunkEvents: chunks.reduce((n, c) => n + c.events, 0),
    rapidbinBytes: rapidbin.byteLength,
    rapidbinHeaderEvents: Number(new DataView(rapidbin.buffer).getBigInt64(10)),
    nativeBytes: native.byteLength,
    nativeHeaderEvents: Number(new DataView(native.buffer).getBigUint64(16, true)),
  };
  log(`${functionName}: streamed, ${result.events} events in ${chunks.length} chunks, ${ms.toFixed(0)} ms`);
  return out;
}


/**
 * Item "the page stays smooth": calls `wasmgrind()` of pkg/wasmgrind.js `runs` times in a
 * row from this page's main thread (as an application would, trace results included) and
 * measures how long the main thread was unavailable: a `setTimeout(0)` loop runs all the
 * while, and the longest gap between two of its ticks is the longest time the page could
 * not have responded (an idle page shows about 4 ms, the timer clamp). Long tasks (50 ms
 * and more) that Chromium reports are returned as well. Resolves to
 * `{ ok, longestGapMs, ticks, ms, longTasks, runs: [{ events, stdChars, rapidbinBytes, nativeBytes }] }`.
 */
async function smoothness(guestUrl, functionName, options = {}, runs = 5) {
  const { wasmgrind } = await import('../../pkg/wasmgrind.js');
  // `runs` 0: the same loop on an idle page for a second, the noise floor of the gaps.
  if (runs === 0) return idleGaps(1000);
  const binary = new URL(guestUrl, location.href).href;
  const longTasks = [];
  let observer = null;
  try {
    observer = new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration)));
    observer.observe({ entryTypes: ['longtask'] });
  } catch {
    observer = null;
  }
  const meter = gapMeter();
  const started = performance.now();
  const out = [];
  let final = null;
  try {
    for (let i = 0; i < runs; i++) {
      const r = await wasmgrind(binary, functionName, options);
      // Touch what an application that keeps or sends the trace reads of the result: the
      // findings and the trace's bytes. The STD text and the metadata come as bytes and
      // become a string and an object only when asked for (`r.std`, `r.metadata`); what
      // that first access costs is measured below, apart from the gaps.
      out.push({
        events: r.events,
        races: r.findings ? r.findings.races.length : 0,
        stdBytes: r.stdBytes ? r.stdBytes.byteLength : 0,
        metadataBytes: r.metadataBytes ? r.metadataBytes.byteLength : 0,
        rapidbinBytes: r.rapidbin ? r.rapidbin.byteLength : 0,
        nativeBytes: r.native ? r.native.byteLength : 0,
      });
      final = r;
    }
  } catch (e) {
    meter.stop();
    observer?.disconnect();
    return { ok: false, error: plainError(e) };
  }
  const ms = performance.now() - started;
  // One more tick, so that a gap at the very end is seen too.
  await new Promise((r) => setTimeout(r, 0));
  const { longest, ticks } = meter.stop();
  observer?.disconnect();
  // The first access to the text and the metadata, on this (main) thread.
  let t = performance.now();
  const stdChars = typeof final?.std === 'string' ? final.std.length : 0;
  const stdMs = performance.now() - t;
  t = performance.now();
  const variables = final?.metadata ? final.metadata.variables.length : 0;
  const metadataMs = performance.now() - t;
  const access = { stdMs, stdChars, metadataMs, variables };
  return { ok: true, longestGapMs: longest, ticks, ms, longTasks, runs: out, access };
}

/**
 * A `setTimeout(0)` loop on this page; `stop()` ends it and returns the longest gap between
 * two of its ticks (the longest time the page could not have responded) and their number.
 */
function gapMeter() {
  let last = performance.now();
  let longest = 0;
  let ticks = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  return {
    stop() {
      running = false;
      return { longest, ticks };
    },
  };
}

/**
 * The longest gap of the loop of `gapMeter` on this page for `ms` milliseconds, while
 * `spinning` workers spin for as long (0: an idle page, the noise floor; more: the floor of
 * a busy machine, with no Wasmgrind code running).
 */
async function idleGaps(ms, spinning = 0) {
  const spin = `const end = performance.now() + ${ms}; while (performance.now() < end);`;
  const src = spinning > 0 ? URL.createObjectURL(new Blob([spin], { type: 'text/javascript' })) : null;
  const workers = Array.from({ length: spinning }, () => new Worker(src));
  const meter = gapMeter();
  const started = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const { longest, ticks } = meter.stop();
  for (const w of workers) w.terminate();
  return { ok: true, longestGapMs: longest, ticks, ms: performance.now() - started, longTasks: [], runs: [] };
}

/**
 * Runs a wasi program (built with std for wasm32-wasip1-threads) through the example
 * page's `runModule` (`wasmgrind()`): `_start` with `args` (argv[1..]) and `options`
 * (such as `env`), what it writes collected from `onOutput` as well. Resolves to
 * `{ ok: true, ms, status, abi, exitCode, exitThread, stdout, stderr, output: { stdout,
 * stderr }, shownOutput, forks, detached, forkJoinConsistency, findings }` or `{ ok: false,
 * ms, error, output, shownOutput }` (the error with its `stdout`, `stderr`, `exitCode`);
 * `shownOutput` is what the page shows of the output.
 */
async function runWasi(guestUrl, args, options = {}) {
  const output = { stdout: '', stderr: '' };
  const onOutput = (stream, text) => {
    output[stream] += text;
  };
  const started = performance.now();
  let result;
  try {
    result = await runModule(guestUrl, undefined, { ...options, args, onOutput });
  } catch (e) {
    log(`wasi ${args.join(' ')}: error ${e.kind}: ${e.message}`);
    return { ok: false, ms: performance.now() - started, error: plainError(e), output, shownOutput: shownOutput() };
  }
  const ms = performance.now() - started;
  log(`wasi ${args.join(' ')}: exit code ${result.exitCode} in ${ms.toFixed(0)} ms`);
  return {
    ok: true,
    ms,
    status: result.status,
    abi: result.abi,
    exitCode: result.exitCode,
    exitThread: result.exitThread,
    stdout: result.stdout,
    stderr: result.stderr,
    output,
    shownOutput: shownOutput(),
    forks: result.threads.forks,
    detached: result.detached.length,
    forkJoinConsistency: result.forkJoinConsistency,
    findings: result.findings,
  };
}

/**
 * Calls `wasmgrind()` of pkg/wasmgrind.js from this page with the module at `guestUrl`
 * (relative to the page) given in each of the forms a page has: a relative path, an
 * absolute URL string, a `URL`, a `Blob`, a `Response` and the bytes; and with a path that
 * does not exist and a URL string that is no URL. (In a browser the run's manager fetches
 * a URL and reads a Blob itself; the caller reads the rest.) Resolves to `{ form: { ok,
 * events, programName } | { ok: false, error } }` per form.
 */
async function inputs(guestUrl, functionName) {
  const { wasmgrind } = await import('../../pkg/wasmgrind.js');
  const absolute = new URL(guestUrl, location.href);
  const bytes = async () => new Uint8Array(await (await fetch(absolute)).arrayBuffer());
  const forms = {
    path: () => guestUrl,
    urlString: () => absolute.href,
    url: () => new URL(absolute.href),
    blob: async () => new Blob([await bytes()]),
    response: () => fetch(absolute),
    bytes,
    missing: () => new URL('no-such-module.wasm', absolute).pathname,
    notAUrl: () => 'http://[not a url/guest.wasm',
  };
  const out = {};
  for (const [form, make] of Object.entries(forms)) {
    try {
      const r = await wasmgrind(await make(), functionName, { memoryTrace: false });
      out[form] = { ok: true, events: r.events, status: r.status, workersKept: r.timings.workersKept };
    } catch (e) {
      out[form] = { ok: false, error: plainError(e) };
    }
  }
  return out;
}

/**
 * `calls` calls of `wasmgrind()` one after the other on this page (after `closeIdleWorkers()`
 * when `fresh`, so that the first one starts its own workers): each one's whole time on the
 * page, its `timings.functionMs` and how many kept workers it started with.
 */
async function calls(guestUrl, functionName, options, n, fresh) {
  const { wasmgrind, closeIdleWorkers } = await import('../../pkg/wasmgrind.js');
  if (fresh) await closeIdleWorkers();
  const binary = new URL(guestUrl, location.href).href;
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    try {
      const r = await wasmgrind(binary, functionName, options);
      out.push({ ok: true, wallMs: performance.now() - t, functionMs: r.timings.functionMs, workersKept: r.timings.workersKept, events: r.events });
    } catch (e) {
      out.push({ ok: false, error: plainError(e) });
    }
  }
  return out;
}

/** Ends the workers that this page's `wasmgrind()` calls kept. */
async function closeIdle() {
  const { closeIdleWorkers } = await import('../../pkg/wasmgrind.js');
  await closeIdleWorkers();
}

globalThis.wgTest = { preflight, run, runExample, runStreamed, runWasi, smoothness, idleGaps, inputs, calls, closeIdle };
globalThis.wgTestReady = true;
