// Failure semantics of the runtime: what is rejected before anything runs, how a failing
// thread ends the run, and that nothing is left running afterwards.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRuntime, manifest, guestPath, cliPath, runNode } from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();
const basics = () => guestPath(m.guests.basics.file);
const failures = () => guestPath(m.guests.failures.file);
const outDir = mkdtempSync(join(tmpdir(), 'wasmgrind-failures-'));
after(() => rmSync(outDir, { recursive: true, force: true }));

async function rejection(promise) {
  return promise.then(
    (r) => assert.fail(`expected a rejection, got ${JSON.stringify(r && r.status)}`),
    (e) => e,
  );
}

test('an unknown export is rejected before anything runs, naming the runnable ones', async () => {
  const err = await rejection(wasmgrind(basics(), 'no_such_function'));
  assert.ok(err instanceof Error);
  assert.equal(err.kind, 'EntryError');
  assert.equal(err.variant, 'UnknownExport');
  assert.match(err.message, /exports no function `no_such_function`/);
  assert.match(err.message, /`spawn_join`/);
});

test('an export with parameters is rejected', async () => {
  const err = await rejection(wasmgrind(basics(), 'thread_start'));
  assert.equal(err.kind, 'EntryError');
  assert.equal(err.variant, 'NotParameterless');
  assert.match(err.message, /`thread_start` has the type \(i32\)/);
});

test('an export with results is rejected', async () => {
  const err = await rejection(wasmgrind(basics(), '__wasmgrind_malloc'));
  assert.equal(err.variant, 'NotParameterless');
  assert.match(err.message, /\(i32, i32\) -> \(i32\)/);
});

test('a bad binary is rejected with the patcher error', async () => {
  const err = await rejection(wasmgrind(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 'run'));
  assert.equal(err.kind, 'PatchError');
  assert.match(err.message, /not a valid WebAssembly module/);
});

test('a module without shared memory is rejected with the patcher error', async () => {
  // (module (func (export "run")))
  const wasm = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01,
    0x00, 0x07, 0x07, 0x01, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
  ]);
  assert.ok(WebAssembly.validate(wasm));
  const err = await rejection(wasmgrind(wasm, 'run'));
  assert.equal(err.kind, 'PatchError');
  assert.match(err.message, /memory/);
  // One error names everything the module lacks, not only the first problem.
  assert.equal(err.variant, 'BuildProblems');
  assert.ok(!err.message.includes('\n'), err.message);
  for (const needle of ['--import-memory', '--export=__heap_base', '--export=__wasm_init_tls', '`__wasmgrind_malloc`', '`__wasmgrind_free`']) {
    assert.ok(err.message.includes(needle), `${needle} in ${err.message}`);
  }
});

test('a missing file is rejected with the path', async () => {
  await assert.rejects(wasmgrind('/no/such/module.wasm', 'run'), /no\/such\/module\.wasm/);
});

test('bad options are rejected with the option named', async () => {
  let err = await rejection(wasmgrind(basics(), 'spawn_join', { timout: 5 }));
  assert.equal(err.kind, 'UsageError');
  assert.match(err.message, /unknown option `timout` \(did you mean `timeout`\?\) \(the options are .*\btimeout\b/);
  // Several unknown ones: the list of the options comes once.
  err = await rejection(wasmgrind(basics(), 'spawn_join', { memorytrace: false, bogusOption: 1 }));
  assert.match(err.message, /unknown option `memorytrace` \(did you mean `memoryTrace`\?\); \(2\) unknown option `bogusOption` \(the options are /);
  assert.equal(err.message.match(/the options are/g).length, 1);
  err = await rejection(wasmgrind(basics(), 'spawn_join', { memoryTrace: 'yes' }));
  assert.match(err.message, /`memoryTrace` must be a boolean/);
  // The stack size's rule is checked with the other options (before the module is read),
  // and every problem is named at once, the function name's too.
  err = await rejection(wasmgrind(basics(), 'spawn_join', { stackSize: 1000 }));
  assert.equal(err.kind, 'UsageError', err.message);
  assert.match(err.message, /option `stackSize` must be a multiple of 16 and at least 4096 \(bytes\), not 1000/);
  err = await rejection(wasmgrind(join(outDir, 'no-such.wasm'), '', { stackSize: 4100, timeout: -1 }));
  assert.equal(err.kind, 'UsageError', err.message);
  assert.match(err.message, /^3 problems: \(1\) the function name must be a non-empty string.*`timeout`.*`stackSize`/);
  // The names of an object's prototype are no options, and an array is no options object.
  err = await rejection(wasmgrind(basics(), 'spawn_join', { constructor: 1, hasOwnProperty: () => 1 }));
  assert.match(err.message, /unknown option `constructor`.*unknown option `hasOwnProperty`/);
  err = await rejection(wasmgrind(basics(), 'spawn_join', [1]));
  assert.match(err.message, /options must be an object, not an array/);
  // What needs a trace is refused without one, rather than silently getting nothing.
  err = await rejection(wasmgrind(basics(), 'spawn_join', { trace: false, onChunk: () => {}, timeline: true }));
  assert.equal(err.kind, 'UsageError');
  assert.match(err.message, /option `onChunk` needs `trace`.*option `timeline` needs `trace`/);
});

test('a thread whose stack does not fit in memory is a trap with a hint to use a smaller stack', async () => {
  // basics.wasm's memory is at most 1 GiB: a stack of 1 GiB cannot be allocated.
  const err = await rejection(wasmgrind(basics(), 'spawn_join', { stackSize: 2 ** 30, memoryTrace: false }));
  assert.equal(err.kind, 'Trap', err.message);
  assert.match(err.message, /thread 1 trapped: unreachable; hint: the thread's stack \(stackSize 1073741824 bytes/);
  assert.match(err.message, /use a smaller stackSize/);
});

test('aborting the signal stops the run with a Stopped error that says what the threads were doing', async () => {
  // Untraced, the deadlock is not detected: without the signal the run would wait for its
  // timeout.
  const controller = new AbortController();
  const started = performance.now();
  setTimeout(() => controller.abort(), 300);
  const err = await rejection(wasmgrind(failures(), 'deadlock', { trace: false, signal: controller.signal }));
  assert.equal(err.kind, 'Stopped', err.message);
  assert.match(err.message, /was stopped by its caller \(an aborted signal/);
  // (When the abort comes before the function starts, thread 0 is still pending.)
  assert.match(err.message, /thread 0: (running|pending)/);
  assert.ok(Array.isArray(err.threads) && err.threads.length >= 1);
  assert.ok(performance.now() - started < 10_000, 'it stopped at once');
  // A signal aborted already: nothing starts.
  const early = await rejection(wasmgrind(failures(), 'deadlock', { signal: AbortSignal.abort() }));
  assert.equal(early.kind, 'Stopped');
  assert.match(early.message, /not started: its signal was aborted already/);
  const bad = await rejection(wasmgrind(failures(), 'deadlock', { signal: 5 }));
  assert.match(bad.message, /option `signal` must be an AbortSignal or null/);
});

test('aborting the signal while the module is read (a stream that stalls) stops the call', { timeout: 30_000 }, async () => {
  // A Response whose body sends the magic bytes and then nothing: reading it never ends.
  const stalled = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array([0, 0x61, 0x73, 0x6d]));
        },
      }),
    );
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const started = performance.now();
  const err = await rejection(wasmgrind(stalled(), 'run', { signal: controller.signal }));
  assert.equal(err.kind, 'Stopped', err.message);
  assert.match(err.message, /not started: it was stopped by its caller \(its signal was aborted\) while its module was read/);
  assert.ok(performance.now() - started < 5_000, 'it stopped at once');
});

test('the caller\'s bytes are left intact', async () => {
  const bytes = new Uint8Array(readFileSync(basics()));
  const copy = bytes.slice();
  const r = await wasmgrind(bytes, 'spawn_join', { memoryTrace: false });
  assert.equal(r.status, 'ok');
  assert.deepEqual(bytes, copy);
});

test('a module that cannot be read is a UsageError naming it and saying why', async () => {
  const cases = [
    [join(outDir, 'no-such.wasm'), /cannot read the module `.*no-such\.wasm`: no such file/],
    [outDir, /cannot read the module `.*`: it is a directory, not a \.wasm file/],
    ['http://[bad/x.wasm', /the module's URL `http:\/\/\[bad\/x\.wasm` is not a valid URL/],
  ];
  for (const [binary, message] of cases) {
    const err = await rejection(wasmgrind(binary, 'run'));
    assert.equal(err.kind, 'UsageError', err.message);
    assert.match(err.message, message);
  }
});

// A wasi program is normally run without a function name: a file that is no module at all
// must be told as such, not asked for a function name.
test('bytes that are no module are reported as such, with or without a function name', async () => {
  const html = new TextEncoder().encode('<html>404 Not Found</html>');
  for (const name of [undefined, 'run']) {
    const err = await rejection(wasmgrind(html, name));
    assert.equal(err.kind, 'PatchError', err.message);
    assert.match(err.message, /not a valid WebAssembly module: magic header not detected/);
  }
});

test('a module can be given as a Blob, a Response or a SharedArrayBuffer', async () => {
  const bytes = readFileSync(basics());
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  for (const binary of [new Blob([bytes]), new Response(bytes), shared]) {
    const r = await wasmgrind(binary, 'spawn_join', { memoryTrace: false });
    assert.equal(r.status, 'ok');
  }
  const notFound = await rejection(wasmgrind(new Response('gone', { status: 404, statusText: 'Not Found' }), 'spawn_join'));
  assert.equal(notFound.kind, 'UsageError');
  assert.match(notFound.message, /cannot read the module: the response is HTTP 404 Not Found/);
  // A body is read once: a Response used already is a UsageError that says so.
  const used = new Response(bytes);
  await used.arrayBuffer();
  const again = await rejection(wasmgrind(used, 'spawn_join'));
  assert.equal(again.kind, 'UsageError', again.message);
  assert.match(again.message, /its body was read already/);
});

// A Buffer's own `slice()` is a view, not a copy: the runtime must not transfer (detach) the
// caller's Buffer, which the caller may pass again, as a loop over runs does.
test('the same Node.js Buffer can be run twice', async () => {
  const buffer = readFileSync(basics());
  const copy = Buffer.from(buffer);
  for (let i = 0; i < 2; i++) {
    const r = await wasmgrind(buffer, 'spawn_join', { memoryTrace: false });
    assert.equal(r.status, 'ok');
  }
  assert.equal(buffer.buffer.byteLength > 0, true, 'the Buffer was detached');
  assert.deepEqual(buffer, copy);
});

test('a trap in a child thread names the thread, and the process exits', async () => {
  const out = await runNode([cliPath, 'run', failures(), 'child_trap', '--out', join(outDir, 'trap')]);
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /wasmgrind: error: thread 1 trapped: .*unreachable/);
});

test('a trap\'s stack names the WebAssembly functions demangled and keeps the raw stack', async () => {
  const err = await rejection(wasmgrind(failures(), 'child_trap'));
  assert.equal(err.kind, 'Trap', err.message);
  // V8 writes a frame as `at <module name>.<function name> (wasm://...)`; a demangled
  // name may have spaces (`<T as Trait>::f`).
  const frames = (stack) => stack.split('\n').filter((l) => l.includes('wasm://'));
  const names = (stack) => frames(stack).map((l) => /at (.+) \(wasm:\/\//.exec(l)).filter(Boolean).map((m) => m[1]);
  const mangled = /(^|\.)(_ZN|_R[A-Z])/;
  assert.ok(names(err.wasmStack).some((n) => n.includes('failures::child_trap')), err.wasmStack);
  for (const n of names(err.wasmStack)) assert.doesNotMatch(n, mangled, `a mangled name is left: ${n}`);
  assert.equal(frames(err.rawWasmStack).length, frames(err.wasmStack).length);
  assert.ok(names(err.rawWasmStack).some((n) => mangled.test(n)), err.rawWasmStack);
  const out = await runNode([cliPath, 'run', failures(), 'child_trap', '--out', join(outDir, 'trap-stack')]);
  assert.equal(out.code, 1, out.stderr);
  const printed = out.stderr.split('\n').filter((l) => l.startsWith('wasmgrind:   at '));
  assert.ok(printed.some((l) => l.includes('failures::child_trap')), out.stderr);
  for (const l of printed) assert.doesNotMatch(l, /at (\S+\.)?(_ZN|_R[A-Z])/, out.stderr);
});

test('std::thread::spawn panics with a hint to use wasmgrind_guest::thread::spawn', async () => {
  const s = m.guests.failures.scenarios.std_thread_spawn;
  const hint = 'use wasmgrind_guest::thread::spawn instead of std::thread::spawn';
  const err = await rejection(wasmgrind(failures(), 'std_thread_spawn'));
  assert.equal(err.kind, 'GuestPanic');
  assert.equal(err.code, s.panic_code);
  assert.ok(err.panicMessage.includes(s.panic_message), err.panicMessage);
  assert.match(err.panicMessage, /Unsupported|operation not supported on this platform/);
  assert.ok(err.message.includes(hint), err.message);
  const out = await runNode([cliPath, 'run', failures(), 'std_thread_spawn', '--out', join(outDir, 'std-spawn')]);
  assert.equal(out.code, 1, out.stderr);
  const line = out.stderr.split('\n').find((l) => l.startsWith('wasmgrind: error: '));
  assert.ok(line.includes('failed to spawn thread') && line.includes(hint), out.stderr);
  // Other panics get no hint.
  const other = await rejection(wasmgrind(failures(), 'guest_panic'));
  assert.ok(!other.message.includes('hint'), other.message);
});

test('a panic in a child thread reports its message, and the process exits', async () => {
  const out = await runNode([cliPath, 'run', failures(), 'child_panic', '--out', join(outDir, 'panic')]);
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /thread 1 panicked: .*wasmgrind child panic: no items to process/);
});

test('a detached thread is reported and stopped, and does not keep Node alive', async () => {
  const out = await runNode([cliPath, 'run', basics(), 'detached_thread', '--out', join(outDir, 'detached')]);
  assert.equal(out.code, 0, out.stderr);
  // The thread loops forever: the process ending at all (runNode fails otherwise) shows
  // it was stopped.
  assert.match(out.stdout, /thread 1 was still running .* \(a detached thread\); it was stopped/);
});

test('a deadlock is detected and ends the run with exit 66, naming the cycle', async () => {
  const out = await runNode([cliPath, 'run', failures(), 'deadlock', '--out', join(outDir, 'deadlock')]);
  assert.equal(out.code, 66, out.stderr);
  assert.match(out.stderr, /wasmgrind: error: the run of `deadlock` deadlocked: 2 threads wait for each other's locks/);
  assert.match(out.stderr, /thread \d+ waits for lock 0x[0-9a-f]+, held by thread \d+/);
  assert.match(out.stderr, /WARNING: deadlock/);
  assert.match(out.stderr, /the trace up to the failure is in/);
});

test('without tracing, a deadlock ends in a timeout error listing the blocked threads', async () => {
  // Untraced, the runtime does not see the locks, so only the timeout can end the run.
  const err = await rejection(wasmgrind(failures(), 'deadlock', { trace: false, timeout: 2_000 }));
  assert.equal(err.kind, 'Timeout', err.message);
  assert.match(err.message, /did not finish within 2000 ms/);
  assert.match(err.message, /thread 0: running, blocked joining thread \d+/);
});

test('an error thrown in one run does not affect the next one', async () => {
  await rejection(wasmgrind(failures(), 'guest_panic'));
  const r = await wasmgrind(basics(), 'spawn_join', { memoryTrace: false });
  assert.equal(r.status, 'ok');
  assert.equal(r.threads.forks, 1);
});

// wgrind_worker.js, used directly as a page may: `{ started: true }` comes only when the run
// message asks for it (wasmgrind() does, to time its backstop from the function's start, as
// the run's timeout counts), and before the result; otherwise the only answer is the result.
test('wgrind_worker.js says when the function starts only when asked to', async () => {
  const { Worker } = await import('node:worker_threads');
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString('--no-liftoff'); // what wasmgrind() does before it starts the manager
  const binary = new Uint8Array(readFileSync(basics()));
  const messages = async (asked) => {
    const w = new Worker(new URL('wgrind_worker.js', `file://${join(cliPath, '..')}/`));
    try {
      return await new Promise((resolve, reject) => {
        const seen = [];
        w.on('error', reject);
        w.on('message', (msg) => {
          seen.push(Object.keys(msg));
          if (msg.result !== undefined || msg.error !== undefined) resolve(seen);
        });
        w.postMessage({ binary: binary.slice(), functionName: 'spawn_join', options: {}, ...(asked ? { started: true } : {}) });
      });
    } finally {
      await w.terminate();
    }
  };
  assert.deepEqual(await messages(true), [['started'], ['result', 'reusable']]);
  assert.deepEqual(await messages(false), [['result', 'reusable']]);
});

// A wgrind_worker.js whose answer says `reusable: true` kept its thread workers: it runs the
// next run it is given with them; one run at a time; none after an answer that is not
// reusable.
test('wgrind_worker.js runs another run after an answer that says it is reusable', async () => {
  const { Worker } = await import('node:worker_threads');
  const binary = new Uint8Array(readFileSync(basics()));
  const w = new Worker(new URL('wgrind_worker.js', `file://${join(cliPath, '..')}/`));
  const answers = [];
  let wake = null;
  w.on('message', (msg) => {
    if (msg.result !== undefined || msg.error !== undefined) {
      answers.push(msg);
      wake?.();
    }
  });
  const answer = (n) =>
    new Promise((resolve, reject) => {
      w.once('error', reject);
      const check = () => (answers.length >= n ? resolve(answers[n - 1]) : (wake = check));
      check();
    });
  try {
    const run = { functionName: 'spawn_join', options: {} };
    w.postMessage({ ...run, binary: binary.slice() });
    // A second run while the first is in progress is refused, and the first goes on.
    w.postMessage({ ...run, binary: binary.slice() });
    const [a, b] = [await answer(1), await answer(2)];
    const refused = a.error ?? b.error;
    const first = a.result ?? b.result;
    assert.equal(refused.kind, 'UsageError');
    assert.match(refused.message, /one run at a time/);
    assert.equal(first.status, 'ok');
    assert.equal((a.result ? a : b).reusable, true);
    w.postMessage({ ...run, binary: binary.slice() });
    const next = await answer(3);
    assert.equal(next.result?.status, 'ok', JSON.stringify(next.error));
    assert.equal(next.reusable, true);
    assert.ok(next.result.timings.workersKept >= 1, `${next.result.timings.workersKept} workers kept`);
    assert.equal(next.result.events, first.events);
    // A failed run is not reusable: the worker then refuses more runs, and says why.
    w.postMessage({ ...run, functionName: 'no_such_function', binary: binary.slice() });
    const failed = await answer(4);
    assert.equal(failed.error?.kind, 'EntryError');
    w.postMessage({ ...run, binary: binary.slice() });
    const refusedAfter = await answer(5);
    assert.equal(refusedAfter.error?.kind, 'UsageError');
    assert.match(refusedAfter.error.message, /takes no more runs.*terminate it/);
  } finally {
    await w.terminate();
  }
});
