//! Wasmgrind's core: the runtime ABI shared by the patcher, the instrumenter, the
//! runtime and the guest library, the error types, the trace model and its encoders.
//!
//! This crate depends on no other Wasmgrind crate. Everything that names an import, an
//! export or a signature of the runtime ABI takes it from [`abi`], so changing the ABI
//! is a change in one place.

pub mod abi;
pub mod analysis;
pub mod location;
pub mod trace;
