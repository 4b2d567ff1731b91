//! Runs a patched module in Node (which is needed by the project anyway): every instance
//! on one shared memory must get its own stack and TLS block, and the destroy export must
//! hand them back.

use std::process::Command;

const SCRIPT: &str = r#"
const fs = require('fs');
const bytes = fs.readFileSync(process.argv[1]);
const [min, max] = process.argv.slice(2).map(Number);
// The fixture's bump allocator starts at 2,000,000, past the module's own pages.

const mod = new WebAssembly.Module(bytes);
const memory = new WebAssembly.Memory({ initial: min + 32, maximum: max, shared: true });
const instances = [0, 1, 2].map(() => new WebAssembly.Instance(mod, { env: { memory } }));
const out = instances.map((i) => ({
  tls: i.exports.__tls_base.value,
  stack: i.exports.__wasmgrind_stack_base.value,
  value: i.exports.tls_value(),
}));
instances[1].exports.__wasmgrind_thread_destroy(0, 0);
out.push({ after_destroy: instances[1].exports.__wasmgrind_stack_base.value });
console.log(JSON.stringify(out));
"#;

#[test]
fn instances_get_their_own_stack_and_tls() {
    let wasm = wat::parse_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/minimal.wat"
    ))
    .unwrap();
    let config = wasmgrind_patch::PatchConfig {
        stack_size: 65536,
        ..Default::default()
    };
    let patched = wasmgrind_patch::patch(&wasm, &config).unwrap();
    let (min, max) = wasmgrind_patch::memory_limits(&patched).unwrap();
    let path = std::env::temp_dir().join(format!("wasmgrind-patch-{}.wasm", std::process::id()));
    std::fs::write(&path, &patched).unwrap();
    let out = Command::new("node")
        .args(["-e", SCRIPT])
        .arg(&path)
        .args([min.to_string(), max.to_string()])
        .output()
        .expect("node is required to run this test (Node.js 20); install it");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_str(text.trim()).unwrap();
    let field = |i: usize, k: &str| v[i][k].as_u64().unwrap();
    // The first instance keeps the linker's stack; the others get 16-aligned stacks of
    // their own, right after each other from the fixture's bump allocator.
    assert_eq!(field(0, "stack"), 0);
    assert_ne!(field(1, "stack"), 0);
    assert_ne!(field(1, "stack"), field(2, "stack"));
    assert_eq!(field(1, "stack") % 16, 0);
    // Every instance has its own TLS block, aligned to __tls_align (8) and initialized.
    let tls: Vec<u64> = (0..3).map(|i| field(i, "tls")).collect();
    assert!(tls.iter().all(|t| *t != 0 && t % 8 == 0), "{tls:?}");
    assert!(
        tls[0] != tls[1] && tls[1] != tls[2] && tls[0] != tls[2],
        "{tls:?}"
    );
    assert!((0..3).all(|i| field(i, "value") == 42));
    // Destroy gives the stack back and forgets it.
    assert_eq!(field(3, "after_destroy"), 0);
}
