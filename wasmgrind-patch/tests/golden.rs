//! Golden output: the patched `.wat` of every fixture in `tests/fixtures`, compared with
//! `tests/golden`. Run with `BLESS=1` to rewrite the golden files after a deliberate change.

mod common;

use std::path::Path;

#[test]
fn fixtures_match_golden_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir.join("fixtures")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wat") {
            continue;
        }
        seen += 1;
        let input = wat::parse_file(&path).unwrap();
        let config = wasmgrind_patch::PatchConfig {
            stack_size: 65536,
            ..Default::default()
        };
        let patched = wasmgrind_patch::patch(&input, &config).unwrap();
        let text = wasmprinter::print_bytes(&patched).unwrap();
        let golden = dir.join("golden").join(path.file_name().unwrap());
        common::check_golden(&text, &golden, &format!("patched {}", path.display()));
    }
    assert!(seen > 0, "no fixtures found");
}
