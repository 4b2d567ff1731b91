//! `cargo xtask demo` (being written).

use crate::util::Result;

/// Entry point of `cargo xtask demo`.
pub fn run(_args: &[String]) -> Result {
    Err("`demo` is not written yet".into())
}
