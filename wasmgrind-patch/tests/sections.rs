//! The patcher adds items to the type, function, global, export, start and code sections.
//! A valid input may lack some of them: a module whose functions are all imported (its
//! `__wasm_init_tls`, malloc and free are imports, re-exported) has no function and no
//! code section. The patcher must then write those sections itself, in the order the
//! binary format prescribes, so that every index it references exists.

use wasmgrind_patch::{patch, PatchConfig};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// Only imported functions: no function section, no code section.
const IMPORTED_ONLY: &str = r#"
(module
  (import "env" "memory" (memory 17 16384 shared))
  (import "env" "init_tls" (func $init_tls (param i32)))
  (import "env" "malloc" (func $malloc (param i32 i32) (result i32)))
  (import "env" "free" (func $free (param i32 i32 i32)))
  (import "env" "init" (func $init))
  (global $__stack_pointer (mut i32) (i32.const 1048576))
  (global $__tls_base (mut i32) (i32.const 0))
  (global $__tls_size i32 (i32.const 16))
  (global $__tls_align i32 (i32.const 8))
  (global $__heap_base i32 (i32.const 1049904))
  (export "__tls_base" (global $__tls_base))
  (export "__tls_size" (global $__tls_size))
  (export "__tls_align" (global $__tls_align))
  (export "__heap_base" (global $__heap_base))
  (export "__wasm_init_tls" (func $init_tls))
  (export "__wasmgrind_malloc" (func $malloc))
  (export "__wasmgrind_free" (func $free))
  EXTRA
)
"#;

fn module(extra: &str) -> Vec<u8> {
    wat::parse_str(IMPORTED_ONLY.replace("EXTRA", extra)).unwrap()
}

fn validate(wasm: &[u8]) {
    Validator::new_with_features(WasmFeatures::default() | WasmFeatures::THREADS)
        .validate_all(wasm)
        .unwrap_or_else(|e| panic!("the output does not validate: {e}"));
}

/// The ids of the non-custom sections, in order.
fn section_ids(wasm: &[u8]) -> Vec<u8> {
    Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            Payload::CustomSection(_) => None,
            p => p.as_section().map(|(id, _)| id),
        })
        .collect()
}

/// Patches `wasm` with validation on and off; both must give the same valid module.
fn patch_both(wasm: &[u8]) -> Vec<u8> {
    let checked = patch(wasm, &PatchConfig::default()).expect("patch with validation");
    let unchecked = patch(
        wasm,
        &PatchConfig {
            validate: false,
            ..PatchConfig::default()
        },
    )
    .expect("patch without validation");
    assert_eq!(checked, unchecked);
    validate(&checked);
    checked
}

#[test]
fn only_imported_functions_get_a_function_and_a_code_section() {
    let input = module("");
    assert!(
        !section_ids(&input).contains(&10),
        "the input has no code section"
    );
    let out = patch_both(&input);
    // type, import, function, global, export, start, code.
    assert_eq!(section_ids(&out), [1, 2, 3, 6, 7, 8, 10]);
    let text = wasmprinter::print_bytes(&out).unwrap();
    assert!(text.contains("(start $__wasmgrind_start)"), "{text}");
    assert!(
        text.contains(
            r#"(export "__wasmgrind_thread_destroy" (func $__wasmgrind_thread_destroy))"#
        ),
        "{text}"
    );
    // The new functions call the imported allocator and `__wasm_init_tls`.
    assert!(text.contains("call $malloc"), "{text}");
    assert!(text.contains("call $free"), "{text}");
    assert!(text.contains("call $init_tls"), "{text}");
}

#[test]
fn the_new_sections_go_before_the_data_count_and_data_sections() {
    // Without a function of its own the input has data and data count sections but no
    // function or code section; with one, it has all of them.
    let without_code = module(
        r#"(start $init)
           (data (i32.const 2000000) "abc")"#,
    );
    let with_code = module(
        r#"(start $init)
           (data (i32.const 2000000) "abc")
           (func $uses_data_count (data.drop 0))"#,
    );
    assert!(
        section_ids(&with_code).contains(&12),
        "a data count section"
    );
    for input in [without_code, with_code] {
        let out = patch_both(&input);
        let ids = section_ids(&out);
        let code = ids.iter().position(|&i| i == 10).expect("a code section");
        let data = ids.iter().position(|&i| i == 11).expect("a data section");
        let start = ids.iter().position(|&i| i == 8).expect("a start section");
        assert!(start < code && code < data, "{ids:?}");
        assert_eq!(ids.iter().filter(|&&i| i == 8).count(), 1, "{ids:?}");
        let text = wasmprinter::print_bytes(&out).unwrap();
        // The original start function is called first by the patcher's.
        assert!(text.contains("(start $__wasmgrind_start)"), "{text}");
        assert!(text.contains("call $init"), "{text}");
    }
}

#[test]
fn only_imported_functions_with_a_name_section() {
    // wat writes a name section for the `$` names; the new functions are named too.
    let out = patch_both(&module(""));
    let text = wasmprinter::print_bytes(&out).unwrap();
    for name in [
        "$__wasmgrind_start",
        "$__wasmgrind_thread_destroy",
        "$__wasmgrind_lock",
    ] {
        assert!(text.contains(&format!("(func {name} ")), "{name}: {text}");
    }
}
