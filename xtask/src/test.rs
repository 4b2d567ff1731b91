//! `cargo xtask test`: everything CI checks, in the order a failure is cheapest to see.
//!
//! 1. the fmt check of the host workspace, of `guests/` and of `guests-wasi/`;
//! 2. the guests (`cargo xtask guests`), which the Rust tests read from `target/guests`;
//! 3. clippy on every host crate and target with `-D warnings`;
//! 4. `cargo test --workspace`;
//! 5. a bounded fuzzing run of the patcher and the instrumenter (`cargo xtask fuzz`,
//!    [`FUZZ_SECONDS`] s; `WASMGRIND_FUZZ_SECONDS` changes that, except under `CI=true`,
//!    where it can only shorten it);
//! 6. `pkg/` (`cargo xtask dist`), the Node end-to-end tests in `tests/node`, and the
//!    README's `cargo xtask demo`, which must find its potential deadlock;
//! 7. the browser tests in `tests/browser` (installs Chromium and playwright-core);
//! 8. the bundler test in `tests/bundler`: the packed `pkg/` installed into a minimal app
//!    that Vite and webpack build without a warning, and that runs a guest in Chromium;
//! 9. the book (installs mdbook), which fails when an `{{#include}}` names a missing file or
//!    anchor, or a link of the built book leads nowhere.

use std::process::Command;

use crate::util::{self, root, Result};

/// How long `cargo xtask test` fuzzes, in seconds.
const FUZZ_SECONDS: u64 = 60;

/// The fuzzing time: [`FUZZ_SECONDS`], or `WASMGRIND_FUZZ_SECONDS` if set (at most
/// [`FUZZ_SECONDS`] under `CI=true`, so that CI stays bounded).
fn fuzz_seconds() -> Result<u64> {
    let Ok(v) = std::env::var("WASMGRIND_FUZZ_SECONDS") else {
        return Ok(FUZZ_SECONDS);
    };
    let secs: u64 = v
        .parse()
        .map_err(|_| format!("WASMGRIND_FUZZ_SECONDS must be a whole number, got `{v}`"))?;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    Ok(if ci { secs.min(FUZZ_SECONDS) } else { secs })
}

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
    for workspace in ["guests/Cargo.toml", "guests-wasi/Cargo.toml"] {
        util::run(Command::new("cargo").current_dir(&root).args([
            "fmt",
            "--manifest-path",
            workspace,
            "--all",
            "--check",
        ]))?;
    }
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
    crate::fuzz::run(&["--seconds".into(), fuzz_seconds()?.to_string()])?;
    crate::dist::run(&[])?;
    util::run(
        Command::new("node")
            .current_dir(&root)
            .args(["--test", "tests/node/"]),
    )?;
    crate::demo::run(&[])?;
    crate::browser::run_browser_tests()?;
    crate::bundler::run_bundler_test()?;
    crate::book::build()?;
    Ok(())
}
