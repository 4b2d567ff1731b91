//! A Wasmgrind guest: a program whose threads Wasmgrind runs and traces.
//!
//! Every exported `extern "C"` function without parameters and results is a scenario:
//!
//! ```text
//! cargo build --release
//! node <wasmgrind>/pkg/cli.js run target/wasm32-unknown-unknown/release/<crate>.wasm mutex_counter
//! ```
//!
//! Threads come from `wasmgrind_guest::thread` (`std::thread::spawn` is not supported on
//! `wasm32-unknown-unknown`) and traced locks from `wasmgrind_guest::sync`.

use std::sync::Arc;

use wasmgrind_guest::sync::Mutex;
use wasmgrind_guest::thread;

/// Threads that each add to the counter.
const THREADS: u32 = 4;
/// Additions per thread.
const ADDS: u32 = 100;

/// Four threads add 1 to a counter behind a traced mutex 100 times each; the total must
/// be 400. A run reports no finding: every access to the counter holds the lock.
#[no_mangle]
pub extern "C" fn mutex_counter() {
    let counter = Arc::new(Mutex::new(0u32));
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
    for handle in handles {
        handle.join().expect("mutex_counter: a thread failed");
    }
    let total = *counter.lock();
    assert_eq!(total, THREADS * ADDS, "mutex_counter: additions were lost");
}
