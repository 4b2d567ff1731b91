//! The library a Wasmgrind guest program links.
//!
//! WebAssembly has no threads of its own; the Wasmgrind runtime supplies them. A guest
//! program built with this crate gets:
//!
//! - [`thread::spawn`] and [`thread::JoinHandle::join`], shaped like `std::thread`, which
//!   ask the runtime for a thread through the `wasmgrind.thread_create` and
//!   `wasmgrind.thread_join` imports;
//! - [`sync::Mutex`], a blocking lock (`memory.atomic.wait32` / `memory.atomic.notify`)
//!   that reports every request, acquisition and release to the runtime so that the trace
//!   shows lock order, contention and deadlocks;
//! - the exports the runtime calls: `thread_start`, `__wasmgrind_malloc`,
//!   `__wasmgrind_free` and `__wasmgrind_init` (which installs a panic hook that reports a
//!   panic's message and location through `wasmgrind.panic`).
//!
//! The names and signatures are those of `wasmgrind_core::abi`.
//!
//! # Building
//!
//! Guests are built for `wasm32-unknown-unknown` with the pinned nightly, shared memory
//! and `panic = "abort"`; `cargo xtask guests` does it. On every other target the crate
//! falls back to `std::thread` and untraced locking, so guest logic can be unit-tested
//! natively.
#![cfg_attr(
    target_arch = "wasm32",
    feature(stdarch_wasm_atomic_wait, alloc_error_hook)
)]
#![warn(missing_docs)]

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
compile_error!(
    "wasmgrind-guest needs shared memory: build with `-C target-feature=+atomics,+bulk-memory,\
     +mutable-globals` and `-Z build-std=panic_abort,std` (`cargo xtask guests` does this)"
);

mod codes;
mod sys;

#[cfg(target_arch = "wasm32")]
mod rt;

pub mod sync;
pub mod thread;

/// Panics with `msg`, making the panic hook report `code` instead of `GuestPanic`.
#[track_caller]
pub(crate) fn panic_with_code(code: i32, msg: std::fmt::Arguments<'_>) -> ! {
    #[cfg(target_arch = "wasm32")]
    rt::set_panic_code(code);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = code;
    panic!("{msg}")
}
