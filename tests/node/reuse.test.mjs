// Workers kept between calls: a call that ends cleanly leaves its manager and its idle
// thread workers for the next call of the same thread, which starts with them and finds
// the same races; a failed call keeps nothing; `closeIdleWorkers()` ends them; and they
// never keep a Node.js process alive.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  loadRuntime,
  manifest,
  guestPath,
  pkgDir,
  runNode,
  parseStd,
  checkRapidBin,
  checkTrace,
  checkFindings,
} from './helpers.mjs';

const { wasmgrind, closeIdleWorkers } = await loadRuntime();
const m = manifest();
const locks = m.guests.locks;

/** The findings and the trace of a result are whole and what the manifest expects. */
function checkResult(r, scenario, what) {
  assert.equal(r.status, 'ok', what);
  checkFindings(r.findings, locks.scenarios[scenario], what);
  const events = parseStd(r.std);
  assert.ok(events.length > 0, `${what}: the STD text has the events`);
  checkTrace(events, r.metadata);
  checkRapidBin(r.rapidbin, events, r.metadata);
}

test('the next call starts with the workers a clean call kept, and finds the same race', async () => {
  await closeIdleWorkers();
  const file = guestPath(locks.file);
  const first = await wasmgrind(file, 'unsynchronized_counter', {});
  assert.equal(first.timings.workersKept, 0, 'nothing was kept before the first call');
  checkResult(first, 'unsynchronized_counter', 'the first call');
  for (const n of [2, 3]) {
    const again = await wasmgrind(file, 'unsynchronized_counter', {});
    assert.ok(again.timings.workersKept >= 1, `call ${n} started with ${again.timings.workersKept} kept workers`);
    checkResult(again, 'unsynchronized_counter', `call ${n}`);
  }
  // Another module and scenario on the same kept workers: its own trace and findings.
  const other = await wasmgrind(file, 'mutex_counter', {});
  assert.ok(other.timings.workersKept >= 1);
  checkResult(other, 'mutex_counter', 'mutex_counter after unsynchronized_counter');
  // An untraced run on them, and a traced one after it.
  const untraced = await wasmgrind(file, 'mutex_counter', { trace: false });
  assert.equal(untraced.status, 'ok');
  assert.equal(untraced.events, 0);
  const traced = await wasmgrind(file, 'unsynchronized_counter', {});
  assert.ok(traced.timings.workersKept >= 1);
  checkResult(traced, 'unsynchronized_counter', 'a traced call after an untraced one');
  await closeIdleWorkers();
  const fresh = await wasmgrind(file, 'unsynchronized_counter', {});
  assert.equal(fresh.timings.workersKept, 0, 'closeIdleWorkers ended the kept workers');
  await closeIdleWorkers();
});

test('`workers` many workers are kept for the next call', async () => {
  await closeIdleWorkers();
  const file = guestPath(m.guests.stress.file);
  // concurrent_64 has 65 threads alive at once (main and 64), so all 65 workers it asks
  // for ran a thread, and none of them closes (they are not more than `workers`).
  const first = await wasmgrind(file, 'concurrent_64', { workers: 65 });
  assert.equal(first.threads.forks, 64);
  const second = await wasmgrind(file, 'concurrent_64', { workers: 65 });
  assert.equal(second.status, 'ok');
  assert.ok(second.timings.workersKept >= 65, `${second.timings.workersKept} workers kept`);
  await closeIdleWorkers();
});

test('workers beyond maxIdle linger for the next call, and close after the linger', async () => {
  await closeIdleWorkers();
  const file = guestPath(m.guests.stress.file);
  // concurrent_64 has 64 threads alive at once; with the default options a run keeps 4
  // idle workers (maxIdle), and the others linger for 2 s (LINGER_MS in wasmgrind.js).
  const first = await wasmgrind(file, 'concurrent_64', {});
  assert.equal(first.threads.forks, 64);
  const next = await wasmgrind(file, 'concurrent_64', {});
  assert.equal(next.status, 'ok');
  assert.equal(next.threads.forks, 64);
  // All of them, unless the machine is so slow that some closed before the first call ended.
  assert.ok(next.timings.workersKept > 4, `the next call found ${next.timings.workersKept} kept workers`);
  await sleep(3_000);
  const later = await wasmgrind(file, 'concurrent_64', {});
  assert.equal(later.status, 'ok');
  assert.ok(
    later.timings.workersKept >= 1 && later.timings.workersKept <= 4,
    `3 s later the call found ${later.timings.workersKept} kept workers (expected the 4 of maxIdle at most)`,
  );
  await closeIdleWorkers();
});

test('calls that take few kept workers do not make the others linger longer', async () => {
  await closeIdleWorkers();
  const stress = guestPath(m.guests.stress.file);
  const basics = guestPath(m.guests.basics.file);
  await wasmgrind(stress, 'concurrent_64', {});
  // One-thread calls every second take 3 kept workers each; the 60 and more left over
  // from concurrent_64 close 2 s after it ended all the same.
  for (let i = 0; i < 3; i++) {
    await sleep(1_000);
    const small = await wasmgrind(basics, 'spawn_join', {});
    assert.ok(small.timings.workersKept >= 1);
  }
  const big = await wasmgrind(stress, 'concurrent_64', {});
  assert.equal(big.status, 'ok');
  assert.ok(big.timings.workersKept <= 4, `${big.timings.workersKept} workers were still kept (expected the 4 of maxIdle)`);
  await closeIdleWorkers();
});

test('a failed call keeps nothing: the next one starts new workers and runs normally', async () => {
  await closeIdleWorkers();
  const file = guestPath(locks.file);
  await wasmgrind(file, 'mutex_counter', {});
  // The failed call takes the kept manager, and its failure terminates it.
  const err = await wasmgrind(guestPath(m.guests.failures.file), 'child_trap', {}).then(
    () => assert.fail('child_trap must fail'),
    (e) => e,
  );
  assert.equal(err.kind, 'Trap', err.message);
  const after = await wasmgrind(file, 'unsynchronized_counter', {});
  assert.equal(after.timings.workersKept, 0);
  checkResult(after, 'unsynchronized_counter', 'the call after a failed one');
  // A timeout keeps nothing either.
  const timedOut = await wasmgrind(guestPath(m.guests.stress.file), 'sort_large_array_1s', { timeout: 300, memoryTrace: false }).then(
    () => assert.fail('sort_large_array_1s must time out'),
    (e) => e,
  );
  assert.equal(timedOut.kind, 'Timeout', timedOut.message);
  const last = await wasmgrind(file, 'mutex_counter', {});
  assert.equal(last.timings.workersKept, 0);
  checkResult(last, 'mutex_counter', 'the call after a timeout');
  await closeIdleWorkers();
});

test('calls at the same time each get a manager, and both finish', async () => {
  await closeIdleWorkers();
  const file = guestPath(locks.file);
  await wasmgrind(file, 'mutex_counter', {});
  const [a, b] = await Promise.all([
    wasmgrind(file, 'unsynchronized_counter', {}),
    wasmgrind(file, 'mutex_counter', {}),
  ]);
  // One of them took the kept manager, the other started a new one.
  assert.equal([a, b].filter((r) => r.timings.workersKept > 0).length, 1);
  checkResult(a, 'unsynchronized_counter', 'the first of two calls at once');
  checkResult(b, 'mutex_counter', 'the second of two calls at once');
  await closeIdleWorkers();
});

// With chunks of 1,000 events the pump starts the analysis worker just before the end of
// this run; the end waits for it to free its utility stack, and keeps the workers.
test('a call whose analysis worker starts at its end keeps its workers', async () => {
  await closeIdleWorkers();
  const file = guestPath(m.guests.basics.file);
  for (let i = 0; i < 3; i++) {
    const r = await wasmgrind(file, 'spawn_join_200', { chunkEvents: 1000 });
    assert.equal(r.status, 'ok');
    if (i > 0) assert.ok(r.timings.workersKept >= 1, `call ${i + 1} found ${r.timings.workersKept} kept workers`);
  }
  await closeIdleWorkers();
});

test('kept workers do not keep a Node.js process alive', async () => {
  const script =
    `import { wasmgrind } from ${JSON.stringify(`${pkgDir}wasmgrind.js`)};\n` +
    `const r = await wasmgrind(${JSON.stringify(guestPath(locks.file))}, 'mutex_counter', {});\n` +
    // Without a timeout nothing but the call in progress keeps the process alive.
    `const again = await wasmgrind(${JSON.stringify(guestPath(locks.file))}, 'mutex_counter', { timeout: Infinity });\n` +
    `console.log(r.status, again.status, again.timings.workersKept > 0);\n`;
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-reuse-'));
  try {
    writeFileSync(join(dir, 'two_calls.mjs'), script);
    // runNode fails the test if the process does not exit within its timeout.
    const { code, stdout, stderr } = await runNode([join(dir, 'two_calls.mjs')], { timeoutMs: 60_000 });
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), 'ok ok true');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The utility module is compiled by the first call's manager, not by the calling thread: a
// package without it fails there, with an error that names the file and the fix, and
// nothing hangs; a call after one that compiled it gets it from the calling thread.
test('a package without its utility module fails with an error that names it and the fix', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-no-utility-'));
  try {
    const copy = join(dir, 'pkg');
    cpSync(pkgDir, copy, { recursive: true });
    rmSync(join(copy, 'wasmgrind_js_bg.wasm'));
    const script =
      `import { wasmgrind } from ${JSON.stringify(pathToFileURL(join(copy, 'wasmgrind.js')).href)};\n` +
      `for (let i = 0; i < 2; i++) {\n` +
      `  const e = await wasmgrind(${JSON.stringify(guestPath(locks.file))}, 'mutex_counter', {}).then(() => null, (e) => e);\n` +
      `  console.log(JSON.stringify({ kind: e?.kind, message: e?.message }));\n` +
      `}\n`;
    writeFileSync(join(dir, 'missing.mjs'), script);
    const { code, stdout, stderr } = await runNode([join(dir, 'missing.mjs')], { timeoutMs: 60_000 });
    assert.equal(code, 0, stderr);
    const answers = stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(answers.length, 2, stdout);
    for (const a of answers) {
      assert.equal(a.kind, 'RuntimeError', a.message);
      assert.match(a.message, /cannot load Wasmgrind's utility module .*wasmgrind_js_bg\.wasm/);
      assert.match(a.message, /cargo xtask dist/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('later calls run with the utility module the first call compiled', async () => {
  await closeIdleWorkers();
  const file = guestPath(locks.file);
  // Two calls at once: neither has the module yet, so both managers compile it; then one
  // more, which the calling thread gives the module (its manager is a new one, since the
  // first two ended theirs).
  const both = await Promise.all([wasmgrind(file, 'mutex_counter', {}), wasmgrind(file, 'mutex_counter', {})]);
  await closeIdleWorkers();
  const third = await wasmgrind(file, 'mutex_counter', {});
  for (const [i, r] of [...both, third].entries()) checkResult(r, 'mutex_counter', `call ${i + 1}`);
  await closeIdleWorkers();
});
