//! A condition variable for [`Mutex`](super::Mutex), shaped like `std::sync::Condvar`.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::MutexGuard;
use crate::sys;

/// A condition variable: threads wait on it, with a [`Mutex`](super::Mutex) held, until
/// another thread notifies it.
///
/// [`wait`](Condvar::wait) releases the mutex while it sleeps and takes it again before it
/// returns. Both are reported as the mutex's own events: `start_unlock`/`finish_unlock`
/// when the wait begins, `start_lock`/`finish_lock` when the woken thread takes the mutex
/// again. So the trace shows the mutex free while a thread waits, the race detector sees
/// the hand-over through the mutex, and the deadlock predictor sees the re-acquisition as
/// a request made with whatever other locks the waiter still holds. The condition variable
/// itself is not a lock and has no id in the trace.
///
/// Like std's, a wait may return without a notification (a spurious wake-up): wait in a
/// loop that checks the condition, or use [`wait_while`](Condvar::wait_while). There is
/// no `wait_timeout`: `wasm32-unknown-unknown` has no clock.
pub struct Condvar {
    /// Bumped by every notification; a waiter sleeps while it still holds the value it
    /// read before releasing the mutex, so a notification after that is never lost.
    seq: AtomicU32,
}

impl Condvar {
    /// A condition variable that no thread waits on.
    pub const fn new() -> Self {
        Condvar {
            seq: AtomicU32::new(0),
        }
    }

    /// Releases the mutex of `guard`, blocks until this condition variable is notified
    /// (or wakes spuriously), takes the mutex again and returns its guard.
    // Inlined, like `Mutex::lock`, so that the mutex's events are located at the caller.
    #[inline]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        // Read under the mutex: a notification made after the release changes it, and
        // the wait below then returns at once.
        let seq = self.seq.load(Ordering::Relaxed);
        drop(guard);
        sys::wait(&self.seq, seq);
        mutex.lock()
    }

    /// Waits, as [`wait`](Condvar::wait), for as long as `condition` returns `true` on
    /// the guarded value; returns once it returns `false` (checked first, with the mutex
    /// held).
    #[inline]
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wakes one thread waiting on this condition variable, if there is one.
    pub fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        sys::wake_one(&self.seq);
    }

    /// Wakes every thread waiting on this condition variable.
    pub fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        sys::wake_all(&self.seq);
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Mutex;
    use crate::sys::events;
    use crate::thread;
    use std::sync::Arc;

    #[test]
    fn a_wait_releases_and_retakes_the_mutex() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let id = pair.0.id();
        let waiter = thread::spawn({
            let pair = Arc::clone(&pair);
            move || {
                events::take();
                let (m, cv) = &*pair;
                let ready = cv.wait_while(m.lock(), |ready| !*ready);
                assert!(*ready);
                drop(ready);
                events::take()
            }
        });
        // The waiter holds the mutex until it waits, so this lock succeeds only once the
        // waiter released it in `wait` (or before it took it: then it sees `true` at once).
        *pair.0.lock() = true;
        pair.1.notify_one();
        let seen = waiter.join().unwrap();
        // Whether or not the waiter had to wait, its events are those of the mutex, in a
        // lock-consistent order: every acquisition is released before the next.
        assert!(seen.len() % 4 == 0 && !seen.is_empty(), "{seen:?}");
        for pass in seen.chunks(4) {
            assert_eq!(
                pass,
                [
                    ("start_lock", id),
                    ("finish_lock", id),
                    ("start_unlock", id),
                    ("finish_unlock", id)
                ]
            );
        }
    }

    /// The waiter parks on the condition variable (checked through the host's parking
    /// queue, not by timing) with the mutex free, and only a notification releases it.
    #[test]
    fn a_parked_waiter_needs_a_notification() {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let waiter = thread::spawn({
            let pair = Arc::clone(&pair);
            move || {
                let (m, cv) = &*pair;
                let g = cv.wait_while(m.lock(), |v| *v == 0);
                *g
            }
        });
        while sys::waiters(&pair.1.seq) == 0 {
            std::thread::yield_now();
        }
        // The mutex is free while the waiter sleeps.
        let mut g = pair.0.try_lock().expect("wait released the mutex");
        *g = 7;
        drop(g);
        assert_eq!(
            sys::waiters(&pair.1.seq),
            1,
            "a store alone woke the waiter"
        );
        pair.1.notify_one();
        assert_eq!(waiter.join().unwrap(), 7);
    }

    #[test]
    fn notify_all_wakes_every_waiter() {
        const WAITERS: usize = 4;
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let pair = Arc::clone(&pair);
                thread::spawn(move || {
                    let (m, cv) = &*pair;
                    drop(cv.wait_while(m.lock(), |go| !*go));
                })
            })
            .collect();
        while sys::waiters(&pair.1.seq) < WAITERS {
            std::thread::yield_now();
        }
        *pair.0.lock() = true;
        pair.1.notify_all();
        assert_eq!(
            sys::waiters(&pair.1.seq),
            0,
            "notify_all left a waiter parked"
        );
        for w in waiters {
            w.join().unwrap();
        }
    }
}
