// Unit tests of the browser tests' own parts, without a browser:
//   node --test tests/browser/unit.test.mjs
// - the static server: isolation headers, content types, 404, no escape from its root;
// - the trace checks: counts and lock pairing on hand-written STD traces.

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { resolvePath, startServer } from './server.mjs';
import { checkOk, summarize } from './trace_checks.mjs';

/** A raw GET (no URL normalization, unlike fetch) of `path`. */
function get(port, path, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('static server', () => {
  let dir;
  let server;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmgrind-server-test-'));
    await mkdir(join(dir, 'pkg'));
    await writeFile(join(dir, 'pkg', 'a.js'), 'export const a = 1;\n');
    await writeFile(join(dir, 'pkg', 'm.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    await writeFile(join(dir, 'index.html'), '<!doctype html><p>hi</p>\n');
    await writeFile(join(tmpdir(), 'wasmgrind-outside.txt'), 'secret\n');
    server = await startServer(dir);
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
    await rm(join(tmpdir(), 'wasmgrind-outside.txt'), { force: true });
  });

  test('listens on 127.0.0.1 at an ephemeral port', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.ok(server.port > 0);
  });

  test('every response makes the page cross-origin isolated', async () => {
    for (const path of ['/', '/pkg/a.js', '/pkg/m.wasm', '/missing']) {
      const r = await get(server.port, path);
      assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', path);
      assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', path);
    }
  });

  test('content types that browsers require', async () => {
    const js = await get(server.port, '/pkg/a.js');
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'], /^text\/javascript/);
    assert.equal(js.body, 'export const a = 1;\n');
    const wasm = await get(server.port, '/pkg/m.wasm');
    assert.equal(wasm.headers['content-type'], 'application/wasm');
    assert.equal(wasm.body.length, 8);
    const html = await get(server.port, '/');
    assert.match(html.headers['content-type'], /^text\/html/);
    assert.match(html.body, /<p>hi<\/p>/);
  });

  test('HEAD has the headers and no body', async () => {
    const r = await get(server.port, '/pkg/m.wasm', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '8');
    assert.equal(r.body, '');
  });

  test('missing files are 404 and other methods 405', async () => {
    assert.equal((await get(server.port, '/pkg/nope.js')).status, 404);
    assert.equal((await get(server.port, '/pkg/a.js', 'POST')).status, 405);
  });

  test('nothing outside the root is served', async () => {
    for (const path of [
      '/../wasmgrind-outside.txt',
      '/pkg/../../wasmgrind-outside.txt',
      '/%2e%2e/wasmgrind-outside.txt',
      '/pkg%2f..%2f..%2fwasmgrind-outside.txt',
    ]) {
      const r = await get(server.port, path);
      assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status}`);
      assert.ok(!r.body.includes('secret'), path);
    }
    assert.equal(resolvePath('/srv/root', '/%2e%2e/x'), null);
    assert.equal(resolvePath('/srv/root', '/a%00b'), null);
    assert.equal(resolvePath('/srv/root', '/%zz'), null);
    assert.equal(resolvePath('/srv/root', '/a/../b'), '/srv/root/b');
  });
});

describe('trace checks', () => {
  const meta = { locks: [{ address: 1024, kind: 'lock' }, { address: 2048, kind: 'atomic' }] };

  test('counts forks, joins, locks and acquisitions', () => {
    const std = [
      'T0|fork(T1)|0',
      'T1|req(L0)|1',
      'T1|acq(L0)|1',
      'T1|r(V0)|2',
      'T1|w(V0)|3',
      'T1|rel(L0)|4',
      'T1|acq(L1)|5',
      'T1|w(V1)|5',
      'T1|rel(L1)|5',
      'T0|join(T1)|6',
      '',
    ].join('\n');
    const s = summarize(std, meta);
    assert.deepEqual(
      [s.events, s.forks, s.joins, s.threads, s.realLocks, s.acquisitions, s.atomicAcquisitions],
      [10, 1, 1, 2, 1, 1, 1],
    );
    assert.deepEqual([s.reads, s.writes, s.requests, s.releases], [1, 2, 1, 2]);
    assert.deepEqual(s.errors, []);
    const expected = { forks: 1, joins: 1, locks: 1, acquisitions: 1 };
    assert.deepEqual(checkOk(s, expected), []);
    assert.deepEqual(checkOk(s, { ...expected, forks: 2, acquisitions: 3 }), [
      '1 forks, expected 2',
      '1 lock acquisitions, expected 3',
    ]);
  });

  test('metadata may come as JSON text', () => {
    const s = summarize('T0|acq(L1)|0\nT0|rel(L1)|0\n', JSON.stringify(meta));
    assert.equal(s.realLocks, 0);
    assert.equal(s.atomicAcquisitions, 1);
  });

  test('finds unpaired and overlapping lock events', () => {
    const bad = (lines) => summarize(lines.join('\n'), meta).errors.join('; ');
    assert.match(bad(['T0|acq(L0)|0', 'T1|acq(L0)|1']), /T1 acquires L0, which T0 holds/);
    assert.match(bad(['T0|rel(L0)|0']), /T0 releases L0, which nobody holds/);
    assert.match(bad(['T0|acq(L0)|0', 'T1|rel(L0)|1']), /T1 releases L0, which T0 holds/);
    assert.match(bad(['T0|req(L0)|0', 'T0|acq(L2)|1']), /T0 requested L0 but acquires L2/);
    assert.match(bad(['T0|join(T1)|0']), /not a forked, unjoined thread/);
    assert.match(bad(['T0|fork(T1)|0', 'T0|fork(T1)|0']), /T1 forked again before it was joined/);
    assert.match(bad(['T0|fork(T1)|0', 'T0|join(T1)|0', 'T0|join(T1)|0']), /not a forked, unjoined/);
    // A joined thread's id may be used again.
    assert.equal(bad(['T0|fork(T1)|0', 'T0|join(T1)|0', 'T0|fork(T1)|0', 'T0|join(T1)|0']), '');
    assert.match(bad(['T0|bogus(L0)|0']), /not an STD line/);
  });

  test('an ok run must end with nothing held or requested', () => {
    const s = summarize('T0|req(L0)|0\nT0|acq(L0)|0\nT1|req(L0)|1\n', meta);
    const wrong = checkOk(s, { forks: 0, joins: 0, locks: 1, acquisitions: 1 });
    assert.ok(wrong.some((w) => w.includes('locks still held at the end: T0 holds L0')), wrong);
    assert.ok(wrong.some((w) => w.includes('requests never granted: T1 requested L0')), wrong);
  });

  test('a long list of problems is capped and says how many there were', () => {
    const lines = Array.from({ length: 30 }, () => 'T0|rel(L0)|0');
    const s = summarize(lines.join('\n'), meta);
    assert.equal(s.errors.length, 21);
    assert.match(s.errors[20], /30 problems in all/);
  });
});
