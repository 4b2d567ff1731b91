//! Instruments every real guest program (`target/guests/*.wasm`, built by
//! `cargo xtask guests`) after patching it, with and without memory tracing, validates
//! the output and counts the hook call sites against an independent classification of
//! the input's instructions.

mod common;

use std::collections::HashMap;

use common::*;
use wasmgrind_core::abi;
use wasmparser::{Operator, Parser, Payload, TypeRef};

fn guests() -> Vec<(String, Vec<u8>)> {
    let hint = "run `cargo xtask guests` first (`cargo xtask test` does it before the tests)";
    built_wasm_files("target/guests", hint)
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// How many access hook call sites (`mem_read`/`mem_write`) and `mem_atomic_begin` call
/// sites an instruction must get, decided from the operator's name alone (independently
/// of the instrumenter's own table).
fn expected_hook_sites(op: &Operator<'_>) -> (u32, u32) {
    let debug = format!("{op:?}");
    let name = debug.split([' ', '{', '(']).next().unwrap();
    match name {
        "MemoryCopy" => (2, 0),
        "MemoryFill" | "MemoryInit" => (1, 0),
        "MemoryAtomicWait32" | "MemoryAtomicWait64" | "MemoryAtomicNotify" => (1, 0),
        // A compare-exchange: a read-modify-write if it exchanged, else an atomic read.
        n if n.contains("AtomicRmw") && n.contains("Cmpxchg") => (2, 1),
        // Any other read-modify-write: one event.
        n if n.contains("AtomicRmw") => (1, 1),
        n if n.contains("Atomic") && (n.contains("Load") || n.contains("Store")) => (1, 1),
        n if n.contains("Load") || n.contains("Store") => (1, 0),
        _ => (0, 0),
    }
}

/// Whether a function of this name belongs to the guest's allocator, which is not traced:
/// std's dlmalloc, Rust's allocator shims and the guest library's calls of them.
fn is_allocator(name: &str) -> bool {
    [
        "dlmalloc",
        "__rust_alloc",
        "__rust_dealloc",
        "__rust_realloc",
        "__rdl_",
        // The guest library's calls of std's allocator (`wasmgrind_guest::alloc::system_*`).
        "system_alloc",
        "system_dealloc",
        "system_realloc",
    ]
    .iter()
    .any(|p| name.contains(p))
}

/// Facts about a module gathered with plain wasmparser.
struct Facts {
    /// Function imports: (module, name), by index.
    func_imports: Vec<(String, String)>,
    /// `(first injected, count)` of the patch section.
    patch: (u32, u32),
    /// Per defined function: its operators' access hook sites.
    hook_sites: Vec<u32>,
    /// Per defined function: its operators' `mem_atomic_begin` sites.
    begin_sites: Vec<u32>,
    /// Function names from the name section, by function index.
    names: HashMap<u32, String>,
    /// Calls (and tail calls) by callee, per defined function.
    calls: Vec<HashMap<u32, u32>>,
    /// For each call of a function, the operator before it (as text).
    calls_preceded_by_const: Vec<HashMap<u32, u32>>,
    /// Number of memory instructions, per defined function.
    memory_instrs: Vec<u32>,
    /// Operator name (`I32Load`, `Call`) of every memory instruction and call, by its
    /// offset from the start of the code section payload.
    op_at: HashMap<u32, String>,
}

fn facts(wasm: &[u8]) -> Facts {
    let mut f = Facts {
        func_imports: Vec::new(),
        patch: (u32::MAX, 0),
        hook_sites: Vec::new(),
        begin_sites: Vec::new(),
        names: HashMap::new(),
        calls: Vec::new(),
        calls_preceded_by_const: Vec::new(),
        memory_instrs: Vec::new(),
        op_at: HashMap::new(),
    };
    let mut code_start = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::ImportSection(s) => {
                for imp in s.into_imports() {
                    let imp = imp.unwrap();
                    if matches!(imp.ty, TypeRef::Func(_)) {
                        f.func_imports.push((imp.module.into(), imp.name.into()));
                    }
                }
            }
            Payload::CustomSection(c) if c.name() == abi::PATCH_SECTION => {
                let d = c.data();
                f.patch = (
                    u32::from_le_bytes(d[0..4].try_into().unwrap()),
                    u32::from_le_bytes(d[4..8].try_into().unwrap()),
                );
            }
            Payload::CodeSectionStart {
                unchecked_range, ..
            } => code_start = unchecked_range.start,
            Payload::CustomSection(c) if c.name() == "name" => {
                let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(
                    c.data(),
                    c.data_offset(),
                ));
                for sub in reader {
                    if let wasmparser::Name::Function(map) = sub.unwrap() {
                        for naming in map {
                            let naming = naming.unwrap();
                            f.names.insert(naming.index, naming.name.to_string());
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let (mut sites, mut begins, mut mem) = (0, 0, 0);
                let mut calls = HashMap::new();
                let mut after_const = HashMap::new();
                let mut prev_const = false;
                for op in body
                    .get_operators_reader()
                    .unwrap()
                    .into_iter_with_offsets()
                {
                    let (op, offset) = op.unwrap();
                    let (s, b) = expected_hook_sites(&op);
                    if s > 0 || matches!(op, Operator::Call { .. } | Operator::ReturnCall { .. }) {
                        let debug = format!("{op:?}");
                        let name = debug.split([' ', '{', '(']).next().unwrap();
                        f.op_at
                            .insert((offset - code_start) as u32, name.to_string());
                    }
                    sites += s;
                    begins += b;
                    mem += u32::from(s > 0);
                    if let Operator::Call { function_index }
                    | Operator::ReturnCall { function_index } = op
                    {
                        *calls.entry(function_index).or_insert(0) += 1;
                        if prev_const {
                            *after_const.entry(function_index).or_insert(0) += 1;
                        }
                    }
                    prev_const = matches!(op, Operator::I32Const { .. });
                }
                f.hook_sites.push(sites);
                f.begin_sites.push(begins);
                f.memory_instrs.push(mem);
                f.calls.push(calls);
                f.calls_preceded_by_const.push(after_const);
            }
            _ => {}
        }
    }
    f
}

const LOCATED: [&str; 6] = [
    "thread_create",
    "thread_join",
    "start_lock",
    "finish_lock",
    "start_unlock",
    "finish_unlock",
];

fn located_import_indices(f: &Facts) -> Vec<u32> {
    (0..f.func_imports.len() as u32)
        .filter(|i| {
            let (m, n) = &f.func_imports[*i as usize];
            m == abi::IMPORT_MODULE && LOCATED.contains(&n.as_str())
        })
        .collect()
}

fn sum_calls(
    per_func: &[HashMap<u32, u32>],
    targets: &[u32],
    funcs: std::ops::Range<usize>,
) -> u32 {
    per_func[funcs]
        .iter()
        .flat_map(|m| targets.iter().map(move |t| m.get(t).copied().unwrap_or(0)))
        .sum()
}

#[test]
fn guests_instrument_validate_and_have_one_hook_site_per_access() {
    for (name, original) in guests() {
        let patched = wasmgrind_patch::patch(&original, &wasmgrind_patch::PatchConfig::default())
            .unwrap_or_else(|e| panic!("{name}: patching failed: {e}"));
        let input = facts(&patched);
        let imports = input.func_imports.len() as u32;
        let (first, count) = input.patch;
        let user_funcs = 0..(first - imports) as usize;
        let all_funcs = 0..input.hook_sites.len();
        assert_eq!(
            first + count,
            imports + input.hook_sites.len() as u32,
            "{name}"
        );
        // The allocator's functions are not traced.
        let traced: Vec<usize> = user_funcs
            .clone()
            .filter(|&i| {
                !input
                    .names
                    .get(&(imports + i as u32))
                    .is_some_and(|n| is_allocator(n))
            })
            .collect();
        let allocator: Vec<usize> = user_funcs.clone().filter(|i| !traced.contains(i)).collect();
        assert!(
            !allocator.is_empty(),
            "{name}: the guest's allocator (dlmalloc) was not found by name"
        );
        let expected_sites: u32 = traced.iter().map(|&i| input.hook_sites[i]).sum();
        let expected_begins: u32 = traced.iter().map(|&i| input.begin_sites[i]).sum();
        let expected_accesses: u32 = traced.iter().map(|&i| input.memory_instrs[i]).sum();
        assert!(
            allocator
                .iter()
                .map(|&i| input.memory_instrs[i])
                .sum::<u32>()
                > 0,
            "{name}: the allocator accesses memory"
        );
        let located = located_import_indices(&input);
        let located_calls = sum_calls(&input.calls, &located, all_funcs.clone());
        assert!(
            expected_sites > 100,
            "{name}: suspiciously few memory instructions"
        );

        for trace in [true, false] {
            let what = format!("{name} (memory tracing {trace})");
            let out = instrument_checked(&patched, trace, &what);
            let output = facts(&out.wasm);
            let read = import_indices(&out.wasm, abi::IMPORT_MODULE, abi::MEM_READ.name);
            let write = import_indices(&out.wasm, abi::IMPORT_MODULE, abi::MEM_WRITE.name);
            let begin = import_indices(&out.wasm, abi::IMPORT_MODULE, abi::MEM_ATOMIC_BEGIN.name);
            if trace {
                assert_eq!((read.len(), write.len(), begin.len()), (1, 1, 1), "{what}");
                // The hooks are the last imports: every defined function moved by 3.
                assert_eq!(read[0], imports, "{what}");
                assert_eq!(write[0], imports + 1, "{what}");
                assert_eq!(begin[0], imports + 2, "{what}");
                assert_eq!(output.patch, (first + 3, count), "{what}");
                let sites = sum_calls(&output.calls, &[read[0], write[0]], all_funcs.clone());
                assert_eq!(sites, expected_sites, "{what}: hook call sites");
                let begins = sum_calls(&output.calls, &[begin[0]], all_funcs.clone());
                assert_eq!(
                    begins, expected_begins,
                    "{what}: mem_atomic_begin call sites"
                );
                // None in the injected functions or the allocator.
                let injected = user_funcs.end..all_funcs.end;
                let hooks = [read[0], write[0], begin[0]];
                assert_eq!(sum_calls(&output.calls, &hooks, injected), 0, "{what}");
                for &i in &allocator {
                    assert_eq!(sum_calls(&output.calls, &hooks, i..i + 1), 0, "{what}");
                }
            } else {
                assert!(
                    read.is_empty() && write.is_empty() && begin.is_empty(),
                    "{what}"
                );
                assert_eq!(output.patch, (first, count), "{what}");
            }
            // Every call of a located import passes a constant location.
            let out_located = located_import_indices(&output);
            assert_eq!(
                out_located, located,
                "{what}: located imports keep their indices"
            );
            assert_eq!(
                sum_calls(&output.calls, &located, all_funcs.clone()),
                located_calls,
                "{what}"
            );
            assert_eq!(
                sum_calls(&output.calls_preceded_by_const, &located, all_funcs.clone()),
                located_calls,
                "{what}: located calls without a constant location"
            );
            // One location per located call and per traced memory instruction.
            let accesses = if trace { expected_accesses } else { 0 };
            assert_eq!(
                out.locations.len() as u32,
                located_calls + accesses,
                "{what}"
            );
            let call_locs = out
                .locations
                .iter()
                .filter(|l| l.instr.starts_with("call ") || l.instr.starts_with("return_call "))
                .count() as u32;
            assert_eq!(call_locs, located_calls, "{what}");
            // Every location points at its instruction in the input's code section.
            let squash = |s: &str| s.replace(['.', '_'], "").to_lowercase();
            for l in &out.locations {
                assert!(
                    l.func_index >= imports && l.func_index < first + count,
                    "{what}: {l:?}"
                );
                assert!(
                    l.func_name.is_some(),
                    "{what}: guests have a name section: {l:?}"
                );
                let op = input
                    .op_at
                    .get(&l.code_offset)
                    .unwrap_or_else(|| panic!("{what}: no instruction at {l:?}"));
                let mnemonic = l.instr.split(' ').next().unwrap();
                assert_eq!(squash(mnemonic), squash(op), "{what}: {l:?}");
            }
        }
    }
}

/// How many `mem_atomic_value` call sites an instruction must get with atomic values on,
/// decided from the operator's name alone.
fn expected_value_sites(op: &Operator<'_>) -> u32 {
    let debug = format!("{op:?}");
    let name = debug.split([' ', '{', '(']).next().unwrap();
    match name {
        // Before and after the wait.
        "MemoryAtomicWait32" | "MemoryAtomicWait64" => 2,
        // Every read-modify-write, the compare-exchange in its `then` branch only.
        n if n.contains("AtomicRmw") => 1,
        n if n.contains("Atomic") && n.contains("Store") => 1,
        _ => 0,
    }
}

/// With atomic values on, every guest validates, the value hook is the fourth hook
/// import, and it is called once per atomic write and twice per wait of the traced
/// functions (none in the allocator or the patcher's functions).
#[test]
fn guests_with_atomic_values_have_one_value_site_per_atomic_write() {
    for (name, original) in guests() {
        let patched = wasmgrind_patch::patch(&original, &wasmgrind_patch::PatchConfig::default())
            .unwrap_or_else(|e| panic!("{name}: patching failed: {e}"));
        let input = facts(&patched);
        let imports = input.func_imports.len() as u32;
        let first = input.patch.0;
        // Expected sites per defined function of the input, counted independently.
        let mut expected = 0u32;
        let mut index = imports;
        for payload in Parser::new(0).parse_all(&patched) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                let traced =
                    index < first && !input.names.get(&index).is_some_and(|n| is_allocator(n));
                if traced {
                    for op in body.get_operators_reader().unwrap() {
                        expected += expected_value_sites(&op.unwrap());
                    }
                }
                index += 1;
            }
        }
        let cfg = wasmgrind_instrument::InstrumentConfig {
            atomic_values: true,
            ..wasmgrind_instrument::InstrumentConfig::default()
        };
        let out = wasmgrind_instrument::instrument(&patched, &cfg)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let value = import_indices(&out.wasm, abi::IMPORT_MODULE, abi::MEM_ATOMIC_VALUE.name);
        assert_eq!(value, vec![imports + 3], "{name}");
        let output = facts(&out.wasm);
        assert_eq!(output.patch.0, first + 4, "{name}");
        let all = 0..output.calls.len();
        assert_eq!(
            sum_calls(&output.calls, &value, all),
            expected,
            "{name}: mem_atomic_value call sites"
        );
        assert!(expected > 0, "{name}: the guest has atomic writes");
    }
}

/// With sampling, every guest validates, has the location table it has without sampling
/// (a split loop's two copies share their locations), and every branch hint of its
/// `metadata.code.branch_hint` section names an `if` of its function, in increasing order.
#[test]
fn sampled_guests_keep_their_locations_and_hint_only_ifs() {
    for (name, original) in guests() {
        let patched = wasmgrind_patch::patch(&original, &wasmgrind_patch::PatchConfig::default())
            .unwrap_or_else(|e| panic!("{name}: patching failed: {e}"));
        let full = wasmgrind_instrument::instrument(&patched, &config(true))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let cfg = wasmgrind_instrument::InstrumentConfig {
            sampling: true,
            ..wasmgrind_instrument::InstrumentConfig::default()
        };
        let out = wasmgrind_instrument::instrument(&patched, &cfg)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_valid(&out.wasm, &name);
        assert_eq!(out.locations, full.locations, "{name}: the location table");
        // The offsets of every `if` of every defined function, from the start of its body.
        let mut ifs: Vec<Vec<u32>> = Vec::new();
        let mut hints: Vec<(u32, Vec<u32>)> = Vec::new();
        let mut func_imports = 0;
        for payload in Parser::new(0).parse_all(&out.wasm) {
            match payload.unwrap() {
                Payload::ImportSection(s) => {
                    for import in s.into_imports() {
                        if let TypeRef::Func(_) = import.unwrap().ty {
                            func_imports += 1;
                        }
                    }
                }
                Payload::CustomSection(c) => {
                    if let wasmparser::KnownCustom::BranchHints(reader) = c.as_known() {
                        assert!(
                            ifs.is_empty(),
                            "{name}: the branch hints must come before the code section"
                        );
                        for f in reader {
                            let f = f.unwrap();
                            let offsets = f.hints.into_iter().map(|h| h.unwrap().func_offset);
                            hints.push((f.func, offsets.collect()));
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let start = body.range().start;
                    let mut ops = body.get_operators_reader().unwrap();
                    let mut at = Vec::new();
                    while !ops.eof() {
                        let pos = ops.original_position();
                        if let Operator::If { .. } = ops.read().unwrap() {
                            at.push((pos - start) as u32);
                        }
                    }
                    ifs.push(at);
                }
                _ => {}
            }
        }
        assert!(
            !hints.is_empty(),
            "{name}: a sampled guest has branch hints"
        );
        for (func, offsets) in &hints {
            let at = &ifs[(func - func_imports) as usize];
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "{name}: function {func}'s hints are not in order"
            );
            for o in offsets {
                assert!(
                    at.binary_search(o).is_ok(),
                    "{name}: function {func}'s hint at {o} names no `if`"
                );
            }
        }
        assert!(
            hints.windows(2).all(|w| w[0].0 < w[1].0),
            "{name}: functions out of order"
        );
    }
}
