//! The pinned nightly toolchain and the shared-memory wasm32 build settings that guests
//! and `wasmgrind-js` need.
//!
//! The settings have one home: `guests/.cargo/config.toml` (target, `-Z build-std`,
//! RUSTFLAGS with every link argument, release profile) and `guests/rust-toolchain.toml`
//! (the nightly). `cargo xtask guests` builds the guests through them (cargo reads them
//! in `guests/`), `cargo xtask new-guest` copies them, and [`GuestConfig`] reads them for
//! the build of `wasmgrind-js` and for error messages. [`NIGHTLY`] repeats the channel so
//! that messages can name it; a test checks that the two agree.
//!
//! The xtask itself runs on stable under `cargo run`, which exports variables (`RUSTC`,
//! `RUSTUP_TOOLCHAIN`, `CARGO_TARGET_DIR`, ...) that would make a nested build use the
//! wrong compiler or directory; [`nightly_cargo`] starts cargo without them.
//!
//! The guests of `guests-wasi/` are the other kind: plain `std` programs that need no
//! settings but their target, built on [`STABLE`] for [`WASI_TARGET`] by
//! [`stable_cargo`] after [`ensure_stable_wasi`].

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use wasmgrind_core::abi;
use wasmparser::{ExternalKind, Parser, Payload};

use crate::util::{self, Result};

/// The nightly that builds guests and `wasmgrind-js` (`-Z build-std` needs nightly): the
/// `channel` of [`GUEST_TOOLCHAIN`].
pub const NIGHTLY: &str = "nightly-2026-05-20";

/// The target of every guest and of `wasmgrind-js`.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The cargo configuration of a guest, relative to the repository root: the one copy of
/// the guest build settings.
pub const GUEST_CONFIG: &str = "guests/.cargo/config.toml";

/// The toolchain file of a guest, relative to the repository root.
pub const GUEST_TOOLCHAIN: &str = "guests/rust-toolchain.toml";

/// How to fix a module that was not built with the guest settings, for error messages.
pub fn build_advice() -> String {
    format!(
        "build it with the settings of {GUEST_CONFIG} and {GUEST_TOOLCHAIN}: copy both into \
         your crate (`cargo xtask new-guest PATH` creates a crate that has them) and run \
         `cargo build --release` in the crate's directory"
    )
}

/// The build settings of [`GUEST_CONFIG`] that a build outside `guests/` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestConfig {
    /// The crates of `[unstable] build-std`.
    pub build_std: Vec<String>,
    /// `[target.wasm32-unknown-unknown] rustflags`, one argument per entry.
    pub rustflags: Vec<String>,
}

impl GuestConfig {
    /// Reads [`GUEST_CONFIG`] of this repository.
    pub fn load() -> Result<GuestConfig> {
        let path = util::root().join(GUEST_CONFIG);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        GuestConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()).into())
    }

    /// Reads the settings from the text of a cargo configuration file; fails unless it
    /// builds for [`WASM_TARGET`] with `build-std` and target rustflags.
    pub fn parse(text: &str) -> Result<GuestConfig> {
        /// The part of `.cargo/config.toml` that the xtask reads.
        #[derive(Deserialize)]
        struct File {
            build: Build,
            unstable: Unstable,
            target: BTreeMap<String, Target>,
        }
        #[derive(Deserialize)]
        struct Build {
            target: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case")]
        struct Unstable {
            build_std: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Target {
            rustflags: Vec<String>,
        }

        let file: File = toml::from_str(text).map_err(|e| {
            format!(
                "not the guest configuration that the xtask expects (`[build] target`, \
                 `[unstable] build-std` and `[target.{WASM_TARGET}] rustflags`): {e}"
            )
        })?;
        if file.build.target != WASM_TARGET {
            return Err(format!(
                "`[build] target` is `{}`; guests are built for `{WASM_TARGET}`",
                file.build.target
            )
            .into());
        }
        let rustflags = file
            .target
            .get(WASM_TARGET)
            .map(|t| t.rustflags.clone())
            .ok_or_else(|| format!("there is no `[target.{WASM_TARGET}] rustflags`"))?;
        if file.unstable.build_std.is_empty() {
            return Err("`[unstable] build-std` names no crate".into());
        }
        Ok(GuestConfig {
            build_std: file.unstable.build_std,
            rustflags,
        })
    }

    /// The `-Z build-std` argument of a cargo command line.
    pub fn build_std_arg(&self) -> String {
        format!("-Zbuild-std={}", self.build_std.join(","))
    }

    /// The rustflags followed by `extra`, as `CARGO_ENCODED_RUSTFLAGS` wants them (one
    /// argument per field, separated by `0x1f`).
    pub fn encoded_rustflags(&self, extra: &[&str]) -> String {
        let mut flags: Vec<&str> = self.rustflags.iter().map(String::as_str).collect();
        flags.extend_from_slice(extra);
        flags.join("\x1f")
    }
}

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

/// The target of the guests of `guests-wasi/`: ordinary `std` programs built on stable.
pub const WASI_TARGET: &str = "wasm32-wasip1-threads";

/// The toolchain that builds `guests-wasi/`: whatever stable is, as a user would have it.
pub const STABLE: &str = "stable";

/// Installs [`WASI_TARGET`] for the [`STABLE`] toolchain (and that toolchain, if it is
/// missing) unless it is already there, so that a fresh machine needs nothing but rustup.
/// `RUSTUP_AUTO_INSTALL=0` keeps rustup from doing it on its own.
pub fn ensure_stable_wasi() -> Result {
    let toolchains = util::output(rustup().args(["toolchain", "list"]))?;
    let installed = toolchains.lines().any(|line| {
        let name = line.split_whitespace().next().unwrap_or("");
        name == STABLE || name.starts_with(&format!("{STABLE}-"))
    });
    if installed {
        let targets =
            util::output(rustup().args(["target", "list", "--installed", "--toolchain", STABLE]))?;
        if targets.lines().any(|l| l.trim() == WASI_TARGET) {
            return Ok(());
        }
        eprintln!("xtask: toolchain {STABLE} lacks the target {WASI_TARGET}; installing it");
        return util::run(rustup().args(["target", "add", WASI_TARGET, "--toolchain", STABLE]))
            .map_err(|e| {
                format!(
                    "{e}\ninstalling the target failed; install it by hand with `rustup target \
                     add {WASI_TARGET} --toolchain {STABLE}`"
                )
                .into()
            });
    }
    eprintln!("xtask: toolchain {STABLE} is not installed; installing it");
    util::run(rustup().args([
        "toolchain",
        "install",
        STABLE,
        "--profile",
        "minimal",
        "--target",
        WASI_TARGET,
    ]))
    .map_err(|e| {
        format!(
            "{e}\ninstalling the stable toolchain failed; install it by hand with `rustup \
             toolchain install {STABLE} --profile minimal --target {WASI_TARGET}`"
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

/// `rustup run NIGHTLY cargo` in a clean environment: without the variables of the outer
/// stable `cargo run` that would leak into the nested build (compiler, flags, target
/// directory, toolchain override, jobserver), and with `RUSTUP_AUTO_INSTALL=0`.
///
/// Cargo then reads the configuration of the directory the caller starts it in (for the
/// guests, [`GUEST_CONFIG`]); the caller sets `CARGO_TARGET_DIR`.
pub fn nightly_cargo() -> Command {
    toolchain_cargo(NIGHTLY)
}

/// `rustup run stable cargo` in the same clean environment as [`nightly_cargo`]: the
/// build of `guests-wasi/`, whose `.cargo/config.toml` sets the target.
pub fn stable_cargo() -> Command {
    toolchain_cargo(STABLE)
}

/// `rustup run TOOLCHAIN cargo` without the variables of the outer `cargo run`, and with
/// `RUSTUP_AUTO_INSTALL=0`.
fn toolchain_cargo(toolchain: &str) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", toolchain, "cargo"]);
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
    const PREFIXES: [&str; 7] = [
        "CARGO_ENCODED_",
        "CARGO_UNSTABLE_",
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

/// [`check_shared_memory`] on the bytes of a module; `what` names it in errors. Every
/// missing export is named, not only the first.
fn check_shared_memory_bytes(what: &str, bytes: &[u8]) -> Result {
    let fix = build_advice();
    let fail = |problem: String| -> util::Error { format!("{what}: {problem}; {fix}").into() };
    // The memory rules are the patcher's: its errors say which link argument is missing.
    let memory = wasmgrind_patch::memory_limits(bytes).err();
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
    let mut problems: Vec<String> = memory.into_iter().map(|e| e.to_string()).collect();
    let mut missing = Vec::new();
    for (name, flag) in abi::LINKER_EXPORTS {
        let want = if name == abi::INIT_TLS {
            ExternalKind::Func
        } else {
            ExternalKind::Global
        };
        match exports.iter().find(|(n, _)| n == name) {
            None => missing.push((name, flag)),
            Some((_, kind)) if *kind != want => {
                problems.push(format!("its export `{name}` is a {kind:?}, not a {want:?}"))
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|(n, _)| format!("`{n}`")).collect();
        let flags: Vec<&str> = missing.iter().map(|(_, f)| *f).collect();
        problems.push(format!(
            "it does not export {} (link with `{}`)",
            names.join(", "),
            flags.join(" ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(fail(problems.join("; ")))
    }
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
    fn names_every_missing_linker_export_and_the_memory_problem_at_once() {
        let msg = check(Memory::ImportedShared, false);
        for (name, flag) in abi::LINKER_EXPORTS {
            assert!(msg.contains(&format!("`{name}`")), "{name}: {msg}");
            assert!(msg.contains(flag), "{flag}: {msg}");
        }
        assert!(
            msg.contains("does not export `__heap_base`, `__tls_size`"),
            "{msg}"
        );
        let msg = check(Memory::ImportedUnshared, false);
        assert!(
            msg.contains("--shared-memory") && msg.contains("--export=__wasm_init_tls"),
            "{msg}"
        );
        assert!(msg.contains(GUEST_CONFIG), "{msg}");
    }

    /// The guest settings of the repository: what the guests are built with.
    fn repository_config() -> GuestConfig {
        GuestConfig::load().unwrap()
    }

    /// Whether `flags` has `-C value` as two consecutive arguments.
    fn has_codegen_flag(flags: &[String], value: &str) -> bool {
        flags.windows(2).any(|w| w[0] == "-C" && w[1] == value)
    }

    #[test]
    fn the_guest_config_links_every_export_the_patcher_needs() {
        let config = repository_config();
        for (name, flag) in abi::LINKER_EXPORTS {
            let value = flag.strip_prefix("-C ").unwrap();
            assert!(
                has_codegen_flag(&config.rustflags, value),
                "{GUEST_CONFIG} lacks `{flag}` (for `{name}`)"
            );
        }
        for value in [
            "target-feature=+atomics,+bulk-memory,+mutable-globals",
            "link-arg=--shared-memory",
            "link-arg=--import-memory",
            "link-arg=--max-memory=1073741824",
        ] {
            assert!(
                has_codegen_flag(&config.rustflags, value),
                "{GUEST_CONFIG} lacks `-C {value}`"
            );
        }
        assert_eq!(config.build_std_arg(), "-Zbuild-std=panic_abort,std");
        let encoded = config.encoded_rustflags(&["-C", "link-arg=--max-memory=4294967296"]);
        let fields: Vec<&str> = encoded.split('\x1f').collect();
        assert_eq!(fields.len(), config.rustflags.len() + 2);
        assert_eq!(fields[0], "-C");
        assert_eq!(fields.last(), Some(&"link-arg=--max-memory=4294967296"));
    }

    #[test]
    fn the_toolchain_file_pins_the_nightly_of_the_xtask() {
        #[derive(Deserialize)]
        struct File {
            toolchain: Toolchain,
        }
        #[derive(Deserialize)]
        struct Toolchain {
            channel: String,
            components: Vec<String>,
            targets: Vec<String>,
        }
        let path = util::root().join(GUEST_TOOLCHAIN);
        let file: File = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(file.toolchain.channel, NIGHTLY);
        assert_eq!(file.toolchain.components, ["rust-src"]);
        assert_eq!(file.toolchain.targets, [WASM_TARGET]);
        assert_eq!(
            COMPONENTS,
            ["rust-src", &*format!("rust-std-{WASM_TARGET}")],
            "ensure_nightly checks the components of the toolchain file"
        );
    }

    #[test]
    fn config_errors_name_what_is_missing() {
        let err = GuestConfig::parse("[build]\ntarget = \"x86_64-unknown-linux-gnu\"\n[unstable]\nbuild-std = [\"std\"]\n[target.x86_64-unknown-linux-gnu]\nrustflags = []\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("guests are built for `wasm32-unknown-unknown`"),
            "{err}"
        );
        let err = GuestConfig::parse("[build]\ntarget = \"wasm32-unknown-unknown\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[unstable] build-std"), "{err}");
    }

    /// The compile error of `wasmgrind-guest` for a wasm32 build with the target features
    /// `features`: what `cargo check` prints. Uses the pinned nightly, which `cargo xtask
    /// test` installs before it runs the Rust tests.
    fn guest_library_check(features: &str) -> String {
        let out = nightly_cargo()
            .current_dir(util::root())
            .args(["check", "--quiet", "--package", "wasmgrind-guest"])
            .args(["--target", WASM_TARGET])
            .env("RUSTFLAGS", format!("-C target-feature={features}"))
            .env(
                "CARGO_TARGET_DIR",
                util::root()
                    .join("target")
                    .join("xtask-tests")
                    .join("guest-features"),
            )
            .output()
            .expect("rustup runs");
        assert!(!out.status.success(), "the check of `{features}` passed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[test]
    fn the_guest_library_names_every_missing_target_feature_at_once() {
        let err = guest_library_check("-atomics,-bulk-memory,-mutable-globals");
        assert!(
            err.contains(
                "lacks the target feature(s) `+atomics` `+bulk-memory` `+mutable-globals`."
            ),
            "{err}"
        );
        assert!(err.contains("guests/.cargo/config.toml"), "{err}");
        assert_eq!(
            err.matches("error: wasmgrind-guest needs").count(),
            1,
            "{err}"
        );
        let err = guest_library_check("+atomics,-bulk-memory,+mutable-globals");
        assert!(
            err.contains("lacks the target feature(s) `+bulk-memory`."),
            "{err}"
        );
    }

    #[test]
    fn the_wasi_guests_build_for_the_wasi_target_and_nothing_else() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            build: Build,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Build {
            target: String,
        }
        let path = util::root()
            .join("guests-wasi")
            .join(".cargo")
            .join("config.toml");
        let file: File = toml::from_str(&std::fs::read_to_string(path).unwrap())
            .expect("guests-wasi/.cargo/config.toml sets only `[build] target`: no flags");
        assert_eq!(file.build.target, WASI_TARGET);
        let cmd = stable_cargo();
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["run", STABLE, "cargo"]);
        assert!(cmd
            .get_envs()
            .any(|(k, v)| k == "RUSTUP_AUTO_INSTALL" && v == Some("0".as_ref())));
    }

    #[test]
    fn only_build_variables_are_cleared() {
        for key in [
            "RUSTC",
            "RUSTUP_TOOLCHAIN",
            "CARGO_TARGET_DIR",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_UNSTABLE_BUILD_STD",
        ] {
            assert!(leaks_into_nested_cargo(key), "{key}");
        }
        for key in ["CARGO_HOME", "RUSTUP_HOME", "PATH", "CARGO_TERM_COLOR"] {
            assert!(!leaks_into_nested_cargo(key), "{key}");
        }
    }
}
