// No leak: 2,000 sequential spawn/join cycles in one run keep the target memory and the
// utility memory within a fixed bound.
//
// Each thread gets its own instance of the target module. The patched start function
// allocates the instance's stack (`stackSize`, 2 MiB by default) and TLS block from the
// guest's heap, and `__wasmgrind_thread_destroy` frees them when the thread ends. Each
// thread worker's utility instance has a stack and TLS block of its own in the utility
// memory, which `__wbindgen_thread_destroy` frees when the worker closes. WebAssembly
// memory never shrinks, so `result.memory.{target,utility}` (the byte lengths of the two
// shared memories at the end of the run) are high-water marks. If a thread's resources
// were never freed, those marks would grow with the number of threads. This test checks
// that they don't:
//   - relative: the memory after 200 cycles is the memory after 1 cycle, and the memory
//     after 2,000 cycles is the memory after 200 cycles, up to a small fixed slack (see
//     the constants below; the measured growth is 0 bytes in both memories);
//   - absolute: after 2,000 cycles, the target memory holds one live thread stack and
//     little more, and the utility memory stays within its up-front reserve. One leaked
//     2 MiB stack per thread would need 4,000 MiB, and the memory's maximum is 1 GiB.
//
// Memory tracing is off (`memoryTrace: false`). With memory tracing on, the recorder's
// event buffers in the utility memory grow with every recorded access. That growth is
// legitimate and is not about thread resources: with tracing on, 2,000 cycles record
// 440,168 events and take 68.9 MB of utility memory, while 200 cycles record 45,168
// events and take 35 MB. Locks-only tracing keeps the recorder (and its per-thread
// registration) in the run, but it records only the fork and the join of each thread.
// Those 4,000 events fit in a few tens of KiB.
//
// What makes this test fail (checked against scratch copies of pkg/worker.js that leak on
// purpose):
//   - not calling `__wasmgrind_thread_destroy`: 200 cycles end at 401 MiB of target memory,
//     and 2,000 cycles trap at thread 511 when the target memory runs out;
//   - freeing a thread's stack but not its 12-byte TLS block: 2,000 cycles end at 5.31 MiB;
//   - one worker (and so one utility instance) per thread, without
//     `__wbindgen_thread_destroy`: 200 cycles end at 203 MiB of utility memory;
//   - an extra guest allocation per thread that is never freed: it is caught from about
//     128 bytes a thread. Smaller ones fit in free heap space that already exists and do
//     not grow the memory.
// Byte lengths cannot show a leak smaller than the free space the memory already has. In
// the utility memory, that free space includes the up-front reserve.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadRuntime, manifest, guestPath } from './helpers.mjs';

const { wasmgrind } = await loadRuntime();
const m = manifest();

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 64 * KiB;
const STACK_SIZE = 2 * MiB;

/** The options of every run here: memory tracing off (see above), the default stack size. */
const OPTIONS = Object.freeze({ memoryTrace: false, stackSize: STACK_SIZE, timeout: 120_000 });

/**
 * The runs compared: one cycle and 200 cycles of the same guest, then 2,000 cycles of
 * another guest built from the same crates. Each scenario spawns one thread, joins it, and
 * repeats; the counts come from guests/manifest.json.
 */
const RUNS = [
  { guest: 'basics', scenario: 'spawn_join' },
  { guest: 'basics', scenario: 'spawn_join_200' },
  { guest: 'stress', scenario: 'spawn_join_2000' },
];

/**
 * Sequential spawn/join allocates and frees the same blocks in the same order every time,
 * so the target memory after 200 cycles is the memory after 1 cycle (measured: equal). One
 * page of slack keeps a harmless change of allocation order from failing the test; across
 * two guest binaries it also allows for a different static data layout. Leaking the 12-byte TLS block of each thread grows the 2,000-cycle run by
 * 2,162,688 bytes (33 pages): the leaked blocks fragment the heap, so later stacks no
 * longer fit where the freed ones were.
 */
const TARGET_SLACK = PAGE;
/**
 * The utility memory holds the recorder's event buffers, which legitimately grow with the
 * fork and join events (2 a thread). Leaking one utility instance (a 1 MiB stack plus TLS)
 * per thread grows it by at least 1 MiB a thread.
 */
const UTILITY_SLACK = 1 * MiB;
/**
 * Absolute bound on the target memory after 2,000 cycles. It allows for the one child
 * stack that is live at a time (`stackSize`) plus 2 MiB for the guest's static data, its
 * 1 MiB main stack, the TLS blocks and the heap. Measured: 3,407,872 bytes (3.25 MiB).
 */
const TARGET_BOUND = STACK_SIZE + 2 * MiB;
/**
 * Absolute bound on the utility memory after 2,000 cycles. The runtime reserves 32 MiB of
 * utility heap up front (UTIL_RESERVE_BYTES in wasmgrind.js). That reserve holds the
 * utility instances of the small worker pool that sequential cycles need, and the
 * recorder's buffers. The bound allows 16 MiB on top of the reserve. Measured: 34,996,224
 * bytes (33.4 MiB).
 */
const UTILITY_BOUND = 48 * MiB;

const mib = (bytes) => `${(bytes / MiB).toFixed(2)} MiB`;
const show = (bytes) => `${bytes} bytes (${mib(bytes)})`;

/**
 * `scenario` -> `{ cycles, memory: { target, utility } }` or `{ error }`, filled by
 * `before`. Every run is measured even if an earlier one failed, so that each test below
 * reports what it can.
 */
const measured = new Map();

async function measure(guest, scenario) {
  const g = m.guests[guest];
  const s = g.scenarios[scenario];
  assert.ok(s, `guests/manifest.json has no scenario ${guest}.${scenario}`);
  assert.equal(s.forks, s.joins, `${guest}.${scenario} must join every thread it spawns`);
  let r;
  try {
    r = await wasmgrind(guestPath(g.file), scenario, OPTIONS);
  } catch (e) {
    // A runtime that leaks stacks exhausts the 1 GiB target memory long before 2,000
    // threads; the run then fails with a trap in the start function of a new instance.
    e.message =
      `${guest}.${scenario} (${s.forks} spawn/join cycles) failed (a runtime that leaks ` +
      `per-thread memory runs out of memory here): ${e.message}`;
    throw e;
  }
  assert.equal(r.status, 'ok');
  assert.equal(r.threads.forks, s.forks, `${scenario}: threads forked`);
  assert.deepEqual(r.detached, [], `${scenario}: no thread is left running`);
  // Memory tracing off, no locks: exactly one fork and one join event per thread.
  assert.equal(r.events, 2 * s.forks, `${scenario}: recorded events (forks and joins only)`);
  // What the run really did, counted by the runtime, not what the manifest says.
  return { cycles: r.threads.forks, memory: r.memory };
}

before(async () => {
  for (const { guest, scenario } of RUNS) {
    try {
      measured.set(scenario, await measure(guest, scenario));
    } catch (error) {
      measured.set(scenario, { error });
    }
  }
});

/** The measurement of `scenario`; throws the error of its run if it failed. */
function get(scenario) {
  const x = measured.get(scenario);
  assert.ok(x, `${scenario} was not measured`);
  if (x.error) throw x.error;
  return x;
}

test('the 2,000-cycle scenario really runs 2,000 sequential spawn/join cycles', () => {
  assert.equal(get('spawn_join_2000').cycles, 2000);
  assert.equal(get('spawn_join_200').cycles, 200);
  assert.equal(get('spawn_join').cycles, 1);
});

test('the target memory does not grow with the number of threads', (t) => {
  const one = get('spawn_join').memory.target;
  const hundreds = get('spawn_join_200').memory.target;
  t.diagnostic(`target memory: 1 cycle ${show(one)}, 200 cycles ${show(hundreds)}`);
  assert.ok(
    hundreds <= one + TARGET_SLACK,
    `the target memory grew from ${show(one)} after 1 cycle to ${show(hundreds)} after 200 cycles of the same ` +
      `guest: threads leak their stack or TLS block (is __wasmgrind_thread_destroy called when a thread ends?)`,
  );
  const thousands = get('spawn_join_2000').memory.target;
  t.diagnostic(`target memory: 2,000 cycles ${show(thousands)}`);
  assert.ok(
    thousands <= hundreds + TARGET_SLACK,
    `the target memory grew from ${show(hundreds)} after 200 cycles to ${show(thousands)} after 2,000 cycles, ` +
      `more than the ${TARGET_SLACK}-byte slack: threads leak their stack or TLS block`,
  );
});

test('the utility memory does not grow with the number of threads', (t) => {
  const one = get('spawn_join').memory.utility;
  const hundreds = get('spawn_join_200').memory.utility;
  t.diagnostic(`utility memory: 1 cycle ${show(one)}, 200 cycles ${show(hundreds)}`);
  assert.ok(
    hundreds <= one + UTILITY_SLACK,
    `the utility memory grew from ${show(one)} after 1 cycle to ${show(hundreds)} after 200 cycles, more than ` +
      `the ${UTILITY_SLACK}-byte slack: utility instances or recorder state leak per thread ` +
      `(is __wbindgen_thread_destroy called when a worker closes?)`,
  );
  const thousands = get('spawn_join_2000').memory.utility;
  t.diagnostic(`utility memory: 2,000 cycles ${show(thousands)}`);
  assert.ok(
    thousands <= hundreds + UTILITY_SLACK,
    `the utility memory grew from ${show(hundreds)} after 200 cycles to ${show(thousands)} after 2,000 cycles, ` +
      `more than the ${UTILITY_SLACK}-byte slack: utility instances or recorder state leak per thread`,
  );
});

test('after 2,000 cycles both memories are within a fixed absolute bound', () => {
  const { target, utility } = get('spawn_join_2000').memory;
  assert.ok(
    target <= TARGET_BOUND,
    `after 2,000 cycles the target memory is ${show(target)}, more than the bound of ${show(TARGET_BOUND)} ` +
      `(one ${mib(STACK_SIZE)} thread stack plus 2 MiB): thread stacks or TLS blocks are not freed`,
  );
  assert.ok(
    utility <= UTILITY_BOUND,
    `after 2,000 cycles the utility memory is ${show(utility)}, more than the bound of ${show(UTILITY_BOUND)} ` +
      `(the 32 MiB up-front reserve plus 16 MiB): utility instances or recorder state are not freed`,
  );
});
