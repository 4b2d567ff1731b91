//! `cargo xtask book`: builds the mdBook in `book/` into `book/book`, installing mdbook
//! with `cargo install` when it is missing.

use std::process::Command;

use crate::util::{self, root, Result};

/// The mdbook version the book is built with.
const MDBOOK_VERSION: &str = "0.5.4";

/// Entry point of `cargo xtask book`.
pub fn run(args: &[String]) -> Result {
    if let Some(extra) = args.first() {
        return Err(format!("`cargo xtask book` takes no arguments (got `{extra}`)").into());
    }
    build()
}

/// Builds the book, failing when an `{{#include}}` names a missing file.
pub fn build() -> Result {
    ensure_mdbook()?;
    let out = Command::new("mdbook")
        .current_dir(root())
        .args(["build", "book"])
        .output()
        .map_err(|e| format!("cannot run mdbook: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    eprint!("{log}");
    if !out.status.success() || log.contains("ERROR") {
        return Err("`mdbook build book` failed or reported an error (see above)".into());
    }
    eprintln!(
        "book written to {}",
        root().join("book/book/index.html").display()
    );
    Ok(())
}

fn ensure_mdbook() -> Result {
    let installed = util::output(Command::new("mdbook").arg("--version")).ok();
    if installed.is_some_and(|v| v.contains(MDBOOK_VERSION)) {
        return Ok(());
    }
    util::run(Command::new("cargo").args([
        "install",
        "mdbook",
        "--locked",
        "--version",
        MDBOOK_VERSION,
    ]))
}
