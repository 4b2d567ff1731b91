//! `cargo xtask test`: everything CI checks, in the order a failure is cheapest to see.
//!
//! 1. the fmt check of the host workspace and of `guests/`;
//! 2. the guests (`cargo xtask guests`), which the Rust tests read from `target/guests`;
//! 3. clippy on every host crate and target with `-D warnings`;
//! 4. `cargo test --workspace`;
//! 5. `pkg/` (`cargo xtask dist`) and the Node end-to-end tests in `tests/node`;
//! 6. the browser tests in `tests/browser` (installs Chromium and playwright-core);
//! 7. the bundler test in `tests/bundler`: the packed `pkg/` installed into a Vite app,
//!    whose production build must print no warning and run a guest in Chromium;
//! 8. the book (installs mdbook), which fails when an `{{#include}}` is missing.

use std::process::Command;

use crate::util::{self, root, Result};

/// Entry point of `cargo xtask test`; it takes no arguments.
pub fn run(args: &[String]) -> Result {
    if let Some(extra) = args.first() {
        return Err(format!("`cargo xtask test` takes no arguments (got `{extra}`)").into());
    }
    let root = root();
    util::run(
        Command::new("cargo")
            .current_dir(&root)
            .args(["fmt", "--all", "--check"]),
    )?;
    util::run(Command::new("cargo").current_dir(&root).args([
        "fmt",
        "--manifest-path",
        "guests/Cargo.toml",
        "--all",
        "--check",
    ]))?;
    crate::guests::run(&[])?;
    util::run(Command::new("cargo").current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    util::run(
        Command::new("cargo")
            .current_dir(&root)
            .args(["test", "--workspace"]),
    )?;
    crate::dist::run(&[])?;
    util::run(
        Command::new("node")
            .current_dir(&root)
            .args(["--test", "tests/node/"]),
    )?;
    crate::browser::run_browser_tests()?;
    crate::bundler::run_bundler_test()?;
    crate::book::build()?;
    Ok(())
}
