//! `refresh_bounds`: its golden output, what it leaves alone, and in Node (which the
//! project needs anyway) what it is for: a thread's `memory.fill`, `memory.copy` or
//! `memory.atomic.notify` on pages that another thread has just grown no longer traps.

mod common;

use std::path::Path;
use std::process::Command;

use wasmparser::{Validator, WasmFeatures};

fn validate(wasm: &[u8]) {
    Validator::new_with_features(WasmFeatures::default() | WasmFeatures::THREADS)
        .validate_all(wasm)
        .unwrap_or_else(|e| panic!("the output does not validate: {e}"));
}

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("bounds")
}

/// Runs `script` with `node --no-liftoff` (as the runtime runs), the arguments after it,
/// and returns its stdout.
fn node(script: &str, args: &[&str]) -> String {
    let out = Command::new("node")
        .args(["--no-liftoff", "-e", script])
        .args(args)
        .output()
        .expect("node is required to run this test (Node.js 20); install it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A file in the temporary directory, removed when dropped.
struct Temp(std::path::PathBuf);

impl Temp {
    fn new(name: &str, bytes: &[u8]) -> Temp {
        let path = std::env::temp_dir().join(format!(
            "wasmgrind-bounds-{}-{name}.wasm",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        Temp(path)
    }

    fn path(&self) -> &str {
        self.0
            .to_str()
            .expect("the temporary directory's path is UTF-8")
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

/// Every `tests/bounds/NAME.wat` against `NAME.golden.wat`. Run with `BLESS=1` to rewrite
/// the golden files after a deliberate change.
#[test]
fn fixtures_match_golden_output() {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name
            .strip_suffix(".wat")
            .filter(|s| !s.ends_with(".golden"))
        else {
            continue;
        };
        seen += 1;
        let input = wat::parse_file(&path).unwrap();
        let out = wasmgrind_patch::refresh_bounds(&input).unwrap();
        validate(&out);
        let text = wasmprinter::print_bytes(&out).unwrap();
        let golden = dir().join(format!("{stem}.golden.wat"));
        common::check_golden(&text, &golden, &format!("refreshed {name}"));
    }
    assert!(seen >= 2, "the fixtures are missing");
}

#[test]
fn modules_without_checked_operations_come_back_unchanged() {
    for text in [
        // Bulk operations on a memory that is not shared: no other thread grows it.
        r#"(module (memory 1) (func (param i32) (memory.fill (local.get 0) (i32.const 0) (i32.const 4))))"#,
        // A shared memory, but only plain loads and stores.
        r#"(module (import "env" "memory" (memory 1 2 shared))
             (func (param i32) (i32.store (local.get 0) (i32.load (local.get 0)))))"#,
        // No code at all.
        r#"(module (import "env" "memory" (memory 1 2 shared)))"#,
    ] {
        let wasm = wat::parse_str(text).unwrap();
        assert_eq!(
            wasmgrind_patch::refresh_bounds(&wasm).unwrap(),
            wasm,
            "{text}"
        );
    }
}

#[test]
fn garbage_is_a_parse_error() {
    let err = wasmgrind_patch::refresh_bounds(b"\0asm\x01\0\0\0\x0a\xff").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not a valid WebAssembly module"),
        "{err}"
    );
}

/// Calls the refreshed `ops.wat` on one thread: every operation does what it did before,
/// an access past the memory still traps, and nothing grows the memory.
const SAME_BEHAVIOUR: &str = r#"
const bytes = require('fs').readFileSync(process.argv[1]);
const memory = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
const u8 = new Uint8Array(memory.buffer);
const traps = (f) => { try { f(); return false; } catch (err) { return err instanceof WebAssembly.RuntimeError; } };
u8.fill(9, 100, 110);
e.fill(100, 4);
e.init(200);
e.copy(300, 198, 8);
const out = {
  filled: [...u8.subarray(99, 106)],
  copied: [...u8.subarray(300, 308)],
  notified: e.notify(400),
  fill_past_end: traps(() => e.fill(65530, 7)),
  copy_past_end: traps(() => e.copy(0, 65535, 2)),
  init_past_end: traps(() => e.init(65534)),
  notify_past_end: traps(() => e.notify(65528)),
  fill_to_end: traps(() => e.fill(65530, 6)),
  pages: memory.buffer.byteLength / 65536,
};
console.log(JSON.stringify(out));
"#;

#[test]
fn checked_operations_behave_as_before_on_one_thread() {
    let input = wat::parse_file(dir().join("ops.wat")).unwrap();
    let out = Temp::new("ops", &wasmgrind_patch::refresh_bounds(&input).unwrap());
    let v: serde_json::Value =
        serde_json::from_str(node(SAME_BEHAVIOUR, &[out.path()]).trim()).unwrap();
    assert_eq!(v["filled"], serde_json::json!([0, 0, 0, 0, 0, 9, 9]), "{v}");
    assert_eq!(
        v["copied"],
        serde_json::json!([0, 0, 97, 98, 99, 0, 0, 0]),
        "{v}"
    );
    assert_eq!(v["notified"], 0, "{v}");
    for k in [
        "fill_past_end",
        "copy_past_end",
        "init_past_end",
        "notify_past_end",
    ] {
        assert_eq!(v[k], true, "{k}: {v}");
    }
    assert_eq!(v["fill_to_end"], false, "{v}");
    assert_eq!(v["pages"], 1, "memory.grow 0 must not grow: {v}");
}

/// Thread B computes for a while after its last stack check, then reads a flag and runs
/// operation `op` on the page that thread A grew before it set the flag. V8 handles A's
/// grow in B at B's next stack check, so without `refresh_bounds` B often runs the
/// operation with the old size, and it traps, although plain stores to the page succeed.
fn race_module(op: &str) -> Vec<u8> {
    let work = "(local.set $x (i32.add (i32.mul (local.get $x) (i32.const 31)) (i32.const 7)))\n"
        .repeat(3000);
    wat::parse_str(format!(
        r#"(module
  (import "env" "memory" (memory 1 1000 shared))
  (global $sink (mut i32) (i32.const 0))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "wait_then") (param $flag i32) (param $at i32) (param $len i32)
    (local $x i32)
    (block $done
      (loop $spin
        {work}
        (br_if $done (i32.atomic.load (local.get $flag)))
        (br $spin)))
    (global.set $sink (local.get $x))
    {op})
)"#
    ))
    .unwrap()
}

/// Runs the race of [`race_module`] `runs` times, stopping at the first trap when
/// `until_trap`, and prints how many runs it did and how many trapped.
const RACE: &str = r#"
const { Worker } = require('worker_threads');
const bytes = require('fs').readFileSync(process.argv[1]);
const [runs, untilTrap] = [Number(process.argv[2]), process.argv[3] === 'true'];
const body = `
  const { parentPort, workerData } = require('worker_threads');
  const mod = new WebAssembly.Module(workerData);
  parentPort.on('message', ({ role, memory }) => {
    const e = new WebAssembly.Instance(mod, { env: { memory } }).exports;
    if (role === 'grow') {
      e.grow(20);
      const w = new Int32Array(memory.buffer);
      Atomics.store(w, 64, 1);
      Atomics.notify(w, 64);
      parentPort.postMessage('ok');
    } else {
      try { e.wait_then(256, 10 * 65536, 4096); parentPort.postMessage('ok'); }
      catch (err) { parentPort.postMessage(String(err)); }
    }
  });`;
(async () => {
  const a = new Worker(body, { eval: true, workerData: bytes });
  const b = new Worker(body, { eval: true, workerData: bytes });
  const reply = (w) => new Promise((r) => w.once('message', r));
  let done = 0, trapped = 0;
  while (done < runs && !(untilTrap && trapped > 0)) {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1000, shared: true });
    const rb = reply(b);
    b.postMessage({ role: 'use', memory });
    await new Promise((r) => setTimeout(r, 2));
    const ra = reply(a);
    a.postMessage({ role: 'grow', memory });
    await ra;
    if ((await rb) !== 'ok') trapped++;
    done++;
  }
  console.log(JSON.stringify({ done, trapped }));
  await a.terminate();
  await b.terminate();
})();
"#;

fn race(wasm: &[u8], runs: u32, until_trap: bool) -> (u64, u64) {
    let file = Temp::new("race", wasm);
    let out = node(
        RACE,
        &[file.path(), &runs.to_string(), &until_trap.to_string()],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    (v["done"].as_u64().unwrap(), v["trapped"].as_u64().unwrap())
}

#[test]
fn operations_on_memory_another_thread_grew_do_not_trap() {
    for (name, op) in [
        (
            "memory.fill",
            "(memory.fill (local.get $at) (i32.const 7) (local.get $len))",
        ),
        (
            "memory.copy",
            "(memory.copy (local.get $at) (i32.const 0) (local.get $len))",
        ),
        (
            "memory.atomic.notify",
            "(drop (memory.atomic.notify (local.get $at) (i32.const 1)))",
        ),
    ] {
        let original = race_module(op);
        // The race must happen, or this test could not tell: the original module traps
        // within a few runs (about one run in ten on an idle machine, more under load).
        let (done, trapped) = race(&original, 3000, true);
        assert_eq!(
            trapped, 1,
            "{name}: the original module never trapped in {done} runs, so the race did not \
             happen and this test cannot tell whether refresh_bounds works"
        );
        let refreshed = wasmgrind_patch::refresh_bounds(&original).unwrap();
        validate(&refreshed);
        let (done, trapped) = race(&refreshed, 300, false);
        assert_eq!(
            (done, trapped),
            (300, 0),
            "{name}: the refreshed module trapped in {trapped} of {done} runs"
        );
    }
}
