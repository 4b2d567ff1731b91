//! Helpers shared by the xtask commands.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The error type of every command.
pub type Error = Box<dyn std::error::Error>;
/// The result type of every command.
pub type Result<T = ()> = std::result::Result<T, Error>;

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Runs `cmd`, echoing it first, and fails with its exit status if it fails.
pub fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", show(cmd)))?;
    if !status.success() {
        return Err(format!("`{}` failed with {status}", show(cmd)).into());
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout, failing with its stderr if it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", show(cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed with {}:\n{}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command line for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
