//! Scenarios for the guest library's `Condvar`, `Barrier` and `RwLock`: a producer and a
//! consumer handing items over with two condition variables, a broadcast with
//! `notify_all`, threads that meet at a barrier between rounds of unsynchronized writes
//! and reads, readers and writers of an `RwLock`, and a lock-order inversion between a
//! writer and a reader (a potential deadlock).
//!
//! Every exported function is a scenario listed in `guests/manifest.json`. The race-free
//! ones are race-free only through the primitive they exercise: the data it orders is
//! plain memory, so a primitive that the race detector did not see as synchronization
//! would show up as a data race.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use support::{pass_turn, wait_for_turn};
use wasmgrind_guest::sync::{Barrier, Condvar, Mutex, RwLock};
use wasmgrind_guest::thread;

/// Plain memory shared between threads without a lock; the scenario orders the accesses.
struct Shared<T>(UnsafeCell<T>);

// SAFETY: each scenario orders every access with the primitive it exercises (and checks
// the values it reads).
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(value: T) -> Self {
        Shared(UnsafeCell::new(value))
    }

    /// # Safety
    ///
    /// No other thread accesses the value meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self) -> &mut T {
        // SAFETY: the caller rules out concurrent access.
        unsafe { &mut *self.0.get() }
    }
}

/// The slot that [`condvar_handoff`]'s threads hand items through.
struct Slot {
    /// The item on its way, if any.
    item: Option<Box<[u32; 32]>>,
    /// Items taken so far.
    taken: u32,
}

/// A producer hands 40 heap-allocated arrays, one at a time, through a slot guarded by
/// the library's `Mutex` and two `Condvar`s (slot full, slot empty) to a consumer, which
/// checks their contents and frees them.
#[no_mangle]
pub extern "C" fn condvar_handoff() {
    const ITEMS: u32 = 40;
    let shared = Arc::new((
        Mutex::new(Slot {
            item: None,
            taken: 0,
        }),
        Condvar::new(),
        Condvar::new(),
    ));
    let producer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let (slot, filled, emptied) = &*shared;
            for i in 0..ITEMS {
                let mut item = Box::new([0u32; 32]);
                for (k, v) in item.iter_mut().enumerate() {
                    *v = i * 32 + k as u32;
                }
                let mut guard = emptied.wait_while(slot.lock(), |s| s.item.is_some());
                guard.item = Some(item);
                filled.notify_one();
            }
        })
    };
    let consumer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let (slot, filled, emptied) = &*shared;
            let mut sum = 0u64;
            for i in 0..ITEMS {
                let mut guard = filled.wait_while(slot.lock(), |s| s.item.is_none());
                let item = guard.item.take().expect("the slot is full");
                guard.taken += 1;
                emptied.notify_one();
                drop(guard);
                assert!(
                    item.iter()
                        .enumerate()
                        .all(|(k, &v)| v == i * 32 + k as u32),
                    "condvar_handoff: item {i} arrived corrupted"
                );
                sum += item.iter().map(|&v| u64::from(v)).sum::<u64>();
            }
            sum
        })
    };
    producer
        .join()
        .expect("condvar_handoff: producer join failed");
    let sum = consumer
        .join()
        .expect("condvar_handoff: consumer join failed");
    let n = u64::from(ITEMS) * 32;
    assert_eq!(sum, n * (n - 1) / 2, "condvar_handoff: wrong sum");
    assert_eq!(
        shared.0.lock().taken,
        ITEMS,
        "condvar_handoff: wrong number of items"
    );
}

/// What [`condvar_broadcast`]'s threads share under the mutex.
struct Gate {
    /// Waiters that have arrived.
    arrived: u32,
    /// Whether the main thread opened the gate.
    open: bool,
}

/// Three threads arrive at a gate (counted under a `Mutex`, announced with one `Condvar`)
/// and wait on a second `Condvar` until the main thread opens it with `notify_all`. The
/// main thread fills a plain buffer before it opens the gate, and every waiter reads it
/// after: the mutex, released by the main thread and taken again by each woken waiter,
/// orders the writes before the reads.
#[no_mangle]
pub extern "C" fn condvar_broadcast() {
    const WAITERS: u32 = 3;
    let shared = Arc::new((
        Mutex::new(Gate {
            arrived: 0,
            open: false,
        }),
        Condvar::new(),
        Condvar::new(),
        Shared::new([0u32; 16]),
    ));
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let (gate, arrivals, opened, buffer) = &*shared;
                let mut g = gate.lock();
                g.arrived += 1;
                arrivals.notify_one();
                drop(opened.wait_while(g, |g| !g.open));
                // SAFETY: the main thread wrote the buffer before it opened the gate and
                // does not touch it again; waiters only read.
                unsafe { buffer_sum(buffer) }
            })
        })
        .collect();
    let (gate, arrivals, opened, buffer) = &*shared;
    let mut g = arrivals.wait_while(gate.lock(), |g| g.arrived < WAITERS);
    // SAFETY: the waiters read the buffer only after the gate is open.
    for (i, v) in unsafe { buffer.get() }.iter_mut().enumerate() {
        *v = i as u32 + 1;
    }
    g.open = true;
    opened.notify_all();
    drop(g);
    for w in waiters {
        let sum = w.join().expect("condvar_broadcast: join failed");
        assert_eq!(
            sum, 136,
            "condvar_broadcast: a waiter read the buffer too early"
        );
    }
}

/// The sum of a shared buffer.
///
/// # Safety
///
/// No thread writes the buffer meanwhile.
unsafe fn buffer_sum(buffer: &Shared<[u32; 16]>) -> u32 {
    // SAFETY: the caller rules out writers.
    unsafe { buffer.get() }.iter().sum()
}

/// Four threads run 20 rounds: each writes its own slot of a plain array, meets the others
/// at a `Barrier`, reads every slot (all must hold this round's number), and meets them
/// again before the next round's writes. Only the barrier orders the writes and the reads.
/// Each round has exactly one leader.
#[no_mangle]
pub extern "C" fn barrier_rounds() {
    const THREADS: usize = 4;
    const ROUNDS: u32 = 20;
    let shared = Arc::new((
        Barrier::new(THREADS),
        Shared::new([0u32; THREADS]),
        AtomicU32::new(0),
    ));
    let handles: Vec<_> = (0..THREADS)
        .map(|me| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let (barrier, slots, leaders) = &*shared;
                for round in 1..=ROUNDS {
                    // SAFETY: between two barriers each thread writes only its own slot,
                    // and reads happen between the next two.
                    unsafe { slots.get()[me] = round };
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::Relaxed);
                    }
                    // SAFETY: as above: nobody writes until everyone passed the next wait.
                    let seen = unsafe { *slots.get() };
                    assert!(
                        seen.iter().all(|&v| v == round),
                        "barrier_rounds: thread {me} saw {seen:?} in round {round}"
                    );
                    barrier.wait();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("barrier_rounds: join failed");
    }
    assert_eq!(
        shared.2.load(Ordering::Relaxed),
        ROUNDS,
        "barrier_rounds: not exactly one leader per round"
    );
}

/// Two writers each update a pair behind an `RwLock` 50 times (both halves, one after the
/// other); three readers each read it 100 times and check that the halves agree.
#[no_mangle]
pub extern "C" fn rwlock_readers_writers() {
    const WRITES: u64 = 50;
    const READS: u32 = 100;
    let pair = Arc::new(RwLock::new((0u64, 0u64)));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let pair = Arc::clone(&pair);
        handles.push(thread::spawn(move || {
            for _ in 0..WRITES {
                let mut g = pair.write();
                g.0 += 1;
                g.1 = std::hint::black_box(g.1) + 1;
            }
        }));
    }
    for _ in 0..3 {
        let pair = Arc::clone(&pair);
        handles.push(thread::spawn(move || {
            for _ in 0..READS {
                let g = pair.read();
                assert_eq!(
                    g.0, g.1,
                    "rwlock_readers_writers: a reader saw half a write"
                );
            }
        }));
    }
    for h in handles {
        h.join().expect("rwlock_readers_writers: join failed");
    }
    let pair = Arc::try_unwrap(pair)
        .unwrap_or_else(|_| panic!("rwlock_readers_writers: still shared after every join"))
        .into_inner();
    assert_eq!(
        pair,
        (2 * WRITES, 2 * WRITES),
        "rwlock_readers_writers: lost updates"
    );
}

/// Takes `lock` for writing, then (still holding it) `other`.
///
/// Never inlined: the inversion's write side takes both locks here.
#[inline(never)]
fn write_then_lock(lock: &RwLock<u32>, other: &Mutex<u32>) {
    let mut written = lock.write();
    let mut held = other.lock();
    *written += 1;
    *held += 1;
}

/// Takes `other`, then (still holding it) a read lock of `lock`; returns what it read.
///
/// Never inlined: the inversion's read side takes both locks here.
#[inline(never)]
fn lock_then_read(other: &Mutex<u32>, lock: &RwLock<u32>) -> u32 {
    let mut held = other.lock();
    let read = lock.read();
    *held += 1;
    *read
}

/// A potential deadlock between a writer and a reader that cannot happen in this run: one
/// thread writes `L` and then takes `M`, the other takes `M` and then asks to read `L`.
/// Both are spawned before either is joined; an atomic turn counter runs the writer first.
#[no_mangle]
pub extern "C" fn rwlock_read_write_inversion() {
    let lock = Arc::new(RwLock::new(0u32));
    let other = Arc::new(Mutex::new(0u32));
    let turn = Arc::new(AtomicU32::new(0));
    let writer = {
        let (lock, other, turn) = (Arc::clone(&lock), Arc::clone(&other), Arc::clone(&turn));
        thread::spawn(move || {
            wait_for_turn(&turn, 0);
            write_then_lock(&lock, &other);
            pass_turn(&turn);
        })
    };
    let reader = {
        let (lock, other, turn) = (Arc::clone(&lock), Arc::clone(&other), Arc::clone(&turn));
        thread::spawn(move || {
            wait_for_turn(&turn, 1);
            let seen = lock_then_read(&other, &lock);
            pass_turn(&turn);
            seen
        })
    };
    writer
        .join()
        .expect("rwlock_read_write_inversion: writer join failed");
    let seen = reader
        .join()
        .expect("rwlock_read_write_inversion: reader join failed");
    assert_eq!(seen, 1, "rwlock_read_write_inversion: the reader ran first");
}
