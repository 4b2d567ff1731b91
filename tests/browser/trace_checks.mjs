// Checks of a Wasmgrind trace that a user would make, shared by the test page (which runs
// them next to the trace, so that only a small summary crosses into the test driver) and
// the Node side. Plain JavaScript, no platform APIs.
//
// The trace comes as STD text (`T<n>|op(X<m>)|<loc>` per line, dense ids) and the metadata
// object, whose `locks[n].kind` tells a real lock (`"lock"`) from an atomic pseudo-lock
// (`"atomic"`).

const LINE = /^T(\d+)\|(acq|rel|req|r|w|fork|join)\(([LVT])(\d+)\)\|(\d+)$/;

/**
 * Summarizes an STD trace: event counts by kind, forks and joins, real locks and their
 * acquisitions, and every violation of lock pairing and fork/join order found.
 *
 * Lock pairing: a thread acquires a lock only when nobody holds it, releases only a lock
 * it holds, a request is followed by the acquisition of that lock by the same thread, and
 * nothing is held or requested at the end (`endHeld`, `endRequested`; a deadlocked or
 * detached run may legitimately end so, an `ok` run may not).
 * Fork/join order: a thread is joined only after its fork and once per fork; its id may be
 * forked again after that join (the runtime recycles the ids of joined threads, as POSIX
 * does), but not while it lives; and every event of a thread but the first one (the main
 * thread) falls between its fork and its join.
 */
export function summarize(stdText, metadata) {
  const meta = typeof metadata === 'string' ? JSON.parse(metadata) : metadata;
  const lockKinds = (meta && Array.isArray(meta.locks) ? meta.locks : []).map((l) => l?.kind);
  const s = {
    events: 0,
    reads: 0,
    writes: 0,
    forks: 0,
    joins: 0,
    threads: 0,
    realLocks: 0,
    acquisitions: 0,
    atomicAcquisitions: 0,
    requests: 0,
    releases: 0,
    errors: [],
    endHeld: [],
    endRequested: [],
  };
  let problems = 0;
  const problem = (lineNo, msg) => {
    // The first 20 are enough to diagnose; the last entry says how many there were.
    problems++;
    if (problems <= 20) s.errors.push(`line ${lineNo}: ${msg}`);
  };
  const holder = new Map(); // lock -> thread
  const pending = new Map(); // thread -> lock requested
  const forked = new Set(); // forked and not joined yet
  const threads = new Set();
  let main = null; // the first thread: the only one that acts without a fork
  const realLocks = new Set();
  const lines = stdText.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].replace(/\r$/, '');
    if (text === '') continue;
    const m = LINE.exec(text);
    if (m === null) {
      problem(i + 1, `not an STD line: ${JSON.stringify(text.slice(0, 80))}`);
      continue;
    }
    s.events++;
    const t = Number(m[1]);
    const op = m[2];
    const id = Number(m[4]);
    threads.add(t);
    if (main === null) main = t;
    if (t !== main && !forked.has(t)) {
      problem(i + 1, `T${t} acts outside its life (before its fork or after its join)`);
    }
    const isRealLock = m[3] === 'L' && lockKinds[id] !== 'atomic';
    const L = `L${id}`;
    switch (op) {
      case 'r':
        s.reads++;
        break;
      case 'w':
        s.writes++;
        break;
      case 'fork':
        s.forks++;
        threads.add(id);
        if (forked.has(id)) problem(i + 1, `T${id} forked again before it was joined`);
        forked.add(id);
        break;
      case 'join':
        s.joins++;
        if (!forked.has(id)) {
          problem(i + 1, `T${t} joins T${id}, which is not a forked, unjoined thread`);
        }
        forked.delete(id);
        break;
      case 'req':
        s.requests++;
        if (holder.get(L) === t) problem(i + 1, `T${t} requests ${L}, which it already holds`);
        if (pending.has(t)) {
          problem(i + 1, `T${t} requests ${L} while its request of ${pending.get(t)} is open`);
        }
        pending.set(t, L);
        break;
      case 'acq': {
        if (isRealLock) {
          s.acquisitions++;
          realLocks.add(L);
        } else {
          s.atomicAcquisitions++;
        }
        const h = holder.get(L);
        if (h !== undefined) problem(i + 1, `T${t} acquires ${L}, which T${h} holds`);
        const p = pending.get(t);
        if (p !== undefined && p !== L) problem(i + 1, `T${t} requested ${p} but acquires ${L}`);
        pending.delete(t);
        holder.set(L, t);
        break;
      }
      case 'rel': {
        s.releases++;
        const h = holder.get(L);
        if (h !== t) {
          problem(
            i + 1,
            `T${t} releases ${L}, which ${h === undefined ? 'nobody' : `T${h}`} holds`,
          );
        }
        holder.delete(L);
        break;
      }
    }
  }
  if (problems > 20) s.errors.push(`... ${problems} problems in all, the first 20 are listed`);
  s.threads = threads.size;
  s.realLocks = realLocks.size;
  for (const [lock, t] of holder) s.endHeld.push(`T${t} holds ${lock}`);
  for (const [t, lock] of pending) s.endRequested.push(`T${t} requested ${lock}`);
  return s;
}

/**
 * What is wrong with the summary `s` of an `ok` run against the manifest's `expected`
 * scenario entry; empty when nothing is.
 */
export function checkOk(s, expected) {
  const wrong = [...s.errors];
  if (s.forks !== expected.forks) wrong.push(`${s.forks} forks, expected ${expected.forks}`);
  if (expected.joins !== null && s.joins !== expected.joins) {
    wrong.push(`${s.joins} joins, expected ${expected.joins}`);
  }
  // null: the count depends on timing (a Condvar wait re-acquires its mutex).
  if (expected.locks !== null && s.realLocks !== expected.locks) {
    wrong.push(`${s.realLocks} locks, expected ${expected.locks}`);
  }
  if (expected.acquisitions !== null && s.acquisitions !== expected.acquisitions) {
    wrong.push(`${s.acquisitions} lock acquisitions, expected ${expected.acquisitions}`);
  }
  if (s.releases !== s.acquisitions + s.atomicAcquisitions) {
    wrong.push(`${s.releases} releases for ${s.acquisitions + s.atomicAcquisitions} acquisitions`);
  }
  if (s.endHeld.length > 0) wrong.push(`locks still held at the end: ${s.endHeld.join(', ')}`);
  if (s.endRequested.length > 0) {
    wrong.push(`requests never granted: ${s.endRequested.join(', ')}`);
  }
  return wrong;
}
