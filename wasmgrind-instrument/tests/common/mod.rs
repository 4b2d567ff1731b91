//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use wasmgrind_instrument::{instrument, InstrumentConfig, Instrumented};

/// The crate directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses a `.wat` file (panicking with the file name on error).
pub fn wat_file(path: &Path) -> Vec<u8> {
    wat::parse_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `.wat` text.
pub fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("bad test module: {e}\n{text}"))
}

/// Validates with wasmparser's default features, panicking with `what` on error.
pub fn assert_valid(wasm: &[u8], what: &str) {
    if let Err(e) = wasmparser::Validator::new().validate_all(wasm) {
        let text = wasmprinter::print_bytes(wasm).unwrap_or_default();
        panic!("{what} does not validate: {e}\n{text}");
    }
}

/// Config with memory tracing on or off.
pub fn config(memory_tracing: bool) -> InstrumentConfig {
    InstrumentConfig {
        memory_tracing,
        ..InstrumentConfig::default()
    }
}

/// Instruments with self-validation off, then validates separately, so a failure names
/// the module.
pub fn instrument_checked(wasm: &[u8], memory_tracing: bool, what: &str) -> Instrumented {
    let cfg = InstrumentConfig {
        memory_tracing,
        validate: false,
        validate_output: false,
        atomic_values: false,
        sampling: false,
    };
    let out = instrument(wasm, &cfg).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_valid(&out.wasm, what);
    out
}

/// Function indices of the imports `wasmgrind.<name>` in `wasm`.
pub fn import_indices(wasm: &[u8], module: &str, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ImportSection(s) = payload.unwrap() {
            let mut func = 0;
            for imp in s.into_imports() {
                let imp = imp.unwrap();
                if matches!(imp.ty, wasmparser::TypeRef::Func(_)) {
                    if imp.module == module && imp.name == name {
                        out.push(func);
                    }
                    func += 1;
                }
            }
        }
    }
    out
}

/// The `.wasm` files of `dir` below the repository root (`target/guests`, say), sorted;
/// fails, with `hint` on how to build them, when there are none.
pub fn built_wasm_files(dir: &str, hint: &str) -> Vec<PathBuf> {
    let dir = crate_dir().parent().unwrap().join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {hint}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "{} has no .wasm files; {hint}",
        dir.display()
    );
    paths
}
