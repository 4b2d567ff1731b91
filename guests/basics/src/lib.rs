//! Basic thread scenarios: spawning, joining, nesting, thread-locals and detaching.
//!
//! Every exported function is a scenario listed in `guests/manifest.json`.
#![feature(stdarch_wasm_atomic_wait)]

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use core::arch::wasm32::{memory_atomic_notify, memory_atomic_wait32};
use support::arrive_and_wait;
use wasmgrind_guest::sync::Mutex;
use wasmgrind_guest::thread;

/// No threads: takes one lock twice.
#[no_mangle]
pub extern "C" fn single_thread() {
    let m = Mutex::new(Vec::new());
    m.lock().push(1u32);
    m.lock().push(2);
    assert_eq!(m.into_inner(), [1, 2], "single_thread: wrong contents");
}

/// One thread computes a value that the main thread joins.
#[no_mangle]
pub extern "C" fn spawn_join() {
    let input: Vec<u64> = (1..=100).collect();
    let h = thread::spawn(move || input.iter().sum::<u64>());
    assert_eq!(h.join().expect("spawn_join: join failed"), 5050);
}

/// Main spawns A, A spawns B, B spawns C; each joins its child.
#[no_mangle]
pub extern "C" fn nested_threads() {
    fn level(depth: u32) -> u32 {
        if depth == 0 {
            return 1;
        }
        let child = thread::spawn(move || level(depth - 1));
        child.join().expect("nested_threads: join failed") + 1
    }
    assert_eq!(level(3), 4, "nested_threads: every level adds one");
}

/// A hierarchy of 50 threads: 5 leads, each spawning and joining 9 workers.
#[no_mangle]
pub extern "C" fn thread_hierarchy() {
    let leads: Vec<_> = (0..5u32)
        .map(|lead| {
            thread::spawn(move || {
                let workers: Vec<_> = (0..9u32)
                    .map(|w| thread::spawn(move || lead * 100 + w))
                    .collect();
                workers
                    .into_iter()
                    .map(|h| h.join().expect("thread_hierarchy: worker join failed"))
                    .sum::<u32>()
            })
        })
        .collect();
    let total: u32 = leads
        .into_iter()
        .map(|h| h.join().expect("thread_hierarchy: lead join failed"))
        .sum();
    let expected: u32 = (0..5u32)
        .flat_map(|lead| (0..9u32).map(move |w| lead * 100 + w))
        .sum();
    assert_eq!(total, expected, "thread_hierarchy: wrong total");
}

thread_local! {
    static ID: Cell<u32> = const { Cell::new(0) };
    // Lazily initialized on purpose, next to the `const` one above: both kinds of
    // thread-local must start fresh in every thread.
    #[allow(clippy::missing_const_for_thread_local)]
    static HISTORY: RefCell<Vec<u32>> = RefCell::new(Vec::new());
}

/// Four threads and the main thread each write their own thread-locals, meet at a
/// barrier, then check that nobody else's write is visible.
#[no_mangle]
pub extern "C" fn thread_locals() {
    ID.set(1000);
    HISTORY.with_borrow_mut(|h| h.push(1000));
    let arrived = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (1..=4u32)
        .map(|i| {
            let arrived = Arc::clone(&arrived);
            thread::spawn(move || {
                assert_eq!(
                    ID.get(),
                    0,
                    "thread_locals: thread {i} starts with a used ID"
                );
                assert!(
                    HISTORY.with_borrow(|h| h.is_empty()),
                    "thread_locals: thread {i} starts with a used HISTORY"
                );
                ID.set(i);
                HISTORY.with_borrow_mut(|h| h.push(i));
                // Every thread has written its own value before anyone checks.
                arrive_and_wait(&arrived, 4);
                assert_eq!(ID.get(), i, "thread_locals: thread {i} sees another ID");
                assert_eq!(
                    HISTORY.with_borrow(|h| h.clone()),
                    [i],
                    "thread_locals: thread {i} sees another HISTORY"
                );
                i
            })
        })
        .collect();
    let sum: u32 = handles
        .into_iter()
        .map(|h| h.join().expect("thread_locals: join failed"))
        .sum();
    assert_eq!(sum, 10);
    assert_eq!(
        ID.get(),
        1000,
        "thread_locals: the main thread's ID changed"
    );
    assert_eq!(
        HISTORY.with_borrow(|h| h.clone()),
        [1000],
        "thread_locals: the main thread's HISTORY changed"
    );
}

/// Spawns a thread that never ends, waits until it runs, and returns without joining
/// it: the thread is still running when the scenario returns.
#[no_mangle]
pub extern "C" fn detached_thread() {
    let started = Arc::new(AtomicU32::new(0));
    let flag = Arc::clone(&started);
    let handle = thread::spawn(move || {
        flag.store(1, Ordering::SeqCst);
        // SAFETY: a valid atomic in shared memory.
        unsafe { memory_atomic_notify(flag.as_ptr().cast(), u32::MAX) };
        let never = AtomicU32::new(0);
        loop {
            // Wakes up every millisecond, forever: running, but quietly.
            // SAFETY: a valid atomic in shared memory; 1 ms timeout.
            unsafe { memory_atomic_wait32(never.as_ptr().cast(), 0, 1_000_000) };
        }
    });
    while started.load(Ordering::SeqCst) == 0 {
        // SAFETY: a valid atomic in shared memory; no timeout.
        unsafe { memory_atomic_wait32(started.as_ptr().cast(), 0, -1) };
    }
    drop(handle);
}

/// 200 sequential spawn/join cycles.
#[no_mangle]
pub extern "C" fn spawn_join_200() {
    for i in 0..200u32 {
        let h = thread::spawn(move || i * 3);
        assert_eq!(h.join().expect("spawn_join_200: join failed"), i * 3);
    }
}
