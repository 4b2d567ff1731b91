// Every scenario of the manifest's `wasi_guests`: programs written against plain std (and
// rayon), built on stable for wasm32-wasip1-threads, run unchanged through the real runtime
// (pkg/) in Node, and checked against their expected output, exit code and findings.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { loadRuntime, manifest, guestPath, parseStd, checkRapidBin, checkTrace, wasiOutcome } from './helpers.mjs';
import { wasiOutcomeProblems } from '../findings.mjs';

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

for (const [guest, g] of Object.entries(m.wasi_guests ?? {})) {
  describe(`${guest}.wasm (wasm32-wasip1-threads)`, () => {
    for (const [name, s] of Object.entries(g.scenarios)) {
      test(`${name}: ${s.outcome}`, async () => {
        const path = guestPath(g.file);
        let r = null;
        let err = null;
        try {
          r = await wasmgrind(path, undefined, { args: [name], timeout: RUN_TIMEOUT_MS });
        } catch (e) {
          err = e;
        }
        // The outcome, output, threads and findings, judged as the browser tests judge them.
        assert.deepEqual(wasiOutcomeProblems(s, wasiOutcome(r, err)), [], `${name}: ${err ? err.stack : r.status}`);
        // What only Node checks: the status, the whole trace, the deadlock's report.
        if (r) assert.equal(r.status, s.outcome === 'exit' ? 'exit' : 'ok', `${name}: ${r.status}`);
        if (err && s.outcome === 'deadlock') assert.match(err.report, /WARNING: deadlock/);
        // Lock recognition takes words that are set once from 0 and never reset (std's and
        // wasi-libc's "initialized" flags) for locks held to the end; see the book.
        checkTraceOf(r ?? err.trace, s, name, true);
      });
    }
  });
}

test('the manifest lists stable-built std programs', () => {
  assert.ok(Object.keys(m.wasi_guests ?? {}).length >= 2, 'wasi_guests: std_scenarios and rayon_demo');
});

// Lock recognition's verdicts travel with the saved trace: at the end of a run that did not
// deadlock, every word it took for a lock and then found to be none (std's "initialized"
// flags, channel state words) is a `NotALock` record (op tag 11) after every other event
// of trace.wgtrace, so `cli.js analyze` leaves lock-order cycles through them out as the
// run did, and finds what the run found.
test('the saved trace of a std program carries the lock verdicts, and analyze finds what run found', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { cliPath, runNode } = await import('./helpers.mjs');
  const path = guestPath(m.wasi_guests.std_scenarios.file);
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-verdicts-'));
  try {
    const run = await runNode([cliPath, 'run', path, '--out', dir, '--', 'mpsc']);
    assert.equal(run.code, 0, run.stderr);
    const bytes = readFileSync(join(dir, 'trace.wgtrace'));
    const records = (bytes.length - 24) / 20;
    const tags = Array.from({ length: records }, (_, i) => bytes[24 + i * 20 + 4]);
    const first = tags.indexOf(11);
    assert.ok(first > 0, 'the trace has NotALock records');
    assert.ok(tags.slice(first).every((t) => t === 11), 'they come after every other event');
    const found = (text) => text.match(/found \d+ data races?, \d+ potential deadlocks?/)?.[0];
    const again = await runNode([cliPath, 'analyze', dir, '--module', path]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(found(run.stderr), run.stderr);
    assert.equal(found(again.stdout + again.stderr), found(run.stderr));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
