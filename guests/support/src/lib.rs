//! Helpers shared by the guest scenarios. This is a plain library, not a guest: it has no
//! scenarios and no entry in `manifest.json`.
#![feature(stdarch_wasm_atomic_wait)]

use core::arch::wasm32::{memory_atomic_notify, memory_atomic_wait32};
use std::sync::atomic::{AtomicU32, Ordering};

/// Blocks until `parties` threads have called it on `arrived`.
///
/// The barrier is built from atomics and `memory.atomic.wait32`, not from a traced lock,
/// so it orders the scenario without adding lock events to the trace.
pub fn arrive_and_wait(arrived: &AtomicU32, parties: u32) {
    if arrived.fetch_add(1, Ordering::SeqCst) + 1 == parties {
        // SAFETY: a valid atomic in shared memory.
        unsafe { memory_atomic_notify(arrived.as_ptr().cast(), u32::MAX) };
        return;
    }
    loop {
        let seen = arrived.load(Ordering::SeqCst);
        if seen >= parties {
            return;
        }
        // Sleeps only while the count is still `seen`; the last arrival changes it first.
        // SAFETY: a valid atomic in shared memory; no timeout.
        unsafe { memory_atomic_wait32(arrived.as_ptr().cast(), seen as i32, -1) };
    }
}

/// Blocks until `turn` holds `mine`: one of several threads that take turns, in the order
/// of their numbers, without a traced lock.
///
/// Scenarios use it to serialize threads that the fork/join order leaves concurrent, so a
/// lock-order cycle among them is a potential deadlock that this run cannot hit. Like
/// [`arrive_and_wait`] it is made of atomics and `memory.atomic.wait32`, which the
/// deadlock predictor does not count as locks.
pub fn wait_for_turn(turn: &AtomicU32, mine: u32) {
    loop {
        let now = turn.load(Ordering::SeqCst);
        if now == mine {
            return;
        }
        // Sleeps only while the turn is still `now`; `pass_turn` changes it first.
        // SAFETY: a valid atomic in shared memory; no timeout.
        unsafe { memory_atomic_wait32(turn.as_ptr().cast(), now as i32, -1) };
    }
}

/// Ends the current turn: the thread waiting for the next number goes on.
pub fn pass_turn(turn: &AtomicU32) {
    turn.fetch_add(1, Ordering::SeqCst);
    // SAFETY: a valid atomic in shared memory.
    unsafe { memory_atomic_notify(turn.as_ptr().cast(), u32::MAX) };
}
