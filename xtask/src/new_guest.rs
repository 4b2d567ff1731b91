//! `cargo xtask new-guest PATH`: creates a guest crate that builds with nothing else.
//!
//! The crate gets
//!
//! - `Cargo.toml`: a cdylib depending on this repository's `wasmgrind-guest` by a relative
//!   path, and a workspace of its own (`templates/guest/Cargo.toml.in`);
//! - `src/lib.rs`: a scenario whose threads share a counter behind a traced `Mutex`
//!   (`templates/guest/lib.rs`);
//! - `.cargo/config.toml` and `rust-toolchain.toml`: copies of
//!   [`toolchain::GUEST_CONFIG`] and [`toolchain::GUEST_TOOLCHAIN`], the files Wasmgrind's
//!   own guests are built with.
//!
//! `cargo build --release` in the crate's directory then builds
//! `target/wasm32-unknown-unknown/release/<crate>.wasm`, which `node pkg/cli.js run`
//! runs. `tests/node/new_guest.test.mjs` does exactly that.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::toolchain;
use crate::util::{self, Result};

const HELP: &str = "\
cargo xtask new-guest PATH

Creates a Wasmgrind guest crate in the directory PATH (which must not exist or be empty):
Cargo.toml (a cdylib depending on this repository's wasmgrind-guest), src/lib.rs (a
scenario with threads and a traced Mutex), and copies of guests/.cargo/config.toml and
guests/rust-toolchain.toml, which set the nightly, the target, -Z build-std, the
shared-memory flags and the profile. The crate's name is the last component of PATH.
";

/// The template of the crate's manifest; `@NAME@` and `@WASMGRIND_GUEST@` are replaced.
const MANIFEST_TEMPLATE: &str = include_str!("../templates/guest/Cargo.toml.in");
/// The crate's `src/lib.rs`.
const LIB_TEMPLATE: &str = include_str!("../templates/guest/lib.rs");
/// The scenario of [`LIB_TEMPLATE`].
pub const SCENARIO: &str = "mutex_counter";

/// Entry point of `cargo xtask new-guest`.
pub fn run(args: &[String]) -> Result {
    let path = match args {
        [flag] if flag == "-h" || flag == "--help" => {
            print!("{HELP}");
            return Ok(());
        }
        [path] if !path.starts_with('-') => PathBuf::from(path),
        _ => {
            return Err(format!(
                "`cargo xtask new-guest` takes one PATH, the directory of the new crate (got \
                 {} argument(s))\n\n{HELP}",
                args.len()
            )
            .into())
        }
    };
    let crate_dir = create(&path)?;
    let name = crate_name(&crate_dir)?;
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let cli = util::root().join("pkg").join("cli.js");
    eprintln!(
        "xtask: created the guest crate `{name}` in {}\n\
         build it and run its scenario with:\n\
         \x20 cd {}\n\
         \x20 cargo build --release\n\
         \x20 node {} run target/{}/release/{wasm} {SCENARIO}\n\
         (`cargo xtask dist` builds {} first)",
        crate_dir.display(),
        crate_dir.display(),
        cli.display(),
        toolchain::WASM_TARGET,
        cli.display(),
    );
    Ok(())
}

/// Creates the crate in `path` and returns its absolute directory.
pub fn create(path: &Path) -> Result<PathBuf> {
    let name = crate_name(path)?;
    if path.exists() {
        let empty = fs::read_dir(path)
            .map_err(|e| {
                format!(
                    "{} exists and is not a readable directory: {e}",
                    path.display()
                )
            })?
            .next()
            .is_none();
        if !empty {
            return Err(format!(
                "{} exists and is not empty: name a new directory (nothing was written)",
                path.display()
            )
            .into());
        }
    }
    let src = path.join("src");
    let dot_cargo = path.join(".cargo");
    for dir in [&src, &dot_cargo] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let crate_dir =
        fs::canonicalize(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    let root = util::root();
    let guest_lib = fs::canonicalize(root.join("wasmgrind-guest"))
        .map_err(|e| format!("cannot find this repository's wasmgrind-guest: {e}"))?;
    let dependency = relative_path(&crate_dir, &guest_lib);
    let dependency = dependency.to_str().ok_or_else(|| {
        format!(
            "the path from {} to {} is not UTF-8, which Cargo.toml cannot hold",
            crate_dir.display(),
            guest_lib.display()
        )
    })?;
    let manifest = MANIFEST_TEMPLATE
        .replace("@NAME@", &name)
        .replace("@WASMGRIND_GUEST@", &dependency.replace('\\', "/"));
    write(&crate_dir.join("Cargo.toml"), manifest.as_bytes())?;
    write(
        &crate_dir.join("src").join("lib.rs"),
        LIB_TEMPLATE.as_bytes(),
    )?;
    for (from, to) in [
        (toolchain::GUEST_CONFIG, dot_cargo.join("config.toml")),
        (
            toolchain::GUEST_TOOLCHAIN,
            crate_dir.join("rust-toolchain.toml"),
        ),
    ] {
        let from = root.join(from);
        fs::copy(&from, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(crate_dir)
}

fn write(path: &Path, bytes: &[u8]) -> Result {
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

/// The crate name for the directory `path`: its last component, which must be a valid
/// package name (ASCII letters, digits, `-` and `_`, starting with a letter).
fn crate_name(path: &Path) -> Result<String> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        format!(
            "{} has no last component to name the crate after: name its directory, for \
                 example `my-guest`",
            path.display()
        )
    })?;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` cannot be a crate name: the directory's name must start with an ASCII \
             letter and have only ASCII letters, digits, `-` and `_`"
        )
        .into());
    }
    Ok(name.to_string())
}

/// The path from the directory `from` to `to`, both absolute and canonical: `..` for each
/// component of `from` below their common prefix, then the rest of `to`.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for c in &to[common..] {
        path.push(c);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under `target/` for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = util::root().join("target").join("xtask-tests").join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn relative_paths_climb_to_the_common_prefix() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(relative_path(&p("/a/b/c"), &p("/a/x")), p("../../x"));
        assert_eq!(relative_path(&p("/a"), &p("/a/x/y")), p("x/y"));
        assert_eq!(relative_path(&p("/a/b"), &p("/a/b")), p(""));
    }

    #[test]
    fn crate_names_are_checked() {
        assert_eq!(crate_name(Path::new("x/my-guest_2")).unwrap(), "my-guest_2");
        for bad in ["x/2guest", "x/my guest", "x/é", "/"] {
            let err = crate_name(Path::new(bad)).unwrap_err().to_string();
            assert!(err.contains("name"), "{bad}: {err}");
        }
    }

    #[test]
    fn creates_a_crate_with_the_guest_settings() {
        let dir = scratch("new-guest").join("demo-guest");
        let created = create(&dir).unwrap();
        let root = util::root();
        for (copy, original) in [
            (".cargo/config.toml", toolchain::GUEST_CONFIG),
            ("rust-toolchain.toml", toolchain::GUEST_TOOLCHAIN),
        ] {
            assert_eq!(
                fs::read(created.join(copy)).unwrap(),
                fs::read(root.join(original)).unwrap(),
                "{copy} is a copy of {original}"
            );
        }
        let manifest = fs::read_to_string(created.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"demo-guest\""), "{manifest}");
        assert!(!manifest.contains('@'), "a placeholder is left: {manifest}");
        // The dependency resolves to this repository's wasmgrind-guest.
        let table: toml::Table = toml::from_str(&manifest).unwrap();
        let dep = table["dependencies"]["wasmgrind-guest"]["path"]
            .as_str()
            .unwrap();
        assert!(!Path::new(dep).is_absolute(), "{dep}");
        assert_eq!(
            fs::canonicalize(created.join(dep)).unwrap(),
            fs::canonicalize(root.join("wasmgrind-guest")).unwrap()
        );
        let lib = fs::read_to_string(created.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains(&format!("pub extern \"C\" fn {SCENARIO}()")),
            "{lib}"
        );
    }

    #[test]
    fn refuses_a_directory_that_is_not_empty() {
        let dir = scratch("new-guest-full").join("full");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("keep.txt"), "mine").unwrap();
        let err = create(&dir).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");
        assert!(!dir.join("Cargo.toml").exists());
    }
}
