//! `cargo xtask test` (being written).

use crate::util::Result;

/// Entry point of `cargo xtask test`.
pub fn run(_args: &[String]) -> Result {
    Err("`test` is not written yet".into())
}
