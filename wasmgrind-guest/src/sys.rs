//! The runtime underneath the library: the `wasmgrind` imports and the atomic wait
//! instructions on wasm32, `std::thread` and a yielding wait everywhere else.
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

    /// Blocks until thread `tid` has finished; returns the runtime's status code.
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
    pub(crate) fn start_lock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_start_lock(id) }
    }

    /// Reports that this thread now holds lock `id`.
    pub(crate) fn finish_lock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_finish_lock(id) }
    }

    /// Reports that this thread is about to release lock `id`.
    pub(crate) fn start_unlock(id: usize) {
        // SAFETY: a notification with an integer argument.
        unsafe { wasmgrind_start_unlock(id) }
    }

    /// Reports that this thread has released lock `id`.
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
}

#[cfg(not(target_arch = "wasm32"))]
mod host {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use crate::codes;

    /// Threads started and not yet joined, by id.
    static THREADS: Mutex<Vec<(u32, std::thread::JoinHandle<()>)>> = Mutex::new(Vec::new());
    /// The last thread id handed out.
    static LAST_TID: AtomicU32 = AtomicU32::new(0);

    /// Starts a std thread that runs the boxed start routine at `start_arg`.
    pub(crate) fn thread_create(start_arg: usize) -> Result<u32, i32> {
        let handle = std::thread::Builder::new()
            // SAFETY: `start_arg` comes from `thread::spawn`, which hands it over once.
            .spawn(move || unsafe { crate::thread::start(start_arg) })
            .map_err(|_| codes::SPAWN_FAILED)?;
        let tid = LAST_TID.fetch_add(1, Ordering::Relaxed) + 1;
        THREADS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((tid, handle));
        Ok(tid)
    }

    /// Joins thread `tid`; a thread that panicked counts as trapped.
    pub(crate) fn thread_join(tid: u32) -> i32 {
        let handle = {
            let mut threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Yields until `atomic` no longer holds `expected`.
    pub(crate) fn wait(atomic: &AtomicU32, expected: u32) {
        while atomic.load(Ordering::Acquire) == expected {
            std::thread::yield_now();
        }
    }

    /// Nothing to do: [`wait`] polls.
    pub(crate) fn wake_one(_atomic: &AtomicU32) {}

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
}
