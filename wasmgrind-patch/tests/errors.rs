//! One test per [`PatchError`] variant: each builds the smallest module that has the
//! problem and checks the error and the advice in its message.

use wasmgrind_patch::{memory_limits, patch, PatchConfig, PatchError};

/// The fixture with `from` replaced by `to` (which must occur).
fn fixture_with(replacements: &[(&str, &str)]) -> Vec<u8> {
    let mut text = include_str!("fixtures/minimal.wat").to_string();
    for (from, to) in replacements {
        assert!(text.contains(from), "fixture has no `{from}`");
        text = text.replace(from, to);
    }
    wat::parse_str(&text).unwrap()
}

fn patch_default(wasm: &[u8]) -> Result<Vec<u8>, PatchError> {
    patch(wasm, &PatchConfig::default())
}

#[track_caller]
fn assert_message(err: &PatchError, needle: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(needle),
        "message `{msg}` does not mention `{needle}`"
    );
}

#[test]
fn the_fixture_itself_patches() {
    let wasm = fixture_with(&[]);
    let out = patch_default(&wasm).unwrap();
    // One reserved page past __heap_base (1049904 -> 1115440) needs 18 pages.
    assert_eq!(memory_limits(&wasm).unwrap(), (17, 16384));
    assert_eq!(memory_limits(&out).unwrap(), (18, 16384));
}

#[test]
fn garbage_is_a_parse_error() {
    let err = patch_default(b"\0asm\x01\0\0\0\x01\xff").unwrap_err();
    assert!(matches!(err, PatchError::Parse(_)), "{err:?}");
    let err = patch_default(b"hello").unwrap_err();
    assert!(matches!(err, PatchError::Parse(_)), "{err:?}");
}

#[test]
fn component_is_unsupported() {
    let err = patch_default(&wat::parse_str("(component)").unwrap()).unwrap_err();
    assert!(matches!(err, PatchError::Unsupported(_)), "{err:?}");
    assert_message(&err, "core module");
}

#[test]
fn no_memory() {
    let wasm = wat::parse_str("(module)").unwrap();
    assert!(matches!(
        memory_limits(&wasm).unwrap_err(),
        PatchError::NoMemory
    ));
    // The empty module lacks the exports too: one error names all of it.
    let err = patch_default(&wasm).unwrap_err();
    assert!(
        matches!(&err, PatchError::BuildProblems(p) if matches!(p[..], [PatchError::NoMemory, PatchError::MissingLinkerExports { .. }, PatchError::MissingGuestExports(_)])),
        "{err:?}"
    );
    assert_message(&err, "--import-memory");
}

#[test]
fn memory_not_imported() {
    let wasm = fixture_with(&[(
        r#"(import "env" "memory" (memory 17 16384 shared))"#,
        "(memory 17 16384 shared)",
    )]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::MemoryNotImported), "{err:?}");
    assert_message(&err, "--import-memory");
}

#[test]
fn memory_not_shared() {
    let wasm = fixture_with(&[("(memory 17 16384 shared)", "(memory 17 16384)")]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::MemoryNotShared), "{err:?}");
    assert_message(&err, "--shared-memory");
    assert!(matches!(
        memory_limits(&wasm),
        Err(PatchError::MemoryNotShared)
    ));
}

#[test]
fn memory64() {
    let wasm = fixture_with(&[("(memory 17 16384 shared)", "(memory i64 17 16384 shared)")]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::Memory64), "{err:?}");
    assert_message(&err, "wasm32-unknown-unknown");
}

#[test]
fn no_maximum() {
    let wasm = fixture_with(&[("(memory 17 16384 shared)", "(memory 17 shared)")]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::NoMaximum), "{err:?}");
    assert_message(&err, "--max-memory");
}

#[test]
fn multiple_memories() {
    let wasm = fixture_with(&[(
        r#"(import "env" "memory" (memory 17 16384 shared))"#,
        r#"(import "env" "memory" (memory 17 16384 shared)) (memory 1)"#,
    )]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::MultipleMemories(2)), "{err:?}");
}

/// The export lines of the fixture's linker exports, in `LINKER_EXPORTS` order.
const LINKER_EXPORT_LINES: [(&str, &str); 5] = [
    (
        "__heap_base",
        r#"(export "__heap_base" (global $__heap_base))"#,
    ),
    (
        "__tls_size",
        r#"(export "__tls_size" (global $__tls_size))"#,
    ),
    (
        "__tls_align",
        r#"(export "__tls_align" (global $__tls_align))"#,
    ),
    (
        "__tls_base",
        r#"(export "__tls_base" (global $__tls_base))"#,
    ),
    (
        "__wasm_init_tls",
        r#"(export "__wasm_init_tls" (func $__wasm_init_tls))"#,
    ),
];

/// The export lines of the guest library's exports.
const GUEST_EXPORT_LINES: [(&str, &str); 2] = [
    (
        "__wasmgrind_malloc",
        r#"(export "__wasmgrind_malloc" (func $malloc))"#,
    ),
    (
        "__wasmgrind_free",
        r#"(export "__wasmgrind_free" (func $free))"#,
    ),
];

#[test]
fn each_missing_linker_export_names_its_link_argument() {
    for (name, export) in LINKER_EXPORT_LINES {
        let err = patch_default(&fixture_with(&[(export, "")])).unwrap_err();
        assert!(
            matches!(&err, PatchError::MissingLinkerExports { names } if names == &[name]),
            "{name}: {err:?}"
        );
        assert_message(&err, &format!("`{name}` is not exported"));
        assert_message(&err, &format!("--export={name}"));
    }
}

#[test]
fn every_missing_linker_export_is_named_at_once() {
    let removed: Vec<(&str, &str)> = LINKER_EXPORT_LINES.iter().map(|(_, e)| (*e, "")).collect();
    let err = patch_default(&fixture_with(&removed)).unwrap_err();
    let all: Vec<&str> = wasmgrind_core::abi::LINKER_EXPORTS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert!(
        matches!(&err, PatchError::MissingLinkerExports { names } if *names == all),
        "{err:?}"
    );
    let link_args: Vec<&str> = wasmgrind_core::abi::LINKER_EXPORTS
        .iter()
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(
        err.to_string(),
        format!(
            "`__heap_base`, `__tls_size`, `__tls_align`, `__tls_base`, `__wasm_init_tls` are \
             not exported: link with `{}`",
            link_args.join(" ")
        )
    );
}

#[test]
fn missing_guest_exports() {
    for (name, export) in GUEST_EXPORT_LINES {
        let err = patch_default(&fixture_with(&[(export, "")])).unwrap_err();
        assert!(
            matches!(&err, PatchError::MissingGuestExports(n) if n == &[name]),
            "{err:?}"
        );
        assert_message(&err, "wasmgrind-guest");
    }
    let both: Vec<(&str, &str)> = GUEST_EXPORT_LINES.iter().map(|(_, e)| (*e, "")).collect();
    let err = patch_default(&fixture_with(&both)).unwrap_err();
    assert!(
        matches!(&err, PatchError::MissingGuestExports(n) if n == &["__wasmgrind_malloc", "__wasmgrind_free"]),
        "{err:?}"
    );
    assert_message(
        &err,
        "`__wasmgrind_malloc`, `__wasmgrind_free` are not exported",
    );
}

/// A module linked without any of the settings: a memory that is defined, not shared and
/// unbounded, and none of the exports. One error names all of it.
#[test]
fn every_build_problem_is_named_at_once() {
    let mut edits: Vec<(&str, &str)> = vec![(
        r#"(import "env" "memory" (memory 17 16384 shared))"#,
        "(memory 17)",
    )];
    edits.extend(LINKER_EXPORT_LINES.iter().map(|(_, e)| (*e, "")));
    edits.extend(GUEST_EXPORT_LINES.iter().map(|(_, e)| (*e, "")));
    let wasm = fixture_with(&edits);
    let err = patch_default(&wasm).unwrap_err();
    let PatchError::BuildProblems(problems) = &err else {
        panic!("not BuildProblems: {err:?}");
    };
    let variants: Vec<String> = problems
        .iter()
        .map(|p| {
            format!("{p:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        variants,
        [
            "MemoryNotImported",
            "MemoryNotShared",
            "NoMaximum",
            "MissingLinkerExports",
            "MissingGuestExports"
        ]
    );
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(
        msg.starts_with("the module is not built for Wasmgrind; 5 problems: (1) "),
        "{msg}"
    );
    for needle in [
        "--import-memory",
        "--shared-memory",
        "--max-memory",
        "--export=__heap_base",
        "--export=__wasm_init_tls",
        "`__wasmgrind_free`",
        "guests/.cargo/config.toml",
    ] {
        assert_message(&err, needle);
    }
    // The memory alone, as `memory_limits` sees it.
    let err = memory_limits(&wasm).unwrap_err();
    assert!(
        matches!(&err, PatchError::BuildProblems(p) if p.len() == 3),
        "{err:?}"
    );
}

#[test]
fn wrong_export_types() {
    let err = patch_default(&fixture_with(&[(
        r#"(export "__wasmgrind_free" (func $free))"#,
        r#"(export "__wasmgrind_free" (func $tls_value))"#,
    )]))
    .unwrap_err();
    assert!(
        matches!(
            err,
            PatchError::WrongExportType {
                name: "__wasmgrind_free",
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(&err, "__wasmgrind_free(i32, i32, i32)");

    let err = patch_default(&fixture_with(&[(
        r#"(export "__tls_base" (global $__tls_base))"#,
        r#"(export "__tls_base" (global $__tls_size))"#,
    )]))
    .unwrap_err();
    assert!(
        matches!(
            err,
            PatchError::WrongExportType {
                name: "__tls_base",
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(&err, "mutable i32 global");
}

#[test]
fn heap_base_not_constant() {
    let wasm = fixture_with(&[(
        "(global $__heap_base i32 (i32.const 1049904))",
        "(global $__heap_base i32 (i32.add (i32.const 1049000) (i32.const 904)))",
    )]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::HeapBaseNotConstant), "{err:?}");
}

#[test]
fn stack_pointer_found_by_heuristic_without_names() {
    // Without a name, the first mutable, non-exported i32 global is the stack pointer.
    let wasm = fixture_with(&[("(global $__stack_pointer", "(global $sp")]);
    let out = patch_default(&wasm).unwrap();
    let text = wasmprinter::print_bytes(&out).unwrap();
    assert!(text.contains("global.set $sp"), "{text}");
}

#[test]
fn no_stack_pointer() {
    // No name and no candidate: the only mutable globals are exported or __tls_base.
    let wasm = fixture_with(&[
        (
            "(global $__stack_pointer (mut i32) (i32.const 1048576))",
            "",
        ),
        (
            "(global $bump (mut i32) (i32.const 2000000))",
            "(global $bump (mut i32) (i32.const 2000000)) (export \"bump\" (global $bump))",
        ),
    ]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::NoStackPointer), "{err:?}");
    assert_message(&err, "__stack_pointer");
}

#[test]
fn patching_twice_is_refused() {
    let once = patch_default(&fixture_with(&[])).unwrap();
    let err = patch_default(&once).unwrap_err();
    assert!(matches!(err, PatchError::AlreadyPatched), "{err:?}");
    assert_message(&err, "original module");
}

#[test]
fn invalid_stack_size() {
    for size in [0, 100, 4095, 65537] {
        let config = PatchConfig {
            stack_size: size,
            ..Default::default()
        };
        let err = patch(&fixture_with(&[]), &config).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidStackSize(s) if s == size),
            "{err:?}"
        );
    }
}

#[test]
fn memory_too_small_for_the_reserved_page() {
    let wasm = fixture_with(&[("(memory 17 16384 shared)", "(memory 17 17 shared)")]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(
        matches!(
            err,
            PatchError::MemoryTooSmall {
                needed: 18,
                max: 17
            }
        ),
        "{err:?}"
    );
    assert_message(&err, "--max-memory");
}

#[test]
fn invalid_input() {
    // Well-formed but ill-typed: `$free` returns a value it does not declare.
    let wasm = fixture_with(&[(
        "(func $free (param i32 i32 i32))",
        "(func $free (param i32 i32 i32) i32.const 1)",
    )]);
    let err = patch_default(&wasm).unwrap_err();
    assert!(matches!(err, PatchError::InvalidInput(_)), "{err:?}");
}
