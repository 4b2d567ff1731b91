//! Threads supplied by the Wasmgrind runtime, shaped like `std::thread`.
//!
//! [`spawn`] boxes the closure and passes the box's address as `start_arg` to the
//! `wasmgrind.thread_create` import; the runtime starts a new instance of the module on
//! the shared memory and calls its export `thread_start(start_arg)`, which runs the
//! closure. The closure's result travels back through an `Arc` shared by both threads.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::Arc;

use crate::{codes, sys};

/// The start routine handed to the runtime: a thin pointer to a boxed closure.
type Start = Box<dyn FnOnce() + Send>;

/// Where a thread leaves its result for the thread that joins it.
struct Packet<T> {
    result: UnsafeCell<Option<T>>,
}

// SAFETY: the spawned thread writes `result` once, before it finishes; the joining thread
// reads it only after `thread_join` reported that the thread finished, and the runtime's
// join orders the two.
unsafe impl<T: Send> Sync for Packet<T> {}

/// Spawns a thread that runs `f` and returns a handle to join it.
///
/// Dropping the [`JoinHandle`] detaches the thread: it keeps running and nobody
/// collects its result.
///
/// # Panics
///
/// Panics (reported to the runtime with code `CreateFailed`) when the runtime refuses to
/// start the thread, for example because its thread limit is reached; the message names
/// the runtime's reason, at the caller's location.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let packet = Arc::new(Packet {
        result: UnsafeCell::new(None),
    });
    let their_packet = Arc::clone(&packet);
    let main: Start = Box::new(move || {
        let value = f();
        // SAFETY: see `Packet`: this thread is the only writer and the joiner reads after
        // the join.
        unsafe { *their_packet.result.get() = Some(value) };
    });
    let start_arg = Box::into_raw(Box::new(main)) as usize;
    match sys::thread_create(start_arg) {
        Ok(tid) => JoinHandle { tid, packet },
        Err(code) => {
            // SAFETY: the runtime did not start the thread, so the box is still ours.
            drop(unsafe { Box::from_raw(start_arg as *mut Start) });
            crate::panic_with_code(
                codes::CREATE_FAILED,
                format_args!(
                    "wasmgrind_guest::thread::spawn: the runtime did not start the thread: {}",
                    describe(code)
                ),
            )
        }
    }
}

/// Runs the start routine at `start_arg`: the body of the export `thread_start`.
///
/// # Safety
///
/// `start_arg` must come from [`spawn`] and be used once.
pub(crate) unsafe fn start(start_arg: usize) {
    // SAFETY: the caller guarantees that `start_arg` is a `Box<Start>` from `spawn`.
    let main = unsafe { Box::from_raw(start_arg as *mut Start) };
    main();
}

/// An owned permission to join a thread (block until it finishes and take its result).
///
/// Dropping it detaches the thread.
pub struct JoinHandle<T> {
    tid: u32,
    packet: Arc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    /// The runtime's id of the thread.
    pub fn id(&self) -> u32 {
        self.tid
    }

    /// Blocks until the thread has finished and returns the value of its closure.
    ///
    /// # Errors
    ///
    /// A [`JoinError`] with the runtime's status code when the join failed or the thread
    /// did not finish its closure (it trapped).
    #[inline(always)]
    pub fn join(self) -> Result<T, JoinError> {
        let code = sys::thread_join(self.tid);
        if code != codes::OK {
            return Err(JoinError { code });
        }
        // SAFETY: see `Packet`: the thread has finished, the runtime's join orders its
        // write before this read, and no other thread touches the slot.
        match unsafe { (*self.packet.result.get()).take() } {
            Some(value) => Ok(value),
            None => Err(JoinError {
                code: codes::THREAD_TRAPPED,
            }),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.tid).finish()
    }
}

/// Why [`JoinHandle::join`] failed: a status code of the runtime ABI.
///
/// Both `Display` and `Debug` say what the code means, so that `join().unwrap()` and
/// `expect` name the reason.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct JoinError {
    code: i32,
}

impl JoinError {
    /// The raw status code (`wasmgrind_core::abi::ErrorCode`).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// What the code means.
    pub fn description(&self) -> &'static str {
        describe(self.code)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "joining the thread failed: {} (code {})",
            self.description(),
            self.code
        )
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinError")
            .field("code", &self.code)
            .field("description", &self.description())
            .finish()
    }
}

impl std::error::Error for JoinError {}

fn describe(code: i32) -> &'static str {
    codes::describe(code).unwrap_or(
        "unknown wasmgrind status code: the guest library and the runtime disagree on the ABI",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn join_returns_the_closure_value() {
        let data: Vec<i32> = (1..=3).collect();
        let h = spawn(move || data.iter().sum::<i32>());
        assert!(h.id() > 0);
        assert_eq!(h.join(), Ok(6));
    }

    #[test]
    fn nested_spawns_join() {
        let h = spawn(|| spawn(|| spawn(|| 3).join().unwrap() + 2).join().unwrap() + 1);
        assert_eq!(h.join().unwrap(), 6);
    }

    #[test]
    fn a_failed_thread_is_a_join_error() {
        let h = spawn(|| -> u32 { panic!("child fails on purpose") });
        let err = h.join().unwrap_err();
        assert_eq!(err.code(), codes::THREAD_TRAPPED);
        assert_eq!(
            err.to_string(),
            "joining the thread failed: the joined thread trapped (code 6)"
        );
    }

    #[test]
    fn dropping_the_handle_detaches() {
        static DONE: AtomicU32 = AtomicU32::new(0);
        drop(spawn(|| {
            DONE.store(1, Ordering::SeqCst);
            sys::wake_one(&DONE);
        }));
        sys::wait(&DONE, 0);
        assert_eq!(DONE.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_output_describes_the_error() {
        let e = JoinError {
            code: codes::THREAD_TRAPPED,
        };
        assert_eq!(
            format!("{e:?}"),
            "JoinError { code: 6, description: \"the joined thread trapped\" }"
        );
        // `unwrap` and `expect` show the Debug form: a real failed join.
        let joined = spawn(|| -> u32 { panic!("child fails on purpose") }).join();
        let shown = std::panic::catch_unwind(|| joined.expect("join")).unwrap_err();
        let shown = shown.downcast_ref::<String>().unwrap();
        assert!(shown.contains("the joined thread trapped"), "{shown}");
    }

    #[test]
    fn unknown_codes_are_named() {
        let e = JoinError { code: 77 };
        assert!(e.to_string().contains("disagree on the ABI"), "{e}");
    }
}
