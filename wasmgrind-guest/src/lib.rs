#![doc = include_str!("../README.md")]
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
mod alloc;
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
