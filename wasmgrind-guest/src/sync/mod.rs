//! Synchronization shaped like `std::sync`, traced by the Wasmgrind runtime.
//!
//! - [`Mutex`]: every request, acquisition and release is reported.
//! - [`Condvar`]: waits with a [`MutexGuard`]; waiting releases the mutex and waking
//!   takes it again, both reported as the mutex's release and acquisition.
//! - [`RwLock`]: write locks are reported like a mutex's; read locks are reported so that
//!   the trace stays a trace of exclusive locks (see [`RwLock`] for what that means for
//!   the detectors).
//! - [`Barrier`]: not a lock, so it reports no lock event; the race detector sees its
//!   synchronization through its atomic accesses.
//!
//! A lock's id in the trace is its address in linear memory. Waiting threads block in
//! `memory.atomic.wait32` and are woken with `memory.atomic.notify`.
//!
//! Guests run with `panic = "abort"`, so nothing here can be poisoned: `lock`, `read`,
//! `write` and `wait` return their guards directly, not a `LockResult`.

mod barrier;
mod condvar;
mod mutex;
mod raw;
mod rwlock;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
