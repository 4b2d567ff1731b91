//! The hooks a target module calls, as raw WebAssembly exports of the utility module.
//!
//! The JS runtime passes these exports of a thread's utility instance directly as the
//! target instance's imports, so a hook call is a WebAssembly-to-WebAssembly call with no
//! JavaScript in between. Their signatures are the instrumented ones of
//! [`wasmgrind_core::abi`]: the original parameters followed by `loc: i32`.
//!
//! The thread is the one named by the last `threadBegin` in this utility instance; its
//! [`ThreadCtx`] lives in the instance's TLS.

use std::cell::RefCell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use wasmgrind_core::trace::Op;

use crate::error::SessionError;
use crate::session::{Session, ThreadCtx};

/// The session of this utility memory's current run, shared by all its instances; null
/// before the first run's `traceStart` and after [`dispose_session`]. A manager that runs
/// one run after the other on the same utility memory (wasmgrind.js keeps its workers for
/// the next run) installs a new session for each.
static SESSION: AtomicPtr<Session> = AtomicPtr::new(ptr::null_mut());

/// The current run's session, if one is installed.
pub fn current_session() -> Option<&'static Session> {
    // SAFETY: a non-null pointer comes from `Box::into_raw` in `install_session`, and the
    // box is freed only by `dispose_session`, whose caller guarantees that nothing uses
    // the session any more.
    unsafe { SESSION.load(Ordering::Acquire).as_ref() }
}

/// Installs `session` as the current run's; refuses (and drops it) if a session is
/// installed already: the previous run's must be disposed of first.
pub fn install_session(session: Session) -> Result<(), SessionError> {
    let new = Box::into_raw(Box::new(session));
    match SESSION.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(()),
        Err(_) => {
            // SAFETY: `new` came from `Box::into_raw` just above and was not published.
            drop(unsafe { Box::from_raw(new) });
            Err(SessionError::AlreadyStarted)
        }
    }
}

/// Frees the current session, if any, and installs none.
///
/// The runtime calls it (`traceDispose`) only when nothing can use the session any more:
/// every thread of the run ended (no utility instance holds a [`ThreadCtx`]), its
/// analysis worker returned from `analysisRun`, and the manager is done with the trace.
/// The `&'static Session` references handed out by [`current_session`] must all be dead
/// by then.
pub fn dispose_session() {
    let old = SESSION.swap(ptr::null_mut(), Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` in `install_session`, it is no longer
        // reachable through SESSION, and (the contract above) nothing else refers to it.
        drop(unsafe { Box::from_raw(old) });
    }
}

thread_local! {
    /// The recording context of the thread this utility instance serves.
    pub static CURRENT: RefCell<Option<ThreadCtx>> = const { RefCell::new(None) };
}

#[inline]
fn with_ctx(f: impl FnOnce(&ThreadCtx)) {
    CURRENT.with(|c| match &*c.borrow() {
        Some(ctx) => f(ctx),
        None => {
            if let Some(s) = current_session() {
                s.count_unattributed();
            }
        }
    });
}

/// `mem_read(addr, width, kind, loc)`: a load; `kind` is one of `abi::ACCESS_*`.
#[no_mangle]
pub extern "C" fn wgrind_mem_read(addr: u32, width: u32, kind: u32, loc: u32) {
    with_ctx(|c| c.read(addr, width, kind != 0, loc));
}

/// `mem_write(addr, width, kind, loc)`: a store, or with `abi::ACCESS_RMW` an atomic
/// read-modify-write.
#[no_mangle]
pub extern "C" fn wgrind_mem_write(addr: u32, width: u32, kind: u32, loc: u32) {
    with_ctx(|c| {
        if kind == wasmgrind_core::abi::ACCESS_RMW as u32 {
            c.rmw(addr, width, loc)
        } else {
            c.write(addr, width, kind != 0, loc)
        }
    });
}

/// `mem_atomic_begin(addr)`: an atomic access of `addr` follows; its `mem_read` or
/// `mem_write` ends the bracket.
#[no_mangle]
pub extern "C" fn wgrind_mem_atomic_begin(addr: u32) {
    with_ctx(|c| c.atomic_begin(addr));
}

/// `mem_atomic_value(addr, op, old, new, loc)`: the values of an atomic access or a wait
/// (`abi::VALUE_*`), for lock recognition; see [`ThreadCtx::atomic_value`].
#[no_mangle]
pub extern "C" fn wgrind_mem_atomic_value(addr: u32, op: i32, old: u64, new: u64, loc: u32) {
    with_ctx(|c| c.atomic_value(addr, op, old, new, loc));
}

/// `heap_alloc(ptr, size)`: the guest's allocator handed out `[ptr, ptr + size)`.
#[no_mangle]
pub extern "C" fn wgrind_heap_alloc(ptr: u32, size: u32) {
    with_ctx(|c| c.heap(Op::Alloc { addr: ptr, size }));
}

/// `heap_free(ptr, size)`: the guest is about to free `[ptr, ptr + size)`.
#[no_mangle]
pub extern "C" fn wgrind_heap_free(ptr: u32, size: u32) {
    with_ctx(|c| c.heap(Op::Free { addr: ptr, size }));
}

/// `heap_malloc(ptr, size)`: the C allocator handed out `[ptr, ptr + size)` (see
/// [`ThreadCtx::malloc`]).
#[no_mangle]
pub extern "C" fn wgrind_heap_malloc(ptr: u32, size: u32) {
    with_ctx(|c| c.malloc(ptr, size));
}

/// `heap_free_unsized(ptr)`: the C allocator is about to free the block at `ptr`, whose
/// size the session knows from its `heap_malloc` (see [`ThreadCtx::free_unsized`]).
#[no_mangle]
pub extern "C" fn wgrind_heap_free_unsized(ptr: u32) {
    with_ctx(|c| c.free_unsized(ptr));
}

/// `heap_free_unsized` of a module that is not traced: does nothing.
#[no_mangle]
pub extern "C" fn wgrind_untraced_heap_free_unsized(_ptr: u32) {}

/// `pthread_created(thread)`: `pthread_create` returned the handle of the thread this
/// thread forked last (see [`ThreadCtx::pthread_created`]).
#[no_mangle]
pub extern "C" fn wgrind_pthread_created(thread: u32) {
    with_ctx(|c| c.pthread_created(thread));
}

/// `pthread_joined(thread)`: a `pthread_join` of the handle returned; records the
/// `Join` of its thread (see [`ThreadCtx::pthread_done`]).
#[no_mangle]
pub extern "C" fn wgrind_pthread_joined(thread: u32) {
    with_ctx(|c| c.pthread_done(thread, false, None));
}

/// `pthread_detached(thread)`: a `pthread_detach` of the handle returned.
#[no_mangle]
pub extern "C" fn wgrind_pthread_detached(thread: u32) {
    with_ctx(|c| c.pthread_done(thread, true, None));
}

/// A thread hook (`pthread_created`, ...) of a module that is not traced: does nothing.
#[no_mangle]
pub extern "C" fn wgrind_untraced_pthread(_thread: u32) {}

/// An allocation hook of a module that is not traced: does nothing.
#[no_mangle]
pub extern "C" fn wgrind_untraced_heap(_ptr: u32, _size: u32) {}

/// `start_lock(lock, loc)`: about to block on `lock`.
#[no_mangle]
pub extern "C" fn wgrind_start_lock(lock: u32, loc: u32) {
    with_ctx(|c| c.start_lock(lock, loc));
}

/// `finish_lock(lock, loc)`: `lock` is now held.
#[no_mangle]
pub extern "C" fn wgrind_finish_lock(lock: u32, loc: u32) {
    with_ctx(|c| c.finish_lock(lock, loc));
}

/// `start_unlock(lock, loc)`: about to release `lock`.
#[no_mangle]
pub extern "C" fn wgrind_start_unlock(lock: u32, loc: u32) {
    with_ctx(|c| c.start_unlock(lock, loc));
}

/// `finish_unlock(lock, loc)`: `lock` was released. Nothing is recorded: the release
/// was recorded by `start_unlock`, while the lock was still held.
#[no_mangle]
pub extern "C" fn wgrind_finish_unlock(_lock: u32, _loc: u32) {}

/// A lock hook of a module that is not instrumented (no location): does nothing.
#[no_mangle]
pub extern "C" fn wgrind_untraced_lock(_lock: u32) {}

/// Records that this thread forked `child` at `loc` (negative: no location). The runtime
/// calls it from `thread_create` before the child can start.
#[no_mangle]
pub extern "C" fn wgrind_fork(child: u32, loc: i32) {
    with_ctx(|c| c.fork(child, u32::try_from(loc).ok()));
}

/// This thread begins to wait in `thread_join` for `child`, at `loc` (negative: no
/// location), or (`child` negative) its wait ended: for the deadlock watchdog, which
/// follows joins, and the location of a join in a deadlock's report.
#[no_mangle]
pub extern "C" fn wgrind_join_wait(child: i32, loc: i32) {
    with_ctx(|c| c.join_wait_for(u32::try_from(child).ok(), u32::try_from(loc).ok()));
}

/// Records that this thread joined `child` at `loc` (negative: no location). The runtime
/// calls it from `thread_join` after the child finished.
#[no_mangle]
pub extern "C" fn wgrind_join(child: u32, loc: i32) {
    with_ctx(|c| c.join(child, u32::try_from(loc).ok()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Config;

    /// The only test that installs sessions (they are process-wide).
    #[test]
    fn runs_one_after_the_other_each_install_dispose_and_stop_their_own_session() {
        assert!(current_session().is_none());
        for run in 0..3 {
            install_session(Session::new(Config::new(4), Vec::new()).unwrap()).unwrap();
            // A second session while one is installed is refused.
            let again = install_session(Session::new(Config::new(4), Vec::new()).unwrap());
            assert!(
                matches!(again, Err(SessionError::AlreadyStarted)),
                "run {run}"
            );
            let s = current_session().expect("installed");
            assert!(!s.is_stopping());
            // Stopping takes the session's own park lock: with one lock for all sessions the
            // second run's stop would wait forever for the lock the first run's stop kept.
            s.stop();
            assert!(s.is_stopping());
            dispose_session();
            assert!(current_session().is_none());
        }
        // Nothing to dispose of: nothing happens.
        dispose_session();
    }
}
