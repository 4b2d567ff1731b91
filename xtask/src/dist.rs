//! `cargo xtask dist` (being written).

use crate::util::Result;

/// Entry point of `cargo xtask dist`.
pub fn run(_args: &[String]) -> Result {
    Err("`dist` is not written yet".into())
}
