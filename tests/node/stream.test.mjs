// The trace streamed while the program runs: the CLI's files written chunk by chunk, the
// API's `onChunk`, and the limits `--max-events` / `--max-trace-bytes` (maxEvents /
// maxTraceBytes), which are named errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadRuntime,
  manifest,
  guestPath,
  cliPath,
  runNode,
  parseStd,
  checkRapidBin,
  checkTrace,
  checkFindings,
} from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();
const locks = m.guests.locks;

/** The event count in a native trace's header (little-endian u64 at byte 16). */
function nativeCount(bytes) {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(16, true));
}

/** Checks the files a CLI run wrote to `dir` against each other and returns them parsed. */
function checkFiles(dir) {
  const metadata = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8'));
  const events = parseStd(readFileSync(join(dir, 'trace.std'), 'utf8'));
  checkRapidBin(new Uint8Array(readFileSync(join(dir, 'trace.bin'))), events, metadata);
  assert.equal(metadata.counts.events, events.length);
  const native = new Uint8Array(readFileSync(join(dir, 'trace.wgtrace')));
  assert.equal(native.byteLength, 24 + 20 * nativeCount(native), 'trace.wgtrace holds the count of its header');
  return { metadata, events, native };
}

function withDir(fn) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-stream-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'a run streamed in small chunks writes files that decode, and analyze finds the same again',
  withDir(async (dir) => {
    const s = locks.scenarios.unsynchronized_counter;
    const out = await runNode([
      cliPath,
      'run',
      guestPath(locks.file),
      'unsynchronized_counter',
      '--chunk-events',
      '64',
      '--out',
      dir,
    ]);
    assert.equal(out.code, 66, out.stderr);
    const { metadata, events } = checkFiles(dir);
    const counts = checkTrace(events, metadata);
    assert.equal(counts.forks, s.forks);
    assert.equal(counts.acquisitions, s.acquisitions);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    checkFindings(report, s, 'the run');
    // The saved trace, analyzed again, gives the same findings.
    const again = await runNode([cliPath, 'analyze', dir, '--module', guestPath(locks.file)]);
    assert.equal(again.code, 66, again.stderr);
    assert.equal(again.stderr, readFileSync(join(dir, 'report.txt'), 'utf8'));
  }),
);

test(
  '--max-events stops the run with a named error (exit 1) and writes the trace up to the limit',
  withDir(async (dir) => {
    const out = await runNode([
      cliPath,
      'run',
      guestPath(locks.file),
      'mutex_counter',
      '--max-events',
      '1000',
      '--chunk-events',
      '300',
      '--out',
      dir,
    ]);
    assert.equal(out.code, 1, out.stderr);
    assert.match(
      out.stderr,
      /wasmgrind: error: the trace reached 1000 events, the limit set by --max-events \(maxEvents\); raise it or record less \(--sample or --no-memory-trace; sampling: true or memoryTrace: false\)/,
    );
    assert.doesNotMatch(out.stderr, /Recorder::|with_capacity/);
    const { native } = checkFiles(dir);
    assert.equal(nativeCount(native), 1000, 'the trace holds exactly the events up to the limit');
    const again = await runNode([cliPath, 'analyze', dir]);
    assert.equal(again.code, 0, again.stderr);
  }),
);

test(
  '--max-trace-bytes stops the run with a named error (exit 1) after the chunk that passed it',
  withDir(async (dir) => {
    const out = await runNode([
      cliPath,
      'run',
      guestPath(locks.file),
      'mutex_counter',
      '--max-trace-bytes',
      '20000',
      '--chunk-events',
      '100',
      '--out',
      dir,
    ]);
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /wasmgrind: error: the trace reached \d+ events and \d+ bytes, more than the limit of 20000 bytes set by --max-trace-bytes \(maxTraceBytes\)/);
    checkFiles(dir);
    const bytes = ['trace.bin', 'trace.std', 'trace.wgtrace'].reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    assert.ok(bytes > 20000, `${bytes} bytes`);
    // One chunk of 100 events is at most 100 × (4 × 8 + 4 × 24 + 20) bytes.
    assert.ok(bytes <= 20000 + 100 * 148, `${bytes} bytes`);
  }),
);

test('limit options that are not positive integers are usage errors', async () => {
  for (const [flag, value] of [
    ['--max-events', '0'],
    ['--max-trace-bytes', '-5'],
    ['--chunk-events', '1.5'],
  ]) {
    const out = await runNode([cliPath, 'run', 'a.wasm', 'f', flag, value]);
    assert.equal(out.code, 2, `${flag} ${value}: ${out.stderr}`);
    assert.match(out.stderr, new RegExp(`${flag} needs a positive`));
  }
  await assert.rejects(wasmgrind(guestPath(locks.file), 'mutex_counter', { maxEvents: 0 }), {
    kind: 'UsageError',
    message: /option `maxEvents` must be a positive integer .*or Infinity/,
  });
  await assert.rejects(wasmgrind(guestPath(locks.file), 'mutex_counter', { onChunk: 5 }), {
    kind: 'UsageError',
    message: /option `onChunk` must be a function or null/,
  });
});

test('onChunk receives the trace in order; its bytes and the final headers are the whole trace', async () => {
  const s = locks.scenarios.unsynchronized_counter;
  const chunks = [];
  const r = await wasmgrind(guestPath(locks.file), 'unsynchronized_counter', {
    chunkEvents: 100,
    onChunk: async (c) => {
      // A slow consumer: the run waits for it.
      await new Promise((resolve) => setTimeout(resolve, 1));
      chunks.push(c);
    },
  });
  assert.equal(r.status, 'ok');
  assert.equal(r.streamed, true);
  assert.equal(r.rapidbin, null, 'a streamed result does not hold the trace again');
  assert.equal(r.std, null);
  assert.equal(r.native, null);
  assert.equal(chunks.length, r.chunks);
  assert.ok(chunks.length > 3, `${chunks.length} chunks`);
  chunks.forEach((c, i) => {
    assert.equal(c.index, i, 'chunks arrive in order');
    assert.ok(c.events <= 100 || i === chunks.length - 1);
  });
  assert.equal(
    chunks.reduce((n, c) => n + c.events, 0),
    r.events,
  );
  const concat = (key) => Buffer.concat(chunks.map((c) => c[key]));
  const rapidbin = new Uint8Array(concat('rapidbin'));
  rapidbin.set(r.rapidbinHeader, 0);
  const native = new Uint8Array(concat('native'));
  native.set(r.nativeHeader, 0);
  const events = parseStd(concat('std').toString('latin1'));
  checkRapidBin(rapidbin, events, r.metadata);
  assert.equal(nativeCount(native), r.events);
  assert.equal(native.byteLength, 24 + 20 * r.events);
  const counts = checkTrace(events, r.metadata);
  assert.equal(counts.acquisitions, r.acquisitions);
  checkFindings(r.findings, s, 'the streamed run');
});

test('an onChunk that throws rejects the run with a ChunkError', async () => {
  const err = await wasmgrind(guestPath(locks.file), 'mutex_counter', {
    chunkEvents: 100,
    onChunk: (c) => {
      if (c.index === 2) throw new Error('disk full');
    },
  }).then(
    () => assert.fail('the run must fail'),
    (e) => e,
  );
  assert.equal(err.kind, 'ChunkError', err.message);
  assert.match(err.message, /the onChunk callback failed on chunk 2: disk full/);
  assert.ok(err.findings && err.report, 'the findings of the run so far');
  // An error's `threads` are thread states, whether or not the run had ended already.
  assert.ok(err.threads === undefined || Array.isArray(err.threads), JSON.stringify(err.threads));
});

// The last chunks and the result come close together, so an async onChunk is often still
// working on a chunk when the result arrives; if it then fails, the run fails with that.
// A one-thread run ends within the 400 ms its first chunk's callback takes, so its result
// comes while the callback still works (in about 8 of 10 runs: without the fix, this test
// fails in nearly every run of it).
test('an async onChunk that fails after the result came rejects the run', async () => {
  const path = guestPath(m.guests.basics.file);
  for (let i = 0; i < 3; i++) {
    const err = await wasmgrind(path, 'spawn_join', {
      onChunk: async (c) => {
        await new Promise((r) => setTimeout(r, 400));
        throw new Error(`upload of chunk ${c.index} failed`);
      },
    }).then(
      (r) => assert.fail(`run ${i} resolved with ${r.chunks} chunk(s)`),
      (e) => e,
    );
    assert.equal(err.kind, 'ChunkError', err.message);
    assert.match(err.message, /failed on chunk 0: upload of chunk 0 failed/);
    assert.ok(err.trace, 'the answer the run had sent');
  }
});

// The caller's backstop stops a manager that does not answer for the run's timeout plus a
// grace period of 20 s. A manager that waits for a slow onChunk is not hung: a run whose
// chunks take the caller longer than that in all (here about 22 s, with a timeout of
// 500 ms for the function itself) must succeed. (This test takes that long.) The function
// runs 200 traced spawn/join cycles, about 25 ms on a quiet machine; with a timeout of
// 100 ms a busy CI machine once stopped it.
test('a slow onChunk is waited for: the backstop does not take it for a hung manager', async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let chunks = 0;
  const started = performance.now();
  const r = await wasmgrind(guestPath(m.guests.basics.file), 'spawn_join_200', {
    timeout: 500,
    chunkEvents: 400,
    onChunk: async () => {
      chunks++;
      await sleep(chunks <= 22 ? 1000 : 0);
    },
  });
  assert.equal(r.status, 'ok');
  assert.ok(chunks > 22, `${chunks} chunks: too few to outlast the backstop`);
  assert.ok(performance.now() - started > 20_500, 'the callbacks took less than the backstop');
});

// An onChunk that never finishes (a stalled upload) must not make the run unstoppable:
// aborting the signal still ends it at once, with the trace so far.
test('a run whose onChunk never finishes still stops when its signal is aborted', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 1000);
  const started = performance.now();
  const err = await wasmgrind(guestPath(m.guests.basics.file), 'spawn_join_200', {
    chunkEvents: 100,
    signal: controller.signal,
    onChunk: () => new Promise(() => {}),
  }).then(
    () => assert.fail('the run must fail'),
    (e) => e,
  );
  assert.equal(err.kind, 'Stopped', err.message);
  assert.match(err.message, /onChunk had not finished chunk 0, so \d+ later chunk\(s\) were not delivered/);
  assert.ok(err.trace, 'the trace so far is attached');
  // As on every failed run, the findings so far are on the error itself too.
  assert.ok(err.findings && Array.isArray(err.findings.races), 'the findings are attached');
  assert.ok(performance.now() - started < 10_000, 'it stopped at once');
});

// A fast trace in small chunks hands its detectors' work to the analysis worker. A run
// stopped by its timeout then still has about two million recorded events to drain into
// tens of thousands of chunks: the end of the run must not wait for the worker chunk by
// chunk (it once did, a timer tick for every other chunk, and the caller's backstop ended
// the run after the timeout plus 20 s, with neither trace nor findings).
test('a timeout during a fast trace in small chunks ends with the trace and the findings', async () => {
  const err = await wasmgrind(guestPath(m.guests.stress.file), 'sort_large_array_1s', {
    chunkEvents: 50,
    timeout: 2000,
  }).then(
    () => assert.fail('the run must time out'),
    (e) => e,
  );
  assert.equal(err.kind, 'Timeout', err.message);
  assert.match(err.message, /did not finish within 2000 ms/);
  assert.ok(err.trace, 'the trace so far is attached');
  assert.ok(err.trace.events > 100_000, `${err.trace.events} events`);
  assert.equal(err.trace.findings.races.length, 0, 'sort_large_array_1s has no race');
  assert.equal(err.trace.native.byteLength, 24 + 20 * err.trace.events);
});

// A signal aborted right after the call, while the module is loaded, stops the run too.
test('a signal aborted while the run is being prepared stops it', async () => {
  const controller = new AbortController();
  const run = wasmgrind(guestPath(m.guests.basics.file), 'spawn_join', { signal: controller.signal });
  controller.abort();
  const err = await run.then(
    () => assert.fail('the run must fail'),
    (e) => e,
  );
  assert.equal(err.kind, 'Stopped', err.message);
});

test('maxEvents through the API: a LimitError with the events reached and the trace so far', async () => {
  const err = await wasmgrind(guestPath(locks.file), 'mutex_counter', { maxEvents: 500 }).then(
    () => assert.fail('the run must fail'),
    (e) => e,
  );
  assert.equal(err.kind, 'LimitError', err.message);
  assert.equal(err.variant, 'MaxEvents');
  assert.equal(err.events, 500);
  assert.match(err.message, /^the trace reached 500 events, the limit set by --max-events \(maxEvents\)/);
  assert.equal(err.trace.events, 500);
  assert.equal(err.trace.native.byteLength, 24 + 20 * 500);
  const events = parseStd(err.trace.std);
  checkRapidBin(err.trace.rapidbin, events, err.trace.metadata);
});

// `exportTrace: false`: only the detectors (and the timeline) see the events.
test('exportTrace false gives the findings of a full run and no trace', async () => {
  const file = guestPath(locks.file);
  for (const scenario of ['unsynchronized_counter', 'lock_order_inversion', 'mutex_counter']) {
    const full = await wasmgrind(file, scenario, {});
    const bare = await wasmgrind(file, scenario, { exportTrace: false, timeline: true });
    // Threads interleave differently from run to run, and so does how many races of the
    // counter a run sees: both runs have the findings the manifest expects.
    checkFindings(full.findings, m.guests.locks.scenarios[scenario], scenario);
    assert.ok(bare.events > 0);
    for (const k of ['rapidbin', 'std', 'stdBytes', 'native', 'metadata', 'metadataBytes', 'rapidbinHeader', 'nativeHeader']) {
      assert.equal(bare[k], null, `${scenario}: ${k}`);
    }
    assert.equal(bare.traceBytes, 0);
    assert.ok(JSON.parse(bare.timeline).traceEvents.length > 0, 'the timeline still comes');
    checkFindings(bare.findings, m.guests.locks.scenarios[scenario], scenario);
  }
  // Options about the trace's bytes make no sense without it: both are named at once.
  const err = await wasmgrind(file, 'mutex_counter', { exportTrace: false, onChunk: () => {}, maxTraceBytes: 1000 }).then(
    () => assert.fail('the run must be refused'),
    (e) => e,
  );
  assert.equal(err.kind, 'UsageError');
  assert.match(err.message, /onChunk.*exportTrace.*maxTraceBytes.*exportTrace/);
});
