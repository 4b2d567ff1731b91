// Every scenario of guests/manifest.json, run through the real runtime (pkg/) in Node,
// checked against its expected outcome and against the recorded events.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  loadRuntime,
  manifest,
  guestPath,
  parseStd,
  checkRapidBin,
  checkTrace,
  checkFindings,
} from './helpers.mjs';
import { SOAK_ONLY } from '../soak_only.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();

/**
 * Timeout of every run. A deadlocked run must end through the runtime's own detection
 * (a DeadlockError), never through this.
 */
const RUN_TIMEOUT_MS = 120_000;

/**
 * Scenarios that run with locks-only tracing here (forks, joins and locks are checked;
 * memory accesses are not recorded): benchmark workloads with billions of memory accesses,
 * which full tracing would record for minutes. `cargo xtask bench runtime` runs them.
 */
const LOCKS_ONLY = {
  sort_large_array_1s: 'the >= 1 s benchmark workload of `cargo xtask bench runtime`',
};

/** Checks the counts of a trace that ended early (a failed run) against the manifest. */
function checkPartialTrace(trace, s, what) {
  assert.ok(trace, `${what}: the trace up to the failure comes with the error`);
  const events = parseStd(trace.std);
  checkRapidBin(trace.rapidbin, events, trace.metadata);
  assert.equal(trace.lockConsistency, null, `${what}: ${trace.lockConsistency}`);
  assert.equal(trace.forkJoinConsistency, null, `${what}: ${trace.forkJoinConsistency}`);
  const counts = checkTrace(events, trace.metadata, { allowHeldAtEnd: true });
  assert.equal(counts.forks, s.forks, `${what}: forks`);
  // A join that never returns (the deadlock) is not in the trace; the caller checks those.
  if (s.joins !== null && s.outcome !== 'deadlock') assert.equal(counts.joins, s.joins, `${what}: joins`);
  if (s.locks !== null) assert.equal(counts.locks, s.locks, `${what}: distinct locks`);
  if (s.acquisitions !== null) assert.equal(counts.acquisitions, s.acquisitions, `${what}: acquisitions`);
  return counts;
}

function checkOkTrace(r, s) {
  assert.equal(r.status, 'ok');
  const events = parseStd(r.std);
  checkRapidBin(r.rapidbin, events, r.metadata);
  assert.equal(r.metadata.counts.events, events.length);
  assert.equal(r.lockConsistency, null, `the runtime's own lock-consistency check failed: ${r.lockConsistency}`);
  assert.equal(r.forkJoinConsistency, null, `the runtime's own fork/join check failed: ${r.forkJoinConsistency}`);
  // A detached thread may be stopped anywhere, also holding a lock.
  const counts = checkTrace(events, r.metadata, { allowHeldAtEnd: s.detached });
  assert.equal(counts.forks, s.forks, 'forks');
  assert.equal(r.threads.forks, s.forks, 'forks counted by the runtime');
  if (s.joins !== null) assert.equal(counts.joins, s.joins, 'joins');
  // null: the count depends on timing (a Condvar wait re-acquires its mutex).
  if (s.locks !== null) assert.equal(counts.locks, s.locks, 'distinct locks');
  if (s.acquisitions !== null) assert.equal(counts.acquisitions, s.acquisitions, 'acquisitions');
  checkFindings(r.findings, s, 'findings');
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
      // The soak runs are too long for this suite; `cargo xtask soak` runs them (see
      // tests/soak_only.mjs and the test below).
      if (name in SOAK_ONLY) continue;
      const how = name in LOCKS_ONLY ? ' (locks-only tracing)' : '';
      test(`${name}: ${s.outcome}${how}`, async () => {
        const path = guestPath(g.file);
        switch (s.outcome) {
          case 'ok': {
            const r = await wasmgrind(path, name, {
              timeout: RUN_TIMEOUT_MS,
              ...(name in LOCKS_ONLY ? { memoryTrace: false } : {}),
            });
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
            assert.equal(s.panic_code, null, 'a trap has no panic code');
            checkPartialTrace(err.trace, s, name);
            checkFindings(err.findings, s, name);
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
            assert.equal(err.code, s.panic_code, err.message);
            assert.ok(err.message.includes(s.panic_message), err.message);
            checkPartialTrace(err.trace, s, name);
            checkFindings(err.findings, s, name);
            assert.match(err.message, new RegExp(`^thread ${err.thread} panicked: `));
            assert.match(err.message, new RegExp(`\\[the guest [a-z ]+ \\(code ${err.code}\\)\\]$`));
            if (s.forks > 0) assert.ok(err.thread > 0, 'the child panicked');
            else assert.equal(err.thread, 0);
            break;
          }
          case 'deadlock': {
            const err = await wasmgrind(path, name, { timeout: RUN_TIMEOUT_MS }).then(
              () => assert.fail('a deadlocked run must not finish'),
              (e) => e,
            );
            // The runtime's own detection ended the run, not the timeout.
            assert.equal(err.kind, 'DeadlockError', err.message);
            // The threads of the cycle each wait for a lock the next one holds, or to
            // join the next one.
            const locked = err.cycle.filter((e) => e.joining === undefined);
            const blocked = err.threads.filter((t) => t.waitingOn !== undefined);
            assert.equal(blocked.length, locked.length, err.message);
            for (const e of err.cycle) {
              const t = err.threads.find((x) => x.tid === e.thread);
              if (e.joining !== undefined) {
                assert.equal(t.joining, e.joining, err.message);
                assert.equal(e.holder, e.joining, err.message);
                continue;
              }
              assert.equal(t.waitingOn, e.waiting_on, err.message);
              assert.equal(t.lockHolder, e.holder, err.message);
              assert.ok(err.threads.find((x) => x.tid === e.holder).holds.includes(e.waiting_on), err.message);
            }
            assert.match(err.message, /thread \d+ waits for lock 0x[0-9a-f]+, held by thread \d+/);
            assert.match(err.report, /WARNING: deadlock/);
            const counts = checkPartialTrace(err.trace, s, name);
            // Joins made: the ones in the trace and the ones still blocked.
            const blockedJoins = err.threads.filter((t) => t.joining !== undefined).length;
            assert.equal(counts.joins + blockedJoins, s.joins, 'joins');
            checkFindings(err.findings, s, name);
            break;
          }
          default:
            assert.fail(`unknown outcome ${s.outcome} in the manifest`);
        }
      });
    }
  });
}

test('every soak-only scenario is in the manifest and is what `cargo xtask soak` runs', () => {
  const soak = readFileSync(new URL('../../xtask/src/soak.rs', import.meta.url), 'utf8');
  for (const name of Object.keys(SOAK_ONLY)) {
    const guest = Object.values(m.guests).find((g) => name in g.scenarios);
    assert.ok(guest, `${name} (tests/soak_only.mjs) is a scenario of guests/manifest.json`);
    assert.ok(soak.includes(`"${name}"`), `xtask/src/soak.rs runs ${name}`);
  }
});

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

test('atomics as pseudo-locks: each pseudo-lock brackets accesses of its own address', async () => {
  const r = await wasmgrind(guestPath(m.guests.basics.file), 'thread_locals', {
    atomicsAsLocks: true,
    timeout: RUN_TIMEOUT_MS,
  });
  const events = parseStd(r.std);
  const isPseudo = (l) => r.metadata.locks[l].kind === 'atomic';
  let brackets = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.op !== 'acq' || !isPseudo(e.arg)) continue;
    brackets++;
    // acq(P), one access (two for a read-modify-write: r then w), rel(P): all by the same
    // thread, all of P's address.
    const address = r.metadata.locks[e.arg].address;
    let j = i + 1;
    const accesses = [];
    while (events[j] && (events[j].op === 'r' || events[j].op === 'w')) accesses.push(events[j++]);
    const shape = accesses.map((a) => a.op).join('');
    assert.ok(shape === 'r' || shape === 'w' || shape === 'rw', `event ${i}: bracket holds ${shape || 'nothing'}`);
    for (const a of accesses) {
      assert.equal(a.t, e.t, `event ${i}: an access of another thread inside the bracket`);
      assert.equal(r.metadata.variables[a.arg].address, address, `event ${i}: the access is not of P's address`);
    }
    assert.deepEqual([events[j].op, events[j].arg, events[j].t], ['rel', e.arg, e.t], `event ${i}: no rel(P) after the access`);
  }
  assert.ok(brackets > 0, 'the barrier uses atomics');
  checkTrace(events, r.metadata);
});

test('the race of unsynchronized_counter is found in every run (20 of 20)', async () => {
  const g = m.guests.locks;
  const s = g.scenarios.unsynchronized_counter;
  for (let run = 1; run <= 20; run++) {
    const r = await wasmgrind(guestPath(g.file), 'unsynchronized_counter', { timeout: RUN_TIMEOUT_MS });
    checkFindings(r.findings, s, `run ${run}`);
  }
});
