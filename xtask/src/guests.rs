//! `cargo xtask guests`: builds the guest programs of `guests/` into `target/guests/*.wasm`
//! and checks them against the runtime ABI and `guests/manifest.json`.
//!
//! Every guest must import a shared memory, import only the `wasmgrind` functions of
//! [`abi::IMPORTS`] with their exact signatures, export the guest ABI functions and keep
//! the name of `__stack_pointer`; its exported parameterless functions other than the ABI
//! ones are its scenarios, which must be exactly the manifest's.

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

/// Builds and checks every guest; returns the paths of `target/guests/<crate>.wasm`.
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
    pub const SCHEMA: u32 = 2;

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

    /// The rules of the schema that the types alone do not express.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != Manifest::SCHEMA {
            return Err(format!(
                "`schema` must be {}, not {}",
                Manifest::SCHEMA,
                self.schema
            ));
        }
        let filled = |at: &str, key: &str, value: &str| match value.trim() {
            "" => Err(format!("{at}: `{key}` must not be empty")),
            _ => Ok(()),
        };
        for (name, guest) in &self.guests {
            let at = format!("guest `{name}`");
            if guest.file != format!("{name}.wasm") {
                return Err(format!(
                    "{at}: `file` must be \"{name}.wasm\", not \"{}\"",
                    guest.file
                ));
            }
            filled(&at, "description", &guest.description)?;
            if guest.scenarios.is_empty() {
                return Err(format!("{at}: `scenarios` needs at least one entry"));
            }
            for (scenario, s) in &guest.scenarios {
                let at = format!("{at}, scenario `{scenario}`");
                filled(&at, "description", &s.description)?;
                match (s.outcome == Outcome::Panic, &s.panic_message) {
                    (true, None) => {
                        return Err(format!("{at}: outcome \"panic\" needs `panic_message`"))
                    }
                    (false, Some(_)) => {
                        return Err(format!(
                            "{at}: `panic_message` is only for outcome \"panic\""
                        ))
                    }
                    (true, Some(message)) => filled(&at, "panic_message", message)?,
                    (false, None) => {}
                }
                match (s.outcome == Outcome::Panic, s.panic_code) {
                    (true, None) => {
                        return Err(format!(
                            "{at}: outcome \"panic\" needs a `panic_code` (100 for a Rust \
                             panic, 101 for running out of memory)"
                        ))
                    }
                    (false, Some(_)) => {
                        return Err(format!(
                            "{at}: `panic_code` is only for outcome \"panic\"; make it null"
                        ))
                    }
                    (true, Some(code)) => check_panic_code(&at, code)?,
                    (false, None) => {}
                }
                check_findings(&at, s)?;
            }
        }
        Ok(())
    }
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

/// The rules for `findings` and the flags that summarize them.
fn check_findings(at: &str, s: &Scenario) -> std::result::Result<(), String> {
    let has = |kind: FindingKind| s.findings.iter().any(|f| f.kind == kind);
    let races = has(FindingKind::DataRace);
    if s.data_race != races {
        return Err(format!(
            "{at}: `data_race` is {}, but `findings` has {} entry of kind \"data_race\"",
            s.data_race,
            if races { "an" } else { "no" }
        ));
    }
    let cycles = has(FindingKind::PotentialDeadlock) || has(FindingKind::Deadlock);
    if s.potential_deadlock != cycles {
        return Err(format!(
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
    match (s.outcome == Outcome::Deadlock, live) {
        (true, 1) | (false, 0) => {}
        (true, 0) => {
            return Err(format!(
                "{at}: outcome \"deadlock\" needs an entry of kind \"deadlock\" in `findings`"
            ))
        }
        (true, _) => {
            return Err(format!(
                "{at}: `findings` has {live} entries of kind \"deadlock\"; a run ends in at \
                 most one"
            ))
        }
        (false, _) => {
            return Err(format!(
                "{at}: an entry of kind \"deadlock\" needs outcome \"deadlock\""
            ))
        }
    }
    for (i, f) in s.findings.iter().enumerate() {
        let at = format!("{at}, findings[{i}] ({})", f.kind.name());
        if f.functions.is_empty() {
            return Err(format!("{at}: `functions` needs at least one entry"));
        }
        if f.functions.iter().any(|name| name.trim().is_empty()) {
            return Err(format!("{at}: `functions` must not contain an empty name"));
        }
        let Some(threads) = &f.threads else { continue };
        let distinct: BTreeSet<u32> = threads.iter().copied().collect();
        if distinct.len() != threads.len() {
            return Err(format!(
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
            return Err(format!(
                "{at}: `threads` must list {want} threads, not {threads:?} (or be null)"
            ));
        }
        if let Some(forks) = s.forks {
            if let Some(t) = threads.iter().find(|&&t| t > forks) {
                return Err(format!(
                    "{at}: thread {t} does not exist in a run with {forks} forks (threads are \
                     0 for main, then 1 to {forks} in creation order)"
                ));
            }
        }
    }
    Ok(())
}

/// What the checks need to know about a built guest.
#[derive(Debug)]
struct Module {
    /// Function imports: module, name, signature.
    imports: Vec<(String, String, Sig)>,
    /// Imports that are neither functions nor the memory.
    other_imports: Vec<String>,
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
                            TypeRef::Memory(_) => {}
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
            r#"{{"schema": 2, "guests": {{"g": {{"file": "g.wasm", "description": "d",
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
        let text = |guest: &str| format!(r#"{{"schema": 2, "guests": {{"g": {guest}}}}}"#);
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
        let e = Manifest::parse(r#"{"schema": 1, "guests": {}}"#).unwrap_err();
        assert!(e.contains("`schema` must be 2, not 1"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_position() {
        let path = std::env::temp_dir().join(format!("xtask-manifest-{}.json", std::process::id()));
        let text = format!(
            r#"{{"schema": 2, "guests": {{"g": {{"file": "g.wasm", "description": "d",
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
}
