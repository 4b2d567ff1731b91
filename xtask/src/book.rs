//! `cargo xtask book` (being written).

use crate::util::Result;

/// Entry point of `cargo xtask book`.
pub fn run(_args: &[String]) -> Result {
    Err("`book` is not written yet".into())
}
