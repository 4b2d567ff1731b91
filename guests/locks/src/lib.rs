//! Lock scenarios: a contended counter, `try_lock`, lock-order cycles that are potential
//! deadlocks (two and three locks) and two that are not (a guard lock, fork/join order),
//! dining philosophers, and an unsynchronized counter (a data race).
//!
//! Every exported function is a scenario listed in `guests/manifest.json`. The locks are
//! taken and the racy accesses made in `#[inline(never)]` functions with distinctive names,
//! which the manifest's `findings` name.

use std::cell::UnsafeCell;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use support::{arrive_and_wait, pass_turn, wait_for_turn};
use wasmgrind_guest::sync::Mutex;
use wasmgrind_guest::thread::{self, JoinHandle};

/// Takes the value out of a mutex that no other thread references any more.
fn unwrap_mutex<T>(m: Arc<Mutex<T>>, what: &str) -> T {
    Arc::try_unwrap(m)
        .unwrap_or_else(|_| panic!("{what}: still shared after every join"))
        .into_inner()
}

/// 8 threads each add 1 to a mutex-protected counter 500 times; the sum must be 4000.
#[no_mangle]
pub extern "C" fn mutex_counter() {
    const THREADS: u64 = 8;
    const ADDS: u64 = 500;
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..ADDS {
                    *counter.lock() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("mutex_counter: join failed");
    }
    let total = unwrap_mutex(counter, "mutex_counter");
    assert_eq!(
        total,
        THREADS * ADDS,
        "mutex_counter: lost updates under the lock"
    );
}

/// `try_lock` fails in a child while the main thread holds the lock (no request is
/// reported), then succeeds in the main thread once the lock is free.
#[no_mangle]
pub extern "C" fn try_lock() {
    let m = Arc::new(Mutex::new(0u32));
    let held = m.lock();
    let m2 = Arc::clone(&m);
    let child = thread::spawn(move || m2.try_lock().is_none());
    let refused = child.join().expect("try_lock: join failed");
    assert!(
        refused,
        "try_lock: the child got a lock the main thread holds"
    );
    drop(held);
    *m.try_lock().expect("try_lock: the free lock was refused") += 1;
    assert_eq!(unwrap_mutex(m, "try_lock"), 1);
}

/// Takes `first`, then (still holding it) `second`, and adds 1 to both values.
///
/// Never inlined: the lock-order scenarios take all their locks here, so the locations of
/// their lock events are in a function of this name.
#[inline(never)]
fn take_two_locks(first: &Mutex<u32>, second: &Mutex<u32>) {
    let mut held = first.lock();
    let mut next = second.lock();
    *held += 1;
    *next += 1;
}

/// Spawns a thread that waits for turn `mine` of `turn`, takes `first` then `second` with
/// [`take_two_locks`], and passes the turn on.
fn spawn_in_turn(
    turn: &Arc<AtomicU32>,
    mine: u32,
    first: &Arc<Mutex<u32>>,
    second: &Arc<Mutex<u32>>,
) -> JoinHandle<()> {
    let (turn, first, second) = (Arc::clone(turn), Arc::clone(first), Arc::clone(second));
    thread::spawn(move || {
        wait_for_turn(&turn, mine);
        take_two_locks(&first, &second);
        pass_turn(&turn);
    })
}

/// A potential deadlock that cannot happen in this run: two threads run concurrently (both
/// are spawned before either is joined); the first takes A then B, the second B then A.
/// An atomic turn counter lets the second start only after the first has released both.
#[no_mangle]
pub extern "C" fn lock_order_inversion() {
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    let turn = Arc::new(AtomicU32::new(0));
    let first = spawn_in_turn(&turn, 0, &a, &b);
    let second = spawn_in_turn(&turn, 1, &b, &a);
    first
        .join()
        .expect("lock_order_inversion: first join failed");
    second
        .join()
        .expect("lock_order_inversion: second join failed");
    assert_eq!(unwrap_mutex(a, "lock_order_inversion"), 2);
    assert_eq!(unwrap_mutex(b, "lock_order_inversion"), 2);
}

/// A potential deadlock of three locks that cannot happen in this run: three concurrent
/// threads take A then B, B then C, and C then A. An atomic turn counter runs them one
/// after another.
#[no_mangle]
pub extern "C" fn three_lock_cycle() {
    let locks: Vec<Arc<Mutex<u32>>> = (0..3).map(|_| Arc::new(Mutex::new(0))).collect();
    let turn = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..3u32)
        .map(|i| {
            let (first, second) = (&locks[i as usize], &locks[(i as usize + 1) % 3]);
            spawn_in_turn(&turn, i, first, second)
        })
        .collect();
    for h in handles {
        h.join().expect("three_lock_cycle: join failed");
    }
    for (i, lock) in locks.into_iter().enumerate() {
        assert_eq!(
            unwrap_mutex(lock, "three_lock_cycle"),
            2,
            "three_lock_cycle: lock {i} was taken a wrong number of times"
        );
    }
}

/// Takes `guard`, then `first`, then `second`, and adds 1 to the three values.
///
/// Never inlined, like [`take_two_locks`].
#[inline(never)]
fn take_locks_under_guard(guard: &Mutex<u32>, first: &Mutex<u32>, second: &Mutex<u32>) {
    let mut g = guard.lock();
    let mut held = first.lock();
    let mut next = second.lock();
    *g += 1;
    *held += 1;
    *next += 1;
}

/// Not a potential deadlock: two concurrent threads take A and B in opposite orders, but
/// each takes the guard lock G first and holds it throughout (G, A, B and G, B, A).
#[no_mangle]
pub extern "C" fn guarded_lock_inversion() {
    let g = Arc::new(Mutex::new(0u32));
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    let handles: Vec<_> = [(&a, &b), (&b, &a)]
        .into_iter()
        .map(|(first, second)| {
            let (g, first, second) = (Arc::clone(&g), Arc::clone(first), Arc::clone(second));
            thread::spawn(move || take_locks_under_guard(&g, &first, &second))
        })
        .collect();
    for h in handles {
        h.join().expect("guarded_lock_inversion: join failed");
    }
    for lock in [g, a, b] {
        assert_eq!(unwrap_mutex(lock, "guarded_lock_inversion"), 2);
    }
}

/// Not a potential deadlock: one thread takes A then B and is joined; only then is the
/// thread spawned that takes B then A, so fork/join order rules the cycle out.
#[no_mangle]
pub extern "C" fn joined_lock_inversion() {
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    let (a1, b1) = (Arc::clone(&a), Arc::clone(&b));
    thread::spawn(move || take_two_locks(&a1, &b1))
        .join()
        .expect("joined_lock_inversion: first join failed");
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    thread::spawn(move || take_two_locks(&b2, &a2))
        .join()
        .expect("joined_lock_inversion: second join failed");
    assert_eq!(unwrap_mutex(a, "joined_lock_inversion"), 2);
    assert_eq!(unwrap_mutex(b, "joined_lock_inversion"), 2);
}

/// Five philosophers eat 20 times each; every philosopher picks up the lower-numbered
/// fork first, so the lock order is global and no deadlock is possible.
#[no_mangle]
pub extern "C" fn dining_philosophers() {
    const SEATS: usize = 5;
    const MEALS: u32 = 20;
    let forks: Vec<Arc<Mutex<u32>>> = (0..SEATS).map(|_| Arc::new(Mutex::new(0))).collect();
    let handles: Vec<_> = (0..SEATS)
        .map(|seat| {
            let left = seat;
            let right = (seat + 1) % SEATS;
            let first = Arc::clone(&forks[left.min(right)]);
            let second = Arc::clone(&forks[left.max(right)]);
            thread::spawn(move || {
                let mut meals = 0;
                for _ in 0..MEALS {
                    let mut f1 = first.lock();
                    let mut f2 = second.lock();
                    *f1 += 1;
                    *f2 += 1;
                    meals += 1;
                }
                meals
            })
        })
        .collect();
    let meals: u32 = handles
        .into_iter()
        .map(|h| h.join().expect("dining_philosophers: join failed"))
        .sum();
    assert_eq!(meals, SEATS as u32 * MEALS);
    for (i, fork) in forks.into_iter().enumerate() {
        // Each fork is shared by two philosophers.
        assert_eq!(
            unwrap_mutex(fork, "dining_philosophers"),
            2 * MEALS,
            "dining_philosophers: fork {i} was used a wrong number of times"
        );
    }
}

/// A counter without synchronization.
struct Racy(UnsafeCell<u32>);

// SAFETY: it is not: this type exists to make a data race that the trace shows.
unsafe impl Sync for Racy {}

/// Adds 1 to `*counter` `times` times, each with a plain (volatile, non-atomic) read and
/// write.
///
/// Never inlined: both sides of the race are in a function of this name.
#[inline(never)]
fn racy_increment(counter: *mut u32, times: u32) {
    for _ in 0..times {
        // SAFETY: none; the race is the point. Volatile keeps every access.
        unsafe { counter.write_volatile(counter.read_volatile() + 1) };
    }
}

/// Two threads each increment an unsynchronized counter 1000 times with plain
/// (volatile, non-atomic) reads and writes: a real data race that may lose updates.
///
/// Both threads wait at an atomic barrier right before their loops, so the loops overlap
/// in every run and nothing orders one thread's accesses before the other's.
#[no_mangle]
pub extern "C" fn unsynchronized_counter() {
    let counter = Arc::new(Racy(UnsafeCell::new(0)));
    let arrived = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (counter, arrived) = (Arc::clone(&counter), Arc::clone(&arrived));
            thread::spawn(move || {
                arrive_and_wait(&arrived, 2);
                racy_increment(counter.0.get(), 1000);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("unsynchronized_counter: join failed");
    }
    // SAFETY: both writers are joined. The total is anything from 2 to 2000, depending on
    // the updates the race lost; what this scenario is checked for is the race report.
    let total = unsafe { counter.0.get().read_volatile() };
    std::hint::black_box(total);
}
