//! Patches every real guest program built by `cargo xtask guests` and validates the result.

use std::path::PathBuf;

/// Every `target/guests/*.wasm`; fails when the guests have not been built.
fn guest_modules() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guests");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask guests` first", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no guests in {}: run `cargo xtask guests` first",
        dir.display()
    );
    found
}

#[test]
fn every_guest_patches_and_validates() {
    for path in guest_modules() {
        let wasm = std::fs::read(&path).unwrap();
        let patched = wasmgrind_patch::patch(&wasm, &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // `patch` validates by default; validate here too so the test does not depend on it.
        wasmparser::Validator::new()
            .validate_all(&patched)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (min, max) = wasmgrind_patch::memory_limits(&patched).unwrap();
        let (orig_min, orig_max) = wasmgrind_patch::memory_limits(&wasm).unwrap();
        assert!(min >= orig_min && max == orig_max, "{}", path.display());
        let text = wasmprinter::print_bytes(&patched).unwrap();
        for needle in [
            "(export \"__wasmgrind_thread_destroy\"",
            "(export \"__wasmgrind_stack_base\"",
            "(start $__wasmgrind_start)",
            "call $__wasm_init_tls",
        ] {
            assert!(text.contains(needle), "{}: no `{needle}`", path.display());
        }
        assert!(
            matches!(
                wasmgrind_patch::patch(&patched, &Default::default()),
                Err(wasmgrind_patch::PatchError::AlreadyPatched)
            ),
            "{}",
            path.display()
        );
    }
}
