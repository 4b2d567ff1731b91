//! Runs a patched module in Node (which is needed by the project anyway): every instance
//! on one shared memory must get its own stack and TLS block, and the destroy export must
//! hand them back. The fixture's `free` does nothing (its text is shared with the golden
//! and error tests), so this test swaps in a `free` that records every block it is given
//! and compares the record with the blocks the instances were given.

use std::process::Command;

const SCRIPT: &str = r#"
const fs = require('fs');
const bytes = fs.readFileSync(process.argv[1]);
const [min, max] = process.argv.slice(2).map(Number);
// The fixture's bump allocator starts at 2,000,000, past the module's own pages; the
// test's `free` appends [ptr, size, align, __stack_pointer] to a log: the count at
// 1049600, the entries from 1049616.
const LOG_COUNT = 1049600;
const LOG_ENTRIES = 1049616;

const mod = new WebAssembly.Module(bytes);
const memory = new WebAssembly.Memory({ initial: min + 32, maximum: max, shared: true });
const words = () => new Uint32Array(memory.buffer);
const freed = () => {
  const w = words();
  const n = w[LOG_COUNT / 4];
  return [...Array(n).keys()].map((i) => {
    const at = (LOG_ENTRIES + 16 * i) / 4;
    const [ptr, size, align, sp] = w.subarray(at, at + 4);
    return { ptr, size, align, sp };
  });
};
const instances = [0, 1, 2].map(() => new WebAssembly.Instance(mod, { env: { memory } }));
const heapBase = instances[0].exports.__heap_base.value;
const out = {
  heap_base: heapBase,
  instances: instances.map((i) => ({
    tls: i.exports.__tls_base.value,
    stack: i.exports.__wasmgrind_stack_base.value,
    value: i.exports.tls_value(),
  })),
  freed_before: freed(),
};
// Instance 1 frees its own blocks, as a dying thread does; a second call finds nothing.
instances[1].exports.__wasmgrind_thread_destroy(0, 0);
out.after_destroy = instances[1].exports.__wasmgrind_stack_base.value;
instances[1].exports.__wasmgrind_thread_destroy(0, 0);
out.freed_by_1 = freed();
// The patcher's lock word (the first word of the reserved page) is free again.
out.lock_after = words()[(heapBase - 65536) / 4];
// Instance 0 frees instance 2's blocks, named by their addresses, then its own: only its
// TLS block, as its stack is the linker's.
const two = out.instances[2];
instances[0].exports.__wasmgrind_thread_destroy(two.tls, two.stack);
instances[0].exports.__wasmgrind_thread_destroy(0, 0);
out.freed_all = freed();
console.log(JSON.stringify(out));
"#;

/// The fixture's `free`, which does nothing.
const NOOP_FREE: &str = "(func $free (param i32 i32 i32))";

/// A `free` that appends `[ptr, size, align, __stack_pointer]` to a log in the module's own
/// data, below the allocator's offset at 1049896: the count at 1049600, the 16-byte
/// entries from 1049616 (room for 16).
const RECORDING_FREE: &str = r#"
  (func $free (param $ptr i32) (param $size i32) (param $align i32)
    (local $entry i32)
    i32.const 1049600
    i32.const 1
    i32.atomic.rmw.add
    i32.const 16
    i32.mul
    i32.const 1049616
    i32.add
    local.tee $entry
    local.get $ptr
    i32.store
    local.get $entry
    local.get $size
    i32.store offset=4
    local.get $entry
    local.get $align
    i32.store offset=8
    local.get $entry
    global.get $__stack_pointer
    i32.store offset=12)
"#;

#[test]
fn instances_get_their_own_stack_and_tls() {
    let fixture = include_str!("fixtures/minimal.wat");
    assert!(
        fixture.contains(NOOP_FREE),
        "the fixture has no `{NOOP_FREE}`"
    );
    let wasm = wat::parse_str(fixture.replace(NOOP_FREE, RECORDING_FREE)).unwrap();
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
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let field = |i: usize, k: &str| v["instances"][i][k].as_u64().unwrap();
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

    // What the fixture's `free` was given: (ptr, size, align) and the stack pointer.
    let freed = |k: &str| -> Vec<(u64, u64, u64, u64)> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k}: {v}"))
            .iter()
            .map(|e| {
                let n = |f: &str| e[f].as_u64().unwrap();
                (n("ptr"), n("size"), n("align"), n("sp"))
            })
            .collect()
    };
    let blocks = |k: &str| -> Vec<(u64, u64, u64)> {
        freed(k).into_iter().map(|(p, s, a, _)| (p, s, a)).collect()
    };
    let (stack_size, tls_size, tls_align) = (65536, 16, 8);
    assert!(freed("freed_before").is_empty(), "{v}");
    // Destroy hands back the instance's TLS block and stack, once, and forgets the stack.
    assert_eq!(
        blocks("freed_by_1"),
        [
            (tls[1], tls_size, tls_align),
            (field(1, "stack"), stack_size, 16)
        ]
    );
    assert_eq!(v["after_destroy"], 0);
    // Freeing its own stack, the instance runs `free` on the temporary stack at the end of
    // the reserved page, not on the stack being freed, and releases the lock afterwards.
    let heap_base = v["heap_base"].as_u64().unwrap();
    let stack1 = field(1, "stack")..field(1, "stack") + stack_size;
    for (_, _, _, sp) in freed("freed_by_1") {
        assert!(
            !stack1.contains(&sp),
            "free ran on the stack it freed: {sp}"
        );
        assert!(sp > heap_base - 65536 && sp <= heap_base, "{sp}");
    }
    assert_eq!(v["lock_after"], 0);
    // Blocks named by address are freed as given; the first instance hands back only its
    // TLS block, never the linker's stack.
    assert_eq!(
        blocks("freed_all")[2..],
        [
            (tls[2], tls_size, tls_align),
            (field(2, "stack"), stack_size, 16),
            (tls[0], tls_size, tls_align),
        ]
    );
}
