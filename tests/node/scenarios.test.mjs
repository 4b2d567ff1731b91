// Every scenario of guests/manifest.json, run through the real runtime (pkg/) in Node,
// checked against its expected outcome and against the recorded events.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  loadRuntime,
  manifest,
  guestPath,
  parseStd,
  checkRapidBin,
  checkTrace,
  hasLockOrderCycle,
} from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();

/** Timeout of a scenario that must finish; the deadlock one gets a short one on purpose. */
const RUN_TIMEOUT_MS = 120_000;
// Long enough for every thread to reach its lock request on a loaded 2-core machine.
const DEADLOCK_TIMEOUT_MS = 10_000;

function checkOkTrace(r, s) {
  assert.equal(r.status, 'ok');
  const events = parseStd(r.std);
  checkRapidBin(r.rapidbin, events, r.metadata);
  assert.equal(r.metadata.counts.events, events.length);
  assert.equal(r.lockConsistency, null, `the runtime's own lock-consistency check failed: ${r.lockConsistency}`);
  // A detached thread may be stopped anywhere, also holding a lock.
  const counts = checkTrace(events, r.metadata, { allowHeldAtEnd: s.detached });
  assert.equal(counts.forks, s.forks, 'forks');
  assert.equal(r.threads.forks, s.forks, 'forks counted by the runtime');
  if (s.joins !== null) assert.equal(counts.joins, s.joins, 'joins');
  assert.equal(counts.locks, s.locks, 'distinct locks');
  assert.equal(counts.acquisitions, s.acquisitions, 'acquisitions');
  assert.equal(hasLockOrderCycle(events), s.potential_deadlock, 'lock-order cycle (potential deadlock)');
  // Thread ids: every dense thread maps back to a runtime thread id, main first.
  assert.equal(r.metadata.threads[0], 0);
  assert.equal(r.metadata.threads.length, r.metadata.counts.threads);
  if (s.detached) {
    assert.ok(r.detached.length >= 1, 'a detached thread still running is reported');
    for (const d of r.detached) assert.ok(d.tid > 0 && (d.state === 'running' || d.state === 'pending'));
  } else {
    assert.deepEqual(r.detached, []);
  }
}

for (const [guest, g] of Object.entries(m.guests)) {
  describe(`${guest}.wasm`, () => {
    for (const [name, s] of Object.entries(g.scenarios)) {
      test(`${name}: ${s.outcome}`, async () => {
        const path = guestPath(g.file);
        switch (s.outcome) {
          case 'ok': {
            const r = await wasmgrind(path, name, { timeout: RUN_TIMEOUT_MS });
            checkOkTrace(r, s);
            break;
          }
          case 'trap': {
            const err = await wasmgrind(path, name, { timeout: RUN_TIMEOUT_MS }).then(
              () => assert.fail('the run must fail'),
              (e) => e,
            );
            assert.equal(err.kind, 'Trap', err.message);
            assert.ok(err.thread > 0, 'a child thread trapped');
            assert.match(err.message, new RegExp(`^thread ${err.thread} trapped: .*unreachable`));
            break;
          }
          case 'panic': {
            const err = await wasmgrind(path, name, { timeout: RUN_TIMEOUT_MS }).then(
              () => assert.fail('the run must fail'),
              (e) => e,
            );
            assert.equal(err.kind, 'GuestPanic', err.message);
            // GuestPanic (100) unless the guest library reports a more precise code, like
            // OutOfMemory (101); the message names the code with its description.
            if (s.panic_code !== undefined) assert.equal(err.code, s.panic_code);
            else assert.ok(err.code >= 100, `a guest panic code, not ${err.code}`);
            assert.ok(err.message.includes(s.panic_message), err.message);
            assert.match(err.message, new RegExp(`^thread ${err.thread} panicked: `));
            assert.match(err.message, new RegExp(`\\[the guest [a-z ]+ \\(code ${err.code}\\)\\]$`));
            if (s.forks > 0) assert.ok(err.thread > 0, 'the child panicked');
            else assert.equal(err.thread, 0);
            break;
          }
          case 'deadlock': {
            const start = Date.now();
            const err = await wasmgrind(path, name, { timeout: DEADLOCK_TIMEOUT_MS }).then(
              () => assert.fail('a deadlocked run must not finish'),
              (e) => e,
            );
            assert.ok(Date.now() - start < DEADLOCK_TIMEOUT_MS + 15_000, 'the timeout ends the run promptly');
            assert.equal(err.kind, 'Timeout', err.message);
            // Two threads are blocked on a lock that the other one holds.
            const blocked = err.threads.filter((t) => t.waitingOn !== undefined);
            assert.equal(blocked.length, 2, err.message);
            const [a, b] = blocked;
            assert.equal(a.lockHolder, b.tid, err.message);
            assert.equal(b.lockHolder, a.tid, err.message);
            assert.deepEqual(a.holds, [b.waitingOn]);
            assert.deepEqual(b.holds, [a.waitingOn]);
            assert.match(err.message, /blocked on lock 0x[0-9a-f]+ held by thread \d+/);
            // Main is blocked joining one of them.
            const main = err.threads.find((t) => t.tid === 0);
            assert.ok(main.joining === a.tid || main.joining === b.tid, err.message);
            // The trace up to the timeout comes with the error and shows the cycle.
            assert.ok(err.trace, 'the partial trace is attached');
            const events = parseStd(err.trace.std);
            checkRapidBin(err.trace.rapidbin, events, err.trace.metadata);
            const counts = checkTrace(events, err.trace.metadata, { allowHeldAtEnd: true });
            assert.equal(counts.forks, s.forks);
            assert.equal(counts.acquisitions, s.acquisitions);
            assert.equal(counts.locks, s.locks);
            assert.equal(hasLockOrderCycle(events), true);
            break;
          }
          default:
            assert.fail(`unknown outcome ${s.outcome} in the manifest`);
        }
      });
    }
  });
}

test('locks-only tracing records no memory accesses but the same locks', async () => {
  const s = m.guests.locks.scenarios.mutex_counter;
  const r = await wasmgrind(guestPath(m.guests.locks.file), 'mutex_counter', {
    memoryTrace: false,
    timeout: RUN_TIMEOUT_MS,
  });
  const events = parseStd(r.std);
  assert.equal(r.metadata.counts.variables, 0);
  assert.ok(events.every((e) => e.op !== 'r' && e.op !== 'w'));
  const counts = checkTrace(events, r.metadata);
  assert.equal(counts.acquisitions, s.acquisitions);
  assert.equal(counts.forks, s.forks);
});

test('untraced runs return no trace', async () => {
  const r = await wasmgrind(guestPath(m.guests.basics.file), 'nested_threads', {
    trace: false,
    timeout: RUN_TIMEOUT_MS,
  });
  assert.equal(r.status, 'ok');
  assert.equal(r.rapidbin, null);
  assert.equal(r.std, null);
  assert.equal(r.threads.forks, 3);
});

test('atomics as pseudo-locks: every atomic access is bracketed', async () => {
  const r = await wasmgrind(guestPath(m.guests.basics.file), 'thread_locals', {
    atomicsAsLocks: true,
    timeout: RUN_TIMEOUT_MS,
  });
  const events = parseStd(r.std);
  const pseudo = r.metadata.locks.map((l, i) => (l.kind === 'atomic' ? i : -1)).filter((i) => i >= 0);
  assert.ok(pseudo.length > 0, 'the barrier uses atomics');
  checkTrace(events, r.metadata);
});
