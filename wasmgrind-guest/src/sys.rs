//! The runtime underneath the library: the `wasmgrind` imports and the atomic wait
//! instructions on wasm32, `std::thread` and a wait that parks until woken everywhere
//! else.
//!
//! Both implementations offer the same crate-private functions; [`crate::thread`] and
//! [`crate::sync`] are written once on top of them.

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use host::*;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::arch::wasm32;
    use core::sync::atomic::AtomicU32;

    use crate::codes;

    // The names are those of `wasmgrind_core::abi::IMPORTS` (an extern block needs
    // literals); `cargo xtask guests` checks every built guest's imports against it.
    #[link(wasm_import_module = "wasmgrind")]
    extern "C" {
        #[link_name = "thread_create"]
        fn wasmgrind_thread_create(tid_ptr: *mut u32, start_arg: usize) -> i32;
        #[link_name = "thread_join"]
        fn wasmgrind_thread_join(tid: u32) -> i32;
        #[link_name = "panic"]
        fn wasmgrind_panic(code: i32, msg_ptr: *const u8, msg_len: usize);
        #[link_name = "start_lock"]
        fn wasmgrind_start_lock(lock: usize);
        #[link_name = "finish_lock"]
        fn wasmgrind_finish_lock(lock: usize);
        #[link_name = "start_unlock"]
        fn wasmgrind_start_unlock(lock: usize);
        #[link_name = "finish_unlock"]
        fn wasmgrind_finish_unlock(lock: usize);
    }

    /// Asks the runtime for a thread that runs `thread_start(start_arg)`; returns its id
    /// or the runtime's error code.
    pub(crate) fn thread_create(start_arg: usize) -> Result<u32, i32> {
        let mut tid = 0u32;
        // SAFETY: `tid` is a valid, writable u32 for the duration of the call.
        let code = unsafe { wasmgrind_thread_create(&mut tid, start_arg) };
        if code == codes::OK {
            Ok(tid)
        } else {
            Err(code)
        }
    }

    /// Blocks until thread `tid` has finished; returns the runtime's status code. Inlined,
    /// with [`JoinHandle::join`](crate::thread::JoinHandle::join), into the caller: the
    /// call of the runtime is then located in the program's own code (a deadlock report
    /// names the line that joins).
    #[inline(always)]
    pub(crate) fn thread_join(tid: u32) -> i32 {
        // SAFETY: the import only reads its integer argument.
        unsafe { wasmgrind_thread_join(tid) }
    }

    /// Reports `code` and `msg` to the runtime, which ends the thread. Traps if the
    /// runtime returns.
    pub(crate) fn give_up(code: i32, msg: &[u8]) -> ! {
        // SAFETY: `msg` is valid for `msg.len()` bytes during the call.
        unsafe { wasmgrind_panic(code, msg.as_ptr(), msg.len()) };
        wasm32::unreachable()
    }

    /// Reports that this thread is about to request lock `id`.
    #[inline(always)]
    pub(crate) fn start_lock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_start_lock(id) }
    }

    /// Reports that this thread now holds lock `id`.
    #[inline(always)]
    pub(crate) fn finish_lock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_finish_lock(id) }
    }

    /// Reports that this thread is about to release lock `id`.
    #[inline(always)]
    pub(crate) fn start_unlock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_start_unlock(id) }
    }

    /// Reports that this thread has released lock `id`.
    #[inline(always)]
    pub(crate) fn finish_unlock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_finish_unlock(id) }
    }

    /// Blocks while `atomic` holds `expected` (it may also return spuriously).
    pub(crate) fn wait(atomic: &AtomicU32, expected: u32) {
        // SAFETY: the pointer is a valid, aligned atomic in the shared memory; -1 means
        // no timeout. The result (woken / not-equal) needs no handling: callers re-check.
        unsafe { wasm32::memory_atomic_wait32(atomic.as_ptr().cast(), expected as i32, -1) };
    }

    /// Wakes one thread blocked in [`wait`] on `atomic`.
    pub(crate) fn wake_one(atomic: &AtomicU32) {
        // SAFETY: the pointer is a valid, aligned atomic in the shared memory.
        unsafe { wasm32::memory_atomic_notify(atomic.as_ptr().cast(), 1) };
    }

    /// Wakes every thread blocked in [`wait`] on `atomic`.
    pub(crate) fn wake_all(atomic: &AtomicU32) {
        // SAFETY: the pointer is a valid, aligned atomic in the shared memory.
        unsafe { wasm32::memory_atomic_notify(atomic.as_ptr().cast(), u32::MAX) };
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod host {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

    use crate::codes;

    /// Threads started and not yet joined, by id.
    static THREADS: Mutex<Vec<(u32, std::thread::JoinHandle<()>)>> = Mutex::new(Vec::new());
    /// The last thread id handed out.
    static LAST_TID: AtomicU32 = AtomicU32::new(0);

    /// Starts a std thread that runs the boxed start routine at `start_arg`.
    pub(crate) fn thread_create(start_arg: usize) -> Result<u32, i32> {
        let handle = std::thread::Builder::new()
            .spawn(move || {
                // SAFETY: `start_arg` comes from `thread::spawn`, which hands it over once.
                unsafe { crate::thread::start(start_arg) }
            })
            .map_err(|_| codes::SPAWN_FAILED)?;
        let tid = LAST_TID.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&THREADS).push((tid, handle));
        Ok(tid)
    }

    /// Joins thread `tid`; a thread that panicked counts as trapped.
    pub(crate) fn thread_join(tid: u32) -> i32 {
        let handle = {
            let mut threads = lock(&THREADS);
            match threads.iter().position(|(t, _)| *t == tid) {
                Some(i) => threads.swap_remove(i).1,
                None => return codes::UNKNOWN_THREAD,
            }
        };
        match handle.join() {
            Ok(()) => codes::OK,
            Err(_) => codes::THREAD_TRAPPED,
        }
    }

    #[cfg(test)]
    use events::record;

    #[cfg(not(test))]
    fn record(_kind: &'static str, _id: usize) {}

    /// Lock request (recorded in tests only).
    pub(crate) fn start_lock(id: usize) {
        record("start_lock", id);
    }

    /// Lock acquired (recorded in tests only).
    pub(crate) fn finish_lock(id: usize) {
        record("finish_lock", id);
    }

    /// Lock release begins (recorded in tests only).
    pub(crate) fn start_unlock(id: usize) {
        record("start_unlock", id);
    }

    /// Lock released (recorded in tests only).
    pub(crate) fn finish_unlock(id: usize) {
        record("finish_unlock", id);
    }

    /// A thread blocked in [`wait`].
    struct Waiter {
        /// The address of the atomic it waits on.
        addr: usize,
        /// Identifies this wait; [`wake_one`] removes the waiter from the queue to wake it.
        ticket: u64,
    }

    /// The blocked threads, in the order they started waiting.
    struct Parking {
        queue: VecDeque<Waiter>,
        next_ticket: u64,
    }

    static PARKING: Mutex<Parking> = Mutex::new(Parking {
        queue: VecDeque::new(),
        next_ticket: 0,
    });
    /// Notified whenever waiters leave the queue; each checks whether it was one of them.
    static UNPARKED: Condvar = Condvar::new();

    /// Takes `m` even if a panicking thread left it poisoned: the data stays consistent,
    /// every critical section here is a push, a removal or a scan.
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn addr(atomic: &AtomicU32) -> usize {
        atomic.as_ptr() as usize
    }

    /// Blocks while `atomic` holds `expected`, like `memory.atomic.wait32`: returns at once
    /// if it holds another value, and otherwise parks until [`wake_one`] on `atomic` picks
    /// this thread.
    ///
    /// A store alone does not release a parked thread, so a lost wake-up leaves it parked
    /// here as it would on wasm32 (and `waiters` shows it in the tests).
    pub(crate) fn wait(atomic: &AtomicU32, expected: u32) {
        let mut parking = lock(&PARKING);
        // Checked under the parking lock, which every wake-up takes: a store followed by
        // a wake-up either happened before this load or finds this thread in the queue.
        if atomic.load(Ordering::SeqCst) != expected {
            return;
        }
        let ticket = parking.next_ticket;
        parking.next_ticket += 1;
        parking.queue.push_back(Waiter {
            addr: addr(atomic),
            ticket,
        });
        while parking.queue.iter().any(|w| w.ticket == ticket) {
            parking = UNPARKED
                .wait(parking)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Wakes the thread that has waited longest in [`wait`] on `atomic`, if any. A wake-up
    /// with nobody waiting is lost: it does not release a later [`wait`].
    pub(crate) fn wake_one(atomic: &AtomicU32) {
        let mut parking = lock(&PARKING);
        let addr = addr(atomic);
        if let Some(i) = parking.queue.iter().position(|w| w.addr == addr) {
            parking.queue.remove(i);
            UNPARKED.notify_all();
        }
    }

    /// Wakes every thread parked in [`wait`] on `atomic`. Like [`wake_one`], a wake-up
    /// with nobody waiting is lost.
    pub(crate) fn wake_all(atomic: &AtomicU32) {
        let mut parking = lock(&PARKING);
        let addr = addr(atomic);
        let before = parking.queue.len();
        parking.queue.retain(|w| w.addr != addr);
        if parking.queue.len() != before {
            UNPARKED.notify_all();
        }
    }

    /// How many threads are parked in [`wait`] on `atomic`.
    #[cfg(test)]
    pub(crate) fn waiters(atomic: &AtomicU32) -> usize {
        let addr = addr(atomic);
        lock(&PARKING)
            .queue
            .iter()
            .filter(|w| w.addr == addr)
            .count()
    }

    /// The lock events of the current thread, recorded for the unit tests.
    #[cfg(test)]
    pub(crate) mod events {
        use std::cell::RefCell;

        thread_local! {
            static LOG: RefCell<Vec<(&'static str, usize)>> = const { RefCell::new(Vec::new()) };
        }

        pub(crate) fn record(kind: &'static str, id: usize) {
            LOG.with(|l| l.borrow_mut().push((kind, id)));
        }

        /// Takes the events recorded so far on this thread.
        pub(crate) fn take() -> Vec<(&'static str, usize)> {
            LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::AtomicBool;

        /// Yields until `n` threads are parked on `atomic`.
        fn until_parked(atomic: &AtomicU32, n: usize) {
            while waiters(atomic) < n {
                std::thread::yield_now();
            }
            assert_eq!(waiters(atomic), n);
        }

        #[test]
        fn a_store_without_a_wake_up_leaves_the_waiter_parked() {
            let word = AtomicU32::new(0);
            let returned = AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    wait(&word, 0);
                    returned.store(true, Ordering::SeqCst);
                });
                until_parked(&word, 1);
                // The value changes, but nobody wakes the waiter: a lost wake-up. Only
                // `wake_one` dequeues it, so it is still parked, deterministically.
                word.store(1, Ordering::SeqCst);
                assert_eq!(waiters(&word), 1, "a store alone released the waiter");
                assert!(!returned.load(Ordering::SeqCst));
                wake_one(&word);
                assert_eq!(waiters(&word), 0);
            });
            assert!(returned.load(Ordering::SeqCst));
        }

        #[test]
        fn wake_one_wakes_one_waiter_of_that_word() {
            let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| wait(&a, 0));
                }
                s.spawn(|| wait(&b, 0));
                until_parked(&a, 2);
                until_parked(&b, 1);
                wake_one(&a);
                assert_eq!((waiters(&a), waiters(&b)), (1, 1));
                wake_one(&a);
                assert_eq!((waiters(&a), waiters(&b)), (0, 1));
                wake_one(&b);
                assert_eq!(waiters(&b), 0);
            });
        }

        #[test]
        fn wake_all_wakes_every_waiter_of_that_word() {
            let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| wait(&a, 0));
                }
                s.spawn(|| wait(&b, 0));
                until_parked(&a, 3);
                until_parked(&b, 1);
                wake_all(&a);
                assert_eq!((waiters(&a), waiters(&b)), (0, 1));
                wake_all(&b);
                assert_eq!(waiters(&b), 0);
            });
        }

        #[test]
        fn a_wake_up_with_nobody_waiting_is_not_kept() {
            let word = AtomicU32::new(0);
            wake_one(&word);
            std::thread::scope(|s| {
                s.spawn(|| wait(&word, 0));
                // The earlier wake-up does not release this wait.
                until_parked(&word, 1);
                wake_one(&word);
                assert_eq!(waiters(&word), 0);
            });
        }

        #[test]
        fn wait_returns_at_once_when_the_word_differs() {
            let word = AtomicU32::new(7);
            wait(&word, 0);
            assert_eq!(waiters(&word), 0);
        }

        #[test]
        fn a_finished_thread_wakes_its_spawner_only_if_its_word_changed() {
            static WORD: AtomicU32 = AtomicU32::new(0);
            static CHILD: AtomicU32 = AtomicU32::new(0);
            std::thread::scope(|s| {
                s.spawn(|| {
                    // The child finishes once its spawner is parked, leaving WORD alone.
                    let child = crate::thread::spawn(|| until_parked(&WORD, 1));
                    CHILD.store(child.id(), Ordering::SeqCst);
                    drop(child);
                    wait(&WORD, 0);
                });
                until_parked(&WORD, 1);
                // The spawner stored the child's id before it parked.
                let child = CHILD.load(Ordering::SeqCst);
                assert_eq!(thread_join(child), codes::OK);
                assert_eq!(
                    waiters(&WORD),
                    1,
                    "the end of a thread released its spawner although its word did not change"
                );
                WORD.store(1, Ordering::SeqCst);
                wake_one(&WORD);
            });
        }
    }
}
