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

use wasmgrind_core::abi::{self, FuncSig};
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
    util::run(
        toolchain::nightly_cargo()
            .current_dir(&guests_dir)
            .args(["build", "--release", "--target", toolchain::WASM_TARGET])
            .arg(toolchain::BUILD_STD)
            .env("RUSTFLAGS", toolchain::wasm_rustflags())
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
    /// The lock-order graph has a cycle, whether or not the run deadlocks.
    pub potential_deadlock: bool,
    /// Two threads access the same memory without a happens-before order, one writing.
    pub data_race: bool,
    /// A substring of the message passed to `wasmgrind.panic`: `Some` exactly when
    /// [`Scenario::outcome`] is [`Outcome::Panic`], and then not empty.
    #[serde(default)]
    pub panic_message: Option<String>,
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
    pub const SCHEMA: u32 = 1;

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
            }
        }
        Ok(())
    }
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

    const SCENARIO: &str = r#""description": "d", "outcome": "ok", "forks": 1, "joins": null,
        "detached": false, "potential_deadlock": false, "data_race": false, "locks": 0,
        "acquisitions": 0"#;

    fn manifest(scenario: &str) -> std::result::Result<Manifest, String> {
        Manifest::parse(&format!(
            r#"{{"schema": 1, "guests": {{"g": {{"file": "g.wasm", "description": "d",
            "scenarios": {{"s": {{{scenario}}}}}}}}}}}"#
        ))
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
        assert_eq!((s.outcome, s.forks, s.joins), (Outcome::Ok, Some(1), None));
        let m = manifest(&format!(
            "{}, \"panic_message\": \"boom\"",
            SCENARIO.replace("\"ok\"", "\"panic\"")
        ))
        .unwrap();
        let s = &m.guests["g"].scenarios["s"];
        assert_eq!(s.outcome, Outcome::Panic);
        assert_eq!(s.panic_message.as_deref(), Some("boom"));
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
                SCENARIO.replace("\"forks\": 1", "\"forks\": -1"),
                "expected u32",
            ),
            (
                SCENARIO.replace("\"forks\": 1", "\"forkz\": 1"),
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
                SCENARIO.replace("\"ok\"", "\"panic\""),
                "needs `panic_message`",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"x\""),
                "only for outcome",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"\"").replace("\"ok\"", "\"panic\""),
                "`panic_message` must not be empty",
            ),
        ] {
            let e = manifest(&scenario).unwrap_err();
            assert!(
                e.starts_with("guest `g`, scenario `s`: ") && e.contains(msg),
                "{e}"
            );
        }
        let text = |guest: &str| format!(r#"{{"schema": 1, "guests": {{"g": {guest}}}}}"#);
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
        let e = Manifest::parse(r#"{"schema": 2, "guests": {}}"#).unwrap_err();
        assert!(e.contains("`schema` must be 1, not 2"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_position() {
        let path = std::env::temp_dir().join(format!("xtask-manifest-{}.json", std::process::id()));
        let text = format!(
            r#"{{"schema": 1, "guests": {{"g": {{"file": "g.wasm", "description": "d",
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
