// Programs built with plain std on stable for wasm32-wasip1-threads, run unchanged: the
// wasi-threads ABI (thread-spawn, thread ids, proc_exit from any thread, traps and panics
// in child threads, thousands of threads with flat memory) and the WASI preview1
// functions of wasi.js (output, args, environ, clocks, sleeping, random, no files), through
// the API and the command line. The guest is guests-wasi/runtime-checks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, loadRuntime, cliPath, guestsDir, guestPath, manifest } from './helpers.mjs';

/**
 * runtime_checks.wasm: where `cargo xtask guests` copies it, else where `cargo build
 * --release` in guests-wasi/ puts it.
 */
function runtimeChecks() {
  const copied = `${guestsDir}wasi/runtime_checks.wasm`;
  const built = `${root}guests-wasi/target/wasm32-wasip1-threads/release/runtime_checks.wasm`;
  for (const p of [copied, built]) if (existsSync(p)) return p;
  throw new Error(
    `runtime_checks.wasm is missing: neither ${copied} nor ${built} exists; run \`cargo xtask guests\` ` +
      '(or `cargo build --release -p runtime_checks` in guests-wasi/) first',
  );
}

const { wasmgrind } = await loadRuntime();
const wasm = runtimeChecks();

/** Runs a scenario through the API; `output` collects what onOutput received. */
async function run(args, options = {}) {
  const output = { stdout: '', stderr: '' };
  const onOutput = (stream, text) => {
    output[stream] += text;
  };
  const result = await wasmgrind(wasm, undefined, { args, onOutput, ...options });
  return { result, output };
}

/** Runs a scenario that must fail; returns the error and what onOutput received. */
async function fail(args, options = {}) {
  const output = { stdout: '', stderr: '' };
  const onOutput = (stream, text) => {
    output[stream] += text;
  };
  const error = await wasmgrind(wasm, undefined, { args, onOutput, ...options }).then(
    (r) => assert.fail(`the run succeeded: ${JSON.stringify({ status: r.status, stdout: r.stdout })}`),
    (e) => e,
  );
  return { error, output };
}

/** The command line, with stdout and stderr read to their end. */
async function cli(args) {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('hello: stdout, stderr, args and env reach the result and onOutput, in order', async () => {
  const { result, output } = await run(['hello', 'one', 'two words'], { env: { WASMGRIND_GREETING: 'hi there' } });
  assert.equal(result.abi, 'wasi');
  assert.equal(result.status, 'ok');
  assert.equal(result.exitCode, 0);
  const stdout = 'hello from stdout\nargs: one two words\nWASMGRIND_GREETING=hi there\n0 1 2 done\n';
  assert.equal(result.stdout, stdout);
  assert.equal(result.stderr, 'hello from stderr\n');
  assert.deepEqual(output, { stdout: result.stdout, stderr: result.stderr });
  assert.equal(result.forkJoinConsistency, null);
  // Without env the variable is not set: the environment is only what the options give.
  const bare = await run(['hello']);
  assert.match(bare.result.stdout, /^args: $/m);
  assert.match(bare.result.stdout, /^WASMGRIND_GREETING=\(unset\)$/m);
});

test('onOutput gets the bytes as written, binary output included, and their text', async () => {
  const chunks = [];
  let text = '';
  const result = await wasmgrind(wasm, undefined, {
    args: ['binary_output'],
    onOutput: (stream, t, bytes) => {
      assert.equal(stream, 'stdout');
      assert.ok(bytes instanceof Uint8Array);
      chunks.push(bytes);
      text += t;
    },
  });
  const written = [0xff, 0x00, 0x80, 0xc3, 0x0a, 0xc3, 0xa9, 0x0a];
  assert.deepEqual(chunks.flatMap((c) => [...c]), written);
  const decoded = new TextDecoder().decode(new Uint8Array(written));
  assert.equal(decoded, '\ufffd\u0000\ufffd\ufffd\né\n');
  assert.equal(text, decoded);
  assert.equal(result.stdout, decoded);
});

// A thread that waits for a lock whose holder ended without releasing it (a forgotten
// guard) waits for ever: the timeout's report says why.
test('a wait for a lock that an ended thread holds is named as such when the run times out', async () => {
  const { error } = await fail(['abandoned_lock'], { timeout: 2000 });
  assert.equal(error.kind, 'Timeout', error.message);
  assert.match(error.message, /thread 0: running, blocked on lock 0x[0-9a-f]+ held by thread 1, which ended without releasing it/);
  const main = error.threads.find((t) => t.tid === 0);
  assert.equal(main.holderEnded, true);
  // Main holds no lock: the words that wasi-libc's `_start` and std's thread-local guard
  // set once from 0 are taken like locks but never behave as locks, and are not listed.
  assert.equal(main.holds, undefined, JSON.stringify(main));
  assert.doesNotMatch(error.message, /thread 0: [^\n]*holds/);
});

test('the command line writes a program\'s stdout byte for byte', async () => {
  const { spawnSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-binary-'));
  try {
    const out = spawnSync(process.execPath, [cliPath, 'run', wasm, '--out', dir, '--', 'binary_output'], { cwd: root });
    assert.equal(out.status, 0, String(out.stderr));
    assert.deepEqual([...out.stdout], [0xff, 0x00, 0x80, 0xc3, 0x0a, 0xc3, 0xa9, 0x0a]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A callback that fails stops the run with an OutputError, whether it throws or, being
// async, rejects (an unhandled rejection would end the caller's whole process instead).
test('an onOutput that throws or rejects stops the run with an OutputError', async () => {
  for (const onOutput of [
    () => {
      throw new Error('cannot write');
    },
    async () => {
      throw new Error('cannot write');
    },
  ]) {
    const error = await wasmgrind(wasm, undefined, { args: ['hello'], onOutput }).then(
      (r) => assert.fail(`the run succeeded: ${r.status}`),
      (e) => e,
    );
    assert.equal(error.kind, 'OutputError', error.message);
    assert.match(error.message, /the onOutput callback failed: cannot write; the run was stopped/);
    // Like every failed run's error, it carries what the run had done until it was stopped.
    assert.match(error.stdout, /^hello from stdout\n/);
    assert.equal(error.abi, 'wasi');
    assert.ok(error.trace && error.findings, 'the trace and the findings so far');
  }
});

test('the options args and env are checked', async () => {
  await assert.rejects(wasmgrind(wasm, undefined, { args: 'hello' }), /option `args` must be an array of strings/);
  await assert.rejects(wasmgrind(wasm, undefined, { env: { 'A=B': 'x', C: 1 } }), /wrong: `A=B`, `C`/);
});

test('spawn_join: four std threads print, return values and are joined', async () => {
  const { result } = await run(['spawn_join']);
  const lines = result.stdout.trimEnd().split('\n');
  assert.equal(lines.at(-1), 'sum: 100');
  assert.deepEqual(lines.slice(0, -1).sort(), [1, 2, 3, 4].map((i) => `thread ${i} running`));
  assert.equal(result.threads.forks, 4);
  assert.equal(result.exitCode, 0);
  assert.equal(result.forkJoinConsistency, null);
  // Every thread that ended recorded its end; none was left running.
  assert.deepEqual(result.detached, []);
});

// The joins of a wasi program come from the wrappers of libc's pthread_join, which a
// locks-only run (no memory tracing) has too: the deadlock predictor orders threads by them.
test('with and without memory tracing, every std thread joined is a join in the trace', async () => {
  for (const memoryTrace of [true, false]) {
    const { result } = await run(['spawn_join'], { memoryTrace });
    const lines = result.std.split('\n');
    const count = (op) => lines.filter((l) => l.split('|')[1]?.startsWith(`${op}(`)).length;
    assert.equal(count('fork'), 4, `memoryTrace ${memoryTrace}: forks`);
    assert.equal(count('join'), 4, `memoryTrace ${memoryTrace}: joins`);
    assert.equal(result.forkJoinConsistency, null, `memoryTrace ${memoryTrace}`);
    // Without memory tracing nothing of a std program was checked: its report says so.
    assert.equal(result.findings.locksOnly, memoryTrace ? undefined : 'nothing');
    if (memoryTrace) assert.doesNotMatch(result.report, /Locks-only run/);
    else assert.match(result.report, /^Locks-only run .*\n.*nothing was checked; run with memory tracing/);
  }
});

// A std thread that returns at once often ends before its creator's pthread_create has
// returned: it is joinable all the same, and its join is a join of the trace (it was
// once recorded as an End, and a third to nine tenths of such joins were missing).
test('threads that end before pthread_create returns are joined in the trace too', async () => {
  // How soon a thread ends depends on the machine: several runs, so that some end early.
  for (let i = 0; i < 4; i++) {
    const { result } = await run(['many_threads', '100']);
    const lines = result.std.split('\n');
    const count = (op) => lines.filter((l) => l.split('|')[1]?.startsWith(`${op}(`)).length;
    assert.equal(count('fork'), 100, `run ${i + 1}`);
    assert.equal(count('join'), 100, `run ${i + 1}`);
    assert.equal(result.forkJoinConsistency, null, `run ${i + 1}`);
  }
});

test('a trap in a child thread fails the run with the thread and its output so far', async () => {
  const { error, output } = await fail(['child_trap']);
  assert.equal(error.kind, 'Trap');
  assert.ok(error.thread >= 1, `the child trapped, not thread ${error.thread}`);
  assert.match(error.message, /trapped: unreachable/);
  assert.equal(error.rustPanic, undefined);
  assert.equal(error.exitCode, null);
  assert.equal(error.stderr, 'child: about to trap\n');
  assert.equal(output.stderr, error.stderr);
  assert.doesNotMatch(error.stdout, /not reached/);
});

test("a std panic in a child thread: its message reaches stderr, then the thread's abort fails the run", async () => {
  const { error } = await fail(['child_panic']);
  assert.equal(error.kind, 'Trap');
  assert.equal(error.rustPanic, true);
  assert.match(error.message, /panicked \(a Rust panic aborts/);
  assert.match(error.stderr, /panicked at runtime-checks\/src\/main\.rs:\d+:\d+:\nchild thread gives up: the list is empty\n/);
  assert.equal(error.exitCode, null);
});

test('proc_exit(3) in a child thread ends the whole run with exit code 3', async () => {
  const { result } = await run(['child_exit']);
  assert.equal(result.status, 'exit');
  assert.equal(result.exitCode, 3);
  assert.ok(result.exitThread >= 1);
  assert.equal(result.stdout, 'child: exiting with 3\n');
  assert.equal(result.forkJoinConsistency, null);
});

test('without arguments the program prints its usage and exits 2 by itself', async () => {
  const { result } = await run([]);
  assert.equal(result.exitCode, 2);
  assert.equal(result.exitThread, 0);
  assert.match(result.stderr, /^usage: runtime_checks SCENARIO/);
});

test('2,000 threads spawned and joined one after the other leave the memory flat', async () => {
  const few = (await run(['many_threads', '200'])).result;
  assert.equal(few.stdout, '200 threads joined, total 594\n');
  const many = (await run(['many_threads', '2000'])).result;
  assert.equal(many.stdout, '2000 threads joined, total 5995\n');
  assert.equal(many.threads.forks, 2000);
  // More threads than `maxThreads` (1024) ids: ended threads gave theirs back, and the
  // trace says so (an end event before a fork of the same id).
  assert.equal(many.threads.ids, 1024);
  assert.equal(many.forkJoinConsistency, null);
  assert.equal(many.memory.target, few.memory.target, 'the target memory grew with the number of threads');
});

test('more threads at once than maxThreads: thread-spawn fails and std reports it', async () => {
  // spawn_held keeps 4 threads alive at once (a barrier that main reaches after its last
  // spawn); 3 ids leave room for 2, whatever the timing.
  const { result } = await run(['spawn_held']);
  assert.equal(result.stdout, 'sum: 10\n');
  const { error } = await fail(['spawn_held'], { maxThreads: 3 });
  assert.equal(error.rustPanic, true);
  assert.match(error.stderr, /failed to spawn thread/);
});

test('std::thread::sleep sleeps in the main thread and in a child', async () => {
  // The program itself checks that each sleep lasted at least 50 ms.
  const { result } = await run(['sleep']);
  assert.equal(result.stdout, 'slept\n');
  assert.equal(result.exitCode, 0);
});

test('a timeout stops a sleeping program and lists its threads', async () => {
  // The program sleeps 100 ms in all; it cannot finish within 30 ms.
  const { error } = await fail(['sleep'], { timeout: 30 });
  assert.equal(error.kind, 'Timeout');
  assert.match(error.message, /did not finish within 30 ms/);
  // Thread 0 may not even have started within 30 ms.
  assert.ok(error.threads.some((t) => t.tid === 0 && ['running', 'pending'].includes(t.state)), JSON.stringify(error.threads));
  assert.equal(error.exitCode, null);
  assert.equal(error.stdout, '');
});

test('no files: opening one fails, stdin is empty, random_get seeds std', async () => {
  const { result } = await run(['no_files']);
  assert.match(result.stdout, /^open: failed \(/m);
  assert.match(result.stdout, /^stdin: 0 bytes$/m);
  assert.match(result.stdout, /^random: seeded a HashMap with 1 entry$/m);
});

test('output of many threads arrives whole and in order, across the channel filling up', async () => {
  const { result, output } = await run(['ordered_output'], { memoryTrace: false });
  const expected = [];
  for (let t = 0; t < 4; t++) {
    for (let line = 0; line < 20_000; line++) expected.push(`thread ${t} line ${line}`);
    expected.push(`main after thread ${t}`);
  }
  const text = `${expected.join('\n')}\n`;
  assert.ok(text.length > 1 << 20, 'more than the output channel holds at once');
  assert.equal(result.stdout, text);
  assert.equal(output.stdout, text);
});

test('a wasmgrind-ABI module still needs a function name; the error lists the ones it can run', async () => {
  const basics = guestPath(manifest().guests.basics.file);
  await assert.rejects(
    wasmgrind(basics),
    (e) =>
      e.kind === 'UsageError' &&
      /name the function to run: .*; the functions it can run: .*`spawn_join`/.test(e.message) &&
      !/`__/.test(e.message),
  );
  // A module that is not built for Wasmgrind at all: its problems, not a function name.
  const noMemory = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  await assert.rejects(wasmgrind(noMemory), (e) => e.kind === 'PatchError' && /the module has no memory/.test(e.message));
  // A component (layer 1): what to build instead.
  const component = new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]);
  await assert.rejects(
    wasmgrind(component),
    (e) => e.kind === 'PatchError' && /this is a component .* build a std program for `wasm32-wasip1-threads`/.test(e.message),
  );
});

test('untraced, a wasi module runs unpatched too', async () => {
  const { result } = await run(['spawn_join'], { trace: false });
  assert.match(result.stdout, /sum: 100\n$/);
  assert.equal(result.metadata, null);
});

test('a named export can still be chosen; an unknown one lists the candidates', async () => {
  const { result } = await wasmgrind(wasm, '_start', { args: ['hello'] }).then((result) => ({ result }));
  assert.match(result.stdout, /^hello from stdout/);
  await assert.rejects(wasmgrind(wasm, 'nope'), /exports no function `nope`.*`_start`/s);
});

test('cli: no function runs _start; -- passes the arguments; the output goes to the terminal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-wasi-'));
  try {
    const out = await cli(['run', wasm, '--out', dir, '--env', 'WASMGRIND_GREETING=from the cli', '--', 'hello', 'a', 'b']);
    assert.equal(out.code, 0, out.stderr);
    // stdout is the program's alone; Wasmgrind's summary goes to stderr.
    assert.equal(out.stdout, 'hello from stdout\nargs: a b\nWASMGRIND_GREETING=from the cli\n0 1 2 done\n');
    assert.match(out.stderr, /hello from stderr\n/);
    assert.match(out.stderr, /`_start` of .*runtime_checks\.wasm returned/);
    for (const f of ['trace.bin', 'trace.std', 'trace.json', 'trace.wgtrace']) assert.ok(existsSync(join(dir, f)), f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cli: the exit code is the program's; a panic or trap is 1", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-wasi-'));
  try {
    let out = await cli(['run', wasm, '--out', dir, '--no-memory-trace', '--', 'child_exit']);
    assert.equal(out.code, 3, out.stderr);
    assert.equal(out.stdout, 'child: exiting with 3\n');
    assert.match(out.stderr, /exited with code 3 \(proc_exit in thread \d+\)/);
    out = await cli(['run', wasm, '--out', dir, '--no-memory-trace', '--', 'child_panic']);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /child thread gives up: the list is empty/);
    assert.match(out.stderr, /wasmgrind: error: thread \d+ panicked/);
    out = await cli(['run', wasm, '--out', dir, '--no-memory-trace']);
    assert.equal(out.code, 2, 'the program exits 2 without a scenario');
    assert.match(out.stderr, /usage: runtime_checks/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli --help documents wasi programs', async () => {
  const out = await cli(['--help']);
  assert.equal(out.code, 0);
  for (const word of ['[-- ARGS...]', '_start', '--env NAME=VALUE', 'proc_exit', 'wasm32-wasip1-threads']) {
    assert.ok(out.stdout.includes(word), `--help mentions ${word}`);
  }
});
