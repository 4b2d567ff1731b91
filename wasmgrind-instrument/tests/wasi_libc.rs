//! What the instrumenter does with wasi-libc: which functions count as its thread
//! internals (their plain accesses are traced as atomic ones) and when the C allocator's
//! entry points are wrapped. The rewrite itself is shown by the golden fixture
//! `wasi_libc.wat`, and the wrappers run in `exec.rs`.

mod common;

use common::*;

/// A wasi-threads module with functions of the given names, each `(param i32)` with one
/// plain load, plus `extra` (more module fields).
fn module(names: &[&str], extra: &str) -> Vec<u8> {
    let mut text = String::from(
        "(module (import \"wasi\" \"thread-spawn\" (func (param i32) (result i32)))\n\
         (import \"env\" \"memory\" (memory 1 1 shared))\n",
    );
    for n in names {
        text.push_str(&format!(
            "(func ${n} (param i32) local.get 0 i32.load drop)\n"
        ));
    }
    text.push_str(extra);
    text.push(')');
    wat(&text)
}

/// The `kind` argument of each `mem_read` call in the output, by the name of the
/// function whose location it is.
fn read_kinds(names: &[&str]) -> Vec<(String, bool)> {
    let input = module(names, "");
    let out = instrument_checked(&input, true, "names module");
    let text = wasmprinter::print_bytes(&out.wasm).unwrap();
    names
        .iter()
        .map(|n| {
            let body = text
                .split(&format!("(func ${n} "))
                .nth(1)
                .unwrap_or_else(|| panic!("no function {n} in\n{text}"));
            let body = body.split("(func ").next().unwrap();
            // An atomic access is bracketed by `mem_atomic_begin` (import 3).
            (n.to_string(), body.contains("call 3"))
        })
        .collect()
}

#[test]
fn the_thread_internals_of_wasi_libc_are_traced_as_atomics() {
    let sync = [
        "__tl_lock",
        "__tl_unlock",
        "__tl_sync",
        "__pthread_exit",
        "__pthread_timedjoin_np",
        "__pthread_rwlock_tryrdlock",
        "pthread_setspecific",
        "__wait",
        "__timedwait_cp",
        "__wasilibc_futex_wait",
        "wasi_thread_start",
        "__wasi_thread_start_C",
        "__wasi_init_tp",
        "__copy_tls",
        "__lock",
        "__ofl_lock",
    ];
    let plain = [
        "user_function",
        "strlen",
        "_start",
        "__main_void",
        "my_pthread_helper",
        "_ZN3std6thread5spawn17h0123456789abcdefE",
    ];
    let names: Vec<&str> = sync.iter().chain(&plain).copied().collect();
    for (name, atomic) in read_kinds(&names) {
        assert_eq!(
            atomic,
            sync.contains(&name.as_str()),
            "{name}: its plain load is {}traced as atomic",
            if atomic { "" } else { "not " }
        );
    }
}

/// The function-name entries of the output's name section.
fn names_of(wasm: &[u8]) -> Vec<String> {
    let text = wasmprinter::print_bytes(wasm).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("(func $"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

const ALLOCATOR: &str = r#"
  (func $malloc (param i32) (result i32) i32.const 0)
  (func $free (param i32))
  (func $user (param i32) (result i32) local.get 0 call $malloc)
"#;

#[test]
fn the_c_allocator_is_wrapped_only_when_the_module_does_not_report_allocations() {
    let wrapped = |wasm: &[u8], trace: bool| {
        let out = instrument_checked(wasm, trace, "allocator module");
        let names = names_of(&out.wasm);
        let hooks = import_indices(&out.wasm, "wasmgrind", "heap_free_unsized").len();
        (
            names
                .iter()
                .filter(|n| n.starts_with("__wasmgrind_wrap_"))
                .count(),
            hooks,
        )
    };
    // A wasi module with a C allocator: both entry points are wrapped.
    assert_eq!(wrapped(&module(&[], ALLOCATOR), true), (2, 1));
    // Without memory tracing, nothing is.
    assert_eq!(wrapped(&module(&[], ALLOCATOR), false), (0, 0));
    // A module that reports its allocations itself (the guest library) gets no wrappers.
    let reporting = module(
        &[],
        &format!("(import \"wasmgrind\" \"heap_alloc\" (func (param i32 i32))) {ALLOCATOR}"),
    );
    assert_eq!(wrapped(&reporting, true), (0, 0));
    // An entry point whose type is not the C one is not wrapped.
    let odd = module(
        &[],
        r#"(func $malloc (param i64) (result i32) i32.const 0)
           (func $free (param i32))"#,
    );
    assert_eq!(wrapped(&odd, true), (1, 1));
    // An imported function named like an entry point has no body to wrap, also when the
    // name section comes before the imports, where engines accept it too (found by `cargo
    // xtask fuzz`: the index arithmetic overflowed).
    let imported = wat(
        r#"(module (import "wasi" "thread-spawn" (func (param i32) (result i32)))
             (import "env" "malloc" (func $malloc (param i32) (result i32)))
             (import "env" "memory" (memory 1 1 shared))
             (func $free (param i32))
             (func $user (param i32) local.get 0 call $malloc drop))"#,
    );
    assert_eq!(wrapped(&imported, true), (1, 1));
    assert_eq!(wrapped(&names_first(&imported), true), (1, 1));
    // Without a name section nothing is recognised.
    let input = module(&[], ALLOCATOR);
    let stripped = strip_names(&input);
    assert_eq!(wrapped(&stripped, true), (0, 0));
}

/// `wasm` with its name section moved to the front, before the import section.
fn names_first(wasm: &[u8]) -> Vec<u8> {
    let (mut names, mut rest) = (Vec::new(), Vec::new());
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let (mut size, mut shift) = (0usize, 0);
        loop {
            let b = wasm[at];
            at += 1;
            size |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = at + size;
        let is_names = id == 0 && wasm[at] == 4 && &wasm[at + 1..at + 5] == b"name";
        (if is_names { &mut names } else { &mut rest }).extend_from_slice(&wasm[start..end]);
        at = end;
    }
    assert!(!names.is_empty(), "the module has a name section");
    [&wasm[..8], &names[..], &rest[..]].concat()
}

/// `wasm` without its name section.
fn strip_names(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.unwrap();
        if let Some((id, range)) = payload.as_section() {
            if let wasmparser::Payload::CustomSection(c) = &payload {
                if c.name() == "name" {
                    continue;
                }
            }
            out.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range.start as usize..range.end as usize],
            });
        }
    }
    out.finish()
}

/// wasi-libc's functions that the run of a std program depends on: their names must
/// be what the instrumenter matches.
const LIBC_SYNC_USED: [&str; 7] = [
    "__tl_lock",
    "__tl_sync",
    "__pthread_create",
    "__pthread_timedjoin_np",
    "__wasi_thread_start_C",
    "wasi_thread_start",
    "__wait",
];

/// Every function name of a module's name section, by index.
fn function_names(wasm: &[u8]) -> std::collections::HashMap<u32, String> {
    let mut out = std::collections::HashMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(c) = payload.unwrap() {
            if let wasmparser::KnownCustom::Name(reader) = c.as_known() {
                for sub in reader {
                    if let wasmparser::Name::Function(map) = sub.unwrap() {
                        for n in map {
                            let n = n.unwrap();
                            out.insert(n.index, n.name.to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

/// For every defined function of `wasm` (an instrumented module): its name and the
/// `kind` arguments of the `mem_read` / `mem_write` calls of its loads and stores (the
/// constant pushed two instructions before the call; bulk instructions left out), with
/// `read` and `write` the hooks' indices.
fn hook_kinds(wasm: &[u8], read: u32, write: u32) -> Vec<(String, Vec<i32>)> {
    let names = function_names(wasm);
    let mut imports = 0;
    let mut out = Vec::new();
    let mut index = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            wasmparser::Payload::ImportSection(s) => {
                for imp in s.into_imports() {
                    if matches!(imp.unwrap().ty, wasmparser::TypeRef::Func(_)) {
                        imports += 1;
                    }
                }
                index = imports;
            }
            wasmparser::Payload::CodeSectionEntry(body) => {
                let mut consts: Vec<i32> = Vec::new();
                let mut kinds = Vec::new();
                for op in body.get_operators_reader().unwrap() {
                    match op.unwrap() {
                        wasmparser::Operator::I32Const { value } => consts.push(value),
                        wasmparser::Operator::Call { function_index }
                            if function_index == read || function_index == write =>
                        {
                            // A load or store passes a constant width before its
                            // kind; a bulk instruction's width is a local.
                            if consts.len() >= 3 {
                                kinds.push(consts[consts.len() - 2]);
                            }
                            consts.clear();
                        }
                        _ => consts.clear(),
                    }
                }
                out.push((names.get(&index).cloned().unwrap_or_default(), kinds));
                index += 1;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn real_wasi_guests_get_their_libc_treated() {
    let hint = "run `cargo xtask guests` first (it builds guests-wasi/ with the stable toolchain)";
    for path in built_wasm_files("target/guests/wasi", hint) {
        let what = path.display().to_string();
        let input = std::fs::read(&path).unwrap();
        let names: Vec<String> = function_names(&input).into_values().collect();
        let plain: Vec<&String> = names
            .iter()
            .filter(|n| !n.starts_with("_ZN") && !n.starts_with("_R"))
            .collect();
        // Every program here spawns threads: wasi-libc's thread internals are linked in,
        // under the names the instrumenter matches.
        for want in LIBC_SYNC_USED.iter().chain(&["malloc", "free"]) {
            assert!(
                names.iter().any(|n| n == want),
                "{what}: no function `{want}`; the module's C-level names are {plain:?}"
            );
        }
        let out = instrument_checked(&input, true, &what);
        let read = import_indices(&out.wasm, "wasmgrind", "mem_read")[0];
        let write = import_indices(&out.wasm, "wasmgrind", "mem_write")[0];
        assert_eq!(
            import_indices(&out.wasm, "wasmgrind", "heap_free_unsized").len(),
            1,
            "{what}"
        );
        let kinds = hook_kinds(&out.wasm, read, write);
        let wrappers: Vec<&str> = kinds
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("__wasmgrind_wrap_"))
            .collect();
        for want in ["malloc", "free"] {
            assert!(wrappers.contains(&want), "{what}: wrappers {wrappers:?}");
        }
        for (name, kinds) in &kinds {
            if LIBC_SYNC_USED.contains(&name.as_str()) {
                // Every load and store of a thread internal is atomic.
                assert!(
                    kinds.iter().all(|&k| k != 0),
                    "{what}: {name} has plain accesses: {kinds:?}"
                );
            }
        }
        // Plain loads and stores are std's and the program's, never a libc thread
        // internal's (`memory.fill` and `memory.copy`, which `pthread_create` uses on
        // the new thread's fresh block, stay plain).
        let plain_in_sync = kinds
            .iter()
            .filter(|(n, k)| {
                (n.starts_with("__pthread_") || n.starts_with("pthread_")) && k.contains(&0)
            })
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>();
        assert!(plain_in_sync.is_empty(), "{what}: {plain_in_sync:?}");
        assert!(
            kinds
                .iter()
                .any(|(n, k)| n.starts_with("_ZN") && k.contains(&0)),
            "{what}: std's own functions keep their plain accesses"
        );
    }
}
