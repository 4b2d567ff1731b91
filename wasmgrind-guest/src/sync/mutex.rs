//! A mutual exclusion lock whose every request, acquisition and release the runtime
//! traces.
//!
//! The lock's id in the trace is the address of the [`Mutex`] in linear memory. Waiting
//! threads block in `memory.atomic.wait32` and are woken with `memory.atomic.notify`.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use super::raw::RawLock;
use crate::sys;

/// A mutual exclusion lock protecting a `T`, traced by the Wasmgrind runtime.
///
/// [`lock`](Mutex::lock) reports `start_lock(id)` before it tries and `finish_lock(id)`
/// once it holds the lock; dropping the guard reports `start_unlock(id)` while the lock is
/// still held and `finish_unlock(id)` after releasing it. [`try_lock`](Mutex::try_lock)
/// never blocks, so it reports no request: only `finish_lock(id)` when it succeeds. The id
/// is the address of the `Mutex`, so moving an unlocked `Mutex` changes its id.
///
/// Guests run with `panic = "abort"`, so a lock can never be poisoned and `lock` returns
/// the guard directly.
#[repr(C)]
pub struct Mutex<T: ?Sized> {
    // First field (`repr(C)`): its address is the address of the Mutex.
    raw: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one thread at a time.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; `T: Send` because the value moves between threads through the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            raw: RawLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// The id the runtime sees for this lock: its address.
    pub fn id(&self) -> usize {
        self as *const Self as *const () as usize
    }

    /// Blocks until this thread holds the lock.
    ///
    /// Locking a mutex that this thread already holds deadlocks.
    // Inlined, like the runtime calls in it, so that a lock's location is the caller's.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let id = self.id();
        sys::start_lock(id);
        self.raw.lock();
        sys::finish_lock(id);
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock if it is free, without blocking.
    ///
    /// Reports only `finish_lock(id)`, and only on success: a failed attempt is not a
    /// request and cannot be part of a deadlock.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if !self.raw.try_lock() {
            return None;
        }
        sys::finish_lock(self.id());
        Some(MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        })
    }

    /// The value, through an exclusive borrow (no locking needed, nothing is traced).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[inline]
    fn unlock(&self) {
        let id = self.id();
        sys::start_unlock(id);
        self.raw.unlock();
        sys::finish_unlock(id);
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Reading the value would need the lock, which would show up in the trace.
        f.debug_struct("Mutex")
            .field("id", &self.id())
            .field("locked", &self.raw.is_locked())
            .finish_non_exhaustive()
    }
}

/// Proof that the current thread holds a [`Mutex`]: gives access to the value and
/// releases the lock when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(super) mutex: &'a Mutex<T>,
    // The lock must be released by the thread that took it.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T`, which needs `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves this thread holds the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this thread holds the lock.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::raw::{CONTENDED, UNLOCKED};
    use crate::sys::events;
    use crate::thread;
    use std::sync::atomic::AtomicBool;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    #[test]
    fn lock_and_unlock_report_in_order() {
        let m = Mutex::new(5);
        let id = m.id();
        assert_eq!(id, &m as *const _ as usize);
        events::take();
        *m.lock() += 1;
        assert_eq!(
            events::take(),
            [
                ("start_lock", id),
                ("finish_lock", id),
                ("start_unlock", id),
                ("finish_unlock", id)
            ]
        );
        assert_eq!(m.into_inner(), 6);
    }

    #[test]
    fn try_lock_reports_no_request() {
        let m = Mutex::new(());
        let id = m.id();
        events::take();
        let g = m.try_lock().expect("the lock is free");
        assert!(m.try_lock().is_none(), "the lock is held");
        drop(g);
        assert_eq!(
            events::take(),
            [
                ("finish_lock", id),
                ("start_unlock", id),
                ("finish_unlock", id)
            ]
        );
    }

    #[test]
    fn threads_add_under_the_lock() {
        let counter = Arc::new(Mutex::new(0u64));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&counter);
                thread::spawn(move || {
                    for _ in 0..2000 {
                        let mut g = c.lock();
                        // A non-atomic read-modify-write split by a yield: without mutual
                        // exclusion updates would be lost.
                        let v = *g;
                        std::thread::yield_now();
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*counter.lock(), 16_000);
        assert_eq!(counter.raw.state.load(Ordering::Relaxed), UNLOCKED);
    }

    /// Mutual exclusion and the wake-up, checked by handshakes rather than by timing: the
    /// parent holds the lock while the child asks for it, waits until the child is either
    /// parked on the lock word or inside the critical section, and requires the former.
    /// With a lock that does not exclude, the child gets in and the test fails; with an
    /// unlock that forgets to wake, the child stays parked and the test fails.
    #[test]
    fn a_waiter_blocks_until_the_holder_releases() {
        let m = Arc::new(Mutex::new(Vec::new()));
        let inside = Arc::new(AtomicBool::new(false));
        let mut g = m.lock();
        g.push(1);
        let h = thread::spawn({
            let (m, inside) = (Arc::clone(&m), Arc::clone(&inside));
            move || {
                let mut g = m.lock();
                inside.store(true, Ordering::SeqCst);
                g.push(2);
                drop(g);
                events::take()
            }
        });
        while sys::waiters(&m.raw.state) == 0 && !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert!(
            !inside.load(Ordering::SeqCst),
            "the child took the lock while the parent held it"
        );
        assert_eq!(sys::waiters(&m.raw.state), 1);
        assert_eq!(m.raw.state.load(Ordering::Relaxed), CONTENDED);
        g.push(3);
        drop(g);
        // The release dequeued the waiter before it returned; a parked thread is only
        // released by a wake-up (see `sys::wait`), so a lost one leaves it here.
        assert_eq!(
            sys::waiters(&m.raw.state),
            0,
            "releasing the lock did not wake the waiting thread"
        );
        let id = m.id();
        assert_eq!(
            h.join().unwrap(),
            [
                ("start_lock", id),
                ("finish_lock", id),
                ("start_unlock", id),
                ("finish_unlock", id)
            ]
        );
        assert!(inside.load(Ordering::SeqCst));
        assert_eq!(*m.lock(), [1, 3, 2]);
        assert_eq!(m.raw.state.load(Ordering::Relaxed), UNLOCKED);
    }
}
