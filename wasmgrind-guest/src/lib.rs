#![doc = include_str!("../README.md")]
#![cfg_attr(
    target_arch = "wasm32",
    feature(stdarch_wasm_atomic_wait, alloc_error_hook)
)]
#![warn(missing_docs)]

// The target features a guest needs, each checked on its own so that the compile error
// names every missing one at once. Each `missing_*!` expands to the feature's name when it
// is missing and to "" otherwise (unused on other targets and in a complete build).
#[cfg(target_feature = "atomics")]
#[allow(unused_macros)]
macro_rules! missing_atomics {
    () => {
        ""
    };
}
#[cfg(not(target_feature = "atomics"))]
#[allow(unused_macros)]
macro_rules! missing_atomics {
    () => {
        " `+atomics`"
    };
}
#[cfg(target_feature = "bulk-memory")]
#[allow(unused_macros)]
macro_rules! missing_bulk_memory {
    () => {
        ""
    };
}
#[cfg(not(target_feature = "bulk-memory"))]
#[allow(unused_macros)]
macro_rules! missing_bulk_memory {
    () => {
        " `+bulk-memory`"
    };
}
#[cfg(target_feature = "mutable-globals")]
#[allow(unused_macros)]
macro_rules! missing_mutable_globals {
    () => {
        ""
    };
}
#[cfg(not(target_feature = "mutable-globals"))]
#[allow(unused_macros)]
macro_rules! missing_mutable_globals {
    () => {
        " `+mutable-globals`"
    };
}

#[cfg(all(
    target_arch = "wasm32",
    not(all(
        target_feature = "atomics",
        target_feature = "bulk-memory",
        target_feature = "mutable-globals"
    ))
))]
compile_error!(concat!(
    "wasmgrind-guest needs a shared-memory build, and this build lacks the target \
     feature(s)",
    missing_atomics!(),
    missing_bulk_memory!(),
    missing_mutable_globals!(),
    ". Build the guest with the settings of Wasmgrind's `guests/.cargo/config.toml` \
     (`-C target-feature=+atomics,+bulk-memory,+mutable-globals`, the link arguments, \
     `-Z build-std`) and the nightly of `guests/rust-toolchain.toml`: copy both files into \
     your crate, or create it with `cargo xtask new-guest PATH`, and run cargo in the \
     crate's directory"
));

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
