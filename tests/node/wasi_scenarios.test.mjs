// Every scenario of the manifest's `wasi_guests`: programs written against plain std (and
// rayon), built on stable for wasm32-wasip1-threads, run unchanged through the real runtime
// (pkg/) in Node, and checked against their expected output, exit code and findings.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { loadRuntime, manifest, guestPath, parseStd, checkRapidBin, checkTrace, checkFindings } from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();

/** A deadlocked run must end through the runtime's own detection, never through this. */
const RUN_TIMEOUT_MS = 120_000;

/** Checks a trace's own consistency and its counts against scenario `s`. */
function checkTraceOf(t, s, what, allowHeldAtEnd) {
  assert.ok(t && typeof t.std === 'string', `${what}: a trace comes with the outcome`);
  const events = parseStd(t.std);
  if (t.rapidbin) checkRapidBin(t.rapidbin, events, t.metadata);
  assert.equal(t.lockConsistency, null, `${what}: ${t.lockConsistency}`);
  assert.equal(t.forkJoinConsistency, null, `${what}: ${t.forkJoinConsistency}`);
  const counts = checkTrace(events, t.metadata, { allowHeldAtEnd });
  if (s.forks !== null) assert.equal(counts.forks, s.forks, `${what}: threads spawned`);
  return counts;
}

/** The output checks every outcome shares. */
function checkOutput(r, s, what) {
  if (s.stdout !== null) assert.equal(r.stdout, s.stdout, `${what}: stdout`);
  if (s.stderr_contains !== null) {
    assert.ok(r.stderr.includes(s.stderr_contains), `${what}: stderr ${JSON.stringify(r.stderr)} lacks ${JSON.stringify(s.stderr_contains)}`);
  }
}

for (const [guest, g] of Object.entries(m.wasi_guests ?? {})) {
  describe(`${guest}.wasm (wasm32-wasip1-threads)`, () => {
    for (const [name, s] of Object.entries(g.scenarios)) {
      test(`${name}: ${s.outcome}`, async () => {
        const path = guestPath(g.file);
        const run = wasmgrind(path, undefined, { args: [name], timeout: RUN_TIMEOUT_MS });
        if (s.outcome === 'ok' || s.outcome === 'exit') {
          const r = await run;
          assert.equal(r.status, s.outcome === 'exit' ? 'exit' : 'ok', `${name}: ${r.status}`);
          assert.equal(r.exitCode, s.exit_code, `${name}: exit code; stderr: ${r.stderr}`);
          checkOutput(r, s, name);
          // Lock recognition takes words that are set once from 0 and never reset (std's and
          // wasi-libc's "initialized" flags) for locks held to the end; see the book.
          checkTraceOf(r, s, name, true);
          checkFindings(r.findings, s, name);
          return;
        }
        const err = await run.then(
          () => assert.fail(`${name}: the run must fail`),
          (e) => e,
        );
        checkOutput(err, s, name);
        switch (s.outcome) {
          case 'trap':
          case 'panic':
            // On this target a panic aborts: the message reaches stderr, then the thread
            // traps.
            assert.equal(err.kind, 'Trap', err.message);
            break;
          case 'deadlock':
            assert.equal(err.kind, 'DeadlockError', err.message);
            assert.match(err.report, /WARNING: deadlock/);
            break;
          default:
            assert.fail(`unknown outcome ${s.outcome} in the manifest`);
        }
        checkTraceOf(err.trace, s, name, true);
        checkFindings(err.findings, s, name);
      });
    }
  });
}

test('the manifest lists stable-built std programs', () => {
  assert.ok(Object.keys(m.wasi_guests ?? {}).length >= 2, 'wasi_guests: std_scenarios and rayon_demo');
});
