// The command line: `node pkg/cli.js run <module.wasm> <function> ...`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync, readdirSync, symlinkSync, linkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifest, guestPath, guestsDir, cliPath, runNode, parseStd, checkRapidBin, checkTrace, checkFindings } from './helpers.mjs';

const m = manifest();

test('--help documents the command and exits 0', async () => {
  const out = await runNode([cliPath, '--help']);
  assert.equal(out.code, 0);
  for (const word of ['run <module.wasm> <function>', 'analyze <DIR>', '--out DIR', '--no-memory-trace', '--timeout S', '--lock-requests', 'trace.bin', 'trace.std', 'trace.json', '66']) {
    assert.ok(out.stdout.includes(word), `--help mentions ${word}`);
  }
});

test('usage errors exit 2 with the problem on stderr', async () => {
  let out = await runNode([cliPath]);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /missing command/);
  out = await runNode([cliPath, 'run']);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /`run` needs <module.wasm> and, unless it is a wasi program .*, <function>; got 0/);
  out = await runNode([cliPath, 'run', 'a.wasm', 'f', '--bogus']);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /unknown option `--bogus`/);
  out = await runNode([cliPath, 'run', 'a.wasm', 'f', '--timeout', 'soon']);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /--timeout needs a positive number of seconds/);
  // Every problem at once (a wrong option's value is not taken for an argument), and the
  // spelling with `=` gets a hint.
  out = await runNode([cliPath, 'run', 'a.wasm', '--timeout', '0', '--max-threads', '0', '--out=x']);
  assert.equal(out.code, 2);
  assert.match(
    out.stderr,
    /3 problems: \(1\) --timeout needs a positive .*; \(2\) --max-threads needs a positive integer.*; \(3\) unknown option `--out=x` \(write `--out x`\)/,
  );
  assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
});

test('bad input gives one line on stderr and the documented exit code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory');
  const random = join(dir, 'random.wasm');
  writeFileSync(random, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) % 256)));
  const g = guestPath(m.guests.basics.file);
  const cases = [
    // [arguments, exit code, what the line says]
    [['--out', file], 2, /--out .*a-file: .*a-file is a file, not a directory/],
    [['--out', join(file, 'sub')], 2, /a-file is a file, not a directory/],
    [['--out', ''], 2, /--out needs a directory/],
    [['--out', '/proc/wasmgrind-test/x'], 2, /cannot create the directory \/proc\/wasmgrind-test/],
    [['--timeout', '3000000'], 2, /--timeout must be at most 2147463 seconds/],
    [['--stack-size', '100'], 2, /--stack-size must be a multiple of 16 of at least 4096 bytes/],
    [['--stack-size', 'big'], 2, /--stack-size needs a positive integer/],
    [['--max-threads', '2.5'], 2, /--max-threads needs a positive integer/],
    [['--chunk-events', '0'], 2, /--chunk-events needs a positive integer/],
    [['--timeline', join(file, 't.json')], 2, /--timeline .*: cannot write the timeline to .*a-file is a file, not a directory/],
  ];
  for (const [extra, code, line] of cases) {
    const out = await runNode([cliPath, 'run', g, 'spawn_join', '--out', join(dir, 'out'), ...extra], { timeoutMs: 30_000 });
    const what = `run ... ${extra.join(' ')}: ${out.stderr}`;
    assert.equal(out.code, code, what);
    assert.equal(out.stderr.trim().split('\n').length, 1, `one line: ${what}`);
    assert.match(out.stderr, line, what);
  }
  // A module that does not exist: a usage error.
  const missing = await runNode([cliPath, 'run', join(dir, 'nothing.wasm'), 'f', '--out', join(dir, 'out')]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /^wasmgrind: no file .*nothing\.wasm/);
  // A module of random bytes: one line, exit 1, and no trace files left behind.
  const out = await runNode([cliPath, 'run', random, 'f', '--out', join(dir, 'random-out')]);
  assert.equal(out.code, 1, out.stderr);
  assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
  assert.match(out.stderr, /^wasmgrind: error: not a valid WebAssembly module/);
  assert.deepEqual(readdirSync(join(dir, 'random-out')), []);
  rmSync(dir, { recursive: true, force: true });
});

test('run writes trace.bin, trace.std and trace.json and prints a summary', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const s = m.guests.locks.scenarios.mutex_counter;
    const out = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), 'mutex_counter', '--out', dir]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /`mutex_counter` of .*locks\.wasm returned/);
    assert.match(out.stdout, /threads: +9/);
    assert.match(out.stdout, /events: +\d+/);
    assert.match(out.stdout, new RegExp(`locks: +1 \\(${s.acquisitions} acquisitions\\)`));
    for (const f of ['trace.bin', 'trace.std', 'trace.json']) assert.ok(existsSync(join(dir, f)), f);
    const metadata = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8'));
    const events = parseStd(readFileSync(join(dir, 'trace.std'), 'utf8'));
    checkRapidBin(new Uint8Array(readFileSync(join(dir, 'trace.bin'))), events, metadata);
    const counts = checkTrace(events, metadata);
    assert.equal(counts.acquisitions, s.acquisitions);
    assert.equal(counts.forks, s.forks);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--no-memory-trace writes a trace without memory accesses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const out = await runNode([
      cliPath,
      'run',
      guestPath(m.guests.basics.file),
      'nested_threads',
      '--no-memory-trace',
      '--out',
      dir,
    ]);
    assert.equal(out.code, 0, out.stderr);
    const metadata = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8'));
    assert.equal(metadata.counts.variables, 0);
    assert.equal(metadata.counts.events, 6);
    // The report says what such a run cannot find, and so does `analyze` of it.
    assert.match(out.stderr, /^Locks-only run \(`--no-memory-trace`, `memoryTrace: false`\): .*no data race can be found/m);
    assert.doesNotMatch(out.stderr, /nothing was checked/);
    assert.equal(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).locksOnly, 'locks');
    const again = await runNode([cliPath, 'analyze', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /^Locks-only run /m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown function exits 1 with the error on stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  const out = await runNode([cliPath, 'run', guestPath(m.guests.basics.file), 'nope', '--out', dir]);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(out.code, 1);
  assert.match(out.stderr, /wasmgrind: error: the module exports no function `nope`/);
  assert.equal(out.stdout, '');
});

test('a data race is reported like ThreadSanitizer does, with exit 66', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const out = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), 'unsynchronized_counter', '--out', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.match(out.stderr, /^WARNING: data race$/m);
    assert.match(out.stderr, /^ {2}(Read|Write) of size \d+ at 0x[0-9a-f]+ by thread T\d+:$/m);
    assert.match(out.stderr, /^ {2}Previous (read|write) of size \d+ at 0x[0-9a-f]+ by thread T\d+:$/m);
    assert.match(out.stderr, /^SUMMARY: Wasmgrind: data race .*locks::/m);
    assert.match(out.stdout, /found: +[1-9]\d* data race\(s\), 0 potential deadlock\(s\)/);
    // The report is saved, and `analyze` finds the same again in the saved trace.
    const saved = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    assert.ok(saved.counts.races > 0);
    const again = await runNode([cliPath, 'analyze', dir, '--module', guestPath(m.guests.locks.file)]);
    assert.equal(again.code, 66, again.stderr);
    assert.equal(again.stderr, readFileSync(join(dir, 'report.txt'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a potential deadlock is reported with both acquisition sites, with exit 66', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const out = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), 'lock_order_inversion', '--out', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.match(out.stderr, /^WARNING: potential deadlock \(lock-order inversion\)$/m);
    assert.match(out.stdout, /found: +0 data race\(s\), 1 potential deadlock\(s\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The deadlock a run ended in is the runtime's view of its threads, not an event of the
// trace: `analyze` takes it from the run's report.json, so that it prints the same report.
test('analyze of a run that deadlocked prints the deadlock too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const module = guestPath(m.guests.failures.file);
    const out = await runNode([cliPath, 'run', module, 'deadlock', '--out', dir]);
    assert.equal(out.code, 66, out.stderr);
    assert.match(out.stderr, /^WARNING: deadlock$/m);
    const again = await runNode([cliPath, 'analyze', dir, '--module', module]);
    assert.equal(again.code, 66, again.stderr);
    assert.equal(again.stderr, readFileSync(join(dir, 'report.txt'), 'utf8'));
    assert.match(again.stderr, /^WARNING: deadlock$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The first Ctrl-C stops the run as its timeout would and writes the trace so far (which
// `analyze` can read); the exit status is 130, as for an interrupted command.
test('Ctrl-C stops the run and writes what it recorded, with exit 130', async () => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    // About 2 ms per thread: 100 million threads one after the other never end here.
    const module = `${guestsDir}wasi/runtime_checks.wasm`;
    const child = spawn(process.execPath, [cliPath, 'run', module, '--out', dir, '--', 'many_threads', '100000000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // Long enough for the program to run: it is prepared in well under a second.
    await new Promise((r) => setTimeout(r, 3000));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /wasmgrind: interrupted: stopping the run/);
    assert.match(stderr, /was stopped by its caller/);
    assert.match(stderr, /the trace up to the failure is in/);
    const again = await runNode([cliPath, 'analyze', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Wasmgrind: found 0 data races, 0 potential deadlocks/);
    // It says that the run was stopped and its trace ends there.
    assert.match(again.stderr, /^The run ended with Stopped: .*was stopped by its caller.*\nIts trace holds what was recorded until then\./m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the default STD export has only the operations upstream RAPID parses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const path = guestPath(m.guests.locks.file);
    let out = await runNode([cliPath, 'run', path, 'mutex_counter', '--out', dir]);
    assert.equal(out.code, 0, out.stderr);
    const ops = (std) => new Set(parseStd(std).map((e) => e.op));
    const plain = ops(readFileSync(join(dir, 'trace.std'), 'utf8'));
    for (const op of plain) assert.ok(['acq', 'rel', 'r', 'w', 'fork', 'join'].includes(op), op);
    out = await runNode([cliPath, 'run', path, 'mutex_counter', '--lock-requests', '--out', dir]);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(ops(readFileSync(join(dir, 'trace.std'), 'utf8')).has('req'), '--lock-requests exports req');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('analyze of a directory without a trace exits 1 naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const out = await runNode([cliPath, 'analyze', dir]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /cannot read .*trace\.wgtrace/);
    const usage = await runNode([cliPath, 'analyze']);
    assert.equal(usage.code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --report-only (the API's `exportTrace: false`): the detectors see every event, but no
// trace is made, so DIR holds the reports (and the timeline) and nothing else.
test('--report-only finds what a full run finds and writes only the reports', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  const full = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    for (const scenario of ['unsynchronized_counter', 'lock_order_inversion']) {
      const a = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), scenario, '--out', full]);
      const b = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), scenario, '--out', dir, '--report-only', '--timeline', join(dir, 'timeline.json')]);
      assert.equal(b.code, 66, b.stderr);
      assert.equal(b.code, a.code);
      // The findings the manifest expects, in both. (Two runs interleave differently, so
      // how many races of the counter each sees varies; which ones there are does not.)
      const s = m.guests.locks.scenarios[scenario];
      for (const d of [dir, full]) checkFindings(JSON.parse(readFileSync(join(d, 'report.json'), 'utf8')), s, `${scenario} in ${d}`);
      assert.match(readFileSync(join(dir, 'report.txt'), 'utf8'), /^SUMMARY: Wasmgrind: /m);
      assert.match(b.stdout, /found: +\d+ data race\(s\), \d+ potential deadlock\(s\)/);
      assert.match(b.stdout, /--report-only: no trace files/);
      assert.deepEqual(readdirSync(dir).sort(), ['report.json', 'report.txt', 'timeline.json']);
      assert.ok(Array.isArray(JSON.parse(readFileSync(join(dir, 'timeline.json'), 'utf8')).traceEvents));
      rmSync(join(dir, 'timeline.json'));
    }
    // A run that fails before it starts leaves no report behind.
    const empty = join(dir, 'empty');
    const failed = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), 'no_such_function', '--report-only', '--out', empty]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.deepEqual(readdirSync(empty), []);
    rmSync(empty, { recursive: true });
    // There is no trace to analyze again, and no trace bytes to limit.
    const again = await runNode([cliPath, 'analyze', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /has reports but no trace\.wgtrace: it is the directory of a `wasmgrind run --report-only`/);
    const limited = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), 'unsynchronized_counter', '--report-only', '--max-trace-bytes', '100']);
    assert.equal(limited.code, 2);
    assert.equal(limited.stderr.trim().split('\n').length, 1, limited.stderr);
    assert.match(limited.stderr, /--max-trace-bytes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(full, { recursive: true, force: true });
  }
});

// No output of a run may be the module: `--timeline app.wasm` once truncated the module
// and then removed it as an empty timeline.
test('an output that is the module is a usage error that leaves the module alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const original = readFileSync(guestPath(m.guests.basics.file));
    const app = join(dir, 'app.wasm');
    writeFileSync(app, original);
    symlinkSync('app.wasm', join(dir, 'link.wasm'));
    mkdirSync(join(dir, 'out'));
    linkSync(app, join(dir, 'out', 'trace.bin'));
    const cases = [
      // [arguments after `run app.wasm spawn_join`, what the line says]
      [['--timeline', app, '--out', join(dir, 'o1')], /--timeline .*app\.wasm is the module .*app\.wasm/],
      [['--timeline', join(dir, 'link.wasm'), '--out', join(dir, 'o1')], /--timeline .*link\.wasm is the module .*app\.wasm/],
      [['--out', join(dir, 'out')], /--out .*out: .*out\/trace\.bin is the module .*app\.wasm/],
      [['--out', join(dir, 'out'), '--report-only'], /out\/trace\.bin is the module/],
      [['--out', join(dir, 'o2'), '--timeline', join(dir, 'o2', 'report.txt')], /--timeline .*o2\/report\.txt is .*o2\/report\.txt, a file the run writes in --out/],
    ];
    for (const [extra, line] of cases) {
      const out = await runNode([cliPath, 'run', app, 'spawn_join', ...extra]);
      const what = `run app.wasm spawn_join ${extra.join(' ')}: ${out.stderr}`;
      assert.equal(out.code, 2, what);
      assert.equal(out.stderr.trim().split('\n').length, 1, `one line: ${what}`);
      assert.match(out.stderr, line, what);
      assert.ok(existsSync(app), `the module is still there: ${what}`);
      assert.ok(original.equals(readFileSync(app)), `the module is unchanged: ${what}`);
    }
    // The module run from DIR itself under a name that is not the run's is fine.
    const own = join(dir, 'out', 'app.wasm');
    writeFileSync(own, original);
    const ok = await runNode([cliPath, 'run', own, 'spawn_join', '--out', join(dir, 'out'), '--timeline', join(dir, 'out', 't.json')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(original.equals(readFileSync(own)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A directory that held an earlier run holds this run's files alone afterwards.
test('a run removes the files of an earlier run from DIR, and no other file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  const out = join(dir, 'out');
  const locks = guestPath(m.guests.locks.file);
  try {
    let r = await runNode([cliPath, 'run', locks, 'unsynchronized_counter', '--out', out]);
    assert.equal(r.code, 66, r.stderr);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    // A --report-only run of a program without races: no trace of the racy run is left
    // for `analyze` to report.
    r = await runNode([cliPath, 'run', guestPath(m.guests.basics.file), 'spawn_join', '--report-only', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['notes.txt', 'report.json', 'report.txt']);
    const again = await runNode([cliPath, 'analyze', out]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /has reports but no trace\.wgtrace/);
    // A run that fails before its trace began leaves none of the earlier run's files.
    r = await runNode([cliPath, 'run', locks, 'unsynchronized_counter', '--out', out]);
    assert.equal(r.code, 66, r.stderr);
    r = await runNode([cliPath, 'run', locks, 'no_such_function', '--out', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(readdirSync(out), ['notes.txt']);
    assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'mine');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// `wasmgrind run ... | head -1`: the reader of stdout goes away.
test('a closed stdout drops the output quietly; the run ends and writes its reports', async () => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  const closedStdout = (args) =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      // Closed before the program writes: every write to stdout fails with EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('close', (code) => resolve({ code, stderr }));
    });
  try {
    const wasi = guestPath('wasi/runtime_checks.wasm');
    let out = await closedStdout(['run', wasi, '--report-only', '--out', join(dir, 'wasi'), '--', 'hello', 'one']);
    assert.equal(out.code, 0, out.stderr);
    assert.doesNotMatch(out.stderr, /EPIPE|^\s+at /m);
    // What the program writes to stderr still comes, and Wasmgrind's summary after it.
    assert.match(out.stderr, /hello from stderr/);
    assert.match(out.stderr, /`_start` of .*runtime_checks\.wasm returned/);
    assert.match(readFileSync(join(dir, 'wasi', 'report.txt'), 'utf8'), /found 0 data races/);
    // A module of the wasmgrind ABI, whose summary goes to stdout: the exit status is the run's.
    out = await closedStdout(['run', guestPath(m.guests.locks.file), 'unsynchronized_counter', '--out', join(dir, 'abi')]);
    assert.equal(out.code, 66, out.stderr);
    assert.doesNotMatch(out.stderr, /EPIPE|^\s+at /m);
    assert.match(out.stderr, /^WARNING: data race$/m);
    assert.ok(JSON.parse(readFileSync(join(dir, 'abi', 'report.json'), 'utf8')).counts.races > 0);
    assert.ok(existsSync(join(dir, 'abi', 'trace.wgtrace')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The source lines come from --module: another module's would be wrong ones.
test('analyze --module with a module that was not run is a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-'));
  try {
    const run = await runNode([cliPath, 'run', guestPath(m.guests.locks.file), 'unsynchronized_counter', '--out', dir]);
    assert.equal(run.code, 66, run.stderr);
    const other = guestPath(m.guests.basics.file);
    const out = await runNode([cliPath, 'analyze', dir, '--module', other]);
    assert.equal(out.code, 2, out.stderr);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
    assert.match(out.stderr, /--module .*basics\.wasm is not the module that was run .*pass the module that was given to `wasmgrind run`/);
    assert.doesNotMatch(out.stderr, /WARNING/);
    // Not a module at all: the same.
    const json = await runNode([cliPath, 'analyze', dir, '--module', join(dir, 'report.json')]);
    assert.equal(json.code, 2, json.stderr);
    assert.match(json.stderr, /report\.json is not the module that was run .*not a valid WebAssembly module/);
    // The module that was run names the source lines.
    const right = await runNode([cliPath, 'analyze', dir, '--module', guestPath(m.guests.locks.file)]);
    assert.equal(right.code, 66, right.stderr);
    assert.match(right.stderr, /locks\/src\/lib\.rs:\d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Wasmgrind's utility module, which analyzes and exports the trace, has at most 4 GiB of
// memory: a run or a trace that needs more fails with an error that says so and how to
// record less, not with a bare `unreachable`.
test('a run whose trace fills the utility memory fails with OutOfMemory and names what to do', async () => {
  const wasm = join(guestsDir, 'wasi', 'runtime_checks.wasm');
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-oom-'));
  try {
    // 24 MiB read byte by byte: 25M variables, more than the trace's export can hold.
    const full = await runNode([cliPath, 'run', wasm, '--out', join(dir, 'full'), '--', 'sum_bytes', '24'], {
      timeoutMs: 180_000,
    });
    assert.equal(full.code, 1, full.stderr);
    assert.equal(full.stdout.trim().split('\n')[0], String(24 << 20));
    assert.match(full.stderr, /wasmgrind: error: Wasmgrind's utility module ran out of memory: /);
    assert.match(full.stderr, /record less, with `--report-only` .* `--sample` .* `--no-memory-trace`/);
    assert.doesNotMatch(full.stderr, /unreachable/);
    // Out of memory while the manager drains the trace (one chunk for all events): the
    // same error, and the run ends (finishing the trace after that once waited for ever).
    const drain = await runNode(
      [cliPath, 'run', wasm, '--chunk-events', '2147483648', '--out', join(dir, 'drain'), '--', 'sum_bytes', '48'],
      { timeoutMs: 120_000 },
    );
    assert.equal(drain.code, 1, drain.stderr);
    assert.match(drain.stderr, /wasmgrind: error: Wasmgrind's utility module ran out of memory: /);
    // What it says works.
    const reportOnly = await runNode(
      [cliPath, 'run', wasm, '--report-only', '--out', join(dir, 'report'), '--', 'sum_bytes', '24'],
      { timeoutMs: 180_000 },
    );
    assert.equal(reportOnly.code, 0, reportOnly.stderr);
    assert.match(reportOnly.stderr, /found: +0 data race\(s\), 0 potential deadlock\(s\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('analyze of a trace whose accesses need more than the utility memory exits 1 and says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-cli-oom-'));
  try {
    // Wasmgrind's own format (wasmgrind_core::trace::native): a 24-byte header and one
    // 20-byte record, a write of 4 GiB less 16 bytes at address 0 by thread 0 (such a
    // width is what a damaged file may hold).
    const bytes = Buffer.alloc(24 + 20);
    bytes.write('WGTRACE\0', 0, 'latin1');
    bytes.writeUInt32LE(1, 8);
    bytes.writeBigUInt64LE(1n, 16);
    bytes.writeUInt32LE(0, 24);
    bytes.writeUInt8(4, 28);
    bytes.writeUInt32LE(0, 32);
    bytes.writeUInt32LE(0xfffffff0, 36);
    bytes.writeUInt32LE(0xffffffff, 40);
    writeFileSync(join(dir, 'trace.wgtrace'), bytes);
    writeFileSync(join(dir, 'locations.json'), '[]');
    const out = await runNode([cliPath, 'analyze', dir], { timeoutMs: 180_000 });
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /Wasmgrind's utility module ran out of memory: .* It was analyzing .*trace\.wgtrace/);
    assert.doesNotMatch(out.stderr, /unreachable/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
