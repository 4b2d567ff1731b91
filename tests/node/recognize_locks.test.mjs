// Lock recognition (option `recognizeLocks`, CLI `--recognize-locks`): the nightly guests
// use std's futex Mutex wherever they use `std::sync::Mutex`, so with the option their
// acquisitions and releases appear in the trace as lock events, consistently, and the
// findings stay the manifest's. Without the option nothing changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadRuntime,
  manifest,
  guestPath,
  parseStd,
  checkRapidBin,
  checkTrace,
  checkFindings,
  runNode,
  cliPath,
} from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();
const races = m.guests.races;

/** Acquisitions and releases per lock (dense id) of STD `events`. */
function perLock(events) {
  const counts = new Map();
  for (const e of events) {
    if (e.op !== 'acq' && e.op !== 'rel') continue;
    const c = counts.get(e.arg) ?? { acq: 0, rel: 0, threads: new Set() };
    c[e.op] += 1;
    c.threads.add(e.t);
    counts.set(e.arg, c);
  }
  return counts;
}

test('std_mutex_vec: every lock() of the std Mutex is an acquisition, released, findings unchanged', async () => {
  const s = races.scenarios.std_mutex_vec;
  const r = await wasmgrind(guestPath(races.file), 'std_mutex_vec', { recognizeLocks: true });
  assert.equal(r.status, 'ok');
  assert.equal(r.lockConsistency, null, r.lockConsistency);
  assert.equal(r.forkJoinConsistency, null, r.forkJoinConsistency);
  const events = parseStd(r.std);
  checkRapidBin(r.rapidbin, events, r.metadata);
  // Independent of the runtime's own check: no lock is taken while held, every release
  // is by the holder, and nothing is held at the end.
  checkTrace(events, r.metadata);
  const locks = perLock(events);
  // Four threads push 250 numbers each, one lock() per push, and the main thread locks
  // it once more to check the result: one lock has exactly 1001 acquisitions, by five
  // threads, each released.
  const vec = [...locks.values()].filter((c) => c.acq === 1001);
  assert.equal(vec.length, 1, `per-lock counts: ${JSON.stringify([...locks.values()].map((c) => c.acq))}`);
  assert.equal(vec[0].rel, 1001);
  assert.equal(vec[0].threads.size, 5);
  for (const c of locks.values()) assert.equal(c.acq, c.rel);
  checkFindings(r.findings, s, 'std_mutex_vec with recognizeLocks');
});

test('without recognizeLocks the std Mutex is not a lock (the manifest counts)', async () => {
  const s = races.scenarios.std_mutex_vec;
  const r = await wasmgrind(guestPath(races.file), 'std_mutex_vec', {});
  const events = parseStd(r.std);
  assert.equal(events.filter((e) => e.op === 'acq' || e.op === 'rel' || e.op === 'req').length, 0);
  assert.equal(r.acquisitions, s.acquisitions);
  checkFindings(r.findings, s, 'std_mutex_vec');
});

test('every race scenario: consistent lock events and the manifest findings with recognizeLocks', async () => {
  for (const [name, s] of Object.entries(races.scenarios)) {
    assert.equal(s.outcome, 'ok', `${name}: this test expects scenarios that run to the end`);
    const r = await wasmgrind(guestPath(races.file), name, { recognizeLocks: true, lockRequests: true });
    assert.equal(r.status, 'ok', name);
    assert.equal(r.lockConsistency, null, `${name}: ${r.lockConsistency}`);
    // Std's channels install pointers and reset words from other threads, which may
    // leave a recognised word held at the end; the order of the events must hold anyway.
    checkTrace(parseStd(r.std), r.metadata, { allowHeldAtEnd: true });
    checkFindings(r.findings, s, `${name} with recognizeLocks`);
  }
});

test('std_condvar_handoff: the Condvar re-acquires the recognised Mutex after each wait', async () => {
  const r = await wasmgrind(guestPath(races.file), 'std_condvar_handoff', { recognizeLocks: true });
  assert.equal(r.lockConsistency, null, r.lockConsistency);
  const events = parseStd(r.std);
  checkTrace(events, r.metadata);
  // 50 items, each put in by the producer and taken out by the consumer under the lock.
  const busiest = Math.max(...[...perLock(events).values()].map((c) => c.acq));
  assert.ok(busiest >= 100, `the slot's mutex was acquired ${busiest} times`);
});

test('cli: --recognize-locks records std Mutex acquisitions, --no-recognize-locks does not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-locks-'));
  try {
    const path = guestPath(races.file);
    const acqs = () => parseStd(readFileSync(join(dir, 'trace.std'), 'utf8')).filter((e) => e.op === 'acq').length;
    let out = await runNode([cliPath, 'run', path, 'std_mutex_vec', '--recognize-locks', '--out', dir]);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(acqs() >= 1001, `${acqs()} acquisitions`);
    out = await runNode([cliPath, 'run', path, 'std_mutex_vec', '--recognize-locks', '--no-recognize-locks', '--out', dir]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(acqs(), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a deadlock on traced locks ends the same way with recognizeLocks (their words are left to the traced events)', async () => {
  const failures = m.guests.failures;
  const err = await wasmgrind(guestPath(failures.file), 'deadlock', { recognizeLocks: true }).then(
    () => assert.fail('a deadlocked run must not finish'),
    (e) => e,
  );
  assert.equal(err.kind, 'DeadlockError', err.message);
  assert.equal(err.cycle.length, 2, err.message);
  assert.equal(err.trace.lockConsistency, null, err.trace.lockConsistency);
  // The manifest's counts (two locks, each acquired once) plus one recognised lock, the
  // linker's `__wasm_init_memory` flag (taken 0 -> 1 by the first instance, released by
  // its store of 2): recognition adds no event for the words of the traced locks.
  const s = failures.scenarios.deadlock;
  const events = parseStd(err.trace.std);
  const counts = checkTrace(events, err.trace.metadata, { allowHeldAtEnd: true });
  assert.equal(counts.locks, s.locks + 1);
  assert.equal(counts.acquisitions, s.acquisitions + 1);
  const where = (e) => err.trace.metadata.locations[e.loc]?.func_name;
  const recognised = events.filter((e) => (e.op === 'acq' || e.op === 'rel') && where(e) === '__wasm_init_memory');
  assert.deepEqual(recognised.map((e) => e.op), ['acq', 'rel']);
  checkFindings(err.findings, failures.scenarios.deadlock, 'deadlock with recognizeLocks');
});
