//! The browser tests' tools and their runner: Debian's Chromium, the pinned npm
//! `playwright-core` of `tests/browser/`, and `node tests/browser/run.mjs`.
//!
//! A fresh machine has neither Chromium nor `node_modules`; [`ensure_chromium`] and
//! [`ensure_npm_deps`] install them (Chromium only as root, which CI is), and skip the work
//! when it is already done.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, root, Result};

/// Where Debian's `chromium` package puts the browser, and where the tests look for it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The directory of the browser tests, with the pinned `package.json` and lock file.
pub fn tests_dir() -> PathBuf {
    root().join("tests").join("browser")
}

/// Makes sure [`CHROMIUM`] exists: installs Debian's `chromium` with apt-get if it is
/// missing and we are root, and otherwise fails with the command to run.
pub fn ensure_chromium() -> Result<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if !path.exists() {
        if !is_root() {
            return Err(format!(
                "{CHROMIUM} is missing and installing it needs root; install it with \
                 `sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y \
                 chromium` and run the command again"
            )
            .into());
        }
        eprintln!("xtask: {CHROMIUM} is missing; installing Debian's chromium package");
        let apt = |args: &[&str]| {
            let mut cmd = Command::new("apt-get");
            cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
            cmd
        };
        util::run(&mut apt(&["update"]))?;
        // With its recommended packages (fonts among them), as on the machines the browser
        // tests were verified on.
        util::run(&mut apt(&["install", "-y", "chromium"])).map_err(|e| {
            format!(
                "{e}\ninstalling Chromium failed; install it by hand with \
                     `DEBIAN_FRONTEND=noninteractive apt-get install -y chromium`"
            )
        })?;
        if !path.exists() {
            return Err(format!(
                "apt-get installed `chromium` but {CHROMIUM} still does not exist; check \
                 `dpkg -L chromium`"
            )
            .into());
        }
    }
    let version = util::output(Command::new(&path).arg("--version"))
        .map_err(|e| format!("{CHROMIUM} does not run: {e}"))?;
    eprintln!("xtask: using {}", version.trim());
    Ok(path)
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Fails unless Node.js 20 or newer is on the `PATH`; returns its version.
pub fn ensure_node() -> Result<String> {
    let version = util::output(Command::new("node").arg("--version")).map_err(|e| {
        format!("{e}\nNode.js 20 or newer is needed (`node` on the PATH); install Node.js 20")
    })?;
    let version = version.trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot read the Node.js version `{version}`"))?;
    if major < 20 {
        return Err(
            format!("Node.js {version} is too old: Wasmgrind needs Node.js 20 or newer").into(),
        );
    }
    Ok(version)
}

/// The name of the stamp file in `node_modules` that records which `package.json` and
/// lock file the installed packages come from.
const STAMP: &str = ".wasmgrind-installed";

/// Installs the npm packages of `dir` (its `package.json` and committed
/// `package-lock.json`) with `npm ci`, unless `node_modules` already holds exactly them.
///
/// "Exactly them" is a stamp in `node_modules` with a hash of both files, written after a
/// successful install; a changed manifest or lock file, or a deleted `node_modules`,
/// installs again. Without a lock file `npm install` runs and writes one (commit it).
pub fn ensure_npm_deps(dir: &Path) -> Result {
    let manifest = dir.join("package.json");
    let lock = dir.join("package-lock.json");
    let read = |p: &Path| fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let mut inputs = read(&manifest)?;
    let locked = lock.exists();
    if locked {
        inputs.extend(read(&lock)?);
    }
    let want = format!("{:016x}", fnv1a(&inputs));
    let stamp = dir.join("node_modules").join(STAMP);
    if locked && fs::read_to_string(&stamp).is_ok_and(|have| have.trim() == want) {
        return Ok(());
    }
    ensure_node()?;
    let mut cmd = Command::new("npm");
    cmd.current_dir(dir)
        .args([if locked { "ci" } else { "install" }])
        .args(["--no-audit", "--no-fund", "--loglevel=error"]);
    util::run(&mut cmd).map_err(|e| {
        format!(
            "{e}\ninstalling the npm packages of {} failed; run `npm ci` there by hand to see why",
            dir.display()
        )
    })?;
    if !locked {
        eprintln!(
            "xtask: npm wrote {}; commit it so that every machine installs the same packages",
            lock.display()
        );
        // Stamp what is on disk now, lock file included.
        return ensure_npm_deps(dir);
    }
    fs::write(&stamp, format!("{want}\n"))
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(())
}

/// FNV-1a, 64 bits: a stable hash for the install stamp (std's hasher may change between
/// Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Makes Chromium and the npm packages ready for a script of `tests/browser/`.
pub fn prepare() -> Result {
    ensure_node()?;
    ensure_chromium()?;
    ensure_npm_deps(&tests_dir())
}

/// Runs `node tests/browser/<script> <args>` from the repository root after [`prepare`];
/// fails if it fails.
pub fn run_script(script: &str, args: &[&str]) -> Result {
    prepare()?;
    let path = tests_dir().join(script);
    util::run(
        Command::new("node")
            .current_dir(root())
            .arg(&path)
            .args(args)
            .env("WASMGRIND_CHROMIUM", CHROMIUM),
    )
}

/// The browser tests: the unit tests of the test server and the trace checks
/// (`node --test`), then the Chromium end-to-end run (`tests/browser/run.mjs`).
///
/// Needs `target/guests` (`cargo xtask guests`) and `pkg/` (`cargo xtask dist`); the
/// script says which is missing.
pub fn run_browser_tests() -> Result {
    prepare()?;
    let dir = tests_dir();
    util::run(
        Command::new("node")
            .current_dir(&dir)
            .args(["--test", "unit.test.mjs"]),
    )?;
    run_script("run.mjs", &[]).map_err(|e| {
        format!("{e}\nthe Chromium tests failed; see the lines marked FAIL above").into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_reference_function() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn the_browser_tests_pin_playwright_core_exactly() {
        let manifest = fs::read_to_string(tests_dir().join("package.json")).unwrap();
        let line = manifest
            .lines()
            .find(|l| l.contains("\"playwright-core\""))
            .expect("tests/browser/package.json depends on playwright-core");
        let version = line
            .split(':')
            .nth(1)
            .unwrap()
            .trim()
            .trim_matches([',', '"', ' ']);
        assert!(
            version.split('.').count() == 3
                && version.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "playwright-core must be pinned to an exact version, got `{version}`"
        );
        let lock = fs::read_to_string(tests_dir().join("package-lock.json")).unwrap();
        assert!(
            lock.contains(&format!("\"version\": \"{version}\"")),
            "package-lock.json does not lock playwright-core {version}: run `npm install` in \
             tests/browser and commit the lock file"
        );
    }
}
