//! `cargo xtask guests`: builds the guest programs of `guests/` into `target/guests/*.wasm`
//! and those of `guests-wasi/` into `target/guests/wasi/*.wasm`, and checks them against
//! the runtime ABI and `guests/manifest.json`.
//!
//! Every guest must import a shared memory, import only the `wasmgrind` functions of
//! [`abi::IMPORTS`] with their exact signatures, export the guest ABI functions and keep
//! the name of `__stack_pointer`; its exported parameterless functions other than the ABI
//! ones are its scenarios, which must be exactly the manifest's.
//!
//! A program of `guests-wasi/` is a plain `std` binary built on stable for
//! `wasm32-wasip1-threads`: it must import one shared `env.memory`, only WASI preview1
//! functions and `wasi.thread-spawn`, and export `_start` and `wasi_thread_start`; its
//! scenarios (the names of its `const SCENARIOS` table) must be exactly those of the
//! manifest's `wasi_guests` entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use wasmgrind_core::abi::{self, ErrorCode, FuncSig};
use wasmparser::{ExternalKind, KnownCustom, Name, Parser, Payload, TypeRef, ValType};

use crate::toolchain;
use crate::util::{self, Result};

/// Entry point of `cargo xtask guests`.
pub fn run(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("`cargo xtask guests` takes no arguments, got `{arg}`").into());
    }
    build().map(|_| ())
}

/// Builds and checks every guest; returns the paths of `target/guests/<crate>.wasm` (the
/// Wasmgrind ABI guests). The programs of `guests-wasi/` are built, checked and copied to
/// `target/guests/wasi/` too, but not returned.
///
/// Cargo skips the build when nothing changed, and unchanged files are not rewritten.
pub fn build() -> Result<Vec<PathBuf>> {
    toolchain::ensure_nightly()?;
    let root = util::root();
    let guests_dir = root.join("guests");
    let build_dir = root.join("target").join("guests-build");
    let out_dir = root.join("target").join("guests");
    // The target, `-Z build-std`, RUSTFLAGS and the release profile come from
    // guests/.cargo/config.toml, which cargo reads in this directory.
    util::run(
        toolchain::nightly_cargo()
            .current_dir(&guests_dir)
            .args(["build", "--release"])
            .env("CARGO_TARGET_DIR", &build_dir),
    )?;

    let crates = guest_crates(&guests_dir)?;
    let manifest_path = guests_dir.join("manifest.json");
    let manifest = Manifest::load(&manifest_path)?;
    let built: BTreeSet<&str> = crates.iter().map(String::as_str).collect();
    let listed: BTreeSet<&str> = manifest.guests.keys().map(String::as_str).collect();
    if built != listed {
        return Err(format!(
            "{}: the guests ({}) differ from the cdylib crates of guests/ ({}); add or remove \
             manifest entries so that every crate has one",
            manifest_path.display(),
            join(&listed),
            join(&built)
        )
        .into());
    }

    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let release = build_dir.join(toolchain::WASM_TARGET).join("release");
    let mut outputs = Vec::new();
    let mut scenarios = 0;
    for (name, guest) in &manifest.guests {
        let built = release.join(&guest.file);
        toolchain::check_shared_memory(&built)?;
        let bytes =
            std::fs::read(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
        let what = built.display().to_string();
        let module = Module::parse(&what, &bytes)?;
        module.check_abi(&what)?;
        module.check_scenarios(&what, name, guest)?;
        scenarios += guest.scenarios.len();
        let out = out_dir.join(&guest.file);
        if std::fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&out, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        }
        outputs.push(out);
    }
    remove_stale(&out_dir, &manifest)?;
    eprintln!(
        "xtask: {} guests with {scenarios} scenarios checked and up to date in {}",
        outputs.len(),
        out_dir.display()
    );
    build_wasi(&manifest)?;
    Ok(outputs)
}

/// Removes `*.wasm` files of `target/guests` that belong to no guest any more.
fn remove_stale(out_dir: &Path, manifest: &Manifest) -> Result {
    let entries = std::fs::read_dir(out_dir)
        .map_err(|e| format!("cannot list {}: {e}", out_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".wasm") && !manifest.guests.values().any(|g| g.file == name) {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove stale {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The crates of `guests-wasi/` that have no entry in the manifest: `runtime_checks`
/// holds the programs that the runtime's own tests run (its traps, exits, output and
/// thread limits), and those tests state what they expect. They are built and copied all
/// the same.
const UNLISTED_WASI_CRATES: [&str; 1] = ["runtime_checks"];

/// Builds the programs of `guests-wasi/` on stable, checks them and the manifest's
/// `wasi_guests` against each other, and copies them to `target/guests/wasi/`; returns
/// the copies' paths. Every problem is named at once.
fn build_wasi(manifest: &Manifest) -> Result<Vec<PathBuf>> {
    toolchain::ensure_stable_wasi()?;
    let root = util::root();
    let dir = root.join("guests-wasi");
    let build_dir = root.join("target").join("guests-wasi-build");
    let out_dir = root.join("target").join("guests").join("wasi");
    // `.cargo/config.toml` of guests-wasi sets the target; the build is a user's plain
    // release build, with the committed Cargo.lock.
    util::run(
        toolchain::stable_cargo()
            .current_dir(&dir)
            .args(["build", "--release", "--locked"])
            .env("CARGO_TARGET_DIR", &build_dir),
    )?;
    let crates = wasi_crates(&dir)?;
    let release = build_dir.join(toolchain::WASI_TARGET).join("release");
    let mut problems = Vec::new();
    for name in manifest.wasi_guests.keys() {
        if !crates.iter().any(|(c, _)| c == name) {
            problems.push(format!(
                "guests/manifest.json lists the wasi guest `{name}`, which is no binary crate \
                 of guests-wasi/ (the binaries are {})",
                crates
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let mut outputs = Vec::new();
    let mut scenarios = 0;
    for (name, source) in &crates {
        let built = release.join(format!("{name}.wasm"));
        let bytes =
            std::fs::read(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
        let what = built.display().to_string();
        let module = match Module::parse(&what, &bytes) {
            Ok(module) => {
                problems.extend(module.wasi_problems(&what));
                Some(module)
            }
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        match manifest.wasi_guests.get(name) {
            Some(guest) => {
                if module.is_some_and(|m| !m.spawns_threads()) {
                    for (scenario, s) in &guest.scenarios {
                        if s.forks != Some(0) {
                            problems.push(format!(
                                "{what}: it does not import `wasi.thread-spawn`, so it starts \
                                 no thread, but scenario `{scenario}` has `forks` {}",
                                s.forks.map_or("null".to_string(), |f| f.to_string())
                            ));
                        }
                    }
                }
                let text = std::fs::read_to_string(source)
                    .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
                match scenario_names(&text) {
                    Ok(names) => {
                        problems.extend(wasi_scenario_problems(
                            &source.display().to_string(),
                            name,
                            &names,
                            guest,
                        ));
                        scenarios += guest.scenarios.len();
                    }
                    Err(e) => problems.push(format!("{}: {e}", source.display())),
                }
            }
            None if UNLISTED_WASI_CRATES.contains(&name.as_str()) => {}
            None => problems.push(format!(
                "guests-wasi/ has the binary crate `{name}`, which guests/manifest.json does \
                 not list under `wasi_guests`; add an entry with its scenarios"
            )),
        }
        let out = out_dir.join(format!("{name}.wasm"));
        if std::fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&out, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        }
        outputs.push(out);
    }
    if !problems.is_empty() {
        return Err(format!(
            "the wasi guests and guests/manifest.json disagree:\n  {}",
            problems.join("\n  ")
        )
        .into());
    }
    // Modules of crates that are gone.
    let entries = std::fs::read_dir(&out_dir)
        .map_err(|e| format!("cannot list {}: {e}", out_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && !outputs.contains(&path) {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove stale {}: {e}", path.display()))?;
        }
    }
    eprintln!(
        "xtask: {} wasi guests with {scenarios} scenarios checked and up to date in {}",
        outputs.len(),
        out_dir.display()
    );
    Ok(outputs)
}

/// The binary targets of the `guests-wasi` workspace (`cargo metadata`): name (with `_`
/// for `-`, the module's file name without `.wasm`) and the path of its `main.rs`.
fn wasi_crates(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    /// The part of `cargo metadata` that names the binary targets.
    #[derive(Deserialize)]
    struct Metadata {
        packages: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        targets: Vec<Target>,
    }
    #[derive(Deserialize)]
    struct Target {
        name: String,
        kind: Vec<String>,
        src_path: PathBuf,
    }

    let out = util::output(toolchain::stable_cargo().current_dir(dir).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))?;
    let meta: Metadata =
        serde_json::from_str(&out).map_err(|e| format!("cannot read `cargo metadata`: {e}"))?;
    let crates: Vec<(String, PathBuf)> = meta
        .packages
        .into_iter()
        .flat_map(|p| p.targets)
        .filter(|t| t.kind.iter().any(|k| k == "bin"))
        .map(|t| (t.name.replace('-', "_"), t.src_path))
        .collect();
    if crates.is_empty() {
        return Err(format!("{}: no binary crate found", dir.display()).into());
    }
    Ok(crates)
}

/// The scenario names of a wasi guest: the first element, a string literal, of each entry
/// of the array `const SCENARIOS: &[(&str, ...)] = &[...];` in the source of its
/// `main.rs`, the table that the program itself dispatches on and lists.
fn scenario_names(source: &str) -> std::result::Result<Vec<String>, String> {
    const ITEM: &str = "const SCENARIOS:";
    let found: Vec<usize> = source.match_indices(ITEM).map(|(i, _)| i).collect();
    let start = match found[..] {
        [i] => i,
        [] => {
            return Err(format!(
                "no `{ITEM} &[(&str, fn(), &str)] = &[...]` table of scenarios; every wasi \
                 guest has one"
            ))
        }
        _ => return Err(format!("`{ITEM}` appears {} times", found.len())),
    };
    let rest = &source[start..];
    let open = rest
        .find("= &[")
        .ok_or_else(|| format!("`{ITEM}` is not followed by `= &[`"))?;
    let mut chars = rest[open + 4..].chars().peekable();
    let (mut depth, mut entry_start, mut names) = (1, false, Vec::new());
    let mut problems = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                entry_start = depth == 2 && c == '(';
            }
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            '"' => {
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => text.extend(chars.next()),
                        '"' => break,
                        c => text.push(c),
                    }
                }
                if entry_start {
                    names.push(text);
                }
                entry_start = false;
            }
            c if c.is_whitespace() => {}
            c => {
                if entry_start {
                    problems.push(format!(
                        "entry {} of `SCENARIOS` does not start with a string literal (at `{c}`)",
                        names.len() + problems.len() + 1
                    ));
                }
                entry_start = false;
            }
        }
    }
    if depth != 0 {
        problems.push("the `SCENARIOS` array does not end".to_string());
    }
    let mut seen = BTreeSet::new();
    for name in &names {
        if !seen.insert(name) {
            problems.push(format!("`SCENARIOS` lists `{name}` twice"));
        }
    }
    if names.is_empty() {
        problems.push("`SCENARIOS` is empty".to_string());
    }
    if problems.is_empty() {
        Ok(names)
    } else {
        Err(problems.join("; "))
    }
}

/// What differs between the scenarios of a program (`names`, from `source`) and those of
/// its manifest entry, named `guest_name`; one message per difference.
fn wasi_scenario_problems(
    source: &str,
    guest_name: &str,
    names: &[String],
    guest: &WasiGuest,
) -> Vec<String> {
    let mut problems = Vec::new();
    for name in guest.scenarios.keys() {
        if !names.contains(name) {
            problems.push(format!(
                "scenario `{name}` of wasi guest `{guest_name}` is in guests/manifest.json but \
                 not in the `SCENARIOS` of {source}"
            ));
        }
    }
    for name in names {
        if !guest.scenarios.contains_key(name) {
            problems.push(format!(
                "{source} has the scenario `{name}`, which guests/manifest.json does not list \
                 under `wasi_guests.{guest_name}`"
            ));
        }
    }
    problems
}

/// The names of the cdylib targets of the guests workspace (`cargo metadata`).
fn guest_crates(guests_dir: &Path) -> Result<Vec<String>> {
    /// The part of `cargo metadata` that names the cdylib targets.
    #[derive(Deserialize)]
    struct Metadata {
        packages: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        targets: Vec<Target>,
    }
    #[derive(Deserialize)]
    struct Target {
        name: String,
        kind: Vec<String>,
    }

    let out = util::output(toolchain::nightly_cargo().current_dir(guests_dir).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))?;
    let meta: Metadata =
        serde_json::from_str(&out).map_err(|e| format!("cannot read `cargo metadata`: {e}"))?;
    let crates: Vec<String> = meta
        .packages
        .iter()
        .flat_map(|p| &p.targets)
        .filter(|t| t.kind.iter().any(|k| k == "cdylib"))
        .map(|t| t.name.replace('-', "_"))
        .collect();
    if crates.is_empty() {
        return Err(format!("{}: no cdylib crate found", guests_dir.display()).into());
    }
    Ok(crates)
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

/// `guests/manifest.json`: the guest crates, their scenarios and what a run of each scenario
/// must show. The schema is documented in `guests/README.md`; [`Manifest::load`] and
/// [`Manifest::parse`] return only manifests that follow it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Version of the format, [`Manifest::SCHEMA`].
    pub schema: u32,
    /// The guest crates, keyed by crate name (with `_` for `-`).
    pub guests: BTreeMap<String, Guest>,
    /// The programs of `guests-wasi/` (plain `std`, built on stable for
    /// `wasm32-wasip1-threads`), keyed by crate name (with `_` for `-`).
    pub wasi_guests: BTreeMap<String, WasiGuest>,
}

/// One program of `guests-wasi/` in the [`Manifest`]: one binary whose first argument
/// picks the scenario.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasiGuest {
    /// The module's path in `target/guests/`, always `wasi/<crate name>.wasm`.
    pub file: String,
    /// One line about the program; not empty.
    pub description: String,
    /// The scenarios, keyed by the argument that selects them; at least one.
    pub scenarios: BTreeMap<String, WasiScenario>,
}

/// One scenario of a [`WasiGuest`]: a run of `_start` with the arguments `[<name>]` and
/// what a traced run must show. The keys of a [`Scenario`] that only the Wasmgrind ABI can
/// count (`joins`, `locks`, `acquisitions`, `panic_code`) are there and null.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasiScenario {
    /// One line: what the scenario does; not empty.
    pub description: String,
    /// How the run ends.
    pub outcome: WasiOutcome,
    /// Number of `wasi.thread-spawn` calls; `None` (`null`) when it depends on timing.
    #[serde(deserialize_with = "Option::deserialize")]
    pub forks: Option<u32>,
    /// Always `None` (`null`).
    #[serde(deserialize_with = "Option::deserialize")]
    pub joins: Option<u32>,
    /// A thread is meant to be still running when `_start` returns (rayon's pool).
    pub detached: bool,
    /// As [`Scenario::potential_deadlock`].
    pub potential_deadlock: bool,
    /// As [`Scenario::data_race`].
    pub data_race: bool,
    /// Always `None` (`null`).
    #[serde(deserialize_with = "Option::deserialize")]
    pub locks: Option<u32>,
    /// Always `None` (`null`).
    #[serde(deserialize_with = "Option::deserialize")]
    pub acquisitions: Option<u32>,
    /// Always `None` (`null`): a std panic aborts, it does not call `wasmgrind.panic`.
    #[serde(deserialize_with = "Option::deserialize")]
    pub panic_code: Option<i32>,
    /// As [`Scenario::findings`].
    pub findings: Vec<Finding>,
    /// The exit code when the program ends by itself: 0 exactly for outcome
    /// [`WasiOutcome::Ok`], the non-zero code of `proc_exit` for [`WasiOutcome::Exit`],
    /// `None` (`null`) otherwise.
    #[serde(deserialize_with = "Option::deserialize")]
    pub exit_code: Option<i32>,
    /// The whole stdout of the run, exactly; `None` (`null`) when it depends on timing.
    #[serde(deserialize_with = "Option::deserialize")]
    pub stdout: Option<String>,
    /// A substring of stderr; `None` (`null`) to check nothing; required for a panic.
    #[serde(deserialize_with = "Option::deserialize")]
    pub stderr_contains: Option<String>,
}

/// How a [`WasiScenario`]'s run ends (`outcome` in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WasiOutcome {
    /// `"ok"`: `main` returns; the exit code is 0.
    Ok,
    /// `"exit"`: the program calls `proc_exit` with a non-zero code.
    Exit,
    /// `"trap"`: a thread executes a trap.
    Trap,
    /// `"panic"`: a Rust panic; std prints its message to stderr and aborts (a trap).
    Panic,
    /// `"deadlock"`: threads block each other forever; the run needs a timeout.
    Deadlock,
}

impl WasiOutcome {
    /// The outcome as the manifest spells it.
    fn name(self) -> &'static str {
        match self {
            WasiOutcome::Ok => "ok",
            WasiOutcome::Exit => "exit",
            WasiOutcome::Trap => "trap",
            WasiOutcome::Panic => "panic",
            WasiOutcome::Deadlock => "deadlock",
        }
    }
}

/// One guest crate of the [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guest {
    /// The module's file name in `target/guests/`, always `<crate name>.wasm`.
    pub file: String,
    /// One line about the crate; not empty.
    pub description: String,
    /// The scenarios, keyed by the exported function's name; at least one.
    pub scenarios: BTreeMap<String, Scenario>,
}

/// One scenario of a [`Guest`]: an exported `() -> ()` function and what a traced run of it
/// must show. The counts are `None` (`null`) when they depend on timing; their keys must be
/// present all the same.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line: what the scenario does; not empty.
    pub description: String,
    /// How the run ends.
    pub outcome: Outcome,
    /// Number of `thread_create` calls.
    #[serde(deserialize_with = "Option::deserialize")]
    pub forks: Option<u32>,
    /// Number of `thread_join` calls made, including one that never returns.
    #[serde(deserialize_with = "Option::deserialize")]
    pub joins: Option<u32>,
    /// Number of distinct lock ids reported (traced `Mutex` only).
    #[serde(deserialize_with = "Option::deserialize")]
    pub locks: Option<u32>,
    /// Number of `finish_lock` calls.
    #[serde(deserialize_with = "Option::deserialize")]
    pub acquisitions: Option<u32>,
    /// A thread is still running when the scenario function returns.
    pub detached: bool,
    /// The lock-order graph has a cycle, whether or not the run deadlocks: exactly when
    /// [`Scenario::findings`] has a potential or a live deadlock.
    pub potential_deadlock: bool,
    /// Two threads access the same memory without a happens-before order, one writing:
    /// exactly when [`Scenario::findings`] has a data race.
    pub data_race: bool,
    /// The code passed to `wasmgrind.panic` (an [`ErrorCode`] from 100 up): `Some` exactly
    /// when [`Scenario::outcome`] is [`Outcome::Panic`].
    #[serde(deserialize_with = "Option::deserialize")]
    pub panic_code: Option<i32>,
    /// Everything the detectors must report for the scenario, and nothing more: every
    /// reported finding matches an entry and every entry is matched by a reported finding.
    pub findings: Vec<Finding>,
    /// A substring of the message passed to `wasmgrind.panic`: `Some` exactly when
    /// [`Scenario::outcome`] is [`Outcome::Panic`], and then not empty.
    #[serde(default)]
    pub panic_message: Option<String>,
}

/// One finding that the detectors must report for a [`Scenario`]; how a reported finding
/// matches it is in `guests/README.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// Substrings of demangled function names: each frame of the finding (both accesses
    /// of a race, both frames of every edge of a cycle, the request of every blocked
    /// thread) is in a function whose name contains one of them. At least one, none empty.
    pub functions: Vec<String>,
    /// The runtime thread ids involved, as a set (main is 0, then 1, 2, ... in the order
    /// of `thread_create` calls); `None` (`null`) when they depend on timing.
    #[serde(deserialize_with = "Option::deserialize")]
    pub threads: Option<Vec<u32>>,
}

/// The kind of a [`Finding`] (`kind` in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// `"data_race"`: two accesses by two threads, threads `[one, other]`.
    DataRace,
    /// `"potential_deadlock"`: a lock-order cycle, threads the set of its edges' threads.
    PotentialDeadlock,
    /// `"deadlock"`: the run's live deadlock, threads the set of blocked threads.
    Deadlock,
}

impl FindingKind {
    /// The kind as the manifest spells it.
    fn name(self) -> &'static str {
        match self {
            FindingKind::DataRace => "data_race",
            FindingKind::PotentialDeadlock => "potential_deadlock",
            FindingKind::Deadlock => "deadlock",
        }
    }

    /// How many distinct threads a finding of this kind involves, at least and at most: a
    /// race is between two threads, a lock-order cycle has two or more edges from distinct
    /// threads, and a thread that requests a lock it holds deadlocks alone.
    fn thread_count(self) -> (usize, usize) {
        match self {
            FindingKind::DataRace => (2, 2),
            FindingKind::PotentialDeadlock => (2, usize::MAX),
            FindingKind::Deadlock => (1, usize::MAX),
        }
    }
}

/// How a scenario's run ends (`outcome` in the manifest); see `guests/README.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// `"ok"`: the scenario function returns.
    Ok,
    /// `"trap"`: a thread executes a trap and the runtime reports the run as trapped.
    Trap,
    /// `"panic"`: a thread calls `wasmgrind.panic` (a Rust panic or an allocation failure).
    Panic,
    /// `"deadlock"`: threads block each other forever; the run needs a timeout.
    Deadlock,
}

impl Manifest {
    /// The format version this xtask reads.
    pub const SCHEMA: u32 = 3;

    /// Reads and checks the manifest at `path`; errors start with the path.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Manifest::parse(&text).map_err(|e| format!("{}: {e}", path.display()).into())
    }

    /// Parses and checks a manifest. serde's errors give the line and column; the checks
    /// of [`Manifest::validate`] name the guest and scenario.
    pub fn parse(text: &str) -> std::result::Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| e.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The rules of the schema that the types alone do not express. Every problem is
    /// named, one per line, each starting with the guest and scenario it is in.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != Manifest::SCHEMA {
            return Err(format!(
                "`schema` must be {}, not {}",
                Manifest::SCHEMA,
                self.schema
            ));
        }
        let mut problems = Vec::new();
        let filled = |problems: &mut Vec<String>, at: &str, key: &str, value: &str| {
            if value.trim().is_empty() {
                problems.push(format!("{at}: `{key}` must not be empty"));
            }
        };
        // What every guest entry needs: its file's name, a description, a scenario.
        let header = |problems: &mut Vec<String>,
                      at: &str,
                      file: &str,
                      want: String,
                      description: &str,
                      scenarios: usize| {
            if file != want {
                problems.push(format!("{at}: `file` must be \"{want}\", not \"{file}\""));
            }
            filled(problems, at, "description", description);
            if scenarios == 0 {
                problems.push(format!("{at}: `scenarios` needs at least one entry"));
            }
        };
        for (name, guest) in &self.guests {
            let at = format!("guest `{name}`");
            let want = format!("{name}.wasm");
            let n = guest.scenarios.len();
            header(&mut problems, &at, &guest.file, want, &guest.description, n);
            for (scenario, s) in &guest.scenarios {
                let at = format!("{at}, scenario `{scenario}`");
                filled(&mut problems, &at, "description", &s.description);
                match (s.outcome == Outcome::Panic, &s.panic_message) {
                    (true, None) => {
                        problems.push(format!("{at}: outcome \"panic\" needs `panic_message`"))
                    }
                    (false, Some(_)) => problems.push(format!(
                        "{at}: `panic_message` is only for outcome \"panic\""
                    )),
                    (true, Some(message)) => filled(&mut problems, &at, "panic_message", message),
                    (false, None) => {}
                }
                match (s.outcome == Outcome::Panic, s.panic_code) {
                    (true, None) => problems.push(format!(
                        "{at}: outcome \"panic\" needs a `panic_code` (100 for a Rust panic, \
                         101 for running out of memory)"
                    )),
                    (false, Some(_)) => problems.push(format!(
                        "{at}: `panic_code` is only for outcome \"panic\"; make it null"
                    )),
                    (true, Some(code)) => problems.extend(check_panic_code(&at, code).err()),
                    (false, None) => {}
                }
                check_findings(
                    &at,
                    &Summary {
                        deadlock: s.outcome == Outcome::Deadlock,
                        forks: s.forks,
                        data_race: s.data_race,
                        potential_deadlock: s.potential_deadlock,
                        findings: &s.findings,
                    },
                    &mut problems,
                );
            }
        }
        for (name, guest) in &self.wasi_guests {
            let at = format!("wasi guest `{name}`");
            let want = format!("wasi/{name}.wasm");
            let n = guest.scenarios.len();
            header(&mut problems, &at, &guest.file, want, &guest.description, n);
            for (scenario, s) in &guest.scenarios {
                let at = format!("{at}, scenario `{scenario}`");
                filled(&mut problems, &at, "description", &s.description);
                s.check(&at, &mut problems);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

impl WasiScenario {
    /// The rules of a wasi scenario besides its description; problems go to `problems`.
    fn check(&self, at: &str, problems: &mut Vec<String>) {
        for (key, value) in [
            ("joins", self.joins.map(i64::from)),
            ("locks", self.locks.map(i64::from)),
            ("acquisitions", self.acquisitions.map(i64::from)),
            ("panic_code", self.panic_code.map(i64::from)),
        ] {
            if let Some(value) = value {
                problems.push(format!(
                    "{at}: `{key}` is {value}; it must be null for a wasi guest (std's threads \
                     are not joined, and its locks not counted, through a Wasmgrind import)"
                ));
            }
        }
        match (self.outcome, self.exit_code) {
            (WasiOutcome::Ok, Some(0)) | (WasiOutcome::Exit, Some(1..)) => {}
            (WasiOutcome::Exit, Some(..=-1)) => {}
            (WasiOutcome::Ok, code) => problems.push(format!(
                "{at}: outcome \"ok\" needs `exit_code` 0 (main returned), not {}",
                show_code(code)
            )),
            (WasiOutcome::Exit, code) => problems.push(format!(
                "{at}: outcome \"exit\" needs a non-zero `exit_code` (the code passed to \
                 proc_exit), not {}",
                show_code(code)
            )),
            (outcome, Some(code)) => problems.push(format!(
                "{at}: outcome \"{}\" does not end with an exit code; make `exit_code` null, \
                 not {code}",
                outcome.name()
            )),
            (_, None) => {}
        }
        match (self.outcome, &self.stderr_contains) {
            (WasiOutcome::Panic, None) => problems.push(format!(
                "{at}: outcome \"panic\" needs `stderr_contains`: a part of the panic message \
                 that std prints to stderr"
            )),
            (_, Some(text)) if text.is_empty() => problems.push(format!(
                "{at}: `stderr_contains` must not be empty; make it null to check nothing"
            )),
            _ => {}
        }
        check_findings(
            at,
            &Summary {
                deadlock: self.outcome == WasiOutcome::Deadlock,
                forks: self.forks,
                data_race: self.data_race,
                potential_deadlock: self.potential_deadlock,
                findings: &self.findings,
            },
            problems,
        );
    }
}

/// An `exit_code` for messages.
fn show_code(code: Option<i32>) -> String {
    code.map_or_else(|| "null".to_string(), |c| c.to_string())
}

/// A `panic_code` is a code that reaches the runtime through `wasmgrind.panic`: an
/// [`ErrorCode`] from [`ErrorCode::GuestPanic`] up.
fn check_panic_code(at: &str, code: i32) -> std::result::Result<(), String> {
    match ErrorCode::from_code(code) {
        Ok(c) if c.code() >= ErrorCode::GuestPanic.code() => Ok(()),
        _ => {
            let codes: Vec<String> = ErrorCode::ALL
                .iter()
                .filter(|c| c.code() >= ErrorCode::GuestPanic.code())
                .map(|c| format!("{} ({})", c.code(), c.description()))
                .collect();
            Err(format!(
                "{at}: `panic_code` {code} is not a code of `wasmgrind.panic`; those are {}",
                codes.join(", ")
            ))
        }
    }
}

/// What [`check_findings`] needs of a scenario of either kind of guest.
struct Summary<'a> {
    /// The outcome is `"deadlock"`.
    deadlock: bool,
    forks: Option<u32>,
    data_race: bool,
    potential_deadlock: bool,
    findings: &'a [Finding],
}

/// The rules for `findings` and the flags that summarize them; problems go to `problems`.
fn check_findings(at: &str, s: &Summary, problems: &mut Vec<String>) {
    let has = |kind: FindingKind| s.findings.iter().any(|f| f.kind == kind);
    let races = has(FindingKind::DataRace);
    if s.data_race != races {
        problems.push(format!(
            "{at}: `data_race` is {}, but `findings` has {} entry of kind \"data_race\"",
            s.data_race,
            if races { "an" } else { "no" }
        ));
    }
    let cycles = has(FindingKind::PotentialDeadlock) || has(FindingKind::Deadlock);
    if s.potential_deadlock != cycles {
        problems.push(format!(
            "{at}: `potential_deadlock` is {}, but `findings` has {} entry of kind \
             \"potential_deadlock\" or \"deadlock\"",
            s.potential_deadlock,
            if cycles { "an" } else { "no" }
        ));
    }
    let live = s
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock)
        .count();
    match (s.deadlock, live) {
        (true, 1) | (false, 0) => {}
        (true, 0) => problems.push(format!(
            "{at}: outcome \"deadlock\" needs an entry of kind \"deadlock\" in `findings`"
        )),
        (true, _) => problems.push(format!(
            "{at}: `findings` has {live} entries of kind \"deadlock\"; a run ends in at most one"
        )),
        (false, _) => problems.push(format!(
            "{at}: an entry of kind \"deadlock\" needs outcome \"deadlock\""
        )),
    }
    for (i, f) in s.findings.iter().enumerate() {
        let at = format!("{at}, findings[{i}] ({})", f.kind.name());
        if f.functions.is_empty() {
            problems.push(format!("{at}: `functions` needs at least one entry"));
        }
        if f.functions.iter().any(|name| name.trim().is_empty()) {
            problems.push(format!("{at}: `functions` must not contain an empty name"));
        }
        let Some(threads) = &f.threads else { continue };
        let distinct: BTreeSet<u32> = threads.iter().copied().collect();
        if distinct.len() != threads.len() {
            problems.push(format!(
                "{at}: `threads` is a set and lists a thread twice: {threads:?}"
            ));
        }
        let (fewest, most) = f.kind.thread_count();
        if threads.len() < fewest || threads.len() > most {
            let want = if fewest == most {
                format!("exactly {fewest}")
            } else {
                format!("at least {fewest}")
            };
            problems.push(format!(
                "{at}: `threads` must list {want} threads, not {threads:?} (or be null)"
            ));
        }
        if let Some(forks) = s.forks {
            if let Some(t) = threads.iter().find(|&&t| t > forks) {
                problems.push(format!(
                    "{at}: thread {t} does not exist in a run with {forks} forks (threads are \
                     0 for main, then 1 to {forks} in creation order)"
                ));
            }
        }
    }
}

/// What the checks need to know about a built guest.
#[derive(Debug)]
struct Module {
    /// Function imports: module, name, signature.
    imports: Vec<(String, String, Sig)>,
    /// Imports that are neither functions nor the memory.
    other_imports: Vec<String>,
    /// Memory imports: module, name, whether the memory is shared.
    memories: Vec<(String, String, bool)>,
    /// Function exports: name, signature.
    exports: Vec<(String, Sig)>,
    /// Names of globals in the name section.
    global_names: Vec<String>,
}

/// A function signature.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sig {
    params: Vec<ValType>,
    results: Vec<ValType>,
}

impl Sig {
    fn of(sig: &FuncSig) -> Sig {
        let ty = |t: &abi::ValType| match t {
            abi::ValType::I32 => ValType::I32,
            abi::ValType::I64 => ValType::I64,
        };
        Sig {
            params: sig.params.iter().map(ty).collect(),
            results: sig.results.iter().map(ty).collect(),
        }
    }
}

impl std::fmt::Display for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "({}) -> ({})", list(&self.params), list(&self.results))
    }
}

impl Module {
    fn parse(what: &str, bytes: &[u8]) -> Result<Module> {
        wasmparser::validate(bytes).map_err(|e| format!("{what}: invalid module: {e}"))?;
        let bad = |e: wasmparser::BinaryReaderError| format!("{what}: {e}");
        let mut types = Vec::new();
        let mut func_types = Vec::new();
        let mut module = Module {
            imports: Vec::new(),
            other_imports: Vec::new(),
            memories: Vec::new(),
            exports: Vec::new(),
            global_names: Vec::new(),
        };
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(bad)? {
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        let ty = ty.map_err(bad)?;
                        types.push(Sig {
                            params: ty.params().to_vec(),
                            results: ty.results().to_vec(),
                        });
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(bad)?;
                        match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                func_types.push(t);
                                let sig = types[t as usize].clone();
                                module.imports.push((
                                    import.module.into(),
                                    import.name.into(),
                                    sig,
                                ));
                            }
                            TypeRef::Memory(memory) => module.memories.push((
                                import.module.into(),
                                import.name.into(),
                                memory.shared,
                            )),
                            _ => module
                                .other_imports
                                .push(format!("{}.{}", import.module, import.name)),
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for t in reader {
                        func_types.push(t.map_err(bad)?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(bad)?;
                        if export.kind == ExternalKind::Func {
                            exports.push((export.name.to_string(), export.index));
                        }
                    }
                }
                Payload::CustomSection(section) => {
                    if let KnownCustom::Name(names) = section.as_known() {
                        for name in names {
                            if let Name::Global(map) = name.map_err(bad)? {
                                for naming in map {
                                    module.global_names.push(naming.map_err(bad)?.name.into());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for (name, index) in exports {
            let sig = types[func_types[index as usize] as usize].clone();
            module.exports.push((name, sig));
        }
        Ok(module)
    }

    /// Imports are ABI functions with ABI signatures; the ABI exports are there.
    fn check_abi(&self, what: &str) -> Result {
        let mut problems = String::new();
        for other in &self.other_imports {
            let _ = writeln!(problems, "  imports `{other}`, which is not a function");
        }
        for (module, name, sig) in &self.imports {
            match abi::import(name) {
                _ if module != abi::IMPORT_MODULE => {
                    let _ = writeln!(
                        problems,
                        "  imports `{module}.{name}`: guests may import functions only from \
                         `{}` (an unresolved symbol in the guest?)",
                        abi::IMPORT_MODULE
                    );
                }
                None => {
                    let _ = writeln!(
                        problems,
                        "  imports `{module}.{name}`, which is not in wasmgrind_core::abi::IMPORTS"
                    );
                }
                Some(want) if Sig::of(&want) != *sig => {
                    let _ = writeln!(
                        problems,
                        "  imports `{module}.{name}` as {sig}, the ABI says {}",
                        Sig::of(&want)
                    );
                }
                Some(_) => {}
            }
        }
        for want in [abi::THREAD_START, abi::MALLOC, abi::FREE, abi::GUEST_INIT] {
            match self.exports.iter().find(|(n, _)| n == want.name) {
                None => {
                    let _ = writeln!(
                        problems,
                        "  does not export `{}` (does the guest link wasmgrind-guest?)",
                        want.name
                    );
                }
                Some((_, sig)) if *sig != Sig::of(&want) => {
                    let _ = writeln!(
                        problems,
                        "  exports `{}` as {sig}, the ABI says {}",
                        want.name,
                        Sig::of(&want)
                    );
                }
                Some(_) => {}
            }
        }
        if !self.global_names.iter().any(|n| n == abi::STACK_POINTER) {
            let _ = writeln!(
                problems,
                "  its name section does not name `{}`, which the patcher needs (keep \
                 `strip = \"none\"` in the guests' release profile)",
                abi::STACK_POINTER
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} breaks the runtime ABI:\n{problems}").into())
        }
    }

    /// Whether the module imports `wasi.thread-spawn`: whether it can start a thread (the
    /// linker keeps the import only where `std::thread::spawn` is used).
    fn spawns_threads(&self) -> bool {
        self.imports
            .iter()
            .any(|(module, name, _)| module == "wasi" && name == "thread-spawn")
    }

    /// What keeps the module from being a wasi-threads program as `wasm32-wasip1-threads`
    /// builds them: one imported shared memory `env.memory`, function imports from WASI
    /// preview1 and `wasi.thread-spawn` (optional) only, and the exports `_start` and
    /// `wasi_thread_start`. One message per problem, each starting with `what`.
    fn wasi_problems(&self, what: &str) -> Vec<String> {
        const PREVIEW1: &str = "wasi_snapshot_preview1";
        let fix = format!(
            "build it with `cargo build --release --target {}` on stable",
            toolchain::WASI_TARGET
        );
        let mut problems = Vec::new();
        match &self.memories[..] {
            [(module, name, shared)] if module == "env" && name == "memory" => {
                if !shared {
                    problems.push(format!("{what}: its memory is not shared; {fix}"));
                }
            }
            [] => problems.push(format!("{what}: it imports no memory; {fix}")),
            memories => {
                let names: Vec<String> = memories
                    .iter()
                    .map(|(m, n, _)| format!("`{m}.{n}`"))
                    .collect();
                problems.push(format!(
                    "{what}: it imports the memories {}, not the one `env.memory`; {fix}",
                    names.join(", ")
                ));
            }
        }
        for other in &self.other_imports {
            problems.push(format!(
                "{what}: imports `{other}`, which is not a function"
            ));
        }
        let spawn = Sig {
            params: vec![ValType::I32],
            results: vec![ValType::I32],
        };
        for (module, name, sig) in &self.imports {
            if module == "wasi" && name == "thread-spawn" {
                if *sig != spawn {
                    problems.push(format!(
                        "{what}: imports `wasi.thread-spawn` as {sig}, wasi-threads says {spawn}"
                    ));
                }
            } else if module != PREVIEW1 {
                problems.push(format!(
                    "{what}: imports `{module}.{name}`, which neither WASI preview1                      (`{PREVIEW1}`) nor wasi-threads (`wasi.thread-spawn`) provides"
                ));
            }
        }
        let start = Sig {
            params: vec![],
            results: vec![],
        };
        let thread_start = Sig {
            params: vec![ValType::I32, ValType::I32],
            results: vec![],
        };
        for (name, want) in [("_start", start), ("wasi_thread_start", thread_start)] {
            match self.exports.iter().find(|(n, _)| n == name) {
                None => problems.push(format!("{what}: it does not export `{name}`; {fix}")),
                Some((_, sig)) if *sig != want => {
                    problems.push(format!("{what}: it exports `{name}` as {sig}, not {want}"))
                }
                Some(_) => {}
            }
        }
        problems
    }

    /// The exported `() -> ()` functions that are not part of the ABI are exactly the
    /// manifest's scenarios of `guest`, named `guest_name` in the manifest.
    fn check_scenarios(&self, what: &str, guest_name: &str, guest: &Guest) -> Result {
        let abi_exports = [
            abi::THREAD_START.name,
            abi::MALLOC.name,
            abi::FREE.name,
            abi::GUEST_INIT.name,
            abi::THREAD_DESTROY.name,
            abi::INIT_TLS,
        ];
        let unit = Sig {
            params: Vec::new(),
            results: Vec::new(),
        };
        let exported: BTreeSet<&str> = self
            .exports
            .iter()
            .filter(|(n, sig)| *sig == unit && !abi_exports.contains(&n.as_str()))
            .map(|(n, _)| n.as_str())
            .collect();
        let listed: BTreeSet<&str> = guest.scenarios.keys().map(String::as_str).collect();
        let mut problems = String::new();
        for name in listed.difference(&exported) {
            match self.exports.iter().find(|(n, _)| n == name) {
                Some((_, sig)) => {
                    let _ = writeln!(
                        problems,
                        "  scenario `{name}` is exported as {sig}; scenarios take no \
                         parameters and return nothing"
                    );
                }
                None => {
                    let _ = writeln!(
                        problems,
                        "  scenario `{name}` is in the manifest but not exported (missing \
                         `#[no_mangle] pub extern \"C\" fn {name}()`?)"
                    );
                }
            }
        }
        for name in exported.difference(&listed) {
            let _ = writeln!(
                problems,
                "  exports `{name}()`, which guests/manifest.json does not list under `{}`",
                guest_name
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} does not match guests/manifest.json:\n{problems}").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#""description": "d", "outcome": "ok", "forks": 2, "joins": null,
        "detached": false, "potential_deadlock": false, "data_race": false, "locks": 0,
        "acquisitions": 0, "panic_code": null, "findings": []"#;

    /// A race between threads 1 and 2 in `racy`.
    const RACE: &str = r#"{"kind": "data_race", "functions": ["racy"], "threads": [1, 2]}"#;

    fn manifest(scenario: &str) -> std::result::Result<Manifest, String> {
        Manifest::parse(&format!(
            r#"{{"schema": 3, "wasi_guests": {{}}, "guests": {{"g": {{"file": "g.wasm", "description": "d",
            "scenarios": {{"s": {{{scenario}}}}}}}}}}}"#
        ))
    }

    /// [`SCENARIO`] with `findings` set to `findings` (a JSON array).
    fn with_findings(findings: &str) -> String {
        SCENARIO.replace("\"findings\": []", &format!("\"findings\": {findings}"))
    }

    #[test]
    fn the_real_manifest_is_valid() {
        let path = util::root().join("guests").join("manifest.json");
        let m = Manifest::load(&path).unwrap();
        assert!(m.guests.len() >= 4);
        for name in [
            "nested_threads",
            "thread_hierarchy",
            "mutex_counter",
            "deadlock",
            "spawn_join_2000",
        ] {
            assert!(
                m.guests.values().any(|g| g.scenarios.contains_key(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn accepts_a_minimal_manifest() {
        let m = manifest(SCENARIO).unwrap();
        let s = &m.guests["g"].scenarios["s"];
        assert_eq!((s.outcome, s.forks, s.joins), (Outcome::Ok, Some(2), None));
        assert_eq!((s.panic_code, s.findings.len()), (None, 0));
        let m = manifest(&format!(
            "{}, \"panic_message\": \"boom\"",
            SCENARIO
                .replace("\"ok\"", "\"panic\"")
                .replace("\"panic_code\": null", "\"panic_code\": 101")
        ))
        .unwrap();
        let s = &m.guests["g"].scenarios["s"];
        assert_eq!(s.outcome, Outcome::Panic);
        assert_eq!(s.panic_message.as_deref(), Some("boom"));
        assert_eq!(s.panic_code, Some(ErrorCode::OutOfMemory.code()));
    }

    #[test]
    fn accepts_findings() {
        let race = with_findings(&format!(
            r#"[{RACE}, {{"kind": "data_race", "functions": ["a", "b"], "threads": null}}]"#
        ))
        .replace("\"data_race\": false", "\"data_race\": true");
        let m = manifest(&race).unwrap();
        let f = &m.guests["g"].scenarios["s"].findings;
        assert_eq!(
            f[0],
            Finding {
                kind: FindingKind::DataRace,
                functions: vec!["racy".into()],
                threads: Some(vec![1, 2]),
            }
        );
        assert_eq!(
            (f[1].kind, f[1].threads.as_ref()),
            (FindingKind::DataRace, None)
        );
        // A live deadlock is also a lock-order cycle; the predictor may report it as well.
        let live = with_findings(
            r#"[{"kind": "deadlock", "functions": ["hold"], "threads": [2, 1]},
                {"kind": "potential_deadlock", "functions": ["hold"], "threads": [1, 2]}]"#,
        )
        .replace("\"ok\"", "\"deadlock\"")
        .replace(
            "\"potential_deadlock\": false",
            "\"potential_deadlock\": true",
        );
        let m = manifest(&live).unwrap();
        let kinds: Vec<_> = m.guests["g"].scenarios["s"]
            .findings
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(
            kinds,
            [FindingKind::Deadlock, FindingKind::PotentialDeadlock]
        );
        // Only a deadlock entry is enough for `potential_deadlock`, and a cycle of three.
        for findings in [
            r#"[{"kind": "deadlock", "functions": ["x"], "threads": [1]}]"#,
            r#"[{"kind": "potential_deadlock", "functions": ["x"], "threads": [0, 1, 2]}]"#,
        ] {
            let outcome = if findings.contains("\"deadlock\"") {
                "\"deadlock\""
            } else {
                "\"ok\""
            };
            let s = with_findings(findings).replace("\"ok\"", outcome).replace(
                "\"potential_deadlock\": false",
                "\"potential_deadlock\": true",
            );
            manifest(&s).unwrap();
        }
    }

    #[test]
    fn rejects_findings_that_disagree() {
        let race_flag = |s: String| s.replace("\"data_race\": false", "\"data_race\": true");
        let cycle_flag = |s: String| {
            s.replace(
                "\"potential_deadlock\": false",
                "\"potential_deadlock\": true",
            )
        };
        let cycle = r#"{"kind": "potential_deadlock", "functions": ["take"], "threads": [1, 2]}"#;
        for (scenario, msg) in [
            (with_findings(&format!("[{RACE}]")), "`data_race` is false"),
            (race_flag(SCENARIO.into()), "`data_race` is true"),
            (
                with_findings(&format!("[{cycle}]")),
                "`potential_deadlock` is false",
            ),
            (cycle_flag(SCENARIO.into()), "`potential_deadlock` is true"),
            (
                SCENARIO.replace("\"ok\"", "\"deadlock\""),
                "outcome \"deadlock\" needs an entry of kind \"deadlock\"",
            ),
            (
                cycle_flag(with_findings(&format!("[{cycle}]")).replace("\"ok\"", "\"deadlock\"")),
                "outcome \"deadlock\" needs an entry of kind \"deadlock\"",
            ),
            (
                cycle_flag(with_findings(
                    r#"[{"kind": "deadlock", "functions": ["x"], "threads": [1, 2]}]"#,
                )),
                "an entry of kind \"deadlock\" needs outcome \"deadlock\"",
            ),
            (
                cycle_flag(
                    with_findings(
                        r#"[{"kind": "deadlock", "functions": ["x"], "threads": [1, 2]},
                            {"kind": "deadlock", "functions": ["y"], "threads": [1, 2]}]"#,
                    )
                    .replace("\"ok\"", "\"deadlock\""),
                ),
                "2 entries of kind \"deadlock\"",
            ),
            (
                race_flag(with_findings(
                    r#"[{"kind": "data_race", "functions": [], "threads": [1, 2]}]"#,
                )),
                "findings[0] (data_race): `functions` needs at least one entry",
            ),
            (
                race_flag(with_findings(
                    r#"[{"kind": "data_race", "functions": ["a", " "], "threads": [1, 2]}]"#,
                )),
                "must not contain an empty name",
            ),
            (
                race_flag(with_findings(
                    r#"[{"kind": "data_race", "functions": ["a"], "threads": [1, 1]}]"#,
                )),
                "lists a thread twice",
            ),
            (
                race_flag(with_findings(
                    r#"[{"kind": "data_race", "functions": ["a"], "threads": [0, 1, 2]}]"#,
                )),
                "must list exactly 2 threads",
            ),
            (
                cycle_flag(with_findings(
                    r#"[{"kind": "potential_deadlock", "functions": ["a"], "threads": [1]}]"#,
                )),
                "must list at least 2 threads",
            ),
            (
                race_flag(with_findings(
                    r#"[{"kind": "data_race", "functions": ["a"], "threads": [1, 3]}]"#,
                )),
                "thread 3 does not exist in a run with 2 forks",
            ),
        ] {
            let e = manifest(&scenario).unwrap_err();
            assert!(
                e.starts_with("guest `g`, scenario `s`") && e.contains(msg),
                "{msg}: {e}"
            );
        }
        // serde's checks of an entry.
        for (finding, msg) in [
            (
                r#"{"kind": "race", "functions": ["a"], "threads": null}"#,
                "unknown variant `race`",
            ),
            (
                r#"{"kind": "data_race", "functions": ["a"]}"#,
                "missing field `threads`",
            ),
            (
                r#"{"kind": "data_race", "functions": ["a"], "threads": null, "where": 1}"#,
                "unknown field `where`",
            ),
        ] {
            let e = manifest(&race_flag(with_findings(&format!("[{finding}]")))).unwrap_err();
            assert!(e.contains(msg) && e.contains(" at line "), "{e}");
        }
    }

    #[test]
    fn rejects_schema_violations() {
        // serde's own checks: the message gives the position.
        for (scenario, msg) in [
            (
                SCENARIO.replace("\"ok\"", "\"crash\""),
                "unknown variant `crash`",
            ),
            (
                SCENARIO.replace("\"forks\": 2", "\"forks\": -1"),
                "expected u32",
            ),
            (
                SCENARIO.replace("\"forks\": 2", "\"forkz\": 2"),
                "unknown field `forkz`",
            ),
            (
                SCENARIO.replace("\"detached\": false,", ""),
                "missing field `detached`",
            ),
            (
                SCENARIO.replace("\"joins\": null,", ""),
                "missing field `joins`",
            ),
            (
                SCENARIO.replace("\"panic_code\": null,", ""),
                "missing field `panic_code`",
            ),
            (
                SCENARIO.replace(", \"findings\": []", ""),
                "missing field `findings`",
            ),
        ] {
            let e = manifest(&scenario).unwrap_err();
            assert!(e.contains(msg) && e.contains(" at line "), "{e}");
        }
        // The checks of `validate`: the message names the guest and scenario.
        for (scenario, msg) in [
            (
                SCENARIO.replace("\"d\"", "\" \""),
                "`description` must not be empty",
            ),
            (
                SCENARIO
                    .replace("\"ok\"", "\"panic\"")
                    .replace("\"panic_code\": null", "\"panic_code\": 100"),
                "needs `panic_message`",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"x\""),
                "only for outcome",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"\"")
                    .replace("\"ok\"", "\"panic\"")
                    .replace("\"panic_code\": null", "\"panic_code\": 100"),
                "`panic_message` must not be empty",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"x\"").replace("\"ok\"", "\"panic\""),
                "outcome \"panic\" needs a `panic_code`",
            ),
            (
                SCENARIO.replace("\"panic_code\": null", "\"panic_code\": 100"),
                "`panic_code` is only for outcome \"panic\"",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"x\"")
                    .replace("\"ok\"", "\"panic\"")
                    .replace("\"panic_code\": null", "\"panic_code\": 6"),
                "`panic_code` 6 is not a code of `wasmgrind.panic`; those are 100 (the guest \
                 panicked), 101",
            ),
        ] {
            let e = manifest(&scenario).unwrap_err();
            assert!(
                e.starts_with("guest `g`, scenario `s`: ") && e.contains(msg),
                "{e}"
            );
        }
        let text = |guest: &str| {
            format!(r#"{{"schema": 3, "wasi_guests": {{}}, "guests": {{"g": {guest}}}}}"#)
        };
        let e = Manifest::parse(&text(&format!(
            r#"{{"file": "h.wasm", "description": "d", "scenarios": {{"s": {{{SCENARIO}}}}}}}"#
        )))
        .unwrap_err();
        assert_eq!(e, "guest `g`: `file` must be \"g.wasm\", not \"h.wasm\"");
        let e = Manifest::parse(&text(
            r#"{"file": "g.wasm", "description": "d", "scenarios": {}}"#,
        ))
        .unwrap_err();
        assert!(
            e.contains("guest `g`: `scenarios` needs at least one entry"),
            "{e}"
        );
        let e = Manifest::parse(r#"{"schema": 1, "guests": {}, "wasi_guests": {}}"#).unwrap_err();
        assert!(e.contains("`schema` must be 3, not 1"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_position() {
        let path = std::env::temp_dir().join(format!("xtask-manifest-{}.json", std::process::id()));
        let text = format!(
            r#"{{"schema": 3, "wasi_guests": {{}}, "guests": {{"g": {{"file": "g.wasm", "description": "d",
            "scenarios": {{"s": {{{}}}}}}}}}}}"#,
            SCENARIO.replace("\"detached\": false", "\"detached\": \"no\"")
        );
        std::fs::write(&path, text).unwrap();
        let e = Manifest::load(&path)
            .map_err(|e| e.to_string())
            .unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            e.starts_with(&format!("{}: invalid type: string \"no\"", path.display())),
            "{e}"
        );
        assert!(e.ends_with("at line 3 column 24"), "{e}");
    }

    #[test]
    fn scenario_check_names_both_directions() {
        let unit = Sig {
            params: vec![],
            results: vec![],
        };
        let module = Module {
            imports: vec![],
            other_imports: vec![],
            memories: vec![],
            exports: vec![
                ("a".into(), unit.clone()),
                ("extra".into(), unit.clone()),
                ("__wasmgrind_init".into(), unit),
                ("b".into(), Sig::of(&abi::THREAD_JOIN)),
            ],
            global_names: vec![],
        };
        let scenario = |name: &str| {
            let scenario = Scenario {
                description: "d".into(),
                outcome: Outcome::Ok,
                forks: Some(0),
                joins: Some(0),
                detached: false,
                potential_deadlock: false,
                data_race: false,
                locks: Some(0),
                acquisitions: Some(0),
                panic_code: None,
                findings: Vec::new(),
                panic_message: None,
            };
            (name.to_string(), scenario)
        };
        let guest = Guest {
            file: "g.wasm".into(),
            description: "d".into(),
            scenarios: BTreeMap::from([scenario("a"), scenario("b"), scenario("missing")]),
        };
        let e = module
            .check_scenarios("g.wasm", "g", &guest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`b` is exported as (i32) -> (i32)"), "{e}");
        assert!(
            e.contains("`missing` is in the manifest but not exported"),
            "{e}"
        );
        assert!(e.contains("exports `extra()`"), "{e}");
        assert!(!e.contains("__wasmgrind_init"), "{e}");
    }

    #[test]
    fn abi_check_rejects_foreign_and_mistyped_imports() {
        let module = Module {
            imports: vec![
                ("env".into(), "foo".into(), Sig::of(&abi::START_LOCK)),
                ("wasmgrind".into(), "nope".into(), Sig::of(&abi::START_LOCK)),
                (
                    "wasmgrind".into(),
                    "thread_join".into(),
                    Sig::of(&abi::START_LOCK),
                ),
            ],
            other_imports: vec![],
            memories: vec![],
            exports: vec![],
            global_names: vec![],
        };
        let e = module.check_abi("g.wasm").unwrap_err().to_string();
        assert!(
            e.contains("`env.foo`: guests may import functions only from"),
            "{e}"
        );
        assert!(e.contains("`wasmgrind.nope`, which is not in"), "{e}");
        assert!(e.contains("`wasmgrind.thread_join` as (i32) -> ()"), "{e}");
        assert!(e.contains("does not export `thread_start`"), "{e}");
        assert!(e.contains("does not name `__stack_pointer`"), "{e}");
    }

    /// A wasi scenario that is valid: a race in `racy` between threads 1 and 2.
    const WASI_SCENARIO: &str = r#""description": "d", "outcome": "ok", "forks": 2,
        "joins": null, "detached": false, "potential_deadlock": false, "data_race": true,
        "locks": null, "acquisitions": null, "panic_code": null, "exit_code": 0,
        "stdout": "x = 1\n", "stderr_contains": null,
        "findings": [{"kind": "data_race", "functions": ["racy"], "threads": [1, 2]}]"#;

    /// A manifest with one wasi guest `w` of scenarios `scenarios` (`"name": {...}` pairs).
    fn wasi_manifest(scenarios: &str) -> std::result::Result<Manifest, String> {
        Manifest::parse(&format!(
            r#"{{"schema": 3, "guests": {{}}, "wasi_guests": {{"w": {{"file": "wasi/w.wasm",
            "description": "d", "scenarios": {{{scenarios}}}}}}}}}"#
        ))
    }

    #[test]
    fn the_wasi_programs_and_the_manifest_list_the_same_scenarios() {
        let m = Manifest::load(&util::root().join("guests").join("manifest.json")).unwrap();
        for (name, dir, at_least) in [
            ("std_scenarios", "std-scenarios", 12),
            ("rayon_demo", "rayon-demo", 2),
        ] {
            let guest = &m.wasi_guests[name];
            assert_eq!(guest.file, format!("wasi/{name}.wasm"));
            let source = util::root()
                .join("guests-wasi")
                .join(dir)
                .join("src")
                .join("main.rs");
            let names = scenario_names(&std::fs::read_to_string(&source).unwrap()).unwrap();
            assert!(names.len() >= at_least, "{name}: {names:?}");
            let problems = wasi_scenario_problems("main.rs", name, &names, guest);
            assert!(problems.is_empty(), "{problems:#?}");
        }
        let std = &m.wasi_guests["std_scenarios"].scenarios;
        assert!(std["static_mut_race"].data_race && std["unsafecell_race"].data_race);
        assert!(std["lock_order_inversion"].potential_deadlock);
        assert_eq!(std["deadlock"].outcome, WasiOutcome::Deadlock);
        assert_eq!(
            std["mutex_counter"].stdout.as_deref(),
            Some("counter = 4000\n")
        );
    }

    #[test]
    fn accepts_a_wasi_guest() {
        let m = wasi_manifest(&format!(r#""s": {{{WASI_SCENARIO}}}"#)).unwrap();
        let s = &m.wasi_guests["w"].scenarios["s"];
        assert_eq!(
            (s.outcome, s.exit_code, s.forks),
            (WasiOutcome::Ok, Some(0), Some(2))
        );
        assert_eq!(s.stdout.as_deref(), Some("x = 1\n"));
        let exit = WASI_SCENARIO
            .replace("\"ok\"", "\"exit\"")
            .replace("\"exit_code\": 0", "\"exit_code\": 3");
        let panic = WASI_SCENARIO
            .replace("\"ok\"", "\"panic\"")
            .replace("\"exit_code\": 0", "\"exit_code\": null")
            .replace("\"stderr_contains\": null", "\"stderr_contains\": \"boom\"")
            .replace("\"stdout\": \"x = 1\\n\"", "\"stdout\": null");
        let m = wasi_manifest(&format!(r#""e": {{{exit}}}, "p": {{{panic}}}"#)).unwrap();
        let scenarios = &m.wasi_guests["w"].scenarios;
        assert_eq!(scenarios["e"].exit_code, Some(3));
        assert_eq!(scenarios["p"].stderr_contains.as_deref(), Some("boom"));
    }

    #[test]
    fn wasi_guest_errors_name_every_problem_at_once() {
        let bad = WASI_SCENARIO
            .replace("\"description\": \"d\"", "\"description\": \"\"")
            .replace("\"joins\": null", "\"joins\": 2")
            .replace("\"locks\": null", "\"locks\": 1")
            .replace("\"exit_code\": 0", "\"exit_code\": 1")
            .replace("\"data_race\": true", "\"data_race\": false")
            .replace("\"threads\": [1, 2]", "\"threads\": [1, 5]");
        let deadlock = WASI_SCENARIO.replace("\"ok\"", "\"deadlock\"");
        let panic = WASI_SCENARIO.replace("\"ok\"", "\"panic\"");
        let e = Manifest::parse(&format!(
            r#"{{"schema": 3, "guests": {{}}, "wasi_guests": {{"w": {{"file": "w.wasm",
            "description": "d", "scenarios": {{"a": {{{bad}}}, "b": {{{deadlock}}},
            "c": {{{panic}}}}}}}}}}}"#
        ))
        .unwrap_err();
        for want in [
            "wasi guest `w`: `file` must be \"wasi/w.wasm\", not \"w.wasm\"",
            "wasi guest `w`, scenario `a`: `description` must not be empty",
            "scenario `a`: `joins` is 2; it must be null for a wasi guest",
            "scenario `a`: `locks` is 1; it must be null",
            "scenario `a`: outcome \"ok\" needs `exit_code` 0 (main returned), not 1",
            "scenario `a`: `data_race` is false, but `findings` has an entry",
            "scenario `a`, findings[0] (data_race): thread 5 does not exist in a run with 2 forks",
            "scenario `b`: outcome \"deadlock\" does not end with an exit code; make \
             `exit_code` null, not 0",
            "scenario `b`: outcome \"deadlock\" needs an entry of kind \"deadlock\"",
            "scenario `c`: outcome \"panic\" does not end with an exit code",
            "scenario `c`: outcome \"panic\" needs `stderr_contains`",
        ] {
            assert!(e.contains(want), "missing `{want}` in:\n{e}");
        }
        assert_eq!(e.lines().count(), 11, "{e}");
        let exit = WASI_SCENARIO
            .replace("\"ok\"", "\"exit\"")
            .replace("\"stderr_contains\": null", "\"stderr_contains\": \"\"");
        let e = wasi_manifest(&format!(r#""s": {{{exit}}}"#)).unwrap_err();
        assert!(
            e.contains("outcome \"exit\" needs a non-zero `exit_code`"),
            "{e}"
        );
        assert!(e.contains("`stderr_contains` must not be empty"), "{e}");
        // serde's checks: every key is there, and no other.
        for (scenario, msg) in [
            (
                WASI_SCENARIO.replace("\"stdout\": \"x = 1\\n\", ", ""),
                "missing field `stdout`",
            ),
            (
                WASI_SCENARIO.replace("\"exit_code\": 0,", ""),
                "missing field `exit_code`",
            ),
            (
                format!("{WASI_SCENARIO}, \"panic_message\": \"x\""),
                "unknown field `panic_message`",
            ),
            (
                WASI_SCENARIO.replace("\"ok\"", "\"exited\""),
                "unknown variant `exited`",
            ),
        ] {
            let e = wasi_manifest(&format!(r#""s": {{{scenario}}}"#)).unwrap_err();
            assert!(e.contains(msg) && e.contains(" at line "), "{msg}: {e}");
        }
    }

    #[test]
    fn scenario_names_come_from_the_table_in_the_source() {
        let source = r#"
            // const SCENARIOS in a comment is not the table: the next line is.
            const SCENARIOS: &[(&str, fn(), &str)] = &[
                ("a", a, "about (a) [x]"),
                // ("commented", out, ""),
                (
                    "b_2",
                    b,
                    "quotes \" and ) inside",
                ),
            ];
            fn main() { let x = ("not", "a scenario"); }
        "#
        .replacen("const SCENARIOS in", "the table in", 1);
        assert_eq!(scenario_names(&source).unwrap(), ["a", "b_2"]);
        let e = scenario_names("fn main() {}").unwrap_err();
        assert!(e.contains("no `const SCENARIOS:"), "{e}");
        let e = scenario_names(
            r#"const SCENARIOS: &[(&str, fn())] = &[("a", a), (NAME, b), ("a", c)];"#,
        )
        .unwrap_err();
        assert!(
            e.contains("entry 2 of `SCENARIOS` does not start with a string literal (at `N`)"),
            "{e}"
        );
        assert!(e.contains("lists `a` twice"), "{e}");
        let e = scenario_names("const SCENARIOS: &[(&str, fn())] = &[").unwrap_err();
        assert!(
            e.contains("does not end") && e.contains("`SCENARIOS` is empty"),
            "{e}"
        );
    }

    #[test]
    fn wasi_scenario_check_names_both_directions() {
        let m = wasi_manifest(&format!(
            r#""kept": {{{WASI_SCENARIO}}}, "gone": {{{WASI_SCENARIO}}}"#
        ))
        .unwrap();
        let names = ["kept".to_string(), "new".to_string()];
        let problems = wasi_scenario_problems("src/main.rs", "w", &names, &m.wasi_guests["w"]);
        assert_eq!(
            problems,
            [
                "scenario `gone` of wasi guest `w` is in guests/manifest.json but not in the \
                 `SCENARIOS` of src/main.rs",
                "src/main.rs has the scenario `new`, which guests/manifest.json does not list \
                 under `wasi_guests.w`",
            ]
        );
    }

    /// A module as `wasm32-wasip1-threads` builds it, with the given memory imports.
    fn wasi_module(memories: Vec<(String, String, bool)>) -> Module {
        let sig = |params: Vec<ValType>, results: Vec<ValType>| Sig { params, results };
        Module {
            imports: vec![
                (
                    "wasi_snapshot_preview1".into(),
                    "fd_write".into(),
                    sig(vec![ValType::I32; 4], vec![ValType::I32]),
                ),
                (
                    "wasi".into(),
                    "thread-spawn".into(),
                    sig(vec![ValType::I32], vec![ValType::I32]),
                ),
            ],
            other_imports: vec![],
            memories,
            exports: vec![
                ("_start".into(), sig(vec![], vec![])),
                (
                    "wasi_thread_start".into(),
                    sig(vec![ValType::I32, ValType::I32], vec![]),
                ),
            ],
            global_names: vec![],
        }
    }

    #[test]
    fn wasi_module_check_accepts_a_wasi_threads_program() {
        let mut module = wasi_module(vec![("env".into(), "memory".into(), true)]);
        assert_eq!(module.wasi_problems("w.wasm"), Vec::<String>::new());
        assert!(module.spawns_threads());
        // A program that starts no thread is a wasi-threads program too.
        module.imports.retain(|(m, _, _)| m != "wasi");
        assert_eq!(module.wasi_problems("w.wasm"), Vec::<String>::new());
        assert!(!module.spawns_threads());
    }

    #[test]
    fn wasi_module_check_names_every_problem() {
        let mut module = wasi_module(vec![("env".into(), "memory".into(), false)]);
        module.imports.retain(|(m, _, _)| m != "wasi");
        module.imports.push((
            "wasmgrind".into(),
            "thread_create".into(),
            Sig::of(&abi::THREAD_JOIN),
        ));
        module.other_imports.push("env.__stack_pointer".into());
        module.exports.retain(|(n, _)| n != "_start");
        module.exports[0].1.results.push(ValType::I32);
        let problems = module.wasi_problems("w.wasm");
        for want in [
            "w.wasm: its memory is not shared",
            "w.wasm: imports `env.__stack_pointer`, which is not a function",
            "w.wasm: imports `wasmgrind.thread_create`, which neither WASI preview1",
            "w.wasm: it does not export `_start`",
            "w.wasm: it exports `wasi_thread_start` as (i32, i32) -> (i32), not (i32, i32) -> ()",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "missing `{want}` in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].contains("--target wasm32-wasip1-threads"));
        let none = wasi_module(vec![]).wasi_problems("w.wasm");
        assert_eq!(none.len(), 1);
        assert!(none[0].contains("it imports no memory"), "{none:?}");
    }
}
