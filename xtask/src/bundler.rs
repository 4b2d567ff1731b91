//! The bundler test: the npm package as a dependency of a Vite app (`tests/bundler/`),
//! built for production and run in Chromium.
//!
//! 1. installs the app's pinned packages (Vite, with `npm ci` from its lock file) and what
//!    the browser tests need (Chromium, playwright-core), each only once
//!    ([`browser::ensure_npm_deps`]);
//! 2. packs `pkg/` with `npm pack` into `target/bundler/pack/` and installs the tarball into
//!    the app with `npm install --no-save`, as a user installs a package: a copy of what the
//!    package's `files` list ships, not a link to `pkg/`;
//! 3. runs `node tests/bundler/run.mjs`, which builds the app with `vite build` (any
//!    warning fails), serves the build with COOP/COEP and runs `mutex_counter` of
//!    `locks.wasm` in it in Chromium, which must return `status: 'ok'`.
//!
//! Needs `pkg/` (`cargo xtask dist`) and `target/guests` (`cargo xtask guests`).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::browser;
use crate::util::{self, root, Result};

/// Entry point of `cargo xtask bundler`; it takes no arguments.
pub fn run(args: &[String]) -> Result {
    if let Some(extra) = args.first() {
        return Err(format!("`cargo xtask bundler` takes no arguments (got `{extra}`)").into());
    }
    run_bundler_test()
}

/// The app's directory, with its pinned `package.json` and lock file.
pub fn app_dir() -> PathBuf {
    root().join("tests").join("bundler")
}

/// Runs the bundler test; fails if it fails.
pub fn run_bundler_test() -> Result {
    let started = Instant::now();
    browser::prepare()?;
    let app = app_dir();
    browser::ensure_npm_deps(&app)?;
    let tarball = pack()?;
    util::run(
        Command::new("npm")
            .current_dir(&app)
            .args(["install", "--no-save", "--prefer-offline"])
            .args(["--no-audit", "--no-fund", "--loglevel=error"])
            .arg(&tarball),
    )
    .map_err(|e| {
        format!(
            "{e}\ninstalling {} into {} failed",
            tarball.display(),
            app.display()
        )
    })?;
    util::run(
        Command::new("node")
            .current_dir(root())
            .arg(app.join("run.mjs"))
            .env("WASMGRIND_CHROMIUM", browser::CHROMIUM),
    )
    .map_err(|e| format!("{e}\nthe bundler test failed; see the lines marked FAIL above"))?;
    eprintln!(
        "xtask: the bundler test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Packs `pkg/` into a fresh `target/bundler/pack/` and returns the tarball's path.
fn pack() -> Result<PathBuf> {
    let pkg = crate::dist::pkg_dir();
    if !pkg.join("package.json").exists() {
        return Err(format!("{} is missing; run `cargo xtask dist`", pkg.display()).into());
    }
    let dest = root().join("target").join("bundler").join("pack");
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(|e| format!("cannot remove {}: {e}", dest.display()))?;
    }
    fs::create_dir_all(&dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let out = util::output(
        Command::new("npm")
            .current_dir(root())
            .args(["pack", "--loglevel=error", "--pack-destination"])
            .arg(&dest)
            .arg(&pkg),
    )?;
    // npm prints the tarball's file name as the last line.
    let name = out
        .lines()
        .map(str::trim)
        .rfind(|l| l.ends_with(".tgz"))
        .ok_or_else(|| format!("`npm pack` named no tarball; it printed:\n{out}"))?;
    let tarball = dest.join(name);
    if !tarball.exists() {
        return Err(format!("`npm pack` did not write {}", tarball.display()).into());
    }
    eprintln!("xtask: packed {}", tarball.display());
    Ok(tarball)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundler_app_pins_its_bundlers_exactly_and_locks_them() {
        let manifest = fs::read_to_string(app_dir().join("package.json")).unwrap();
        let lock = fs::read_to_string(app_dir().join("package-lock.json")).unwrap();
        for name in ["vite", "webpack"] {
            let key = format!("\"{name}\":");
            let line = manifest
                .lines()
                .find(|l| l.trim_start().starts_with(&key))
                .unwrap_or_else(|| panic!("tests/bundler/package.json depends on {name}"));
            let version = line[line.find(':').unwrap() + 1..]
                .trim()
                .trim_matches([',', '"', ' ']);
            assert!(
                version.split('.').count() == 3
                    && version.chars().all(|c| c.is_ascii_digit() || c == '.'),
                "{name} must be pinned to an exact version, got `{version}`"
            );
            assert!(
                lock.contains(&format!(
                    "\"node_modules/{name}\": {{\n      \"version\": \"{version}\""
                )),
                "package-lock.json does not lock {name} {version}: run `npm install` in \
                 tests/bundler and commit the lock file"
            );
        }
    }
}
