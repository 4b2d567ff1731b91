// The timeline (`timeline` option, `--timeline FILE`): Chrome trace-event JSON whose tracks,
// slices, arrows and marks match the run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRuntime, manifest, guestPath, cliPath, runNode } from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();

/** The timeline's events of phase `ph` (and category `cat`). */
const of = (t, ph, cat) => t.traceEvents.filter((e) => e.ph === ph && (cat === undefined || e.cat === cat));

test('the timeline of mutex_counter has a track per thread, a slice per lock hold and an arrow per fork and join', async () => {
  const s = m.guests.locks.scenarios.mutex_counter;
  const r = await wasmgrind(guestPath(m.guests.locks.file), 'mutex_counter', { timeline: true, memoryTrace: false });
  const t = JSON.parse(r.timeline);
  const threads = of(t, 'M').filter((e) => e.name === 'thread_name');
  assert.equal(threads.length, s.forks + 1, 'a named track per thread');
  assert.equal(of(t, 'X', 'lock').length, s.acquisitions, 'a slice per acquisition');
  for (const cat of ['fork', 'join']) {
    const starts = of(t, 's', cat);
    const ends = of(t, 'f', cat);
    assert.equal(starts.length, cat === 'fork' ? s.forks : s.joins, `${cat} arrows`);
    assert.deepEqual(ends.map((e) => e.id).sort(), starts.map((e) => e.id).sort(), `every ${cat} arrow has both ends`);
  }
  // Every slice of a thread lies within its life.
  const lives = new Map(of(t, 'X', 'thread').filter((e) => e.name.startsWith('thread ')).map((e) => [e.tid, e]));
  for (const hold of of(t, 'X', 'lock')) {
    const life = lives.get(hold.tid);
    assert.ok(hold.ts >= life.ts && hold.ts + hold.dur <= life.ts + life.dur, JSON.stringify(hold));
  }
  assert.equal(t.otherData.events, r.events);
  assert.equal(of(t, 'i').length, 0, 'no finding, no mark');
});

test('findings are marked on the timeline, streamed or not, and --timeline writes the same file', async () => {
  const path = guestPath(m.guests.locks.file);
  const r = await wasmgrind(path, 'lock_order_inversion', { timeline: true });
  const whole = JSON.parse(r.timeline);
  const marks = of(whole, 'i', 'deadlock');
  assert.ok(marks.length >= 2, 'the lock-order cycle is marked on both threads');
  assert.deepEqual([...new Set(marks.map((e) => e.tid))].length, 2);
  // Streamed: the chunks' parts and the end make the same document.
  const parts = [];
  const streamed = await wasmgrind(path, 'lock_order_inversion', {
    timeline: true,
    chunkEvents: 64,
    onChunk: (c) => {
      parts.push(c.timeline);
    },
  });
  assert.equal(streamed.timeline, null);
  const again = JSON.parse(parts.join('') + streamed.timelineEnd);
  assert.equal(of(again, 'i', 'deadlock').length, marks.length);
  assert.equal(of(again, 'X', 'lock').length, of(whole, 'X', 'lock').length);
  // The command line.
  const dir = mkdtempSync(join(tmpdir(), 'wasmgrind-timeline-'));
  const out = await runNode([cliPath, 'run', path, 'lock_order_inversion', '--out', dir, '--timeline', join(dir, 'tl', 'timeline.json')]);
  assert.equal(out.code, 66, out.stderr);
  const file = JSON.parse(readFileSync(join(dir, 'tl', 'timeline.json'), 'utf8'));
  assert.equal(of(file, 'i', 'deadlock').length, marks.length);
  assert.match(out.stdout, /timeline: .*timeline\.json/);
  rmSync(dir, { recursive: true, force: true });
});

test('a data race is marked on both racing threads', async () => {
  const r = await wasmgrind(guestPath(m.guests.locks.file), 'unsynchronized_counter', { timeline: true });
  const t = JSON.parse(r.timeline);
  const races = of(t, 'i', 'race');
  assert.ok(r.findings.counts.races >= 1, r.report);
  // One mark on each racing thread per reported race, with the report's count (a report
  // that stands for races at several code copies of one source position is marked once).
  assert.equal(races.length, 2 * r.findings.races.length);
  assert.ok(races.every((e) => e.name.startsWith('data race on 0x')));
  assert.deepEqual(
    races.map((e) => e.name).sort(),
    r.findings.races.flatMap((f) => Array(2).fill(`data race on 0x${f.addr.toString(16)} (${f.count} ${f.count === 1 ? 'time' : 'times'})`)).sort(),
  );
});
