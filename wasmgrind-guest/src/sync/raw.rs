//! An untraced futex lock: the waiting part of [`Mutex`](super::Mutex), also used inside
//! [`RwLock`](super::RwLock) and [`Barrier`](super::Barrier) where a lock must not show
//! up in the trace as one of the program's locks.
//!
//! Its atomics are ordinary atomic accesses of the guest, which the race detector sees
//! as synchronization.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys;

/// Nobody holds the lock.
pub(crate) const UNLOCKED: u32 = 0;
/// A thread holds the lock and no thread waits for it.
pub(crate) const LOCKED: u32 = 1;
/// A thread holds the lock and other threads may be waiting for it.
pub(crate) const CONTENDED: u32 = 2;

/// A lock word: [`UNLOCKED`], [`LOCKED`] or [`CONTENDED`]. Waiting threads block in
/// `memory.atomic.wait32` on it.
pub(crate) struct RawLock {
    pub(crate) state: AtomicU32,
}

impl RawLock {
    /// An unlocked lock.
    pub(crate) const fn new() -> Self {
        RawLock {
            state: AtomicU32::new(UNLOCKED),
        }
    }

    /// Takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Blocks until this thread holds the lock.
    #[inline]
    pub(crate) fn lock(&self) {
        if !self.try_lock() {
            self.lock_contended();
        }
    }

    /// The slow path: mark the lock contended and sleep until it is released.
    fn lock_contended(&self) {
        // Whoever holds the lock now sees CONTENDED when it unlocks and wakes a waiter. A
        // thread that gets the lock here leaves CONTENDED behind, which at worst costs one
        // needless wake-up.
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            sys::wait(&self.state, CONTENDED);
        }
    }

    /// Releases the lock, waking a waiter if there may be one.
    #[inline]
    pub(crate) fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            sys::wake_one(&self.state);
        }
    }

    /// Whether some thread holds the lock (for `Debug`; the answer may be stale).
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != UNLOCKED
    }
}
