//! `cargo xtask guests` (being written).

use crate::util::Result;

/// Entry point of `cargo xtask guests`.
pub fn run(_args: &[String]) -> Result {
    Err("`guests` is not written yet".into())
}
