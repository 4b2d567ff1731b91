//! `cargo xtask bench` (being written).

use crate::util::Result;

/// Entry point of `cargo xtask bench`.
pub fn run(_args: &[String]) -> Result {
    Err("`bench` is not written yet".into())
}
