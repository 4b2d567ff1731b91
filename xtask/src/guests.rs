//! `cargo xtask guests`: builds the guest programs of `guests/` into `target/guests/*.wasm`
//! and checks them against the runtime ABI and `guests/manifest.json`.
//!
//! Every guest must import a shared memory, import only the `wasmgrind` functions of
//! [`abi::IMPORTS`] with their exact signatures, export the guest ABI functions and keep
//! the name of `__stack_pointer`; its exported parameterless functions other than the ABI
//! ones are its scenarios, which must be exactly the manifest's.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
    let listed: BTreeSet<&str> = manifest.guests.iter().map(|g| g.name.as_str()).collect();
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
    for guest in &manifest.guests {
        let built = release.join(&guest.file);
        toolchain::check_shared_memory(&built)?;
        let bytes =
            std::fs::read(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
        let what = built.display().to_string();
        let module = Module::parse(&what, &bytes)?;
        module.check_abi(&what)?;
        module.check_scenarios(&what, guest)?;
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
        if name.ends_with(".wasm") && !manifest.guests.iter().any(|g| g.file == name) {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove stale {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The names of the cdylib targets of the guests workspace (`cargo metadata`).
fn guest_crates(guests_dir: &Path) -> Result<Vec<String>> {
    let out = util::output(toolchain::nightly_cargo().current_dir(guests_dir).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))?;
    let meta = json::parse(&out).map_err(|e| format!("cannot read `cargo metadata`: {e}"))?;
    let mut crates = Vec::new();
    for package in meta.get("packages").and_then(Json::as_array).unwrap_or(&[]) {
        for target in package
            .get("targets")
            .and_then(Json::as_array)
            .unwrap_or(&[])
        {
            let cdylib = target
                .get("kind")
                .and_then(Json::as_array)
                .is_some_and(|k| k.iter().any(|k| k.as_str() == Some("cdylib")));
            if let (true, Some(name)) = (cdylib, target.get("name").and_then(Json::as_str)) {
                crates.push(name.replace('-', "_"));
            }
        }
    }
    if crates.is_empty() {
        return Err(format!("{}: no cdylib crate found", guests_dir.display()).into());
    }
    Ok(crates)
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

/// The outcomes a scenario may have.
const OUTCOMES: [&str; 4] = ["ok", "trap", "panic", "deadlock"];

/// `guests/manifest.json`, validated (the schema is documented in `guests/README.md`).
#[derive(Debug)]
struct Manifest {
    guests: Vec<Guest>,
}

/// One guest crate of the manifest.
#[derive(Debug)]
struct Guest {
    name: String,
    file: String,
    scenarios: Vec<String>,
}

impl Manifest {
    fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Manifest::parse(&text).map_err(|e| format!("{}: {e}", path.display()).into())
    }

    fn parse(text: &str) -> std::result::Result<Manifest, String> {
        let root = json::parse(text)?;
        let top = fields(
            &root,
            "the manifest",
            &["schema", "guests"],
            &["schema", "guests"],
        )?;
        if top[0].as_f64() != Some(1.0) {
            return Err("`schema` must be 1".into());
        }
        let Json::Object(entries) = top[1] else {
            return Err("`guests` must be an object keyed by crate name".into());
        };
        let mut guests = Vec::new();
        for (name, guest) in entries {
            let at = format!("guest `{name}`");
            let g = fields(
                guest,
                &at,
                &["file", "description", "scenarios"],
                &["file", "description", "scenarios"],
            )?;
            let file = string(g[0], &format!("{at}: `file`"))?;
            if file != format!("{name}.wasm") {
                return Err(format!(
                    "{at}: `file` must be \"{name}.wasm\", not \"{file}\""
                ));
            }
            string(g[1], &format!("{at}: `description`"))?;
            let Json::Object(scenarios) = g[2] else {
                return Err(format!(
                    "{at}: `scenarios` must be an object keyed by export name"
                ));
            };
            if scenarios.is_empty() {
                return Err(format!("{at}: no scenarios"));
            }
            for (scenario, value) in scenarios {
                check_scenario(&format!("{at}, scenario `{scenario}`"), value)?;
            }
            guests.push(Guest {
                name: name.clone(),
                file: file.to_string(),
                scenarios: scenarios.iter().map(|(s, _)| s.clone()).collect(),
            });
        }
        Ok(Manifest { guests })
    }
}

/// Checks one scenario entry against the schema.
fn check_scenario(at: &str, value: &Json) -> std::result::Result<(), String> {
    const ALL: [&str; 10] = [
        "description",
        "outcome",
        "forks",
        "joins",
        "detached",
        "potential_deadlock",
        "data_race",
        "locks",
        "acquisitions",
        "panic_message",
    ];
    let f = fields(value, at, &ALL, &ALL[..9])?;
    string(f[0], &format!("{at}: `description`"))?;
    let outcome = string(f[1], &format!("{at}: `outcome`"))?;
    if !OUTCOMES.contains(&outcome) {
        return Err(format!(
            "{at}: `outcome` is \"{outcome}\", expected one of {}",
            OUTCOMES.join(", ")
        ));
    }
    for (i, key) in [
        (2, "forks"),
        (3, "joins"),
        (7, "locks"),
        (8, "acquisitions"),
    ] {
        let ok = match f[i] {
            Json::Null => true,
            Json::Number(n) => *n >= 0.0 && n.fract() == 0.0,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{at}: `{key}` must be a non-negative integer, or null when the run does not \
                 determine it"
            ));
        }
    }
    for (i, key) in [(4, "detached"), (5, "potential_deadlock"), (6, "data_race")] {
        if !matches!(f[i], Json::Bool(_)) {
            return Err(format!("{at}: `{key}` must be true or false"));
        }
    }
    match (outcome, f[9]) {
        ("panic", Json::Null) => Err(format!(
            "{at}: a scenario whose outcome is \"panic\" needs `panic_message`"
        )),
        ("panic", v) => string(v, &format!("{at}: `panic_message`")).map(|_| ()),
        (_, Json::Null) => Ok(()),
        (_, _) => Err(format!(
            "{at}: `panic_message` belongs only to scenarios whose outcome is \"panic\""
        )),
    }
}

/// The values of `keys` in object `value` (`Json::Null` for an absent optional key);
/// fails on unknown or missing required keys.
fn fields<'a>(
    value: &'a Json,
    at: &str,
    keys: &[&str],
    required: &[&str],
) -> std::result::Result<Vec<&'a Json>, String> {
    let Json::Object(entries) = value else {
        return Err(format!("{at} must be an object"));
    };
    if let Some((k, _)) = entries.iter().find(|(k, _)| !keys.contains(&k.as_str())) {
        return Err(format!(
            "{at}: unknown key `{k}` (known: {})",
            keys.join(", ")
        ));
    }
    if let Some(k) = required.iter().find(|k| value.get(k).is_none()) {
        return Err(format!("{at}: missing key `{k}`"));
    }
    Ok(keys
        .iter()
        .map(|k| value.get(k).unwrap_or(&Json::Null))
        .collect())
}

fn string<'a>(value: &'a Json, at: &str) -> std::result::Result<&'a str, String> {
    match value.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("{at} must be a non-empty string")),
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
    /// manifest's scenarios of `guest`.
    fn check_scenarios(&self, what: &str, guest: &Guest) -> Result {
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
        let listed: BTreeSet<&str> = guest.scenarios.iter().map(String::as_str).collect();
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
                guest.name
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} does not match guests/manifest.json:\n{problems}").into())
        }
    }
}

use json::Json;

/// A small JSON reader: the xtask needs to read `manifest.json` and `cargo metadata`.
mod json {
    /// A JSON value; objects keep their order.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    impl Json {
        /// The value of `key` in an object.
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Json::String(s) => Some(s),
                _ => None,
            }
        }

        pub fn as_f64(&self) -> Option<f64> {
            match self {
                Json::Number(n) => Some(*n),
                _ => None,
            }
        }

        pub fn as_array(&self) -> Option<&[Json]> {
            match self {
                Json::Array(a) => Some(a),
                _ => None,
            }
        }
    }

    /// Parses one JSON document; errors name the line and column.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing characters after the JSON value"));
        }
        Ok(v)
    }

    /// Nesting limit, far above what the manifest or `cargo metadata` need.
    const MAX_DEPTH: usize = 128;

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn err(&self, msg: &str) -> String {
            let before = &self.s[..self.i.min(self.s.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            format!("JSON error at line {line}, column {col}: {msg}")
        }

        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.s[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Json, String> {
            if depth > MAX_DEPTH {
                return Err(self.err("nested deeper than 128 levels"));
            }
            self.ws();
            match self.s.get(self.i) {
                None => Err(self.err("unexpected end of input")),
                Some(b'{') => {
                    self.i += 1;
                    let mut entries: Vec<(String, Json)> = Vec::new();
                    self.ws();
                    if self.eat("}") {
                        return Ok(Json::Object(entries));
                    }
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return Err(self.err("expected a string key"));
                        }
                        let key = self.string()?;
                        if entries.iter().any(|(k, _)| *k == key) {
                            return Err(self.err(&format!("duplicate key \"{key}\"")));
                        }
                        self.ws();
                        if !self.eat(":") {
                            return Err(self.err("expected `:`"));
                        }
                        let v = self.value(depth + 1)?;
                        entries.push((key, v));
                        self.ws();
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat("}") {
                            return Ok(Json::Object(entries));
                        }
                        return Err(self.err("expected `,` or `}`"));
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat("]") {
                        return Ok(Json::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat("]") {
                            return Ok(Json::Array(items));
                        }
                        return Err(self.err("expected `,` or `]`"));
                    }
                }
                Some(b'"') => self.string().map(Json::String),
                Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
                Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
                Some(b'n') if self.eat("null") => Ok(Json::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                Some(_) => Err(self.err("expected a JSON value")),
            }
        }

        fn number(&mut self) -> Result<Json, String> {
            let start = self.i;
            while self.i < self.s.len()
                && matches!(
                    self.s[self.i],
                    b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                )
            {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
            let leading_zero = text.trim_start_matches('-').starts_with("0")
                && text.trim_start_matches('-').len() > 1
                && text.trim_start_matches('-').as_bytes()[1].is_ascii_digit();
            match text.parse::<f64>() {
                Ok(n) if !leading_zero && !text.ends_with('.') && n.is_finite() => {
                    Ok(Json::Number(n))
                }
                _ => Err(self.err(&format!("invalid number `{text}`"))),
            }
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let digits = self
                .s
                .get(self.i..self.i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| self.err("expected four hex digits after \\u"))?;
            self.i += 4;
            Ok(digits)
        }

        fn string(&mut self) -> Result<String, String> {
            self.i += 1; // the opening quote
            let mut out = String::new();
            loop {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\' | 0..=0x1f) {
                    self.i += 1;
                }
                out.push_str(
                    std::str::from_utf8(&self.s[start..self.i])
                        .map_err(|_| self.err("invalid UTF-8 in a string"))?,
                );
                match self.s.get(self.i) {
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(out);
                    }
                    Some(b'\\') => {
                        self.i += 1;
                        let c = *self
                            .s
                            .get(self.i)
                            .ok_or_else(|| self.err("unterminated string"))?;
                        self.i += 1;
                        let ch = match c {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let code = if (0xd800..0xdc00).contains(&hi) {
                                    if !self.eat("\\u") {
                                        return Err(self.err("unpaired surrogate in \\u escape"));
                                    }
                                    let lo = self.hex4()?;
                                    if !(0xdc00..0xe000).contains(&lo) {
                                        return Err(self.err("invalid surrogate pair"));
                                    }
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    hi
                                };
                                char::from_u32(code)
                                    .ok_or_else(|| self.err("invalid \\u escape"))?
                            }
                            _ => return Err(self.err("invalid escape")),
                        };
                        out.push(ch);
                    }
                    Some(_) => return Err(self.err("control character in a string")),
                    None => return Err(self.err("unterminated string")),
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_values() {
            let v =
                parse(r#" {"a": [1, -2.5e1, true, false, null], "b": "x\"\u00e9\ud83d\ude00\n"} "#)
                    .unwrap();
            assert_eq!(
                v.get("a"),
                Some(&Json::Array(vec![
                    Json::Number(1.0),
                    Json::Number(-25.0),
                    Json::Bool(true),
                    Json::Bool(false),
                    Json::Null
                ]))
            );
            assert_eq!(v.get("b").and_then(Json::as_str), Some("x\"é😀\n"));
        }

        #[test]
        fn rejects_bad_json_with_a_position() {
            for (bad, msg) in [
                ("{\"a\": 1,}", "expected a string key"),
                ("{\"a\": 1, \"a\": 2}", "duplicate key"),
                ("[1 2]", "expected `,` or `]`"),
                ("01", "invalid number"),
                ("\"abc", "unterminated string"),
                ("{} x", "trailing characters"),
            ] {
                let e = parse(bad).unwrap_err();
                assert!(e.contains(msg), "{bad}: {e}");
                assert!(e.starts_with("JSON error at line 1, column "), "{e}");
            }
            assert!(parse("{\n  \"a\": ?\n}")
                .unwrap_err()
                .contains("line 2, column 8"));
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
                m.guests
                    .iter()
                    .any(|g| g.scenarios.iter().any(|s| s == name)),
                "{name}"
            );
        }
    }

    #[test]
    fn accepts_a_minimal_manifest() {
        let m = manifest(SCENARIO).unwrap();
        assert_eq!(m.guests[0].name, "g");
        assert_eq!(m.guests[0].scenarios, ["s"]);
    }

    #[test]
    fn rejects_schema_violations() {
        let cases = [
            (SCENARIO.replace("\"ok\"", "\"crash\""), "expected one of"),
            (
                SCENARIO.replace("\"forks\": 1", "\"forks\": -1"),
                "non-negative integer",
            ),
            (
                SCENARIO.replace("\"forks\": 1", "\"forkz\": 1"),
                "unknown key `forkz`",
            ),
            (
                SCENARIO.replace("\"detached\": false,", ""),
                "missing key `detached`",
            ),
            (
                SCENARIO.replace("\"ok\"", "\"panic\""),
                "needs `panic_message`",
            ),
            (
                format!("{SCENARIO}, \"panic_message\": \"x\""),
                "only to scenarios",
            ),
        ];
        for (scenario, msg) in cases {
            let e = manifest(&scenario).unwrap_err();
            assert!(e.contains(msg), "{e}");
            assert!(e.contains("guest `g`, scenario `s`"), "{e}");
        }
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
        let guest = Guest {
            name: "g".into(),
            file: "g.wasm".into(),
            scenarios: vec!["a".into(), "b".into(), "missing".into()],
        };
        let e = module
            .check_scenarios("g.wasm", &guest)
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
