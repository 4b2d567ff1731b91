// Sampling (the option `sampling`, the CLI's `--sample`): a sampled run records only some
// plain accesses but keeps every synchronization, so it reports no race that is not
// there, still finds the races of code that runs rarely, and says that it was sampled.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wasiOutcomeProblems } from '../findings.mjs';
import {
  loadRuntime,
  manifest,
  guestPath,
  parseStd,
  checkRapidBin,
  checkTrace,
  checkFindings,
  cliPath,
  runNode,
  wasiOutcome,
} from './helpers.mjs';

const { wasmgrind, SAMPLED_NOTE } = await loadRuntime();
const m = manifest();

/** Checks a sampled run's trace as the scenario suite checks a full one. */
function checkSampled(r, s, what) {
  assert.equal(r.status, 'ok', what);
  assert.equal(r.findings.sampled, true, `${what}: findings.sampled`);
  assert.ok(r.report.startsWith(SAMPLED_NOTE), `${what}: the report starts with the note: ${r.report}`);
  const events = parseStd(r.std);
  checkRapidBin(r.rapidbin, events, r.metadata);
  assert.equal(r.lockConsistency, null, `${what}: ${r.lockConsistency}`);
  assert.equal(r.forkJoinConsistency, null, `${what}: ${r.forkJoinConsistency}`);
  const counts = checkTrace(events, r.metadata, { allowHeldAtEnd: s.detached });
  // Forks, joins and locks are never sampled out.
  assert.equal(counts.forks, s.forks, `${what}: forks`);
  if (s.joins !== null) assert.equal(counts.joins, s.joins, `${what}: joins`);
  if (s.acquisitions !== null) assert.equal(counts.acquisitions, s.acquisitions, `${what}: acquisitions`);
  return events;
}

// The race detector's scenarios and the guest library's synchronization primitives: the
// races are in code that runs a few times per thread (always sampled), and the race-free
// scenarios order their plain accesses only through synchronization, which sampling keeps.
for (const guest of ['races', 'primitives']) {
  const g = m.guests[guest];
  for (const [name, s] of Object.entries(g.scenarios)) {
    if (s.outcome !== 'ok') continue;
    test(`${guest}.wasm ${name} sampled: the manifest's findings, ${s.data_race ? 'the race found' : 'no race'}`, async () => {
      const r = await wasmgrind(guestPath(g.file), name, { sampling: true, timeout: 120_000 });
      checkSampled(r, s, name);
      checkFindings(r.findings, s, name);
    });
  }
}

// std programs built for wasm32-wasip1-threads: their locks are recognised among the
// atomics, which sampling keeps; rayon's sort runs hot loops.
for (const [guest, g] of Object.entries(m.wasi_guests)) {
  for (const [name, s] of Object.entries(g.scenarios)) {
    if (s.outcome !== 'ok') continue;
    test(`${guest}.wasm ${name} sampled: the manifest's output and findings`, async () => {
      const r = await wasmgrind(guestPath(g.file), undefined, { args: [name], sampling: true, timeout: 120_000 });
      assert.deepEqual(wasiOutcomeProblems(s, wasiOutcome(r)), [], name);
      assert.equal(r.findings.sampled, true);
      assert.ok(r.report.startsWith(SAMPLED_NOTE));
      assert.equal(r.lockConsistency, null, `${name}: ${r.lockConsistency}`);
    });
  }
}

test("std's Mutex acquisitions are all recorded in a sampled run (atomics are never sampled out)", async () => {
  // mutex_counter: 4 threads lock an Arc<Mutex<u64>> 1000 times each. The total has a few
  // more (std's own locks, stdout's among them), which vary from run to run; the 4000
  // are the program's. (A sampled run that lost the atomics of unsampled loop iterations
  // recorded about 500.)
  const path = guestPath(m.wasi_guests.std_scenarios.file);
  for (const sampling of [false, true]) {
    const r = await wasmgrind(path, undefined, { args: ['mutex_counter'], sampling, exportTrace: false });
    assert.equal(r.stdout, 'counter = 4000\n');
    assert.ok(r.acquisitions >= 4000 && r.acquisitions < 4100, `sampling ${sampling}: ${r.acquisitions} acquisitions`);
  }
});

test('a hot loop is sampled: far fewer events than the full trace, the same findings', async () => {
  const path = guestPath(m.guests.stress.file);
  const s = m.guests.stress.scenarios.sort_large_array;
  const full = await wasmgrind(path, 'sort_large_array', { exportTrace: false });
  assert.equal(full.findings.sampled, undefined, 'a full run is not marked as sampled');
  assert.ok(!full.report.startsWith(SAMPLED_NOTE));
  const sampled = await wasmgrind(path, 'sort_large_array', { sampling: true });
  const events = checkSampled(sampled, s, 'sort_large_array');
  checkFindings(sampled.findings, s, 'sort_large_array');
  const accesses = events.filter((e) => e.op === 'r' || e.op === 'w').length;
  assert.ok(
    sampled.events * 4 < full.events,
    `the sampled run recorded ${sampled.events} events (${accesses} accesses), the full one ${full.events}`,
  );
  assert.ok(accesses > 0, 'the sampled run recorded accesses');
});

test('sampling needs memory tracing, and is a boolean', async () => {
  const path = guestPath(m.guests.basics.file);
  for (const [options, want] of [
    [{ sampling: true, memoryTrace: false }, /option `sampling` needs `memoryTrace` and `trace`/],
    [{ sampling: true, trace: false }, /option `sampling` needs `memoryTrace` and `trace`/],
    [{ sampling: 'yes' }, /option `sampling` must be a boolean, not string/],
  ]) {
    const err = await wasmgrind(path, 'spawn_join', options).then(
      () => assert.fail(`${JSON.stringify(options)} must be refused`),
      (e) => e,
    );
    assert.equal(err.kind, 'UsageError', err.message);
    assert.match(err.message, want);
  }
});

test('the CLI: --sample reports a race, says it sampled, and exits 66; not with --no-memory-trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-sample-'));
  try {
    const races = guestPath(m.guests.races.file);
    let out = await runNode([cliPath, 'run', races, 'mixed_width_race', '--sample', '--no-memory-trace', '--out', dir]);
    assert.equal(out.code, 2, out.stderr);
    assert.match(out.stderr, /--sample samples the memory accesses, which --no-memory-trace does not record/);
    out = await runNode([cliPath, 'run', races, 'mixed_width_race', '--sample', '--out', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.ok(out.stderr.includes(SAMPLED_NOTE.trim()), out.stderr);
    assert.ok(readFileSync(join(dir, 'report.txt'), 'utf8').startsWith(SAMPLED_NOTE));
    const saved = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    assert.equal(saved.sampled, true);
    checkFindings(saved, m.guests.races.scenarios.mixed_width_race, 'report.json');
    // `analyze` finds the race in the sampled trace again, and says it is sampled.
    out = await runNode([cliPath, 'analyze', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.ok(out.stderr.startsWith(SAMPLED_NOTE), out.stderr);
    // A full run's report.json says nothing of sampling, and neither does its `analyze`.
    out = await runNode([cliPath, 'run', races, 'mixed_width_race', '--out', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.equal(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).sampled, undefined);
    out = await runNode([cliPath, 'analyze', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.ok(!out.stderr.includes(SAMPLED_NOTE.trim()), out.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
