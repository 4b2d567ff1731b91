// Shared helpers of the Node end-to-end tests: where things are, and independent checks of
// a trace (decoded from the STD text and the RapidBin bytes, not taken from the runtime).

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { findingProblems } from '../findings.mjs';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const pkgDir = `${root}pkg/`;
export const guestsDir = `${root}target/guests/`;
export const cliPath = `${pkgDir}cli.js`;

function need(path, how) {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`${how}\` first (\`cargo xtask test\` does both)`);
  }
}

/** The runtime from pkg/ (built by `cargo xtask dist`). */
export async function loadRuntime() {
  need(`${pkgDir}wasmgrind.js`, 'cargo xtask dist');
  return import(`${pkgDir}wasmgrind.js`);
}

/** guests/manifest.json. */
export function manifest() {
  return JSON.parse(readFileSync(`${root}guests/manifest.json`, 'utf8'));
}

/** The path of a built guest. */
export function guestPath(file) {
  const p = `${guestsDir}${file}`;
  need(p, 'cargo xtask guests');
  return p;
}

/** Parses STD text into events `{ t, op, arg, loc }` (dense ids). */
export function parseStd(std) {
  const events = [];
  const re = /^T(\d+)\|(acq|rel|req|r|w|fork|join)\(([LVT])(\d+)\)\|(\d+)$/;
  for (const line of std.split('\n')) {
    if (line === '') continue;
    const m = re.exec(line);
    assert.ok(m, `STD line does not parse: ${line}`);
    events.push({ t: Number(m[1]), op: m[2], kind: m[3], arg: Number(m[4]), loc: Number(m[5]) });
  }
  return events;
}

const OP_CODES = { acq: 0, rel: 1, r: 2, w: 3, fork: 4, join: 5, req: 8 };

/** Checks that RapidBin `bytes` encode exactly the STD `events` and the metadata counts. */
export function checkRapidBin(bytes, events, metadata) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.ok(bytes.byteLength >= 18, 'RapidBin is shorter than its header');
  const threads = view.getInt16(0);
  const locks = view.getInt32(2);
  const variables = view.getInt32(6);
  const count = Number(view.getBigInt64(10));
  assert.equal(bytes.byteLength, 18 + 8 * count, 'RapidBin length does not match its event count');
  assert.equal(count, events.length, 'RapidBin and STD have different event counts');
  const c = metadata.counts;
  assert.deepEqual([threads, locks, variables, count], [c.threads, c.locks, c.variables, c.events]);
  for (let i = 0; i < count; i++) {
    const v = view.getBigInt64(18 + 8 * i);
    assert.ok(v >= 0n, `RapidBin event ${i} has its sign bit set`);
    const t = Number(v & 0x3ffn);
    const op = Number((v >> 10n) & 0xfn);
    const decor = Number((v >> 14n) & 0x3ffffffffn);
    const loc = Number((v >> 48n) & 0x7fffn);
    const e = events[i];
    assert.deepEqual([t, op, decor, loc], [e.t, OP_CODES[e.op], e.arg, e.loc], `RapidBin event ${i} differs from STD`);
  }
}

/**
 * Checks the structure of a trace and returns its counts:
 * - every fork names a thread that is not running, and a thread's events lie between its
 *   fork and its join (thread ids of joined threads may be reused by a later fork);
 * - lock consistency: a lock is acquired only when free and released only by its holder;
 * - a request is followed, among its thread's events other than memory accesses, by the
 *   acquisition of that lock (or by nothing, if the run ended while the thread waited);
 * - every acquisition is released by the end (unless `allowHeldAtEnd`).
 */
export function checkTrace(events, metadata, { allowHeldAtEnd = false } = {}) {
  const isRealLock = (l) => metadata.locks[l].kind === 'lock';
  const state = new Map(); // thread -> 'running' | 'joined'
  // T0, the first thread to appear, is the main thread; every other one must be forked.
  state.set(0, 'running');
  const holder = new Map(); // lock -> thread
  const waiting = new Map(); // thread -> lock requested, not yet acquired
  let forks = 0;
  let joins = 0;
  let acquisitions = 0;
  const lockSet = new Set();
  events.forEach((e, i) => {
    const where = `event ${i} (T${e.t} ${e.op} ${e.kind}${e.arg})`;
    assert.equal(state.get(e.t), 'running', `${where}: thread T${e.t} acts while not running`);
    if (waiting.has(e.t) && e.op !== 'r' && e.op !== 'w') {
      // While it waits, a thread only touches memory (the lock's own word, for one).
      const l = waiting.get(e.t);
      assert.ok(e.op === 'acq' && e.arg === l, `${where}: T${e.t} requested L${l} but did something else first`);
    }
    switch (e.op) {
      case 'fork':
        forks++;
        assert.notEqual(state.get(e.arg), 'running', `${where}: T${e.arg} forked while running`);
        assert.notEqual(e.arg, e.t, `${where}: a thread forks itself`);
        state.set(e.arg, 'running');
        break;
      case 'join':
        joins++;
        assert.equal(state.get(e.arg), 'running', `${where}: T${e.arg} joined but not running`);
        state.set(e.arg, 'joined');
        break;
      case 'req':
        waiting.set(e.t, e.arg);
        break;
      case 'acq':
        waiting.delete(e.t);
        assert.ok(!holder.has(e.arg), `${where}: L${e.arg} acquired while T${holder.get(e.arg)} holds it`);
        holder.set(e.arg, e.t);
        if (isRealLock(e.arg)) {
          acquisitions++;
          lockSet.add(e.arg);
        }
        break;
      case 'rel':
        assert.equal(holder.get(e.arg), e.t, `${where}: L${e.arg} released by a thread that does not hold it`);
        holder.delete(e.arg);
        break;
      default:
        break;
    }
  });
  if (!allowHeldAtEnd) {
    assert.equal(holder.size, 0, `locks still held at the end: ${[...holder.keys()].join(', ')}`);
  }
  return { forks, joins, acquisitions, locks: lockSet.size };
}

/**
 * Checks a report against a manifest scenario `s`; see tests/findings.mjs, which the
 * browser tests share.
 */
export function checkFindings(report, s, what) {
  const problems = findingProblems(report, s);
  assert.deepEqual(problems, [], `${what}: ${problems.join('\n')}`);
}

/**
 * A wasi program's run (`r`, its result, or `err`, its error) in the shape that
 * `wasiOutcomeProblems` (tests/findings.mjs) judges, as the browser tests shape it.
 */
export function wasiOutcome(r, err) {
  return r
    ? {
        ok: true,
        exitCode: r.exitCode,
        stdout: r.stdout,
        stderr: r.stderr,
        forks: r.threads.forks,
        forkJoinConsistency: r.forkJoinConsistency,
        findings: r.findings,
      }
    : {
        ok: false,
        error: { kind: err.kind, message: err.message, stdout: err.stdout, stderr: err.stderr, findings: err.findings },
      };
}

/** Runs `node` with `args` and resolves to `{ code, stdout, stderr, ms }`. */
export async function runNode(args, { timeoutMs = 120_000, cwd = root } = {}) {
  const { spawn } = await import('node:child_process');
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - start });
    });
  });
}
