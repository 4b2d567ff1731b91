// The runtime benchmark (`cargo xtask bench runtime`):
//
//   node tests/browser/bench.mjs [--quick] [--out DIR]
//
// Measures, in one run and side by side (medians of several runs unless said otherwise):
//
// 1. Tracing slowdown, in Node.js, on stress::sort_large_array_1s (two threads each fill
//    and sort 2,097,152 numbers 24 times; main merges; memory-heavy, no locks; more than
//    1 s untraced): the function's run time (`timings.functionMs`) untraced (`trace:
//    false`: patched, not instrumented), with locks-only tracing (`memoryTrace: false`),
//    and with full memory tracing (one attempt, in a process of its own, since it records
//    billions of accesses, stopped after 10 times the untraced run time: a run stopped
//    there shows that full tracing costs more than 10x). Untraced and locks-only runs alternate, so that a change of the
//    machine's load hits both alike. Targets: locks-only <= 1.1x, full <= 3x untraced.
//    For reference, the same three on the short stress::sort_large_array (65,536 numbers a
//    thread, about 9 million events with full tracing), whose full tracing completes, and
//    full tracing without the trace's formats (`exportTrace: false`, the findings only).
//    Beside them, sampled tracing (`sampling: true`, its chunks dropped by `onChunk`),
//    which records only a sample of the plain accesses and can miss races: not full
//    tracing, but what a long memory-heavy run can use (its runs alternate with the others).
// 2. Export cost per event, from the full-tracing runs of sort_large_array: the utility
//    module's own timings of the export (`timings.export`, summed over the chunks): RapidBin
//    = dense ids + RapidBin encoding, STD = dense ids + STD text, each divided by the number
//    of events. Targets:
//    RapidBin <= 20 ns/event, STD <= 3x RapidBin's. Beside them, the detectors' time on
//    the same runs against the untraced run's: a floor of full tracing.
// 3. Peak memory of the runtime process: the maximum resident set size
//    (`process.resourceUsage().maxRSS`) of a fresh Node.js process that makes one
//    `wasmgrind()` call, for the largest runs above.
// 4. 64-thread start, in Node.js and in Chromium: stress::concurrent_64 (64 threads that
//    each wait at an atomic barrier until all have started, then main joins them) with the
//    default options; its `timings.functionMs` is the time from the first spawn until all
//    64 threads have met and have been joined. Target <= 0.5 s. Also shown: the same with
//    `workers: 65` (every worker started while the module is prepared), how much
//    longer the whole call takes than one of basics::spawn_join (one thread), and the
//    engines' floor: 64 workers that run nothing but answer, started at once (in Chromium
//    from a worker, as the run's manager starts them). These calls start workers of their
//    own (no workers kept from an earlier call; in Chromium each runs in a new
//    wgrind_worker.js). Also: the second of two calls in a row of the page's or process's
//    `wasmgrind()`, default options and `workers: 65`, which starts with the workers the
//    first one kept.
// 5. Thread create+join latency, in Node.js and in Chromium: stress::spawn_join_2000
//    (2,000 sequential spawn/join cycles) and basics::spawn_join (one cycle; a module of
//    nearly the same size) alternately with locks-only tracing; the latency of one cycle is
//    the difference of their run times (`timings.functionMs`) divided by 1,999. Target <= 1 ms.
// 5b. Repeated calls, in Node.js: basics::spawn_join called 5 times in a fresh process;
//    the whole first call against the median of the later ones (which reuse the utility
//    module's compiled code and the workers the call before kept).
// 6. Main-thread smoothness, in Chromium: a fresh page calls `wasmgrind()` (pkg/wasmgrind.js)
//    five times in a row from its main thread, results included (medians of 3 fresh pages),
//    while a `setTimeout(0)` loop measures the longest time the main thread could not
//    respond. Target <= 16 ms. On a
//    small trace (locks::mutex_counter) and a large one (stress::alloc_free_stress), and
//    the same loop on the idle page (the noise floor) and while 9 workers spin (the floor of
//    a machine as busy as the large trace's run makes it).
//
// Prints each figure with its target and says which targets it misses and by how much;
// writes DIR/runtime.json and DIR/runtime.md (the "## Runtime" section of BENCHMARKS.md;
// default DIR: target/bench), with the machine (`nproc`, the CPU model of /proc/cpuinfo)
// and its load (the load averages when the benchmark started and ended).
//
// `--child FILE FUNCTION OPTIONS_JSON` (internal): one run in this process, printed as JSON
// with the peak memory of the process.

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { CHROMIUM, ROOT, checkBuildOutputs, openTestPage } from './browser.mjs';

const THIS_SCRIPT = fileURLToPath(import.meta.url);

const TARGETS = {
  locksOnly: 1.1,
  full: 3,
  rapidbinNsPerEvent: 20,
  stdVsRapidbin: 3,
  start64Ms: 500,
  latencyMs: 1,
  gapMs: 16,
};

/**
 * Full tracing of the >= 1 s workload records billions of accesses: it runs with a timeout
 * of this many times the untraced run time (at least FULL_1S_MIN_TIMEOUT_MS). A run that
 * does not finish in it shows that full tracing costs more than that factor.
 */
const FULL_1S_TIMEOUT_FACTOR = 10;
const FULL_1S_MIN_TIMEOUT_MS = 20000;
/** Full tracing of sort_large_array records about 9 million events. */
const FULL_MAX_EVENTS = 1 << 25;
const LOCKS_ONLY = { memoryTrace: false };
/** Sampled tracing, its chunks dropped as a caller that streams the trace away would. */
const SAMPLED = { sampling: true, onChunk: () => {} };
const BIG = { file: 'stress.wasm', fn: 'sort_large_array_1s' };
const SHORT_SORT = { file: 'stress.wasm', fn: 'sort_large_array' };
const C64 = { file: 'stress.wasm', fn: 'concurrent_64' };
const ONE_THREAD = { file: 'basics.wasm', fn: 'spawn_join' };
/** Calls of ONE_THREAD in one process: the first compiles the utility module's code. */
const CALLS_IN_A_PROCESS = 5;
/** The long and the short run of the latency measurement; modules of nearly one size. */
const LONG = { file: 'stress.wasm', fn: 'spawn_join_2000', cycles: 2000 };
const SHORT = { file: 'basics.wasm', fn: 'spawn_join', cycles: 1 };
/** Workers that the large trace's run keeps busy: its 8 threads and the manager. */
const BUSY_WORKERS = 9;
const SMOOTH = [
  { file: 'locks.wasm', fn: 'mutex_counter', what: 'small trace' },
  { file: 'stress.wasm', fn: 'alloc_free_stress', what: 'large trace' },
];

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, digits = 3) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : Number(x).toFixed(digits));

// --- the child mode: one run, with the process's peak memory ---------------------------------

async function child([file, fn, optionsJson]) {
  const { wasmgrind } = await import(pathToFileURL(join(ROOT, 'pkg', 'wasmgrind.js')).href);
  // `calls`: that many calls one after the other, printed as their whole-call times.
  const { calls, ...rest } = JSON.parse(optionsJson);
  if (calls) {
    const wallMs = [];
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      await wasmgrind(join(ROOT, 'target', 'guests', file), fn, rest);
      wallMs.push(performance.now() - t);
    }
    process.stdout.write(`${JSON.stringify({ ok: true, wallMs })}\n`);
    return;
  }
  const t0 = performance.now();
  let out;
  try {
    // `discardTrace`: the chunks go to an `onChunk` that drops them, as a caller that
    // streams the trace elsewhere would, so memory does not hold the whole trace.
    const { discardTrace, ...options } = rest;
    if (discardTrace) options.onChunk = () => {};
    const r = await wasmgrind(join(ROOT, 'target', 'guests', file), fn, options);
    out = { ok: true, wallMs: performance.now() - t0, events: r.events, timings: r.timings, memory: r.memory };
  } catch (e) {
    out = {
      ok: false,
      wallMs: performance.now() - t0,
      error: { kind: e.kind ?? e.name, message: String(e.message).split('\n')[0] },
      // A run that was stopped still tells how many events it recorded and analyzed.
      events: e.trace?.events ?? null,
      timings: e.trace?.timings ? { ...e.trace.timings } : null,
    };
  }
  // maxRSS is in KiB: the peak of the whole process, worker threads included.
  out.maxRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** Runs `fn` of `file` in a fresh Node.js process; resolves to what `child` printed. */
function runChild(file, fn, options, timeoutMs) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [THIS_SCRIPT, '--child', file, fn, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        const why = signal ? `killed (${signal}) after ${timeoutMs / 1000} s` : `exit code ${code}`;
        resolve({ ok: false, error: { kind: 'ChildFailed', message: `${why}: ${stderr.trim().split('\n').pop() ?? ''}` } });
      }
    });
  });
}

// --- platforms ------------------------------------------------------------------------------

/** `{ wallMs, runMs, events, timings }`; `runMs` is the runtime's `timings.functionMs`. */
function measurement(wallMs, result) {
  const timings = result?.timings ?? null;
  return {
    wallMs,
    runMs: typeof timings?.functionMs === 'number' ? timings.functionMs : null,
    events: result?.events ?? null,
    timings,
  };
}

async function nodePlatform() {
  const { wasmgrind, closeIdleWorkers } = await import(pathToFileURL(join(ROOT, 'pkg', 'wasmgrind.js')).href);
  const run = async (file, fn, options) => {
    const t0 = performance.now();
    const r = await wasmgrind(join(ROOT, 'target', 'guests', file), fn, options);
    const wall = performance.now() - t0;
    if (r.status !== 'ok') throw new Error(`${fn}: status ${r.status}`);
    return measurement(wall, r);
  };
  return {
    name: 'Node.js',
    run,
    /** A run that starts its own workers: none are kept from the calls before. */
    async coldRun(file, fn, options) {
      await closeIdleWorkers();
      return run(file, fn, options);
    },
    /** `n` calls one after the other, the first with workers of its own (see `calls` in driver.js). */
    async calls(file, fn, options, n) {
      await closeIdleWorkers();
      const out = [];
      for (let i = 0; i < n; i++) out.push(await run(file, fn, options));
      return out;
    },
    closeIdle: closeIdleWorkers,
    close: closeIdleWorkers,
  };
}

async function chromiumPlatform() {
  const { page, close } = await openTestPage();
  // "Chromium 156.0.8078.73 built on Debian ..." (the user agent hides the minor numbers).
  const versionLine = execFileSync(CHROMIUM, ['--version'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const version = versionLine.match(/\d+\.[\d.]+/)?.[0] ?? 'unknown version';
  return {
    name: 'Chromium',
    version: `Chromium ${version} (headless)`,
    page,
    async run(file, fn, options) {
      const r = await page.evaluate(
        ([url, f, o]) => globalThis.wgTest.run(url, f, o, 600000),
        [`/target/guests/${file}`, fn, options],
      );
      if (!r.ok) throw new Error(`${fn} failed in Chromium: ${r.error.kind}: ${r.error.message}`);
      // r.ms: the page's wall time from posting the run to wgrind_worker.js to its answer.
      return measurement(r.ms, r);
    },
    // `run` starts a wgrind_worker.js of its own every time.
    coldRun(file, fn, options) {
      return this.run(file, fn, options);
    },
    /** `n` calls of the page's `wasmgrind()`, the first with workers of its own. */
    async calls(file, fn, options, n) {
      const out = await page.evaluate(
        ([url, f, o, k]) => globalThis.wgTest.calls(url, f, o, k, true),
        [`/target/guests/${file}`, fn, options, n],
      );
      return out.map((r) => {
        if (!r.ok) throw new Error(`${fn} failed in Chromium: ${r.error.kind}: ${r.error.message}`);
        return { wallMs: r.wallMs, runMs: r.functionMs, events: r.events, timings: { workersKept: r.workersKept } };
      });
    },
    /** Ends the workers the page's `wasmgrind()` kept. */
    async closeIdle() {
      await page.evaluate(() => globalThis.wgTest.closeIdle());
    },
    close,
  };
}

// --- measurements ---------------------------------------------------------------------------

/** Untraced and locks-only run times of `workload`, alternating; medians. */
async function slowdown(node, workload, reps, fullReps) {
  const { file, fn } = workload;
  await node.run(file, fn, { trace: false });
  const untraced = [];
  const locks = [];
  const full = [];
  const sampled = [];
  for (let i = 0; i < reps; i++) {
    untraced.push(await node.run(file, fn, { trace: false }));
    locks.push(await node.run(file, fn, LOCKS_ONLY));
    sampled.push(await node.run(file, fn, SAMPLED));
  }
  const reportOnly = [];
  for (let i = 0; i < fullReps; i++) {
    full.push(await node.run(file, fn, { memoryTrace: true, maxEvents: FULL_MAX_EVENTS }));
    reportOnly.push(await node.run(file, fn, { memoryTrace: true, maxEvents: FULL_MAX_EVENTS, exportTrace: false }));
  }
  const u = median(untraced.map((m) => m.runMs));
  const l = median(locks.map((m) => m.runMs));
  const f = median(full.map((m) => m.runMs));
  const r = median(reportOnly.map((m) => m.runMs));
  const sm = median(sampled.map((m) => m.runMs));
  return {
    sampledMs: sm,
    sampled: sm / u,
    sampledEvents: median(sampled.map((m) => m.events)),
    workload: fn,
    untracedMs: u,
    locksOnlyMs: l,
    fullMs: f,
    reportOnlyMs: r,
    locksOnly: l / u,
    full: f === null ? null : f / u,
    reportOnly: r === null ? null : r / u,
    samples: { untraced: untraced.map((m) => m.runMs), locksOnly: locks.map((m) => m.runMs), full: full.map((m) => m.runMs) },
    fullRuns: full,
  };
}

/** Export ns/event from full-tracing runs (their `timings.export`). */
function exportCost(fullRuns) {
  const per = (pick) => median(fullRuns.map((m) => (m.timings?.export ? (pick(m.timings.export) / m.events) * 1e6 : null)));
  const runs = fullRuns.filter((m) => m.timings?.export);
  if (runs.length === 0) return null;
  return {
    events: median(runs.map((m) => m.events)),
    rapidbinNs: per((e) => e.denseMs + e.rapidbinMs),
    stdNs: per((e) => e.denseMs + e.stdMs),
    denseNs: per((e) => e.denseMs),
    metadataNs: per((e) => e.metadataMs),
    nativeNs: per((e) => e.nativeMs),
    exportMs: median(runs.map((m) => m.timings.exportMs)),
    analysisMs: median(runs.map((m) => m.timings.analysisMs)),
    collectMs: median(runs.map((m) => m.timings.collectMs)),
    finishMs: median(runs.map((m) => m.timings.finishMs)),
  };
}

/**
 * The 64-thread start on `platform`: in calls that start their own workers, and in the
 * call after one that ran the same program (which starts with the workers that one kept).
 */
async function start64(platform, reps) {
  await platform.run(ONE_THREAD.file, ONE_THREAD.fn, {});
  const dflt = [];
  const hinted = [];
  const one = [];
  const nextDflt = [];
  const nextHinted = [];
  for (let i = 0; i < reps; i++) {
    dflt.push(await platform.coldRun(C64.file, C64.fn, {}));
    one.push(await platform.coldRun(ONE_THREAD.file, ONE_THREAD.fn, {}));
    hinted.push(await platform.coldRun(C64.file, C64.fn, { workers: 65 }));
    nextDflt.push((await platform.calls(C64.file, C64.fn, {}, 2))[1]);
    nextHinted.push((await platform.calls(C64.file, C64.fn, { workers: 65 }, 2))[1]);
  }
  await platform.closeIdle();
  const oneWall = median(one.map((m) => m.wallMs));
  return {
    platform: platform.name,
    reps,
    functionMs: median(dflt.map((m) => m.runMs)),
    wallMs: median(dflt.map((m) => m.wallMs)),
    extraWallMs: median(dflt.map((m) => m.wallMs)) - oneWall,
    hintedFunctionMs: median(hinted.map((m) => m.runMs)),
    hintedWallMs: median(hinted.map((m) => m.wallMs)),
    hintedExtraWallMs: median(hinted.map((m) => m.wallMs)) - oneWall,
    oneThreadWallMs: oneWall,
    nextFunctionMs: median(nextDflt.map((m) => m.runMs)),
    nextWallMs: median(nextDflt.map((m) => m.wallMs)),
    nextKept: median(nextDflt.map((m) => m.timings?.workersKept ?? null)),
    nextHintedFunctionMs: median(nextHinted.map((m) => m.runMs)),
    nextHintedWallMs: median(nextHinted.map((m) => m.wallMs)),
    nextHintedKept: median(nextHinted.map((m) => m.timings?.workersKept ?? null)),
    samples: dflt.map((m) => m.runMs),
  };
}

/** How many empty workers the floor of the 64-thread start starts at once. */
const FLOOR_WORKERS = 64;

/**
 * The engine's own floor of the 64-thread start in Node.js: the time until 64
 * `worker_threads` workers whose script only answers have all answered (medians of
 * `reps`): no Wasmgrind code runs in them.
 */
async function nodeWorkerFloor(reps) {
  const { Worker } = await import('node:worker_threads');
  const once = async () => {
    const t0 = performance.now();
    const workers = [];
    await new Promise((resolve, reject) => {
      let ready = 0;
      for (let i = 0; i < FLOOR_WORKERS; i++) {
        const w = new Worker("require('node:worker_threads').parentPort.postMessage(0)", { eval: true });
        w.on('message', () => {
          if (++ready === FLOOR_WORKERS) resolve();
        });
        w.on('error', reject);
        workers.push(w);
      }
    });
    const ms = performance.now() - t0;
    await Promise.all(workers.map((w) => w.terminate()));
    return ms;
  };
  const samples = [];
  for (let i = 0; i < reps; i++) samples.push(await once());
  return { platform: 'Node.js', ms: median(samples), samples };
}

/**
 * The same floor in Chromium: a worker (as the run's manager is) starts 64 workers whose
 * script only answers, and reports when all have answered (medians of `reps`).
 */
async function chromiumWorkerFloor(page, reps) {
  const samples = await page.evaluate(
    async ([n, reps]) => {
      const inner = URL.createObjectURL(new Blob(['postMessage(0);'], { type: 'text/javascript' }));
      const outer = URL.createObjectURL(
        new Blob(
          [
            `onmessage = () => {
               const t0 = performance.now();
               let ready = 0;
               const ws = [];
               for (let i = 0; i < ${n}; i++) {
                 const w = new Worker('${inner}');
                 w.onmessage = () => {
                   if (++ready === ${n}) {
                     postMessage(performance.now() - t0);
                     for (const x of ws) x.terminate();
                   }
                 };
                 ws.push(w);
               }
             };`,
          ],
          { type: 'text/javascript' },
        ),
      );
      const out = [];
      for (let i = 0; i < reps; i++) {
        const w = new Worker(outer);
        out.push(
          await new Promise((resolve) => {
            w.onmessage = (e) => resolve(e.data);
            w.onerror = () => resolve(null);
            w.postMessage(0);
          }),
        );
        w.terminate();
      }
      return out;
    },
    [FLOOR_WORKERS, reps],
  );
  return { platform: 'Chromium', ms: median(samples), samples };
}

/** Create+join latency in ms per cycle on `platform`, by the difference method. */
async function latency(platform, reps) {
  const long = [];
  const short = [];
  // Warm-up (the first run of a process pays for compiling the runtime itself).
  await platform.run(SHORT.file, SHORT.fn, LOCKS_ONLY);
  for (let i = 0; i < reps; i++) {
    // Alternate, so that drift in the machine's speed hits both alike.
    long.push(await platform.run(LONG.file, LONG.fn, LOCKS_ONLY));
    short.push(await platform.run(SHORT.file, SHORT.fn, LOCKS_ONLY));
  }
  const useRun = [...long, ...short].every((m) => m.runMs !== null);
  const lv = long.map((m) => (useRun ? m.runMs : m.wallMs));
  const sv = short.map((m) => (useRun ? m.runMs : m.wallMs));
  // Pairwise differences, then the median: robust against one slow run.
  const perCycle = lv.map((x, i) => (x - sv[i]) / (LONG.cycles - SHORT.cycles));
  return {
    platform: platform.name,
    method: useRun ? "the runtime's run time (timings.functionMs)" : 'the wall time of the whole call',
    medianMs: median(perCycle),
    samples: perCycle,
    longMedianMs: median(lv),
    shortMedianMs: median(sv),
  };
}

/**
 * The page's longest main-thread gap over five `wasmgrind()` calls, per guest: the median
 * of `pages` fresh pages (one page's figure depends on what else the 2 cores did then).
 */
async function smoothness(chromium, pages) {
  const call = (page, file, fn, runs) =>
    page.evaluate(([u, f, n]) => globalThis.wgTest.smoothness(u, f, {}, n), [`/target/guests/${file}`, fn, runs]);
  // Each guest's five calls on a page of their own (a new browser), so that the first call
  // is a page's first, which fetches and compiles what the later ones find ready.
  const onFreshPage = async (file, fn, runs) => {
    const fresh = await openTestPage();
    try {
      return await call(fresh.page, file, fn, runs);
    } finally {
      await fresh.close();
    }
  };
  const idle = await call(chromium.page, SMOOTH[0].file, SMOOTH[0].fn, 0);
  const out = [{ what: 'idle page (no run; the noise floor)', fn: null, gapMs: idle.longestGapMs, longTasks: [], events: null }];
  for (const s of SMOOTH) {
    const all = [];
    for (let i = 0; i < pages; i++) {
      const r = await onFreshPage(s.file, s.fn, 5);
      if (!r.ok) throw new Error(`smoothness ${s.fn}: ${r.error.kind}: ${r.error.message}`);
      all.push(r);
    }
    // The page of the median gap stands for the guest (its long tasks, its accesses).
    const byGap = [...all].sort((a, b) => a.longestGapMs - b.longestGapMs);
    const r = byGap[Math.floor((byGap.length - 1) / 2)];
    out.push({
      what: s.what,
      fn: s.fn,
      gapMs: median(all.map((x) => x.longestGapMs)),
      pageGapsMs: all.map((x) => x.longestGapMs),
      longTasks: r.longTasks.map((d) => Math.round(d)),
      events: r.runs[0]?.events ?? null,
      stdChars: r.access?.stdChars ?? null,
      // The first access to `r.std` and `r.metadata` (decoding on the page's main thread).
      access: r.access ?? null,
      ms: r.ms,
    });
  }
  // The floor of a busy machine (last, so that its workers cannot slow the runs above): the
  // same loop while as many workers as the large trace's run keeps busy (its threads and
  // the manager) spin for 3 s, with no Wasmgrind code.
  const busy = (
    await chromium.page.evaluate(([ms, n]) => globalThis.wgTest.idleGaps(ms, n), [3000, BUSY_WORKERS])
  ).longestGapMs;
  out.push({
    what: `${BUSY_WORKERS} workers spinning for 3 s (no run; the floor of a busy machine)`,
    fn: null,
    gapMs: busy,
    longTasks: [],
    events: null,
  });
  return out;
}

// --- report ---------------------------------------------------------------------------------

/** "met", or "MISSED by ..." with the excess and the factor. */
function verdict(value, target, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return 'MISSED (no result)';
  if (value <= target) return 'met';
  const excess = unit === 'x' ? `${fmt(value - target, 2)}x` : `${fmt(value - target, unit === 'ms' ? 0 : 1)} ${unit}`;
  return `MISSED by ${excess} (${fmt(value / target, 1)} times the target)`;
}

/** The table rows: `[measurement, result, target, verdict]`. */
function rows(res) {
  const out = [];
  const big = res.slowdown;
  out.push([
    `${big.workload}, locks-only ÷ untraced, Node.js`,
    `${fmt(big.locksOnly, 2)}x`,
    `<= ${TARGETS.locksOnly}x`,
    verdict(big.locksOnly, TARGETS.locksOnly, 'x'),
  ]);
  const f = res.full1s;
  let fullResult;
  let fullVerdict;
  if (f.ok) {
    fullResult = `${fmt(f.ratio, 2)}x`;
    fullVerdict = verdict(f.ratio, TARGETS.full, 'x');
  } else if (f.skipped) {
    fullResult = 'not measured';
    fullVerdict = 'not measured (--quick)';
  } else if (f.error.kind === 'Timeout') {
    fullResult = `> ${fmt(f.lowerBound, 1)}x (stopped after ${fmt(f.timeoutMs / 1000, 0)} s)`;
    fullVerdict =
      `MISSED by more than ${fmt(f.lowerBound - TARGETS.full, 1)}x ` +
      `(more than ${fmt(f.lowerBound / TARGETS.full, 1)} times the target)`;
  } else {
    fullResult = `did not complete (${f.error.kind})`;
    fullVerdict = 'MISSED (no result)';
  }
  out.push([`${big.workload}, full tracing ÷ untraced, Node.js`, fullResult, `<= ${TARGETS.full}x`, fullVerdict]);
  out.push([
    `${big.workload}, sampled tracing (\`sampling: true\`: can miss races; not full tracing) ÷ untraced, Node.js`,
    `${fmt(big.sampled, 2)}x`,
    `<= ${TARGETS.full}x`,
    verdict(big.sampled, TARGETS.full, 'x'),
  ]);
  const s = res.shortSort;
  out.push([
    `(reference) ${s.workload}, locks-only ÷ untraced, Node.js`,
    `${fmt(s.locksOnly, 2)}x`,
    `<= ${TARGETS.locksOnly}x`,
    verdict(s.locksOnly, TARGETS.locksOnly, 'x'),
  ]);
  out.push([
    `(reference) ${s.workload}, full tracing ÷ untraced, Node.js`,
    `${fmt(s.full, 2)}x`,
    `<= ${TARGETS.full}x`,
    verdict(s.full, TARGETS.full, 'x'),
  ]);
  out.push([
    `(reference) ${s.workload}, sampled tracing (\`sampling: true\`) ÷ untraced, Node.js`,
    `${fmt(s.sampled, 2)}x`,
    `<= ${TARGETS.full}x`,
    verdict(s.sampled, TARGETS.full, 'x'),
  ]);
  out.push([
    `(reference) ${s.workload}, full tracing, report only (\`exportTrace: false\`) ÷ untraced, Node.js`,
    `${fmt(s.reportOnly, 2)}x`,
    `<= ${TARGETS.full}x`,
    verdict(s.reportOnly, TARGETS.full, 'x'),
  ]);
  const e = res.exportCost;
  out.push([
    'export to RapidBin, ns/event',
    e ? `${fmt(e.rapidbinNs, 1)} ns` : 'n/a',
    `<= ${TARGETS.rapidbinNsPerEvent} ns`,
    verdict(e?.rapidbinNs, TARGETS.rapidbinNsPerEvent, 'ns'),
  ]);
  const stdTarget = TARGETS.stdVsRapidbin * TARGETS.rapidbinNsPerEvent;
  out.push([
    'export to STD, ns/event',
    e ? `${fmt(e.stdNs, 1)} ns` : 'n/a',
    `<= ${stdTarget} ns (3 × 20)`,
    verdict(e?.stdNs, stdTarget, 'ns'),
  ]);
  for (const m of res.memory) {
    out.push([`peak memory (max RSS) of the process, ${m.what}`, m.maxRssBytes ? `${fmt(m.maxRssBytes / 1e6, 0)} MB` : 'n/a', '—', '']);
  }
  for (const t of res.start64) {
    out.push([
      `64 threads alive at once: start (concurrent_64 functionMs), ${t.platform}`,
      `${fmt(t.functionMs, 0)} ms`,
      `<= ${TARGETS.start64Ms} ms`,
      verdict(t.functionMs, TARGETS.start64Ms, 'ms'),
    ]);
  }
  // The same, told how many workers the run needs (`workers: 65`): they boot while the
  // module is prepared, so the whole call is not shorter (see the text below).
  for (const t of res.start64) {
    out.push([
      `64 threads alive at once: start with \`workers: 65\` (concurrent_64 functionMs; the whole call is not shorter), ${t.platform}`,
      `${fmt(t.hintedFunctionMs, 0)} ms`,
      `<= ${TARGETS.start64Ms} ms`,
      verdict(t.hintedFunctionMs, TARGETS.start64Ms, 'ms'),
    ]);
  }
  // The call after one that ran the same program starts with the workers that one kept.
  for (const t of res.start64) {
    out.push([
      `64 threads alive at once: start in the next call (after one that ran them; it found ${fmt(t.nextKept, 0)} kept workers), ${t.platform}`,
      `${fmt(t.nextFunctionMs, 0)} ms`,
      `<= ${TARGETS.start64Ms} ms`,
      verdict(t.nextFunctionMs, TARGETS.start64Ms, 'ms'),
    ]);
  }
  for (const t of res.start64) {
    out.push([
      `64 threads alive at once: start with \`workers: 65\` in the next call (it found ${fmt(t.nextHintedKept, 0)} kept workers; the whole call ${fmt(t.nextHintedWallMs, 0)} ms), ${t.platform}`,
      `${fmt(t.nextHintedFunctionMs, 0)} ms`,
      `<= ${TARGETS.start64Ms} ms`,
      verdict(t.nextHintedFunctionMs, TARGETS.start64Ms, 'ms'),
    ]);
  }
  for (const f of res.workerFloor ?? []) {
    out.push([
      `(floor) ${FLOOR_WORKERS} empty workers started at once answer after, ${f.platform}`,
      `${fmt(f.ms, 0)} ms`,
      '—',
      '',
    ]);
  }
  const e0 = res.exportCost;
  if (e0 && res.shortSort?.untracedMs) {
    const perEvent = (ms) => (ms / e0.events) * 1e6;
    out.push([
      `(floor) ${res.shortSort.workload}: the detectors' time alone ÷ the untraced run, Node.js`,
      `${fmt(e0.analysisMs / res.shortSort.untracedMs, 1)}x (${fmt(perEvent(e0.analysisMs), 1)} ns against ${fmt(perEvent(res.shortSort.untracedMs), 1)} ns an event)`,
      '—',
      '',
    ]);
  }
  if (res.repeatedCalls) {
    const c = res.repeatedCalls;
    out.push([
      `whole wasmgrind() call of basics::spawn_join, the first of a process ÷ the later ones (median of ${CALLS_IN_A_PROCESS - 1}), Node.js`,
      `${fmt(c.firstMs, 0)} ms ÷ ${fmt(c.laterMs, 0)} ms`,
      '—',
      '',
    ]);
  }
  for (const l of res.latency) {
    out.push([
      `thread create+join latency, ${l.platform}`,
      `${fmt(l.medianMs)} ms`,
      `<= ${TARGETS.latencyMs} ms`,
      verdict(l.medianMs, TARGETS.latencyMs, 'ms'),
    ]);
  }
  for (const g of res.smoothness.filter((x) => x.fn !== null)) {
    out.push([
      `longest main-thread gap, 5 × wasmgrind() on a fresh page, ${g.fn} (${g.what}), Chromium`,
      `${fmt(g.gapMs, 1)} ms`,
      `<= ${TARGETS.gapMs} ms`,
      verdict(g.gapMs, TARGETS.gapMs, 'ms'),
    ]);
  }
  for (const g of res.smoothness.filter((x) => x.fn === null)) {
    out.push([`(floor) longest main-thread gap, ${g.what}, Chromium`, `${fmt(g.gapMs, 1)} ms`, '—', '']);
  }
  return out;
}

function markdown(res) {
  const table = rows(res)
    .map((r) => `| ${r.join(' | ')} |`)
    .join('\n');
  const big = res.slowdown;
  const s = res.shortSort;
  const f = res.full1s;
  const e = res.exportCost;
  let full1s;
  if (f.skipped) full1s = 'Full tracing of it was not attempted (`--quick`).';
  else if (f.ok) {
    full1s =
      `Full tracing of it: ${fmt(f.runMs, 0)} ms for ${f.events} events (one run, in a process of its own, ` +
      'its chunks dropped by `onChunk` as a caller that streams the trace away would).';
  } else {
    full1s =
      `Full tracing of it did not complete (one attempt, in a process of its own, its chunks dropped by ` +
      '`onChunk` as a caller that streams the trace away would, with a timeout of ' +
      `${fmt(f.timeoutMs / 1000, 0)} s, ${FULL_1S_TIMEOUT_FACTOR} times the untraced run time): ` +
      `${f.error.kind}: ${f.error.message.replace(/\|/g, '\\|').replace(/:$/, '.')}`;
    if (f.events) {
      full1s +=
        ` By then it had recorded and analyzed ${f.events} events, ${fmt(f.events / (f.timeoutMs / 1000) / 1e6, 1)} million ` +
        'a second, the rate of the whole pipeline (recording, the detectors and the export).';
    }
  }
  const lat = res.latency
    .map(
      (l) =>
        `- ${l.platform}: ${l.samples.length} pairs; medians spawn_join_2000 ` +
        `${fmt(l.longMedianMs, 1)} ms, spawn_join ${fmt(l.shortMedianMs, 1)} ms (${l.method}).`,
    )
    .join('\n');
  const st = res.start64
    .map(
      (t) =>
        `- ${t.platform} (${t.reps} run${t.reps === 1 ? '' : 's'} each): default options ${fmt(t.functionMs, 0)} ms ` +
        `(the whole call ${fmt(t.wallMs, 0)} ms, ${fmt(t.extraWallMs, 0)} ms more than one of basics::spawn_join); ` +
        `with \`workers: 65\` ${fmt(t.hintedFunctionMs, 0)} ms (the whole call ${fmt(t.hintedWallMs, 0)} ms, ` +
        `${fmt(t.hintedExtraWallMs, 0)} ms more). In the next call of the same program: default options ` +
        `${fmt(t.nextFunctionMs, 0)} ms (the whole call ${fmt(t.nextWallMs, 0)} ms, ${fmt(t.nextKept, 0)} workers kept), ` +
        `with \`workers: 65\` ${fmt(t.nextHintedFunctionMs, 0)} ms (the whole call ${fmt(t.nextHintedWallMs, 0)} ms, ` +
        `${fmt(t.nextHintedKept, 0)} workers kept).`,
    )
    .join('\n');
  const mem = res.memory
    .map(
      (m) =>
        `- ${m.what}: ${m.maxRssBytes ? `${fmt(m.maxRssBytes / 1e6, 0)} MB` : 'n/a'}` +
        (m.memory ? ` (of which WebAssembly memories: target ${fmt(m.memory.target / 1e6, 0)} MB, utility ${fmt(m.memory.utility / 1e6, 0)} MB)` : '') +
        (m.ok === false ? ` — the run failed: ${m.error.kind}` : '') +
        '.',
    )
    .join('\n');
  const gaps = res.smoothness
    .map(
      (g) =>
        `- ${g.fn ? `${g.fn} (${g.what}, ${g.events} events, STD ${fmt(g.stdChars / 1e6, 1)} M characters)` : g.what}: ` +
        `longest gap ${fmt(g.gapMs, 1)} ms` +
        (g.pageGapsMs && g.pageGapsMs.length > 1
          ? ` (the median of ${g.pageGapsMs.length} fresh pages: ${g.pageGapsMs.map((x) => fmt(x, 1)).join(', ')} ms)`
          : '') +
        (g.longTasks.length > 0 ? `; long tasks (>= 50 ms): ${g.longTasks.join(', ')} ms` : '') +
        (g.access
          ? `; afterwards, the first access to \`std\` took ${fmt(g.access.stdMs, 1)} ms and to \`metadata\` ` +
            `${fmt(g.access.metadataMs, 1)} ms (${g.access.variables} variables)`
          : '') +
        '.',
    )
    .join('\n');
  const floor = (res.workerFloor ?? []).map((f) => `${fmt(f.ms, 0)} ms in ${f.platform}`).join(' and ');
  const floorText =
    floor === ''
      ? ''
      : `The engines' own floor, measured in the same run (${FLOOR_WORKERS} workers that run nothing ` +
        `but answer, started at once; medians): all of them answered after ${floor}. A worker of the ` +
        'runtime does more: it loads its scripts, instantiates the utility module and the target, ' +
        'and gets both shared memories (in Chromium most of them then collect garbage for ' +
        '"external memory pressure").';
  const fullFloor =
    e && s.untracedMs
      ? `In the full-tracing runs of \`${s.workload}\` the detectors alone took ${fmt(e.analysisMs, 0)} ms ` +
        `(${fmt((e.analysisMs / e.events) * 1e6, 1)} ns an event) and the export ${fmt(e.exportMs, 0)} ms ` +
        `(${fmt((e.exportMs / e.events) * 1e6, 1)} ns an event), against ${fmt(s.untracedMs, 1)} ms for the whole ` +
        `untraced run (${fmt((s.untracedMs / e.events) * 1e6, 1)} ns an event): the detectors' time alone is ` +
        `${fmt(e.analysisMs / s.untracedMs, 1)} times the untraced run.`
      : '';
  return `## Runtime

Measured by \`cargo xtask bench runtime\` on ${res.date}. Machine: ${res.machine.cores} cores (\`nproc\`),
${res.machine.cpu} (/proc/cpuinfo); load average (1, 5, 15 min) ${res.load.start} when it started and
${res.load.end} when it ended (the machine is shared: other work on it makes every figure
noisy). Node.js ${res.node}, ${res.chromium}.

| measurement | result | target | |
|---|---|---|---|
${table}

**Tracing slowdown.** \`stress::${big.workload}\`: two threads each fill and sort 2,097,152
pseudo-random numbers 24 times, main merges and checks; memory-heavy, no locks. The run
time is the runtime's \`timings.functionMs\`; untraced (\`trace: false\`: patched, not
instrumented) and locks-only (\`memoryTrace: false\`) runs alternate. Medians of
${big.samples.untraced.length} runs: untraced ${fmt(big.untracedMs, 0)} ms, locks-only ${fmt(big.locksOnlyMs, 0)} ms,
sampled tracing (\`sampling: true\`, alternating with them) ${fmt(big.sampledMs, 0)} ms for ${fmt(big.sampledEvents, 0)} events.
${full1s}
For reference, \`stress::${s.workload}\` (65,536 numbers a thread; too short to compare
reliably): untraced ${fmt(s.untracedMs, 1)} ms, locks-only ${fmt(s.locksOnlyMs, 1)} ms, full tracing
${fmt(s.fullMs, 1)} ms for ${e ? e.events : 'n/a'} events, and full tracing without the trace's formats
(\`exportTrace: false\`, the CLI's \`--report-only\`: the findings only) ${fmt(s.reportOnlyMs, 1)} ms
(medians of ${s.samples.untraced.length}, ${s.samples.locksOnly.length}, ${s.samples.full.length} and ${s.samples.full.length} runs);
sampled tracing ${fmt(s.sampledMs, 1)} ms for ${fmt(s.sampledEvents, 0)} events.

**Sampled tracing** (\`sampling: true\`, the CLI's \`--sample\`) is not full tracing: each
loop and function body records its first 8 executions in a thread and then fewer and
fewer, down to one in 1000, while every synchronization is recorded. Every race it reports
is real, but it misses a race when one of its two accesses was not recorded, which is
likely in code that runs often (see "Sampling" in the book's "Finding races and
deadlocks"). It is off by default, and the full-tracing rows above are without it.

**Export.** From the full-tracing runs of \`${s.workload}\` (${e ? e.events : 'n/a'} events), the
utility module's own timings (\`timings.export\`): dense ids ${fmt(e?.denseNs, 1)} ns/event (shared
by RapidBin, STD and the metadata), RapidBin ${fmt(e?.rapidbinNs, 1)} ns/event and STD
${fmt(e?.stdNs, 1)} ns/event (each with the dense ids; the copies of the chunks out of the utility module are not included),
metadata ${fmt(e?.metadataNs, 1)} ns/event, Wasmgrind's own format ${fmt(e?.nativeNs, 1)} ns/event.
Over a whole run the utility module spent (medians) ${fmt(e?.exportMs, 0)} ms exporting the trace
(\`timings.exportMs\`), ${fmt(e?.collectMs, 0)} ms moving the threads' events into chunks
(\`timings.collectMs\`) and ${fmt(e?.analysisMs, 0)} ms in the detectors (\`timings.analysisMs\`), most of
it chunk by chunk while the program ran; the end of the run (\`timings.finishMs\`) took
${fmt(e?.finishMs, 0)} ms.

**Why full tracing stays far above 3x.** Every recorded access is analyzed: the race
detector checks it against the shadow state of its bytes, and the exporter gives it its
dense ids and writes it in three formats. ${fullFloor}
With a trace this fast the detectors run on a worker of their own, beside the manager's
drains and export (the analysis worker), so their time and the export's overlap; but on a
machine with few cores neither can be hidden behind the program: the program's own
threads, their recording, the manager and the analysis worker share the cores, and the
recording threads wait when the manager falls behind (so that memory stays bounded). A
full-tracing run is therefore at least as slow as the CPU time of the analysis and the
export of its accesses, spread over the cores the program leaves, whatever the recording
costs. Only recording fewer accesses goes below that: sampling (above), an option that is
off by default and says what it can miss, so that the default reports stay exact.

**Peak memory** (the maximum resident set size of a fresh Node.js process that makes one
\`wasmgrind()\` call, worker threads included):
${mem}

**64 threads alive at once.** \`stress::concurrent_64\`: 64 threads each wait at an atomic
barrier until all 64 have started, then main joins them; \`timings.functionMs\` is the time
from the first spawn until all have met and been joined (medians).
${st}

A thread runs on a worker of its own, so 64 threads alive at once need 64 workers, and
starting a worker costs the engine tens of milliseconds of CPU time, against well under a
millisecond to start a thread on a worker that is ready. ${floorText} The runtime starts the workers a burst of threads
needs all at once, and the first ones while the module is prepared (all of them with
\`workers\`), but on ${res.machine.cores} cores the 64 starts still take the CPU time they take: with
\`workers: 65\` that time moves before the function runs, and the whole call is about as
long. What a call can avoid is booting workers that an earlier call of the same thread
booted: a call that ends cleanly keeps its manager and its idle workers for the next one
(\`closeIdleWorkers()\` ends them), so the next call of a program that asks for its
workers (\`workers: 65\`) finds them all and starts its threads within the target, the
whole call included; so does the next call with the default options when it comes within
2 s (idle workers beyond 4 linger that long, in a run and after it, before they close to
give their memory back; the benchmark's calls follow each other at once). Each worker loads one script (\`worker.js\` with its imports inlined by \`cargo xtask
dist\`; \`worker.cjs\`, the same code as CommonJS, in Node.js) and, in Node.js, starts with a
larger young generation, which took a worker's start from about 34 ms of CPU time to 23 in
Node.js; the rest of the gap to the floor is the utility instance (about 4 ms of CPU time
a worker in Node.js, mostly V8 compiling its JS-to-WebAssembly wrappers) and, in
Chromium, a garbage collection in every worker when it receives the shared memories.

**Create+join latency.** \`stress::spawn_join_2000\` (2,000 sequential spawn/join cycles)
and \`basics::spawn_join\` (one cycle, a module of nearly the same size) run alternately with
locks-only tracing; the latency of one cycle is the difference of their run times divided
by 1,999. The median of the pairwise differences is reported.
${lat}

**Main-thread smoothness** (Chromium). A fresh page (a new browser for each guest) calls
\`wasmgrind()\` five times in a row from its main thread, results included (the median of
several such pages), while a
\`setTimeout(0)\` loop measures the longest time the main thread could not respond. The
first call is the page's first: its run's manager fetches and compiles the utility module
(not the page's thread, where reading and compiling its 3 MB took 15 to 25 ms) and sends it
to the page for the later calls:
${gaps}

The page reads each result's events, findings and the trace's bytes. All of the trace
(RapidBin, STD text, Wasmgrind's own format, the metadata as JSON) comes as transferred
buffers, so the page neither copies nor parses it; the STD string and the metadata object
(an entry per variable: millions for a large trace) are made from the bytes on the first
access to \`result.std\` and \`result.metadata\`, on the thread that asks, which costs the
times given above. The page's own thread has to share ${res.machine.cores} cores with the run's threads and
its manager, all busy: the floor above, workers that only spin and run no Wasmgrind code,
shows how long the page then waits for a core by itself.
`;
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args.slice(1));
  let quick = false;
  let outDir = join(ROOT, 'target', 'bench');
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--quick') quick = true;
    else if (args[i] === '--out') outDir = args[++i];
    else if (args[i] === '-h' || args[i] === '--help') {
      console.log('node tests/browser/bench.mjs [--quick] [--out DIR]');
      return;
    } else {
      throw new Error(`unknown argument ${args[i]}`);
    }
  }
  // The whole benchmark can never hang.
  const watchdog = setTimeout(() => {
    console.error('bench: watchdog: the benchmark took longer than 60 minutes and was stopped');
    process.exit(2);
  }, 60 * 60 * 1000);
  watchdog.unref();

  const REPS = quick
    ? { slow: 2, sortShort: 3, full: 1, start64: 1, latency: 3, pages: 1 }
    : { slow: 5, sortShort: 7, full: 3, start64: 5, latency: 9, pages: 3 };
  checkBuildOutputs(['basics.wasm', 'stress.wasm', 'locks.wasm']);
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown CPU';
  const cores = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const load = () => loadavg().map((x) => x.toFixed(2)).join(', ');
  const res = {
    date: new Date().toISOString().slice(0, 10),
    machine: { cores, cpu },
    load: { start: load(), end: null },
    node: process.versions.node,
    chromium: 'Chromium',
    targets: TARGETS,
  };
  const node = await nodePlatform();

  console.log(`bench: Node.js tracing slowdown on stress::${BIG.fn} (untraced, locks-only) ...`);
  res.slowdown = await slowdown(node, BIG, REPS.slow, 0);
  console.log(
    `  untraced ${fmt(res.slowdown.untracedMs, 0)} ms, locks-only ${fmt(res.slowdown.locksOnlyMs, 0)} ms ` +
      `(${fmt(res.slowdown.locksOnly, 2)}x)`,
  );
  if (quick) {
    res.full1s = { ok: false, skipped: true, error: { kind: 'NotMeasured', message: '--quick' } };
  } else {
    const timeoutMs = Math.max(FULL_1S_MIN_TIMEOUT_MS, FULL_1S_TIMEOUT_FACTOR * res.slowdown.untracedMs);
    console.log(
      `bench: Node.js full tracing of stress::${BIG.fn} (one attempt, a process of its own, ` +
        `timeout ${fmt(timeoutMs / 1000, 0)} s) ...`,
    );
    const r = await runChild(BIG.file, BIG.fn, { timeout: timeoutMs, discardTrace: true }, timeoutMs + 300000);
    res.full1s = {
      ...r,
      timeoutMs,
      lowerBound: timeoutMs / res.slowdown.untracedMs,
      runMs: r.timings?.functionMs ?? null,
      ratio: r.ok ? r.timings.functionMs / res.slowdown.untracedMs : null,
    };
    console.log(r.ok ? `  ${fmt(r.timings.functionMs, 0)} ms, ${r.events} events` : `  did not complete: ${r.error.kind}: ${r.error.message}`);
  }

  console.log(`bench: Node.js tracing slowdown and export on stress::${SHORT_SORT.fn} ...`);
  res.shortSort = await slowdown(node, SHORT_SORT, REPS.sortShort, REPS.full);
  res.exportCost = exportCost(res.shortSort.fullRuns);
  delete res.shortSort.fullRuns;
  console.log(
    `  untraced ${fmt(res.shortSort.untracedMs, 1)} ms, locks-only ${fmt(res.shortSort.locksOnlyMs, 1)} ms, ` +
      `full ${fmt(res.shortSort.fullMs, 1)} ms, report only ${fmt(res.shortSort.reportOnlyMs, 1)} ms; export RapidBin ${fmt(res.exportCost?.rapidbinNs, 1)} ns/event, ` +
      `STD ${fmt(res.exportCost?.stdNs, 1)} ns/event`,
  );

  console.log(`bench: Node.js, ${CALLS_IN_A_PROCESS} calls of basics::spawn_join in a fresh process ...`);
  const calls = await runChild(ONE_THREAD.file, ONE_THREAD.fn, { calls: CALLS_IN_A_PROCESS }, 300000);
  res.repeatedCalls = calls.ok
    ? { firstMs: calls.wallMs[0], laterMs: median(calls.wallMs.slice(1)) }
    : { firstMs: null, laterMs: null, error: calls.error };
  console.log(`  first ${fmt(res.repeatedCalls.firstMs, 0)} ms, later (median) ${fmt(res.repeatedCalls.laterMs, 0)} ms`);

  console.log('bench: peak memory (fresh processes) ...');
  res.memory = [];
  const memoryRuns = [
    { what: `full tracing of ${SHORT_SORT.fn}`, ...SHORT_SORT, options: { maxEvents: FULL_MAX_EVENTS } },
    { what: `locks-only tracing of ${BIG.fn}`, ...BIG, options: LOCKS_ONLY },
    { what: `${C64.fn}, default options`, ...C64, options: {} },
  ];
  for (const m of memoryRuns) {
    const r = await runChild(m.file, m.fn, m.options, 600000);
    res.memory.push({ what: m.what, ok: r.ok, error: r.error, maxRssBytes: r.maxRssBytes ?? null, memory: r.memory ?? null });
  }
  if (res.full1s.maxRssBytes) {
    res.memory.push({
      what: `full tracing of ${BIG.fn} (${res.full1s.ok ? 'completed' : 'did not complete'})`,
      ok: res.full1s.ok,
      error: res.full1s.error,
      maxRssBytes: res.full1s.maxRssBytes,
      memory: res.full1s.memory ?? null,
    });
  }
  for (const m of res.memory) console.log(`  ${m.what}: ${fmt(m.maxRssBytes / 1e6, 0)} MB`);

  res.start64 = [];
  res.latency = [];
  res.workerFloor = [];
  console.log('bench: Node.js 64-thread start ...');
  res.start64.push(await start64(node, REPS.start64));
  console.log(`  ${fmt(res.start64[0].functionMs, 0)} ms (workers: 65: ${fmt(res.start64[0].hintedFunctionMs, 0)} ms)`);
  res.workerFloor.push(await nodeWorkerFloor(REPS.start64));
  console.log(`  floor: ${FLOOR_WORKERS} empty workers answer after ${fmt(res.workerFloor[0].ms, 0)} ms`);
  console.log('bench: Node.js create+join latency ...');
  res.latency.push(await latency(node, REPS.latency));
  console.log(`  ${fmt(res.latency[0].medianMs)} ms per create+join`);

  const chromium = await chromiumPlatform();
  try {
    res.chromium = chromium.version;
    console.log('bench: Chromium 64-thread start ...');
    res.start64.push(await start64(chromium, REPS.start64));
    console.log(`  ${fmt(res.start64[1].functionMs, 0)} ms (workers: 65: ${fmt(res.start64[1].hintedFunctionMs, 0)} ms)`);
    res.workerFloor.push(await chromiumWorkerFloor(chromium.page, REPS.start64));
    console.log(`  floor: ${FLOOR_WORKERS} empty workers answer after ${fmt(res.workerFloor[1].ms, 0)} ms`);
    console.log('bench: Chromium create+join latency ...');
    res.latency.push(await latency(chromium, REPS.latency));
    console.log(`  ${fmt(res.latency[1].medianMs)} ms per create+join`);
    console.log('bench: Chromium main-thread smoothness ...');
    res.smoothness = await smoothness(chromium, REPS.pages);
    for (const g of res.smoothness) console.log(`  ${g.fn ?? g.what}: longest gap ${fmt(g.gapMs, 1)} ms`);
  } finally {
    await chromium.close();
  }
  res.load.end = load();

  console.log('');
  const table = rows(res);
  for (const [what, result, target, ok] of table) {
    if (target === '—') console.log(`${what}: ${result}`);
    else console.log(`${what}: ${result} (target ${target}: ${ok})`);
  }
  const missed = table.filter((r) => r[3].startsWith('MISSED'));
  console.log(
    missed.length === 0
      ? '\nbench: every target is met'
      : `\nbench: ${missed.length} target(s) missed:\n${missed.map((r) => `  ${r[0]}: ${r[3]}`).join('\n')}`,
  );
  console.log(`load average at the start ${res.load.start}, at the end ${res.load.end} (${cores} cores)`);

  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'runtime.json'), `${JSON.stringify(res, null, 2)}\n`);
  await writeFile(join(outDir, 'runtime.md'), markdown(res));
  console.log(`\nbench: wrote ${join(outDir, 'runtime.json')} and runtime.md`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench: ${e.stack || e.message}`);
    process.exit(1);
  },
);
