//! Runs instrumented code in Node.js and checks the hook calls it makes and that results
//! are unchanged: the hooks receive the effective address, width, atomicity and a
//! location whose text names the instruction.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const MODULE: &str = r#"
(module
  (import "wasmgrind" "start_lock" (func $start_lock (param i32)))
  (memory (export "memory") 1 1 shared)
  (func (export "store_load") (param $p i32) (param $v i32) (result i32)
    local.get $p
    local.get $v
    i32.store offset=4
    local.get $p
    i32.load offset=4)
  (func (export "cas8") (param $p i32) (param $e i32) (param $n i32) (result i32)
    local.get $p
    local.get $e
    local.get $n
    i32.atomic.rmw8.cmpxchg_u)
  (func (export "cas64") (param $p i32) (param $e i64) (param $n i64) (result i64)
    local.get $p
    local.get $e
    local.get $n
    i64.atomic.rmw.cmpxchg)
  (func (export "rmw_add") (param $p i32) (param $v i32) (result i32)
    local.get $p
    local.get $v
    i32.atomic.rmw.add offset=8)
  (func (export "copy") (param $d i32) (param $s i32) (param $n i32)
    local.get $d
    local.get $s
    local.get $n
    memory.copy)
  (func (export "fill") (param $d i32) (param $v i32) (param $n i32)
    local.get $d
    local.get $v
    local.get $n
    memory.fill)
  (func (export "wait") (param $p i32) (param $e i32) (result i32)
    local.get $p
    local.get $e
    i64.const 0
    memory.atomic.wait32)
  (func (export "notify") (param $p i32) (result i32)
    local.get $p
    i32.const 1
    memory.atomic.notify)
  (func (export "lock") (param $l i32)
    local.get $l
    call $start_lock)
  (func (export "wrap") (param $p i32) (result i32)
    local.get $p
    i32.load offset=16)
  (func (export "pair") (param $p i32) (result i32 i64)
    local.get $p
    i32.load8_u offset=1
    local.get $p
    i64.load16_s offset=2)
  (@custom "wasmgrind.patch" "\0c\00\00\00\00\00\00\00")
)
"#;

const HARNESS: &str = r#"
const fs = require('fs');
const [wasmPath, callsJson] = process.argv.slice(2);
const calls = JSON.parse(callsJson);
const log = [];
const hook = (kind) => (addr, width, atomic, loc) => log.push([kind, addr >>> 0, width >>> 0, atomic, loc]);
const imports = {
  wasmgrind: {
    mem_read: hook('r'),
    mem_write: hook('w'),
    mem_atomic_begin: (addr) => log.push(['begin', addr >>> 0]),
    mem_atomic_value: (addr, op, old, nw, loc) =>
      log.push(['value', addr >>> 0, op, String(old), String(nw), loc]),
    start_lock: (lock, loc) => log.push(['start_lock', lock, loc === undefined ? null : loc]),
    heap_alloc: (ptr, size) => log.push(['heap_alloc', ptr >>> 0, size >>> 0]),
    heap_malloc: (ptr, size) => log.push(['alloc', ptr >>> 0, size >>> 0]),
    heap_free_unsized: (ptr) => log.push(['free', ptr >>> 0]),
    pthread_created: (t) => log.push(['created', t >>> 0]),
    pthread_joined: (t) => log.push(['joined', t >>> 0]),
    pthread_detached: (t) => log.push(['detached', t >>> 0]),
  },
};
const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), imports);
const conv = (v) => (typeof v === 'object' ? BigInt(v.i64) : v);
const show = (v) => (typeof v === 'bigint' ? { i64: v.toString() } : v);
const out = [];
for (const [name, args] of calls) {
  log.length = 0;
  let result;
  try {
    const r = instance.exports[name](...args.map(conv));
    result = Array.isArray(r) ? r.map(show) : show(r);
  } catch (e) {
    result = { trap: String(e.message) };
  }
  out.push({ name, result: result === undefined ? null : result, log: log.slice() });
}
console.log(JSON.stringify(out));
"#;

/// A fresh directory of its own for one run (tests run in parallel).
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wasmgrind-instrument-exec-{}-{tag}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `calls` on `wasm` in Node and returns its JSON output.
fn run_node(wasm: &[u8], tag: &str, calls: &str) -> serde_json::Value {
    let dir = temp_dir(tag);
    let wasm_path = dir.join("module.wasm");
    let js_path = dir.join("harness.js");
    std::fs::write(&wasm_path, wasm).unwrap();
    std::fs::write(&js_path, HARNESS).unwrap();
    let out = Command::new("node")
        .arg(&js_path)
        .arg(&wasm_path)
        .arg(calls)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `node` ({e}): this test needs Node.js 20 or later on PATH")
        });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn hooks_see_the_accesses_and_results_are_unchanged() {
    let input = wat(MODULE);
    let out = instrument_checked(&input, true, "exec module");
    let calls = r#"[
        ["store_load", [100, 7]],
        ["cas8", [200, 256, 5]],
        ["cas8", [200, 256, 6]],
        ["cas64", [208, {"i64": "0"}, {"i64": "9"}]],
        ["cas64", [208, {"i64": "0"}, {"i64": "10"}]],
        ["rmw_add", [300, 2]],
        ["copy", [400, 100, 8]],
        ["fill", [500, 1, 0]],
        ["wait", [600, 1]],
        ["wait", [600, 0]],
        ["notify", [600]],
        ["lock", [42]],
        ["wrap", [-8]],
        ["pair", [100]]
    ]"#;
    let instrumented = run_node(&out.wasm, "instrumented", calls);
    let original = run_node(&input, "original", calls);

    // Same results as the original module, call by call.
    let results = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["result"].clone())
            .collect()
    };
    assert_eq!(results(&instrumented), results(&original));
    // The original module calls no memory hook.
    for call in original.as_array().unwrap() {
        for event in call["log"].as_array().unwrap() {
            assert_eq!(event[0], "start_lock");
            assert!(event[2].is_null());
        }
    }

    // The hook calls, with the location's text in place of its id.
    let instr = |loc: &serde_json::Value| -> String {
        out.locations[loc.as_u64().unwrap() as usize].instr.clone()
    };
    let describe = |call: &serde_json::Value| -> Vec<String> {
        call["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let e = e.as_array().unwrap();
                if e[0] == "start_lock" {
                    format!("start_lock {} @{}", e[1], instr(&e[2]))
                } else if e[0] == "begin" {
                    format!("begin {}", e[1])
                } else {
                    format!(
                        "{} {} {} {} @{}",
                        e[0].as_str().unwrap(),
                        e[1],
                        e[2],
                        e[3],
                        instr(&e[4])
                    )
                }
            })
            .collect()
    };
    let calls = instrumented.as_array().unwrap();
    let expected: [(&str, serde_json::Value, &[&str]); 14] = [
        (
            "store_load",
            7.into(),
            &[
                "w 104 4 0 @i32.store offset=4",
                "r 104 4 0 @i32.load offset=4",
            ],
        ),
        // 256 & 0xff == 0 == memory: the exchange happens.
        (
            "cas8",
            0.into(),
            &["begin 200", "w 200 1 2 @i32.atomic.rmw8.cmpxchg_u"],
        ),
        // Memory now holds 5: no exchange, so an atomic read.
        (
            "cas8",
            5.into(),
            &["begin 200", "r 200 1 1 @i32.atomic.rmw8.cmpxchg_u"],
        ),
        (
            "cas64",
            serde_json::json!({"i64": "0"}),
            &["begin 208", "w 208 8 2 @i64.atomic.rmw.cmpxchg"],
        ),
        (
            "cas64",
            serde_json::json!({"i64": "9"}),
            &["begin 208", "r 208 8 1 @i64.atomic.rmw.cmpxchg"],
        ),
        // A read-modify-write is one event (kind 2), after `mem_atomic_begin`.
        (
            "rmw_add",
            0.into(),
            &["begin 308", "w 308 4 2 @i32.atomic.rmw.add offset=8"],
        ),
        (
            "copy",
            serde_json::Value::Null,
            &["r 100 8 0 @memory.copy", "w 400 8 0 @memory.copy"],
        ),
        ("fill", serde_json::Value::Null, &["w 500 0 0 @memory.fill"]),
        // 1 = "not-equal", 2 = "timed-out"; the read is recorded before the wait.
        ("wait", 1.into(), &["r 600 4 1 @memory.atomic.wait32"]),
        ("wait", 2.into(), &["r 600 4 1 @memory.atomic.wait32"]),
        ("notify", 0.into(), &["r 600 4 1 @memory.atomic.notify"]),
        (
            "lock",
            serde_json::Value::Null,
            &["start_lock 42 @call start_lock"],
        ),
        // 0xfffffff8 + 16 is out of bounds: the access traps before its hook.
        ("wrap", serde_json::Value::Null, &[]),
        (
            "pair",
            serde_json::json!([0, {"i64": "0"}]),
            &[
                "r 101 1 0 @i32.load8_u offset=1",
                "r 102 2 0 @i64.load16_s offset=2",
            ],
        ),
    ];
    // One answer per call made, one expectation per answer: `zip` would stop at the shorter.
    let names: Vec<&str> = calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        expected
            .iter()
            .map(|(name, _, _)| *name)
            .collect::<Vec<_>>(),
        "the calls made and the calls expected differ"
    );
    for (call, (name, result, log)) in calls.iter().zip(expected) {
        assert_eq!(call["name"], name);
        if name == "wrap" {
            assert!(
                call["result"]["trap"]
                    .as_str()
                    .unwrap()
                    .contains("out of bounds"),
                "{call}"
            );
        } else {
            assert_eq!(call["result"], result, "{name}");
        }
        assert_eq!(describe(call), log, "{name}");
    }
}

/// With `atomic_values`, the value hook sees what each atomic wrote: the loaded and the
/// stored value, only for a compare-exchange that exchanged, masked to the width, and a
/// wait bracketed before and after.
#[test]
fn the_value_hook_sees_the_values_of_atomic_writes() {
    let module = r#"
(module
  (memory (export "memory") 1 1 shared)
  (func (export "cas") (param $p i32) (param $e i32) (param $n i32) (result i32)
    local.get $p
    local.get $e
    local.get $n
    i32.atomic.rmw.cmpxchg)
  (func (export "cas8") (param $p i32) (param $e i32) (param $n i32) (result i32)
    local.get $p
    local.get $e
    local.get $n
    i32.atomic.rmw8.cmpxchg_u)
  (func (export "swap") (param $p i32) (param $v i32) (result i32)
    local.get $p
    local.get $v
    i32.atomic.rmw.xchg)
  (func (export "store8") (param $p i32) (param $v i32)
    local.get $p
    local.get $v
    i32.atomic.store8)
  (func (export "store64") (param $p i32) (param $v i64)
    local.get $p
    local.get $v
    i64.atomic.store offset=8)
  (func (export "add") (param $p i32) (param $v i32) (result i32)
    local.get $p
    local.get $v
    i32.atomic.rmw.add)
  (func (export "wait") (param $p i32) (param $e i32) (result i32)
    local.get $p
    local.get $e
    i64.const 0
    memory.atomic.wait32)
  (@custom "wasmgrind.patch" "\07\00\00\00\00\00\00\00")
)
"#;
    let input = wat(module);
    let cfg = wasmgrind_instrument::InstrumentConfig {
        atomic_values: true,
        ..wasmgrind_instrument::InstrumentConfig::default()
    };
    let out = wasmgrind_instrument::instrument(&input, &cfg).unwrap();
    let calls = r#"[
        ["cas", [100, 0, 1]],
        ["cas", [100, 0, 1]],
        ["swap", [100, 2]],
        ["swap", [100, 0]],
        ["cas8", [104, 256, 511]],
        ["store8", [108, 257]],
        ["store64", [112, {"i64": "-1"}]],
        ["add", [120, 3]],
        ["wait", [124, 1]]
    ]"#;
    let result = run_node(&out.wasm, "values", calls);
    let values: Vec<Vec<String>> = result
        .as_array()
        .unwrap()
        .iter()
        .map(|call| {
            call["log"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e[0] == "value")
                .map(|e| {
                    format!(
                        "{} {} {} {}",
                        e[1],
                        e[2],
                        e[3].as_str().unwrap(),
                        e[4].as_str().unwrap()
                    )
                })
                .collect()
        })
        .collect();
    // `op` is the VALUE_* code plus the width in bytes times 256.
    let expected: [&[&str]; 9] = [
        // compare_exchange(0, 1) succeeds: op 0 (width 4), old 0, new 1.
        &["100 1024 0 1"],
        // It fails (memory holds 1): no value hook.
        &[],
        // swap(2) returns 1; swap(0) returns 2.
        &["100 1025 1 2"],
        &["100 1025 2 0"],
        // 256 & 0xff == 0 matches; 511 is stored as 0xff (width 1).
        &["104 256 0 255"],
        // store8 of 257 stores 1.
        &["108 258 0 1"],
        // JS sees i64 as signed BigInt.
        &["120 2050 0 -1"],
        // Another read-modify-write: op 3 with the loaded value (the low half of the
        // i64 -1, zero-extended).
        &["120 1027 4294967295 0"],
        // The wait: before (expected 1, timeout 0), after (op 5).
        &["124 1028 1 0", "124 1029 0 0"],
    ];
    assert_eq!(values.len(), expected.len());
    for (i, (got, want)) in values.iter().zip(expected).enumerate() {
        assert_eq!(got, want, "call {i}");
    }
}

/// A module with a C allocator (a bump allocator named `malloc`, `free`, ...) and
/// thread functions named as wasi-libc's, whose callers the instrumenter redirects to
/// its wrappers.
const C_ALLOCATOR: &str = r#"
(module
  (memory (export "memory") 1 1 shared)
  (global $next (mut i32) (i32.const 1024))
  (table 1 funcref)
  (elem (i32.const 0) $free)
  (func $malloc (param $n i32) (result i32) (local $p i32)
    global.get $next
    local.set $p
    global.get $next
    local.get $n
    i32.add
    i32.const 7
    i32.add
    i32.const -8
    i32.and
    global.set $next
    local.get $p)
  (func $free (param i32))
  (func $calloc (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.mul
    call $malloc)
  (func $realloc (param $p i32) (param $n i32) (result i32)
    local.get $n
    call $malloc)
  (func $posix_memalign (param $out i32) (param $align i32) (param $n i32) (result i32)
    local.get $out
    local.get $n
    call $malloc
    i32.store
    i32.const 0)
  (func (export "alloc_free") (param $n i32) (result i32) (local $p i32)
    local.get $n
    call $malloc
    local.tee $p
    call $free
    local.get $p)
  (func (export "grow") (param $p i32) (param $n i32) (result i32)
    local.get $p
    local.get $n
    call $realloc)
  (func (export "zeroed") (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    call $calloc)
  (func (export "aligned") (param $out i32) (param $n i32) (result i32)
    local.get $out
    i32.const 8
    local.get $n
    call $posix_memalign)
  (func (export "free_null")
    i32.const 0
    call $free)
  (func (export "free_indirect") (param i32)
    local.get 0
    i32.const 0
    call_indirect (param i32))
  ;; pthread_create stores the handle (100 + the start argument) and fails (errno 11)
  ;; when the argument is negative; join, detach: fail for handle 0.
  (func $__pthread_create (param $out i32) (param $attr i32) (param $f i32) (param $arg i32)
    (result i32)
    local.get $arg
    i32.const 0
    i32.lt_s
    if
      i32.const 11
      return
    end
    local.get $out
    local.get $arg
    i32.const 100
    i32.add
    i32.store
    i32.const 0)
  (func $__pthread_join (param $t i32) (param $res i32) (result i32)
    local.get $t
    i32.eqz)
  (func $__pthread_detach (param $t i32) (result i32)
    ;; musl joins a thread that already ended: not a join of the program's.
    local.get $t
    i32.const 0
    call $__pthread_join)
  (func (export "create") (param $out i32) (param $arg i32) (result i32)
    local.get $out
    i32.const 0
    i32.const 0
    local.get $arg
    call $__pthread_create)
  (func (export "join") (param $t i32) (result i32)
    local.get $t
    i32.const 0
    call $__pthread_join)
  (func (export "detach") (param $t i32) (result i32)
    local.get $t
    call $__pthread_detach)
  (@custom "wasmgrind.patch" "\11\00\00\00\00\00\00\00")
)
"#;

#[test]
fn the_wrappers_report_allocations_frees_and_thread_joins() {
    let input = wat(C_ALLOCATOR);
    let out = instrument_checked(&input, true, "C allocator module");
    let calls = r#"[
        ["alloc_free", [16]],
        ["grow", [1040, 20]],
        ["grow", [0, 4]],
        ["zeroed", [3, 4]],
        ["aligned", [64, 8]],
        ["free_null", []],
        ["free_indirect", [1072]],
        ["create", [96, 5]],
        ["create", [96, -1]],
        ["join", [105]],
        ["join", [0]],
        ["detach", [105]],
        ["detach", [0]]
    ]"#;
    let instrumented = run_node(&out.wasm, "allocator-instrumented", calls);
    let original = run_node(&input, "allocator-original", calls);
    let results = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["result"].clone())
            .collect()
    };
    assert_eq!(results(&instrumented), results(&original));
    // The allocator's own accesses are not traced.
    let logs: Vec<String> = instrumented
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}: {}", c["name"].as_str().unwrap(), c["log"]))
        .collect();
    assert_eq!(
        logs,
        [
            // An allocation after it succeeded, a free before the block goes back.
            r#"alloc_free: [["alloc",1024,16],["free",1024]]"#,
            // realloc: the old block is freed first, the new one allocated after.
            r#"grow: [["free",1040],["alloc",1040,20]]"#,
            // realloc(NULL, n) frees nothing.
            r#"grow: [["alloc",1064,4]]"#,
            // calloc(n, size): n * size bytes.
            r#"zeroed: [["alloc",1072,12]]"#,
            // posix_memalign: the block stored at `out`.
            r#"aligned: [["alloc",1088,8]]"#,
            // free(NULL) reports nothing.
            "free_null: []",
            // The table entry of `free` is the wrapper's.
            r#"free_indirect: [["free",1072]]"#,
            // A thread created: its handle, read from `out`; a failed call reports
            // nothing. (`__pthread_create` is a libc thread function: its store is
            // traced as an atomic one, kind 1.)
            r#"create: [["begin",96],["w",96,4,1,0],["created",105]]"#,
            "create: []",
            r#"join: [["joined",105]]"#,
            "join: []",
            // A detach reports itself, not the join libc does inside it.
            r#"detach: [["detached",105]]"#,
            "detach: []",
        ]
    );
}

/// The executions that a sampled site traces, as [`InstrumentConfig::sampling`]
/// documents them: the first `SAMPLE_ALWAYS`, then one after skipping
/// `min(taken / SAMPLE_ALWAYS, SAMPLE_MAX_SKIP)` (`taken`: the ones traced so far).
///
/// [`InstrumentConfig::sampling`]: wasmgrind_instrument::InstrumentConfig::sampling
fn sampled_executions(executions: u32, skip: &mut u32, taken: &mut u32) -> u32 {
    let mut traced = 0;
    for _ in 0..executions {
        if *skip > 0 {
            *skip -= 1;
        } else {
            *taken += 1;
            traced += 1;
            *skip = (*taken / wasmgrind_instrument::SAMPLE_ALWAYS)
                .min(wasmgrind_instrument::SAMPLE_MAX_SKIP);
        }
    }
    traced
}

/// With sampling, a loop traces the iterations its schedule picks, carried over from one
/// call to the next; a function body traces the calls its own schedule picks; atomic
/// accesses are always traced; results are unchanged.
#[test]
fn sampling_traces_the_executions_its_schedule_picks() {
    let module = r#"
(module
  (memory (export "memory") 1 1 shared)
  (func (export "sum") (param $p i32) (param $n i32) (result i32)
    (local $s i32)
    (loop $l
      local.get $s
      local.get $p
      i32.load
      i32.add
      local.set $s
      local.get $p
      i32.const 4
      i32.add
      local.set $p
      local.get $n
      i32.const 1
      i32.sub
      local.tee $n
      br_if $l)
    local.get $s)
  (func (export "touch") (param $p i32) (result i32)
    local.get $p
    i32.const 1
    i32.store
    local.get $p
    i32.atomic.load)
  (func (export "spin") (param $p i32) (param $n i32)
    (loop $l
      local.get $p
      i32.const 1
      i32.store offset=4
      local.get $p
      i32.atomic.load offset=12
      drop
      local.get $n
      i32.const 1
      i32.sub
      local.tee $n
      br_if $l)
    local.get $p
    i32.const 2
    i32.store offset=8)
  (@custom "wasmgrind.patch" "\03\00\00\00\00\00\00\00")
)
"#;
    let input = wat(module);
    let cfg = wasmgrind_instrument::InstrumentConfig {
        sampling: true,
        validate_output: true,
        ..wasmgrind_instrument::InstrumentConfig::default()
    };
    let out = wasmgrind_instrument::instrument(&input, &cfg).unwrap();
    // Memory is zero until `touch` stores 1 at 60000; the sums read its one page.
    let mut calls = vec![r#"["sum", [0, 5000]]"#.to_string()];
    calls.push(r#"["sum", [0, 16000]]"#.to_string());
    for _ in 0..30 {
        calls.push(r#"["touch", [60000]]"#.to_string());
    }
    calls.push(r#"["sum", [59996, 2]]"#.to_string());
    for _ in 0..12 {
        calls.push(r#"["spin", [1000, 20]]"#.to_string());
    }
    let result = run_node(&out.wasm, "sampling", &format!("[{}]", calls.join(",")));
    let result = result.as_array().unwrap();
    let count = |i: usize, kind: &str, atomic: i64| {
        result[i]["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e[0] == kind && e[3] == atomic)
            .count() as u32
    };
    let (mut skip, mut taken) = (0, 0);
    let first = sampled_executions(5000, &mut skip, &mut taken);
    assert_eq!(count(0, "r", 0), first);
    assert!(first < 5000 / 4, "{first} of 5000 iterations were traced");
    assert_eq!(
        count(1, "r", 0),
        sampled_executions(16000, &mut skip, &mut taken)
    );
    let (mut touch_skip, mut touch_taken) = (0, 0);
    for i in 0..30 {
        assert_eq!(
            count(2 + i, "w", 0),
            sampled_executions(1, &mut touch_skip, &mut touch_taken),
            "touch call {i}"
        );
        assert_eq!(count(2 + i, "r", 1), 1, "the atomic load of touch call {i}");
        assert_eq!(result[2 + i]["result"], 1);
    }
    // The loop's schedule went on from where the earlier calls left it.
    let last = 2 + 30;
    assert_eq!(
        count(last, "r", 0),
        sampled_executions(2, &mut skip, &mut taken)
    );
    assert_eq!(result[last]["result"], 1);
    // `spin`'s loop is split: its atomic load is traced in every iteration, sampled or
    // not, its store in the sampled ones; the store after the loop goes by the decisions
    // of the function's body, not by the loop's last one.
    let (mut loop_skip, mut loop_taken, mut body_skip, mut body_taken) = (0, 0, 0, 0);
    let site = |i: usize, offset: u64, kind: &str, atomic: i64| {
        result[i]["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e[0] == kind && e[1] == 1000 + offset && e[3] == atomic)
            .count() as u32
    };
    for call in 0..12 {
        let i = last + 1 + call;
        assert_eq!(
            site(i, 12, "r", 1),
            20,
            "spin call {call}: every atomic load"
        );
        let stores = sampled_executions(20, &mut loop_skip, &mut loop_taken);
        assert_eq!(
            site(i, 4, "w", 0),
            stores,
            "spin call {call}: the loop's stores"
        );
        let after = sampled_executions(1, &mut body_skip, &mut body_taken);
        assert_eq!(
            site(i, 8, "w", 0),
            after,
            "spin call {call}: the store after the loop"
        );
    }
}
