//! Scenarios that fail: a trap in a child thread, panics, running out of memory, a real
//! deadlock, and `std::thread::spawn`, which cannot start threads on wasm32.
//!
//! Every exported function is a scenario listed in `guests/manifest.json`.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use support::arrive_and_wait;
use wasmgrind_guest::sync::Mutex;
use wasmgrind_guest::thread;

/// A child thread executes `unreachable`. The main thread joins it; a runtime that lets
/// the join return sees an error, and the scenario then ends.
#[no_mangle]
pub extern "C" fn child_trap() {
    let child = thread::spawn(|| {
        core::arch::wasm32::unreachable();
    });
    if child.join().is_ok() {
        panic!("child_trap: the child finished although it executed `unreachable`");
    }
}

/// The main thread panics with a recognizable message.
#[no_mangle]
pub extern "C" fn guest_panic() {
    let answer = std::hint::black_box(41);
    if answer != 42 {
        panic!("wasmgrind guest panic: {answer} is not the answer");
    }
}

/// A child thread panics with a recognizable message; the main thread joins it.
#[no_mangle]
pub extern "C" fn child_panic() {
    let child = thread::spawn(|| {
        let items: Vec<u32> = std::hint::black_box(Vec::new());
        if items.is_empty() {
            panic!("wasmgrind child panic: no items to process");
        }
    });
    if child.join().is_ok() {
        panic!("child_panic: the child finished although it panicked");
    }
}

/// The main thread asks for 2 GB, more than the 1 GiB the memory can grow to: the
/// allocation error is reported through `wasmgrind.panic` with code `OutOfMemory`.
#[no_mangle]
pub extern "C" fn out_of_memory() {
    let size = std::hint::black_box(2_000_000_000usize);
    let mut block: Vec<u8> = Vec::with_capacity(size);
    block.push(1);
    // Used, so the compiler cannot drop the allocation.
    std::hint::black_box(&block);
    panic!(
        "out_of_memory: got {} bytes although the memory cannot hold them",
        block.capacity()
    );
}

/// Takes `held`, waits at the barrier until the other thread holds its first lock too,
/// then requests `next`.
///
/// Never inlined: both threads' lock events are in a function of this name.
#[inline(never)]
fn hold_and_request(held: &Mutex<()>, next: &Mutex<()>, both_hold_one: &AtomicU32) {
    let _held = held.lock();
    arrive_and_wait(both_hold_one, 2);
    let _next = next.lock();
}

/// A certain deadlock: one thread holds A and requests B, the other holds B and requests
/// A. A barrier makes both hold their first lock before either requests its second. The
/// main thread blocks joining the first thread; the run never ends by itself.
#[no_mangle]
pub extern "C" fn deadlock() {
    let a = Arc::new(Mutex::new(()));
    let b = Arc::new(Mutex::new(()));
    let both_hold_one = Arc::new(AtomicU32::new(0));
    let (a1, b1, barrier1) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&both_hold_one));
    let first = thread::spawn(move || hold_and_request(&a1, &b1, &barrier1));
    let (a2, b2, barrier2) = (a, b, both_hold_one);
    let second = thread::spawn(move || hold_and_request(&b2, &a2, &barrier2));
    let first_result = first.join();
    let second_result = second.join();
    panic!(
        "deadlock: the threads finished ({first_result:?}, {second_result:?}) although each \
         waits for the lock the other holds"
    );
}

/// Locks `mutex`, which the caller holds: the guest's `Mutex` is not reentrant.
#[inline(never)]
fn lock_again(mutex: &Mutex<u32>) -> u32 {
    *mutex.lock()
}

/// The main thread locks a `Mutex` and, holding it, locks it again: it waits for itself,
/// a deadlock of one thread.
#[no_mangle]
pub extern "C" fn relock() {
    let mutex = Mutex::new(1u32);
    let guard = mutex.lock();
    let again = lock_again(&mutex);
    panic!("relock: locked a held Mutex again ({} {again})", *guard);
}

/// Locks `mutex`: the child of [`join_deadlock`].
#[inline(never)]
fn lock_in_child(mutex: &Mutex<u32>) {
    *mutex.lock() += 1;
}

/// The main thread locks a `Mutex`, starts a thread that locks it too, and joins that
/// thread while it holds the `Mutex`: each waits for the other. An atomic barrier makes
/// sure the main thread holds the lock before the child asks for it.
#[no_mangle]
pub extern "C" fn join_deadlock() {
    let mutex = Arc::new(Mutex::new(0u32));
    let holding = Arc::new(AtomicU32::new(0));
    let guard = mutex.lock();
    let child = {
        let (mutex, holding) = (Arc::clone(&mutex), Arc::clone(&holding));
        thread::spawn(move || {
            arrive_and_wait(&holding, 2);
            lock_in_child(&mutex);
        })
    };
    arrive_and_wait(&holding, 2);
    let joined = child.join();
    panic!(
        "join_deadlock: the child ended ({joined:?}) although main holds its lock ({})",
        *guard
    );
}

/// Calls `std::thread::spawn`, which cannot start a thread on `wasm32-unknown-unknown`:
/// std panics with "failed to spawn thread" and `Unsupported` ("operation not supported on
/// this platform"), and the runtime adds a hint to use `wasmgrind_guest::thread::spawn`.
#[no_mangle]
pub extern "C" fn std_thread_spawn() {
    let child = std::thread::spawn(|| std::hint::black_box(6) * 7);
    let answer = child.join().expect("std_thread_spawn: join failed");
    panic!("std_thread_spawn: std started a thread (which computed {answer}) on wasm32");
}
