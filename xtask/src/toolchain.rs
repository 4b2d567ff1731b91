//! The pinned nightly toolchain and the shared-memory wasm32 build settings that guests
//! and `wasmgrind-js` need.
//!
//! The xtask itself runs on stable under `cargo run`, which exports variables (`RUSTC`,
//! `RUSTUP_TOOLCHAIN`, `CARGO_TARGET_DIR`, ...) that would make a nested build use the
//! wrong compiler or directory; [`nightly_cargo`] starts cargo without them.

use std::path::Path;
use std::process::Command;

use wasmgrind_core::abi;
use wasmparser::{ExternalKind, Parser, Payload};

use crate::util::{self, Result};

/// The nightly that builds guests and `wasmgrind-js` (`-Z build-std` needs nightly).
pub const NIGHTLY: &str = "nightly-2026-05-20";

/// The target of every guest and of `wasmgrind-js`.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The `-Z build-std` argument: std rebuilt with atomics, panics abort.
pub const BUILD_STD: &str = "-Zbuild-std=panic_abort,std";

/// The components the nightly needs besides the compiler.
const COMPONENTS: [&str; 2] = ["rust-src", "rust-std-wasm32-unknown-unknown"];

/// Installs [`NIGHTLY`] with `rust-src` and the wasm32 target unless it is already
/// there, so a fresh machine needs nothing but rustup.
pub fn ensure_nightly() -> Result {
    let toolchains = util::output(rustup().args(["toolchain", "list"]))?;
    let installed = toolchains.lines().any(|line| {
        let name = line.split_whitespace().next().unwrap_or("");
        name == NIGHTLY || name.starts_with(&format!("{NIGHTLY}-"))
    });
    if installed {
        let components = util::output(rustup().args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            NIGHTLY,
        ]))?;
        let missing: Vec<&str> = COMPONENTS
            .iter()
            .copied()
            .filter(|c| !components.lines().any(|l| l.trim() == *c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        eprintln!(
            "xtask: toolchain {NIGHTLY} lacks {}; installing",
            missing.join(", ")
        );
    } else {
        eprintln!("xtask: toolchain {NIGHTLY} is not installed; installing it");
    }
    util::run(rustup().args([
        "toolchain",
        "install",
        NIGHTLY,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
        "--target",
        WASM_TARGET,
    ]))
    .map_err(|e| {
        format!(
            "{e}\ninstalling the pinned nightly failed; install it by hand with `rustup toolchain \
             install {NIGHTLY} --profile minimal --component rust-src --target {WASM_TARGET}`"
        )
        .into()
    })
}

/// `rustup` without the toolchain override that `cargo run` exports.
fn rustup() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

/// The RUSTFLAGS of a shared-memory wasm32 build: atomics, an imported shared memory of
/// at most 1 GiB, and the linker exports that patching needs
/// ([`abi::LINKER_EXPORTS`]).
///
/// With [`NIGHTLY`], `+atomics` alone no longer makes the memory shared, hence the
/// explicit `--shared-memory`.
pub fn wasm_rustflags() -> String {
    let mut flags = vec![
        "-C target-feature=+atomics,+bulk-memory,+mutable-globals",
        "-C link-arg=--shared-memory",
        "-C link-arg=--import-memory",
        "-C link-arg=--max-memory=1073741824",
    ];
    flags.extend(abi::LINKER_EXPORTS.iter().map(|(_, flag)| *flag));
    flags.join(" ")
}

/// `rustup run NIGHTLY cargo` in a clean environment: without the variables of the outer
/// stable `cargo run` that would leak into the nested build (compiler, flags, target
/// directory, toolchain override, jobserver), and with `RUSTUP_AUTO_INSTALL=0`.
///
/// The caller sets `RUSTFLAGS` (usually [`wasm_rustflags`]) and `CARGO_TARGET_DIR`.
pub fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", NIGHTLY, "cargo"]);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if leaks_into_nested_cargo(key) {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUSTUP_AUTO_INSTALL", "0");
    cmd
}

/// Whether an environment variable of the outer cargo must not reach a nested build.
fn leaks_into_nested_cargo(key: &str) -> bool {
    const EXACT: [&str; 14] = [
        "CARGO",
        "CARGO_MAKEFLAGS",
        "CARGO_INCREMENTAL",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_BOOTSTRAP",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTUP_TOOLCHAIN",
        "MAKEFLAGS",
        "MFLAGS",
        "__CARGO_FIX_PLZ",
    ];
    const PREFIXES: [&str; 6] = [
        "CARGO_ENCODED_",
        "CARGO_BUILD_",
        "CARGO_TARGET_",
        "CARGO_PROFILE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Fails with a clear message unless the module at `path` imports a shared memory and
/// exports what patching needs (the TLS globals, `__wasm_init_tls`, `__heap_base`).
pub fn check_shared_memory(path: &Path) -> Result {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    check_shared_memory_bytes(&path.display().to_string(), &bytes)
}

/// [`check_shared_memory`] on the bytes of a module; `what` names it in errors.
fn check_shared_memory_bytes(what: &str, bytes: &[u8]) -> Result {
    let fix = format!(
        "build it for {WASM_TARGET} with {NIGHTLY}, `{BUILD_STD}` and RUSTFLAGS=\"{}\"",
        wasm_rustflags()
    );
    let fail = |problem: String| -> util::Error { format!("{what}: {problem}; {fix}").into() };
    // The memory rules are the patcher's: its errors say which link argument is missing.
    wasmgrind_patch::memory_limits(bytes).map_err(|e| fail(e.to_string()))?;
    let mut exports: Vec<(String, ExternalKind)> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::ExportSection(reader) =
            payload.map_err(|e| fail(format!("not a valid WebAssembly module ({e})")))?
        {
            for export in reader {
                let export = export.map_err(|e| fail(format!("bad export section ({e})")))?;
                exports.push((export.name.to_string(), export.kind));
            }
        }
    }
    for (name, _) in abi::LINKER_EXPORTS {
        let want = if name == abi::INIT_TLS {
            ExternalKind::Func
        } else {
            ExternalKind::Global
        };
        match exports.iter().find(|(n, _)| n == name) {
            None => return Err(fail(format!("it does not export `{name}`"))),
            Some((_, kind)) if *kind != want => {
                return Err(fail(format!(
                    "its export `{name}` is a {kind:?}, not a {want:?}"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a test module gets its memory.
    enum Memory {
        ImportedShared,
        ImportedUnshared,
        Defined,
        None,
    }

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        assert!(
            body.len() < 128,
            "the tests' sections fit a one-byte LEB128 size"
        );
        let mut s = vec![id, body.len() as u8];
        s.extend_from_slice(body);
        s
    }

    fn name(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    /// A module with the given memory and, if `exports`, the linker exports: a function
    /// `(param i32)` and two globals.
    fn module(memory: Memory, exports: bool) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend(section(1, &[1, 0x60, 1, 0x7f, 0]));
        // Limits: flags (1 = has max, 3 = has max + shared), min 1, max 2.
        let limits: &[u8] = match memory {
            Memory::ImportedShared | Memory::Defined => &[3, 1, 2],
            Memory::ImportedUnshared | Memory::None => &[1, 1, 2],
        };
        if matches!(memory, Memory::ImportedShared | Memory::ImportedUnshared) {
            let mut imports = vec![1];
            imports.extend(name("env"));
            imports.extend(name("memory"));
            imports.push(2);
            imports.extend_from_slice(limits);
            m.extend(section(2, &imports));
        }
        m.extend(section(3, &[1, 0]));
        if matches!(memory, Memory::Defined) {
            let mut mem = vec![1];
            mem.extend_from_slice(limits);
            m.extend(section(5, &mem));
        }
        // Global 0: mut i32 = 0 (the TLS base); global 1: i32 = 8.
        m.extend(section(
            6,
            &[2, 0x7f, 1, 0x41, 0, 0x0b, 0x7f, 0, 0x41, 8, 0x0b],
        ));
        if exports {
            let mut e = vec![5];
            for (n, kind, index) in [
                ("__wasm_init_tls", 0u8, 0u8),
                ("__tls_size", 3, 1),
                ("__tls_align", 3, 1),
                ("__tls_base", 3, 0),
                ("__heap_base", 3, 1),
            ] {
                e.extend(name(n));
                e.extend([kind, index]);
            }
            m.extend(section(7, &e));
        }
        m.extend(section(10, &[1, 2, 0, 0x0b]));
        m
    }

    fn check(memory: Memory, exports: bool) -> String {
        match check_shared_memory_bytes("test.wasm", &module(memory, exports)) {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_an_imported_shared_memory_with_the_exports() {
        wasmparser::validate(&module(Memory::ImportedShared, true)).unwrap();
        assert_eq!(check(Memory::ImportedShared, true), "ok");
    }

    #[test]
    fn rejects_unshared_defined_or_missing_memory() {
        let msg = check(Memory::ImportedUnshared, true);
        assert!(
            msg.starts_with("test.wasm: the memory is not shared"),
            "{msg}"
        );
        assert!(msg.contains("--shared-memory"), "{msg}");
        let msg = check(Memory::Defined, true);
        assert!(
            msg.contains("not imported") && msg.contains("--import-memory"),
            "{msg}"
        );
        assert!(check(Memory::None, true).contains("has no memory"));
    }

    #[test]
    fn rejects_missing_linker_exports() {
        let msg = check(Memory::ImportedShared, false);
        assert!(msg.contains("does not export `__heap_base`"), "{msg}");
        assert!(msg.contains("--export=__heap_base"), "{msg}");
    }

    #[test]
    fn flags_name_every_linker_export() {
        let flags = wasm_rustflags();
        assert!(flags.contains("--shared-memory") && flags.contains("--import-memory"));
        for (name, _) in abi::LINKER_EXPORTS {
            assert!(flags.contains(&format!("--export={name}")), "{name}");
        }
    }

    #[test]
    fn only_build_variables_are_cleared() {
        for key in [
            "RUSTC",
            "RUSTUP_TOOLCHAIN",
            "CARGO_TARGET_DIR",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            assert!(leaks_into_nested_cargo(key), "{key}");
        }
        for key in ["CARGO_HOME", "RUSTUP_HOME", "PATH", "CARGO_TERM_COLOR"] {
            assert!(!leaks_into_nested_cargo(key), "{key}");
        }
    }
}
