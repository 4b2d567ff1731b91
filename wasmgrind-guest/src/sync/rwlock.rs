//! A reader-writer lock, shaped like `std::sync::RwLock`, traced by the runtime.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

use super::raw::RawLock;
use crate::sys;

/// The state bit of a held write lock.
const WRITER: u32 = 1 << 31;
/// The state bit that says threads may be sleeping on the state word.
const WAITING: u32 = 1 << 30;
/// The state bits that count the read locks held.
const READERS: u32 = WAITING - 1;

/// A lock that many threads may hold for reading at once, or one thread for writing.
///
/// # What the trace shows
///
/// The trace model has exclusive locks only: a lock id is held by one thread at a time,
/// which the runtime checks (lock consistency) and the detectors and the exported formats
/// rely on. The id of an `RwLock` is its address.
///
/// - A **write lock** is reported exactly like [`Mutex::lock`](super::Mutex::lock):
///   `start_lock(id)` before it waits, `finish_lock(id)` once it holds the lock, and
///   `start_unlock(id)`/`finish_unlock(id)` around the release. [`try_write`] reports only
///   the `finish_lock(id)` of a success.
/// - A **read lock** cannot be reported as held for as long as it is held, because other
///   readers hold the same lock at the same time. [`read`] reports `start_lock(id)` before
///   it may wait (a reader waits for a writer) and, once it holds the read lock, a
///   momentary *pass*: `finish_lock(id)`, `start_unlock(id)`, `finish_unlock(id)`. An
///   internal lock (not traced as a lock) keeps the passes of concurrent readers from
///   interleaving. [`try_read`] reports only the pass. Releasing a read lock reports
///   nothing.
///
/// So the trace stays a trace of exclusive locks. What the detectors see:
///
/// - **Races**: a writer's release comes before a later reader's pass, so the writes are
///   ordered before the reads by the lock events. The order of a reader's reads before a
///   later writer comes from the atomic accesses to the lock word (the read lock's release
///   and the writer's acquisition), as for std's locks: Wasmgrind's race detector sees it;
///   a tool reading the exported RapidBin or STD sees it with `--atomics-as-locks`.
/// - **Deadlock prediction**: a read request makes edges from the locks the reader holds
///   to the `RwLock`, as a write request does. So an inversion between a reader and a
///   writer, where one thread holds `M` and asks to read `L` while another writes `L`
///   and asks for `M`, is reported. What the graph lacks are the locks a thread requests
///   *while it holds a read lock*: the read lock is not held in the trace, so a cycle
///   through such a wait is not reported. (A live deadlock of that shape ends the run
///   through the runtime's timeout, not its deadlock detection.)
/// - Each read lock counts one acquisition, the pass.
///
/// # Fairness
///
/// Readers are never held back for a waiting writer, so a writer may wait while readers
/// keep the lock busy; in exchange a thread may take a read lock that it already holds
/// without deadlocking. Taking the write lock while holding either lock deadlocks.
///
/// [`read`]: RwLock::read
/// [`try_read`]: RwLock::try_read
/// [`try_write`]: RwLock::try_write
#[repr(C)]
pub struct RwLock<T: ?Sized> {
    // First field (`repr(C)`): its address is the address of the RwLock. The count of
    // read locks (`READERS`), `WRITER` and `WAITING`.
    state: AtomicU32,
    /// Held while a reader reports a pass.
    passes: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one thread at a time and `&T` to readers only
// while no writer holds it; `T: Send` to move the value between threads through it.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above; readers on several threads share `&T`, which needs `T: Sync`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    pub const fn new(value: T) -> Self {
        RwLock {
            state: AtomicU32::new(0),
            passes: RawLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// The id the runtime sees for this lock: its address.
    pub fn id(&self) -> usize {
        self as *const Self as *const () as usize
    }

    /// Blocks until this thread holds a read lock (while no thread holds the write lock).
    // Inlined, like the runtime calls in it, so that a lock's location is the caller's.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        sys::start_lock(self.id());
        while !self.try_acquire_read() {
            self.sleep_while(|s| s & WRITER != 0);
        }
        self.report_pass();
        RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes a read lock if no thread holds the write lock, without blocking.
    #[inline]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if !self.try_acquire_read() {
            return None;
        }
        self.report_pass();
        Some(RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Blocks until this thread holds the write lock (while no other thread holds any).
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let id = self.id();
        sys::start_lock(id);
        while !self.try_acquire_write() {
            self.sleep_while(|s| s & (WRITER | READERS) != 0);
        }
        sys::finish_lock(id);
        RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the write lock if no thread holds any lock, without blocking.
    #[inline]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if !self.try_acquire_write() {
            return None;
        }
        sys::finish_lock(self.id());
        Some(RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// The value, through an exclusive borrow (no locking needed, nothing is traced).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// One more read lock, unless a writer holds the lock.
    fn try_acquire_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WRITER != 0 {
                return false;
            }
            assert!(
                s & READERS != READERS,
                "RwLock: more than {READERS} read locks held at once"
            );
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// The write lock, if nobody holds any lock.
    fn try_acquire_write(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | READERS) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Sleeps on the state word if `busy` still holds for it, after setting `WAITING` so
    /// that the release wakes this thread. Returns when woken, spuriously, or when the
    /// state changed first; the caller tries again.
    fn sleep_while(&self, busy: impl Fn(u32) -> bool) {
        let s = self.state.load(Ordering::Relaxed);
        if !busy(s) {
            return;
        }
        if s & WAITING == 0
            && self
                .state
                .compare_exchange(s, s | WAITING, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        sys::wait(&self.state, s | WAITING);
    }

    /// Reports a reader's pass through the lock: an acquisition and release that no other
    /// reader's pass interleaves with (see the type's docs). The caller holds a read lock,
    /// so no writer holds the id meanwhile.
    #[inline]
    fn report_pass(&self) {
        let id = self.id();
        self.passes.lock();
        sys::finish_lock(id);
        sys::start_unlock(id);
        sys::finish_unlock(id);
        self.passes.unlock();
    }

    #[inline]
    fn read_unlock(&self) {
        let before = self.state.fetch_sub(1, Ordering::Release);
        // The last reader wakes the waiting writers (readers do not wait for readers).
        if before == WAITING + 1
            && self
                .state
                .compare_exchange(WAITING, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            sys::wake_all(&self.state);
        }
    }

    #[inline]
    fn write_unlock(&self) {
        let id = self.id();
        sys::start_unlock(id);
        if self.state.swap(0, Ordering::Release) & WAITING != 0 {
            sys::wake_all(&self.state);
        }
        sys::finish_unlock(id);
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Reading the value would need a lock, which would show up in the trace.
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("RwLock")
            .field("id", &self.id())
            .field("readers", &(s & READERS))
            .field("write_locked", &(s & WRITER != 0))
            .finish_non_exhaustive()
    }
}

/// Proof that the current thread holds a read lock of an [`RwLock`]: gives shared access
/// to the value and releases the read lock when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    // The lock must be released by the thread that took it.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T`, which needs `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves a read lock is held, so no thread writes.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Proof that the current thread holds the write lock of an [`RwLock`]: gives exclusive
/// access to the value and releases the lock when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    // The lock must be released by the thread that took it.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T`, which needs `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves this thread holds the write lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this thread holds the write lock.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::events;
    use crate::thread;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// A pass: what a reader reports once it holds a read lock.
    fn pass(id: usize) -> [(&'static str, usize); 3] {
        [
            ("finish_lock", id),
            ("start_unlock", id),
            ("finish_unlock", id),
        ]
    }

    #[test]
    fn writes_report_like_a_mutex_and_reads_report_a_pass() {
        let lock = RwLock::new(1);
        let id = lock.id();
        events::take();
        *lock.write() += 1;
        assert_eq!(
            events::take(),
            [
                ("start_lock", id),
                ("finish_lock", id),
                ("start_unlock", id),
                ("finish_unlock", id)
            ]
        );
        assert_eq!(*lock.read(), 2);
        let mut expected = vec![("start_lock", id)];
        expected.extend(pass(id));
        assert_eq!(events::take(), expected);
        // try_read and try_write report no request.
        let reading = lock.try_read().expect("the lock is free");
        assert_eq!(events::take(), pass(id));
        drop(reading);
        assert_eq!(events::take(), [], "releasing a read lock reports nothing");
        drop(lock.try_write().expect("the lock is free"));
        assert_eq!(
            events::take(),
            [
                ("finish_lock", id),
                ("start_unlock", id),
                ("finish_unlock", id)
            ]
        );
        assert_eq!(lock.into_inner(), 2);
    }

    #[test]
    fn readers_share_and_exclude_writers() {
        let lock = RwLock::new(5);
        let a = lock.read();
        let b = lock.try_read().expect("readers share the lock");
        assert_eq!(*a + *b, 10);
        assert!(lock.try_write().is_none(), "a writer got in with readers");
        drop((a, b));
        let w = lock.try_write().expect("the readers left");
        assert!(lock.try_read().is_none(), "a reader got in with the writer");
        assert!(lock.try_write().is_none(), "a second writer got in");
        drop(w);
        assert_eq!(lock.state.load(Ordering::Relaxed), 0);
    }

    /// A writer waits for the reader (parked on the lock word, not inside), and the last
    /// reader's release wakes it: checked by handshakes, not by timing.
    #[test]
    fn a_writer_waits_for_the_readers_and_is_woken() {
        let lock = Arc::new(RwLock::new(Vec::new()));
        let inside = Arc::new(AtomicBool::new(false));
        let reading = lock.read();
        let writer = thread::spawn({
            let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
            move || {
                let mut g = lock.write();
                inside.store(true, Ordering::SeqCst);
                g.push("writer");
            }
        });
        while sys::waiters(&lock.state) == 0 && !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert!(
            !inside.load(Ordering::SeqCst),
            "the writer took the lock while a reader held it"
        );
        assert_eq!(lock.state.load(Ordering::Relaxed), WAITING | 1);
        assert!(reading.is_empty());
        drop(reading);
        assert_eq!(
            sys::waiters(&lock.state),
            0,
            "the last reader's release did not wake the writer"
        );
        writer.join().unwrap();
        assert_eq!(*lock.read(), ["writer"]);
    }

    /// A reader waits for the writer, and the writer's release wakes it.
    #[test]
    fn a_reader_waits_for_the_writer_and_is_woken() {
        let lock = Arc::new(RwLock::new(0));
        let mut writing = lock.write();
        let reader = thread::spawn({
            let lock = Arc::clone(&lock);
            move || *lock.read()
        });
        while sys::waiters(&lock.state) == 0 {
            std::thread::yield_now();
        }
        *writing = 42;
        drop(writing);
        assert_eq!(
            sys::waiters(&lock.state),
            0,
            "the release did not wake the reader"
        );
        assert_eq!(reader.join().unwrap(), 42);
    }

    /// Writers exclude each other and readers never see a half-done update: each writer
    /// keeps the two halves equal, with a yield between them.
    #[test]
    fn concurrent_readers_and_writers_stay_consistent() {
        let lock = Arc::new(RwLock::new((0u64, 0u64)));
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    for _ in 0..500 {
                        if t % 2 == 0 {
                            let mut g = lock.write();
                            g.0 += 1;
                            std::thread::yield_now();
                            g.1 += 1;
                        } else {
                            let g = lock.read();
                            assert_eq!(g.0, g.1, "a reader saw a half-done write");
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*lock.read(), (1500, 1500));
        assert_eq!(lock.state.load(Ordering::Relaxed) & !WAITING, 0);
    }
}
