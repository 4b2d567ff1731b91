// Wasmgrind's end-to-end tests in headless Chromium.
//
//   node tests/browser/run.mjs [--only NAME[,NAME...]] [--verbose] [--preflight]
//
// Serves the repository from 127.0.0.1 with COOP/COEP, opens the book's browser example,
// book/examples/browser/index.html, in Chromium (playwright-core, /usr/bin/chromium), with
// the tests' driver (driver.js) added to it, and runs guest scenarios from the page's main
// thread through the example's `runModule`, which calls `wasmgrind()` of pkg/ and shows the
// outcome on the page: the required ones (nested, hierarchy, mutex counter, trap, real
// deadlock) first, then every other scenario of guests/manifest.json but the few long ones
// left to the Node.js tests. For each it checks the outcome that the manifest expects, and
// that the page shows it (the soak runs of tests/soak_only.mjs are left to `cargo xtask soak`):
//
// - ok: the run resolves, its trace has the manifest's fork and join counts, locks and
//   lock acquisitions, and every lock event pairs up (see trace_checks.mjs);
// - trap / panic: the run rejects with an error that names the failing thread and the
//   trap or the panic message, with the manifest's panic code;
// - deadlock: the run rejects with the runtime's DeadlockError (not a timeout), which
//   names the threads of the cycle and the locks they wait for.
//
// For every outcome, the findings of the detectors (data races, potential deadlocks, the
// deadlock) must be the manifest's (tests/findings.mjs).
//
// Then PROTOCOL scenarios run once more by the messages of pkg/wgrind_worker.js itself,
// posted from the page to a worker it starts, without `wasmgrind()`; SAMPLED scenarios
// run once more with `sampling: true` (same findings, marked sampled); and the example's
// form runs its default module and function (a data race) when its button is clicked,
// and must show the race's report.
//
// Then `wasmgrind()` gets one module in each form a page has (a path, a URL string, a URL,
// a Blob, a Response, bytes): each must run, and a missing module or a malformed URL must
// be a UsageError that names it.
//
// Then WASI_RUNS run, through the example's `runModule` as well, guests-wasi/runtime-checks,
// a program built with plain std on stable for wasm32-wasip1-threads, unchanged: its output, args and env, std threads, a trap in a
// child thread and proc_exit from a child thread (tests/node/wasi.test.mjs has them all).
// Then every scenario of the manifest's `wasi_guests` (std programs and rayon, built on
// stable), named `<guest>::<scenario>`: output, exit code, outcome and findings.
//
// Then STREAMED scenarios run once more through `wasmgrind()` with `onChunk` in small
// chunks: the chunks must arrive in order, the result must not hold the trace again, and
// the chunks, assembled with the final headers, must be a whole trace that passes the same
// checks, with the manifest's findings.
//
// Prints one line per scenario and `N passed, N failed`; exits 1 on any failure. A
// watchdog ends the whole run (exit 2) if it takes longer than WASMGRIND_BROWSER_WATCHDOG
// seconds (default 300), so the test can never hang.
//
// `--only` takes scenario names, `wasi:<run>`, `<wasi guest>::<scenario>`, `form` (the
// check of the example's form) and `inputs` (the forms of the module that `wasmgrind()`
// takes). `--preflight` only checks the page itself (isolation, shared memory, content types).
//
// Needs `cargo xtask guests` and `cargo xtask dist` first, and `npm ci` here;
// `cargo xtask test` does all of it.

import { assertPreflight, checkBuildOutputs, loadManifest, openTestPage, wasiGuestPath } from './browser.mjs';
import { checkOk } from './trace_checks.mjs';
import { findingProblems, wasiOutcomeProblems } from '../findings.mjs';
import { SOAK_ONLY } from '../soak_only.mjs';

/** The scenarios that must run in Chromium; they run first. */
const REQUIRED = [
  'nested_threads',
  'thread_hierarchy',
  'mutex_counter',
  'child_trap',
  'deadlock',
  'unsynchronized_counter',
  'lock_order_inversion',
];

/**
 * Manifest scenarios this test leaves to the Node.js tests, which run every scenario:
 * they are long, and add nothing browser-specific to the ones above.
 */
const LEFT_TO_NODE = {
  spawn_join_2000: '2,000 threads one after the other; spawn_join_200 covers reuse here',
  alloc_free_stress: 'allocation stress with full memory tracing records millions of events',
  sort_large_array: 'the benchmark workload (cargo xtask bench runtime)',
  sort_large_array_1s: 'the >= 1 s benchmark workload (cargo xtask bench runtime)',
};

/**
 * The scenarios to run: the required ones, then every other one of the manifest but those
 * left to Node.js and the soak runs, which only `cargo xtask soak` runs (SOAK_ONLY, see
 * tests/soak_only.mjs).
 */
function scenarioNames(manifest) {
  const all = Object.values(manifest.guests).flatMap((g) => Object.keys(g.scenarios));
  const skipped = (n) => n in LEFT_TO_NODE || n in SOAK_ONLY;
  return [...REQUIRED, ...all.filter((n) => !REQUIRED.includes(n) && !skipped(n))];
}

/**
 * Runs of runtime_checks.wasm (guests-wasi/runtime-checks), named `wasi:<scenario>` for
 * `--only`: its arguments, options, and what is wrong with the outcome `r` (of
 * `wgTest.runWasi`).
 */
const WASI_RUNS = {
  'wasi:hello': {
    args: ['hello', 'one', 'two words'],
    options: { env: { WASMGRIND_GREETING: 'from Chromium' } },
    check(r) {
      if (!r.ok) return [`expected success, got ${r.error.kind}: ${r.error.message}`];
      const wrong = [];
      const stdout = 'hello from stdout\nargs: one two words\nWASMGRIND_GREETING=from Chromium\n0 1 2 done\n';
      if (r.abi !== 'wasi') wrong.push(`abi ${r.abi}, expected wasi`);
      if (r.exitCode !== 0) wrong.push(`exit code ${r.exitCode}, expected 0`);
      if (r.stdout !== stdout) wrong.push(`stdout ${JSON.stringify(r.stdout)}, expected ${JSON.stringify(stdout)}`);
      if (r.stderr !== 'hello from stderr\n') wrong.push(`stderr ${JSON.stringify(r.stderr)}`);
      if (r.output.stdout !== r.stdout || r.output.stderr !== r.stderr) {
        wrong.push(`onOutput received ${JSON.stringify(r.output)}, the result has other text`);
      }
      // The example page shows both streams as they were written.
      const shown = r.shownOutput;
      if (shown.length !== stdout.length + r.stderr.length || !shown.includes('hello from stderr\n')) {
        wrong.push(`the example page shows ${JSON.stringify(shown)}, not the program's stdout and stderr`);
      }
      return wrong;
    },
  },
  'wasi:spawn_join': {
    args: ['spawn_join'],
    options: {},
    check(r) {
      if (!r.ok) return [`expected success, got ${r.error.kind}: ${r.error.message}`];
      const wrong = [];
      const lines = r.stdout.trimEnd().split('\n');
      const threads = lines.slice(0, -1).sort().join();
      if (lines.at(-1) !== 'sum: 100') wrong.push(`the last line is ${JSON.stringify(lines.at(-1))}, expected "sum: 100"`);
      if (threads !== [1, 2, 3, 4].map((i) => `thread ${i} running`).join()) wrong.push(`stdout ${JSON.stringify(r.stdout)}`);
      if (r.forks !== 4) wrong.push(`${r.forks} forks, expected 4`);
      if (r.forkJoinConsistency) wrong.push(`fork/join consistency: ${r.forkJoinConsistency}`);
      if (r.exitCode !== 0) wrong.push(`exit code ${r.exitCode}, expected 0`);
      return wrong;
    },
  },
  'wasi:child_trap': {
    args: ['child_trap'],
    options: {},
    check(r) {
      if (r.ok) return ['expected a trap, the run succeeded'];
      const e = r.error;
      const wrong = [];
      if (e.kind !== 'Trap') wrong.push(`expected a Trap error, got ${e.kind}: ${e.message}`);
      if (!(e.thread >= 1)) wrong.push(`error.thread is ${e.thread}, expected a child thread`);
      if (!/unreachable/i.test(e.message)) wrong.push(`the error does not describe the trap: ${e.message}`);
      if (e.stderr !== 'child: about to trap\n') wrong.push(`error.stderr ${JSON.stringify(e.stderr)}`);
      if (e.exitCode !== null) wrong.push(`error.exitCode ${e.exitCode}, expected null`);
      return wrong;
    },
  },
  'wasi:child_panic': {
    args: ['child_panic'],
    options: {},
    check(r) {
      if (r.ok) return ['expected a panic, the run succeeded'];
      const e = r.error;
      const wrong = [];
      if (e.kind !== 'Trap' || e.rustPanic !== true) wrong.push(`expected a Trap with rustPanic, got ${e.kind}: ${e.message}`);
      if (!String(e.stderr).includes('child thread gives up: the list is empty')) {
        wrong.push(`the panic message is not on stderr: ${JSON.stringify(e.stderr)}`);
      }
      return wrong;
    },
  },
  'wasi:child_exit': {
    args: ['child_exit'],
    options: {},
    check(r) {
      if (!r.ok) return [`expected an exit, got ${r.error.kind}: ${r.error.message}`];
      const wrong = [];
      if (r.exitCode !== 3 || r.status !== 'exit') wrong.push(`exit code ${r.exitCode}, status ${r.status}; expected 3, "exit"`);
      if (!(r.exitThread >= 1)) wrong.push(`exitThread ${r.exitThread}, expected a child thread`);
      if (r.stdout !== 'child: exiting with 3\n') wrong.push(`stdout ${JSON.stringify(r.stdout)}`);
      return wrong;
    },
  },
};

/** Scenarios that also run streamed (`onChunk`), and the chunk size they use. */
const STREAMED = ['mutex_counter', 'unsynchronized_counter'];
const STREAM_CHUNK_EVENTS = 200;

/** What is wrong with the chunks of a streamed run `r` (beyond what `judge` checks). */
function streamProblems(r) {
  if (!r.ok) return [];
  const wrong = [];
  if (r.streamed !== true) wrong.push('the result does not say it was streamed');
  if (r.resultBytes) wrong.push('a streamed result holds the trace bytes again');
  if (!r.chunksInOrder) wrong.push('the chunks did not arrive in order');
  if (r.chunks !== r.resultChunks) wrong.push(`${r.chunks} chunks arrived, the result counts ${r.resultChunks}`);
  if (r.chunks < 2) wrong.push(`only ${r.chunks} chunk(s) with ${STREAM_CHUNK_EVENTS} events per chunk`);
  if (r.chunkEvents !== r.events) wrong.push(`the chunks hold ${r.chunkEvents} events, the result counts ${r.events}`);
  const exported = r.metadataCounts.events;
  if (r.rapidbinHeaderEvents !== exported || r.rapidbinBytes !== 18 + 8 * exported) {
    wrong.push(`RapidBin: header ${r.rapidbinHeaderEvents} events, ${r.rapidbinBytes} bytes; metadata ${exported} events`);
  }
  if (r.nativeHeaderEvents !== r.events || r.nativeBytes !== 24 + 20 * r.events) {
    wrong.push(`native: header ${r.nativeHeaderEvents} events, ${r.nativeBytes} bytes; ${r.events} events recorded`);
  }
  return wrong;
}

/** Scenarios that also run by wgrind_worker.js's messages, without `wasmgrind()`. */
const PROTOCOL = ['mutex_counter', 'child_trap'];

/**
 * Scenarios that also run with `sampling: true` (the sampled module, with its branch
 * hints, in Chromium): a race in code that runs a few times per thread, which sampling keeps,
 * and plain accesses ordered by a barrier, which it must not report.
 */
const SAMPLED = ['mixed_width_race', 'barrier_rounds'];

/**
 * What is wrong with what the example page shows after the run `r` (of
 * `wgTest.runExample`): its status line starts with the result's status or the error's
 * kind.
 */
function shownProblems(r) {
  const want = r.ok ? r.status : r.error?.kind;
  if (typeof r.shown === 'string' && r.shown.startsWith(`${want}`)) return [];
  return [`the example page shows ${JSON.stringify(r.shown)}, expected a line that starts with ${want}`];
}

/**
 * Clicks the example page's Run button (its default module and function:
 * locks::unsynchronized_counter) and resolves to what the page then shows:
 * `{ status, report }`, once the status line no longer says that it is running.
 */
async function clickRun(page) {
  await page.click('#run button');
  await page.waitForFunction(() => !document.getElementById('status').textContent.startsWith('Running'), null, {
    timeout: RUN_WATCHDOG_MS,
  });
  return page.evaluate(() => ({
    status: document.getElementById('status').textContent,
    report: document.getElementById('report').textContent,
  }));
}

/** What is wrong with what the example page shows after its form ran unsynchronized_counter. */
function formProblems(shown) {
  const wrong = [];
  if (!/^ok \(exit code 0\), \d+ events; data races: [1-9]\d*, potential deadlocks: 0$/.test(shown.status)) {
    wrong.push(`the status line is ${JSON.stringify(shown.status)}, expected ok with data races`);
  }
  if (!shown.report.includes('WARNING: data race') || !shown.report.includes('racy_increment')) {
    wrong.push(`the report does not show the race in racy_increment: ${JSON.stringify(shown.report)}`);
  }
  return wrong;
}

/** The page's own bound on a single run. */
const RUN_WATCHDOG_MS = 90000;

const args = process.argv.slice(2);
let only = null;
let verbose = false;
let preflightOnly = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = (args[++i] ?? '').split(',').filter(Boolean);
  else if (args[i] === '--verbose') verbose = true;
  else if (args[i] === '--preflight') preflightOnly = true;
  else if (args[i] === '-h' || args[i] === '--help') {
    console.log('node tests/browser/run.mjs [--only NAME[,NAME...]] [--verbose] [--preflight]');
    process.exit(0);
  } else {
    console.error(`unknown argument ${args[i]}`);
    process.exit(2);
  }
}

const watchdogS = Number(process.env.WASMGRIND_BROWSER_WATCHDOG || 300);
/** Closes the browser and the server; set once they are open. */
let cleanup = async () => {};
/** Set when the watchdog fired: the run stops and only the watchdog reports. */
let stopped = false;
const watchdog = setTimeout(async () => {
  stopped = true;
  console.error(
    `browser tests: watchdog: the run took longer than ${watchdogS} s and was stopped ` +
      '(a scenario or the browser hangs; rerun with --verbose to see the page log)',
  );
  console.log('0 passed, 1 failed');
  // Close what can be closed in 5 s; playwright kills the browser at exit anyway.
  await Promise.race([cleanup().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(2);
}, watchdogS * 1000);
watchdog.unref();

/** The run of the inputs check: one thread, a small trace. */
const INPUTS = { file: 'basics.wasm', fn: 'spawn_join' };

/**
 * What is wrong with the outcomes of `wgTest.inputs`: every form of the module runs to the
 * same trace; a missing module is a UsageError that names it and the HTTP status, a URL
 * string that is no URL a UsageError that says so.
 */
function inputProblems(out) {
  const wrong = [];
  const good = ['path', 'urlString', 'url', 'blob', 'response', 'bytes'];
  for (const form of good) {
    const r = out[form];
    if (!r?.ok) wrong.push(`${form}: the run failed: ${r?.error?.kind}: ${r?.error?.message}`);
    else if (r.status !== 'ok' || !(r.events > 0)) wrong.push(`${form}: status ${r.status}, ${r.events} events`);
  }
  const events = new Set(good.filter((f) => out[f]?.ok).map((f) => out[f].events));
  if (events.size > 1) wrong.push(`the forms recorded different event counts: ${[...events].join(', ')}`);
  // Each call ended cleanly, so the next one starts with the workers it kept.
  for (const form of good.slice(1)) {
    if (out[form]?.ok && !(out[form].workersKept >= 1)) {
      wrong.push(`${form}: started with ${out[form].workersKept} kept workers, after a call that ended cleanly`);
    }
  }
  const missing = out.missing;
  if (missing?.ok !== false) wrong.push('a missing module did not fail');
  else if (missing.error.kind !== 'UsageError' || !/cannot read the module `.*no-such-module\.wasm`.*404/.test(missing.error.message)) {
    wrong.push(`a missing module: expected a UsageError naming it and HTTP 404, got ${missing.error.kind}: ${missing.error.message}`);
  }
  const bad = out.notAUrl;
  if (bad?.ok !== false) wrong.push('a malformed URL did not fail');
  else if (bad.error.kind !== 'UsageError' || !/is not a valid URL/.test(bad.error.message)) {
    wrong.push(`a malformed URL: expected a UsageError saying it is no valid URL, got ${bad.error.kind}: ${bad.error.message}`);
  }
  return wrong;
}

function findScenario(manifest, name) {
  for (const [guest, g] of Object.entries(manifest.guests)) {
    if (name in g.scenarios) return { guest, file: g.file, expected: g.scenarios[name] };
  }
  throw new Error(`scenario ${name} is not in guests/manifest.json`);
}

/** The thread named by an error: "thread 1", "thread #1", "T1". */
function namesThread(message, tid) {
  return new RegExp(`(\\bthread\\s*#?${tid}\\b)|(\\bT${tid}\\b)`, 'i').test(message);
}

/** What is wrong with the outcome `r` of `name`; empty when it is what the manifest says. */
function judge(name, expected, r) {
  const wrong = outcomeProblems(expected, r);
  const findings = r.ok ? r.findings : r.error?.findings;
  // A run that failed before it could be analyzed has no findings; that is an outcome problem.
  if (r.ok || findings) wrong.push(...findingProblems(findings, expected));
  return wrong;
}

/** What is wrong with how the run of a scenario ended. */
function outcomeProblems(expected, r) {
  const wrong = [];
  const err = r.error ?? {};
  const msg = err.message ?? '';
  switch (expected.outcome) {
    case 'ok':
      if (!r.ok) return [`expected success, got ${err.kind ?? err.name}: ${msg}`];
      if (r.status !== 'ok') wrong.push(`return status ${JSON.stringify(r.status)}, expected "ok"`);
      if (r.summary === null) return [...wrong, 'the result has no STD trace'];
      wrong.push(...checkOk(r.summary, expected));
      if (r.metadataCounts && r.metadataCounts.events !== r.summary.events) {
        wrong.push(`metadata counts ${r.metadataCounts.events} events, STD has ${r.summary.events}`);
      }
      if (r.lockConsistency) wrong.push(`lock consistency: ${r.lockConsistency}`);
      if (r.forkJoinConsistency) wrong.push(`fork/join consistency: ${r.forkJoinConsistency}`);
      if (expected.detached !== (r.detached > 0)) {
        const want = expected.detached ? 'some' : 'none';
        wrong.push(`${r.detached} detached threads reported, expected ${want}`);
      }
      return wrong;
    case 'trap':
      if (r.ok) return ['expected a trap, the run succeeded'];
      if (err.kind !== 'Trap') wrong.push(`expected a Trap error, got ${err.kind ?? err.name}`);
      if (err.thread !== 1) wrong.push(`error.thread is ${err.thread}, expected 1`);
      if (!namesThread(msg, 1)) wrong.push(`the error does not name thread 1: ${msg}`);
      if (!/unreachable/i.test(msg)) wrong.push(`the error does not describe the trap: ${msg}`);
      return wrong;
    case 'panic':
      if (r.ok) return ['expected a panic, the run succeeded'];
      if (err.kind !== 'GuestPanic') wrong.push(`expected a GuestPanic error, got ${err.kind ?? err.name}`);
      if (err.code !== expected.panic_code) wrong.push(`panic code ${err.code}, expected ${expected.panic_code}`);
      if (!msg.includes(expected.panic_message)) {
        wrong.push(`the error lacks the panic message ${JSON.stringify(expected.panic_message)}: ${msg}`);
      }
      if (expected.forks > 0 && !namesThread(msg, 1)) {
        wrong.push(`the error does not name thread 1: ${msg}`);
      }
      return wrong;
    case 'deadlock': {
      if (r.ok) return ['expected a deadlock, the run succeeded'];
      if (err.kind !== 'DeadlockError') wrong.push(`expected a DeadlockError, got ${err.kind ?? err.name}: ${msg}`);
      // The cycle has the threads of the manifest's deadlock, and the message names what
      // each of them waits for: a lock and its holder, or a thread to join.
      const want = (expected.findings.find((f) => f.kind === 'deadlock')?.threads ?? []).slice().sort();
      const cycle = err.cycle ?? [];
      if (cycle.map((e) => e.thread).sort().join() !== want.join()) {
        wrong.push(`the cycle is ${JSON.stringify(err.cycle)}, expected threads ${want.join(', ')}`);
      }
      for (const e of cycle) {
        const says =
          e.joining !== undefined
            ? new RegExp(`thread ${e.thread} waits to join thread ${e.joining}`)
            : new RegExp(`thread ${e.thread} waits for lock 0x[0-9a-f]+, held by thread ${e.holder}`);
        if (!says.test(msg)) wrong.push(`the error does not say what thread ${e.thread} waits for: ${msg}`);
      }
      return wrong;
    }
    default:
      return [`unknown outcome ${expected.outcome} in the manifest`];
  }
}

function describe(r, expected) {
  if (!r.ok) {
    const e = r.error ?? {};
    const first = String(e.message ?? '').split('\n')[0];
    return `${e.kind ?? e.name}: ${first}`;
  }
  const s = r.summary;
  return (
    `${s.events} events, ${s.threads} threads, ${s.forks} forks/${s.joins} joins, ` +
    `${s.realLocks} locks/${s.acquisitions} acquisitions` +
    (expected.detached ? ', detached thread stopped' : '')
  );
}

async function main() {
  const manifest = await loadManifest();
  const names = only === null ? scenarioNames(manifest) : only.filter((n) => !(n in WASI_RUNS) && !n.includes('::') && n !== 'form' && n !== 'inputs');
  const wasiRuns = Object.keys(WASI_RUNS).filter((n) => only === null || only.includes(n));
  const wasiPath = wasiRuns.length > 0 ? wasiGuestPath('runtime_checks') : null;
  const plan = names.map((name) => ({ name, ...findScenario(manifest, name) }));
  if (!preflightOnly) checkBuildOutputs([...new Set(plan.map((p) => p.file))]);

  const pageLog = [];
  const { page, close } = await openTestPage({
    log: (line) => {
      pageLog.push(line);
      if (verbose) console.error(`  | ${line}`);
    },
  });
  cleanup = close;
  let passed = 0;
  let failed = 0;
  /** `wgTest[method](url of file, fn, ...args)` on the page; a driver failure is the run's error. */
  const onPage = async (method, file, fn, ...args) => {
    try {
      return await page.evaluate(([m, url, f, a]) => globalThis.wgTest[m](url, f, ...a), [method, `/target/guests/${file}`, fn, args]);
    } catch (e) {
      return { ok: false, ms: 0, error: { name: 'DriverError', message: e.message } };
    }
  };
  /** Counts one check and prints `ok <label> (<passedText>)` or FAIL with what is `wrong`. */
  const count = (label, wrong, passedText, failedText) => {
    if (wrong.length === 0) {
      passed++;
      console.log(`ok   ${label} (${passedText})`);
      return true;
    }
    failed++;
    console.log(`FAIL ${label} (${failedText})`);
    for (const w of wrong) console.log(`     ${w.replace(/\n/g, '\n     ')}`);
    return false;
  };
  try {
    // The first guest of the run (assertPreflight looks in /target/guests/).
    const firstWasi = Object.values(manifest.wasi_guests ?? {})[0]?.file;
    const first = plan.length > 0 ? plan[0].file : wasiPath !== null ? `../..${wasiPath}` : firstWasi;
    const pre = await assertPreflight(page, first);
    console.log(
      `ok   preflight (crossOriginIsolated=${pre.crossOriginIsolated}, shared memory ok, ` +
        `${first} served as ${pre.wasmContentType})`,
    );
    passed++;
    if (preflightOnly) plan.length = 0;
    for (const p of plan) {
      if (stopped) break;
      const label = `${p.guest}::${p.name}`;
      const r = await onPage('runExample', p.file, p.name, {});
      if (stopped) break;
      const wrong = [...judge(p.name, p.expected, r), ...shownProblems(r)];
      const time = `${r.ms.toFixed(0)} ms`;
      if (wrong.length === 0) {
        passed++;
        console.log(`ok   ${label} (${p.expected.outcome}: ${describe(r, p.expected)}; ${time})`);
        if (verbose && !r.ok) console.log(`     error: ${r.error.message.replace(/\n/g, '\n     ')}`);
      } else {
        failed++;
        console.log(`FAIL ${label} (expected ${p.expected.outcome}; ${time})`);
        for (const w of wrong) console.log(`     ${w.replace(/\n/g, '\n     ')}`);
      }
    }
    const protocol = preflightOnly ? [] : PROTOCOL.filter((n) => only === null || only.includes(n));
    for (const name of protocol) {
      if (stopped) break;
      const p = findScenario(manifest, name);
      const label = `${p.guest}::${name} by wgrind_worker.js's messages`;
      const r = await onPage('run', p.file, name, {}, RUN_WATCHDOG_MS);
      if (stopped) break;
      const time = `${r.ms.toFixed(0)} ms`;
      count(label, judge(name, p.expected, r), `${p.expected.outcome}: ${describe(r, p.expected)}; ${time}`, `expected ${p.expected.outcome}; ${time}`);
    }
    const sampled = preflightOnly ? [] : SAMPLED.filter((n) => only === null || only.includes(n));
    for (const name of sampled) {
      if (stopped) break;
      const p = findScenario(manifest, name);
      const label = `${p.guest}::${name} sampled (sampling: true)`;
      const r = await onPage('runExample', p.file, name, { sampling: true });
      if (stopped) break;
      const wrong = judge(name, p.expected, r);
      if (r.ok && r.findings?.sampled !== true) wrong.push(`findings.sampled is ${r.findings?.sampled}, expected true`);
      const time = `${r.ms.toFixed(0)} ms`;
      count(label, wrong, `${p.expected.outcome}: ${describe(r, p.expected)}; ${time}`, `expected ${p.expected.outcome}; ${time}`);
    }
    if (!preflightOnly && !stopped && (only === null || only.includes('form'))) {
      let wrong;
      try {
        wrong = formProblems(await clickRun(page));
      } catch (e) {
        wrong = [`driving the form failed: ${e.message}`];
      }
      if (wrong.length === 0) {
        passed++;
        console.log('ok   the example page\'s form (Run shows the data race of locks::unsynchronized_counter)');
      } else if (!stopped) {
        failed++;
        console.log("FAIL the example page's form");
        for (const w of wrong) console.log(`     ${w.replace(/\n/g, '\n     ')}`);
      }
    }
    for (const name of preflightOnly ? [] : wasiRuns) {
      if (stopped) break;
      const w = WASI_RUNS[name];
      let r;
      try {
        r = await page.evaluate(([url, a, opts]) => globalThis.wgTest.runWasi(url, a, opts), [wasiPath, w.args, w.options]);
      } catch (e) {
        r = { ok: false, ms: 0, error: { name: 'DriverError', message: e.message } };
      }
      if (stopped) break;
      const wrong = w.check(r);
      const time = `${r.ms.toFixed(0)} ms`;
      if (wrong.length === 0) {
        passed++;
        console.log(`ok   ${name} (${r.ok ? `exit code ${r.exitCode}` : r.error.kind}; ${time})`);
      } else {
        failed++;
        console.log(`FAIL ${name} (${time})`);
        for (const x of wrong) console.log(`     ${x.replace(/\n/g, '\n     ')}`);
      }
    }
    // The manifest's programs built with plain std (and rayon) on stable.
    for (const [guest, g] of preflightOnly ? [] : Object.entries(manifest.wasi_guests ?? {})) {
      for (const [name, s] of Object.entries(g.scenarios)) {
        const label = `${guest}::${name}`;
        if (stopped || (only !== null && !only.includes(label))) continue;
        let r;
        try {
          r = await page.evaluate(([url, a, opts]) => globalThis.wgTest.runWasi(url, a, opts), [
            `/target/guests/${g.file}`,
            [name],
            {},
          ]);
        } catch (e) {
          r = { ok: false, ms: 0, error: { name: 'DriverError', message: e.message } };
        }
        if (stopped) break;
        const wrong = wasiOutcomeProblems(s, r);
        const time = `${r.ms.toFixed(0)} ms`;
        if (wrong.length === 0) {
          passed++;
          console.log(`ok   ${label} (${s.outcome}: ${r.ok ? `exit code ${r.exitCode}` : r.error.kind}; ${time})`);
        } else {
          failed++;
          console.log(`FAIL ${label} (expected ${s.outcome}; ${time})`);
          for (const x of wrong) console.log(`     ${x.replace(/\n/g, '\n     ')}`);
        }
      }
    }
    if (!preflightOnly && !stopped && (only === null || only.includes('inputs'))) {
      let wrong;
      try {
        wrong = inputProblems(
          await page.evaluate(([u, f]) => globalThis.wgTest.inputs(u, f), [`/target/guests/${INPUTS.file}`, INPUTS.fn]),
        );
      } catch (e) {
        wrong = [`driving the inputs failed: ${e.message}`];
      }
      if (wrong.length === 0) {
        passed++;
        console.log(
          'ok   wasmgrind() takes a path, a URL string, a URL, a Blob, a Response and bytes (each call starting with the ' +
            'workers the one before kept), and names a missing or malformed URL',
        );
      } else if (!stopped) {
        failed++;
        console.log('FAIL the inputs of wasmgrind()');
        for (const w of wrong) console.log(`     ${w.replace(/\n/g, '\n     ')}`);
      }
    }
    const streamed = preflightOnly ? [] : STREAMED.filter((n) => only === null || only.includes(n));
    for (const name of streamed) {
      if (stopped) break;
      const p = findScenario(manifest, name);
      const label = `${p.guest}::${name} streamed`;
      const r = await onPage('runStreamed', p.file, name, { chunkEvents: STREAM_CHUNK_EVENTS });
      if (stopped) break;
      const time = `${r.ms.toFixed(0)} ms`;
      count(label, [...judge(name, p.expected, r), ...streamProblems(r)], `${describe(r, p.expected)} in ${r.chunks} chunks; ${time}`, time);
    }
  } finally {
    await close();
  }
  if (stopped) return 2;
  if (failed > 0 && !verbose && pageLog.length > 0) {
    console.log('page log:');
    for (const l of pageLog.slice(-40)) console.log(`  | ${l}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  // Exit explicitly: nothing left behind (a browser that would not close) may keep the
  // process alive after the verdict.
  (code) => stopped || process.exit(code),
  (e) => {
    if (stopped) return;
    console.error(`browser tests: ${e.message}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
