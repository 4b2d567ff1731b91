//! Lock scenarios: a contended counter, `try_lock`, a lock-order inversion, dining
//! philosophers, and an unsynchronized counter (a data race).
//!
//! Every exported function is a scenario listed in `guests/manifest.json`.

use std::cell::UnsafeCell;
use std::sync::Arc;

use wasmgrind_guest::sync::Mutex;
use wasmgrind_guest::thread;

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

/// A potential deadlock that cannot happen in this run: one thread takes A then B and is
/// joined; only then another takes B then A.
#[no_mangle]
pub extern "C" fn lock_order_inversion() {
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    let (a1, b1) = (Arc::clone(&a), Arc::clone(&b));
    let first = thread::spawn(move || {
        let mut ga = a1.lock();
        let mut gb = b1.lock();
        *ga += 1;
        *gb += 1;
    });
    first
        .join()
        .expect("lock_order_inversion: first join failed");
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let second = thread::spawn(move || {
        let mut gb = b2.lock();
        let mut ga = a2.lock();
        *ga += 1;
        *gb += 1;
    });
    second
        .join()
        .expect("lock_order_inversion: second join failed");
    assert_eq!(unwrap_mutex(a, "lock_order_inversion"), 2);
    assert_eq!(unwrap_mutex(b, "lock_order_inversion"), 2);
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

/// Two threads each increment an unsynchronized counter 1000 times with plain
/// (volatile, non-atomic) reads and writes: a real data race that may lose updates.
#[no_mangle]
pub extern "C" fn unsynchronized_counter() {
    let counter = Arc::new(Racy(UnsafeCell::new(0)));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                let p = counter.0.get();
                for _ in 0..1000 {
                    // SAFETY: none; the race is the point. Volatile keeps every access.
                    unsafe { p.write_volatile(p.read_volatile() + 1) };
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("unsynchronized_counter: join failed");
    }
    // SAFETY: both writers are joined.
    let total = unsafe { counter.0.get().read_volatile() };
    assert!(
        (2..=2000).contains(&total),
        "unsynchronized_counter: impossible total {total}"
    );
}
