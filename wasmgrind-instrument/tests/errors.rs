//! One test per named error of `instrument`.

mod common;

use common::*;
use wasmgrind_instrument::{instrument, InstrumentConfig, InstrumentError};

/// `(@custom "wasmgrind.patch" ...)` claiming that no function was injected, for a
/// module with `funcs` functions.
fn patch_section(funcs: u32) -> String {
    let b = funcs.to_le_bytes();
    format!(
        "(@custom \"wasmgrind.patch\" \"\\{:02x}\\{:02x}\\{:02x}\\{:02x}\\00\\00\\00\\00\")",
        b[0], b[1], b[2], b[3]
    )
}

fn err(wasm: &[u8], cfg: &InstrumentConfig) -> InstrumentError {
    match instrument(wasm, cfg) {
        Ok(_) => panic!("instrument succeeded, but an error was expected"),
        Err(e) => e,
    }
}

fn err_default(wat_text: &str) -> InstrumentError {
    err(&wat(wat_text), &InstrumentConfig::default())
}

#[test]
fn malformed_input() {
    let e = err(b"\0asm\x01\0\0\0\x01\x05\x01", &InstrumentConfig::default());
    assert!(matches!(e, InstrumentError::Malformed(_)), "{e:?}");
    assert!(e
        .to_string()
        .contains("not a well-formed WebAssembly module"));
    let e = err(b"not wasm at all", &InstrumentConfig::default());
    assert!(matches!(e, InstrumentError::Malformed(_)), "{e:?}");
}

#[test]
fn component_input() {
    let e = err_default("(component)");
    assert_eq!(e, InstrumentError::Component);
    assert!(e.to_string().contains("core module"));
}

#[test]
fn unpatched_module() {
    let e = err_default("(module (memory 1) (func (param i32) local.get 0 i32.load drop))");
    assert_eq!(e, InstrumentError::NotPatched);
    assert!(e.to_string().contains("run wasmgrind_patch::patch"), "{e}");
}

#[test]
fn already_instrumented_module() {
    // The output of instrument() itself.
    let input = wat(&format!(
        "(module (memory 1) (func (param i32) local.get 0 i32.load drop) {})",
        patch_section(1)
    ));
    // With memory tracing the hook imports give it away first; without, the marker
    // section does.
    for (trace, evidence_part) in [(true, "mem_read"), (false, "wasmgrind.instrument")] {
        let once = instrument(&input, &config(trace)).unwrap();
        for again in [true, false] {
            let e = err(&once.wasm, &config(again));
            assert!(
                matches!(&e, InstrumentError::AlreadyInstrumented { evidence } if evidence.contains(evidence_part)),
                "{e:?}"
            );
            assert!(e.to_string().contains("already instrumented"));
        }
    }
    // A module that imports a memory hook.
    let e = err_default(&format!(
        "(module (import \"wasmgrind\" \"mem_read\" (func (param i32 i32 i32 i32))) {})",
        patch_section(1)
    ));
    assert!(
        matches!(&e, InstrumentError::AlreadyInstrumented { evidence } if evidence.contains("mem_read")),
        "{e:?}"
    );
    // And the value hook of lock recognition.
    let e = err_default(&format!(
        "(module (import \"wasmgrind\" \"mem_atomic_value\" (func (param i32 i32 i64 i64 i32))) {})",
        patch_section(1)
    ));
    assert!(
        matches!(&e, InstrumentError::AlreadyInstrumented { evidence } if evidence.contains("mem_atomic_value")),
        "{e:?}"
    );
    // A located import that already has the location parameter.
    let e = err_default(&format!(
        "(module (import \"wasmgrind\" \"start_lock\" (func (param i32 i32))) {})",
        patch_section(1)
    ));
    assert!(
        matches!(&e, InstrumentError::AlreadyInstrumented { evidence } if evidence.contains("start_lock")),
        "{e:?}"
    );
}

#[test]
fn invalid_patch_section() {
    // Wrong payload length.
    let e = err_default(r#"(module (func) (@custom "wasmgrind.patch" "\01\00\00\00"))"#);
    assert!(
        matches!(&e, InstrumentError::InvalidPatchSection { reason } if reason.contains("exactly 8")),
        "{e:?}"
    );
    // The listed functions are not the last ones.
    let e = err_default(
        r#"(module (func) (func) (@custom "wasmgrind.patch" "\00\00\00\00\01\00\00\00"))"#,
    );
    assert!(
        matches!(&e, InstrumentError::InvalidPatchSection { reason } if reason.contains("last defined functions")),
        "{e:?}"
    );
    // Injected functions cannot be imports.
    let e = err_default(
        r#"(module (import "env" "f" (func)) (@custom "wasmgrind.patch" "\00\00\00\00\01\00\00\00"))"#,
    );
    assert!(
        matches!(e, InstrumentError::InvalidPatchSection { .. }),
        "{e:?}"
    );
    // Twice.
    let e = err_default(&format!(
        "(module (func) {} {})",
        patch_section(1),
        patch_section(1)
    ));
    assert!(
        matches!(&e, InstrumentError::InvalidPatchSection { reason } if reason.contains("twice")),
        "{e:?}"
    );
}

#[test]
fn import_with_wrong_signature() {
    let e = err_default(&format!(
        "(module (import \"wasmgrind\" \"thread_join\" (func (param i64) (result i32))) {})",
        patch_section(1)
    ));
    match &e {
        InstrumentError::ImportSignature {
            name,
            expected,
            found,
        } => {
            assert_eq!(*name, "thread_join");
            assert_eq!(expected, "thread_join(i32) -> i32");
            assert_eq!(found, "thread_join(i64) -> i32");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("wasmgrind.thread_join"));
    // Not a function at all.
    let e = err_default(&format!(
        "(module (import \"wasmgrind\" \"thread_create\" (global i32)) {})",
        patch_section(0)
    ));
    assert!(
        matches!(&e, InstrumentError::ImportSignature { found, .. } if found == "not a function"),
        "{e:?}"
    );
}

#[test]
fn located_import_referenced_other_than_by_call() {
    let import = "(import \"wasmgrind\" \"start_lock\" (func $l (param i32)))";
    let cases = [
        (
            format!(
                "(module {import} (export \"l\" (func $l)) {})",
                patch_section(1)
            ),
            "exported as `l`",
        ),
        (
            format!(
                "(module {import} (table 1 funcref) (elem (i32.const 0) $l) {})",
                patch_section(1)
            ),
            "element segment",
        ),
        (
            format!(
                "(module {import} (elem declare func $l) (func (drop (ref.func $l))) {})",
                patch_section(2)
            ),
            "element segment",
        ),
        (
            format!(
                "(module {import} (global funcref (ref.func $l)) {})",
                patch_section(1)
            ),
            "global initializer",
        ),
    ];
    for (text, usage_part) in cases {
        for trace in [true, false] {
            let e = err(&wat(&text), &config(trace));
            match &e {
                InstrumentError::LocatedImportReferenced { name, usage } => {
                    assert_eq!(*name, "start_lock");
                    assert!(usage.contains(usage_part), "{usage} / {usage_part}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}

#[test]
fn located_import_referenced_by_ref_func_in_code() {
    // A valid module must also declare the reference (which is reported first, see
    // above); without validation the use in code is reported on its own.
    let text = format!(
        "(module (import \"wasmgrind\" \"thread_join\" (func $j (param i32) (result i32))) \
         (func (drop (ref.func $j))) {})",
        patch_section(2)
    );
    let cfg = InstrumentConfig {
        validate: false,
        ..InstrumentConfig::default()
    };
    let e = err(&wat(&text), &cfg);
    assert_eq!(
        e,
        InstrumentError::LocatedImportReferenced {
            name: "thread_join",
            usage: "referenced by `ref.func` in function 1".into()
        }
    );
}

#[test]
fn memory64_with_memory_tracing() {
    let text = format!(
        "(module (memory i64 1) (func (param i64) local.get 0 i32.load drop) {})",
        patch_section(1)
    );
    assert_eq!(err_default(&text), InstrumentError::Memory64);
    // Without memory tracing there is nothing to report.
    instrument_checked(&wat(&text), false, "memory64 without tracing");
}

#[test]
fn second_memory_with_memory_tracing() {
    let text = format!(
        "(module (memory 1) (memory $two 1) (func (param i32) local.get 0 i32.load $two drop) {})",
        patch_section(1)
    );
    match err_default(&text) {
        InstrumentError::MultiMemory {
            func_index, memory, ..
        } => {
            assert_eq!((func_index, memory), (0, 1));
        }
        other => panic!("{other:?}"),
    }
    // Memory 0 alone is fine, and so is the module without memory tracing.
    let ok = format!(
        "(module (memory 1) (memory $two 1) (func (param i32) local.get 0 i32.load drop) {})",
        patch_section(1)
    );
    instrument_checked(&wat(&ok), true, "memory 0 of two");
    instrument_checked(&wat(&text), false, "second memory without tracing");
}

/// A module with one memory and one function `(param i32) (result i32)` whose body is
/// `body` (locals declared by `locals`), plus a patch section listing no function.
fn one_function_module(locals: u32, body: impl FnOnce(&mut wasm_encoder::Function)) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, CustomSection, Function, FunctionSection, MemorySection, MemoryType, Module,
        TypeSection, ValType,
    };
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    module.section(&types);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    module.section(&funcs);
    let mut mems = MemorySection::new();
    mems.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&mems);
    let mut code = CodeSection::new();
    let mut f = Function::new([(locals, ValType::I32)]);
    body(&mut f);
    code.function(&f);
    module.section(&code);
    module.section(&CustomSection {
        name: "wasmgrind.patch".into(),
        data: [1u8, 0, 0, 0, 0, 0, 0, 0].as_slice().into(),
    });
    let wasm = module.finish();
    assert_valid(&wasm, "input");
    wasm
}

const LOAD: wasm_encoder::MemArg = wasm_encoder::MemArg {
    offset: 0,
    align: 2,
    target: wasm_encoder::MemArgTarget::Memory(0),
    ordering: None,
};

#[test]
fn too_many_locals() {
    // One parameter and 49999 locals: the engines' limit of 50000 exactly. The load
    // needs one more local.
    let wasm = one_function_module(49_999, |f| {
        f.instructions().local_get(0).i32_load(LOAD).end();
    });
    assert_eq!(
        err(&wasm, &InstrumentConfig::default()),
        InstrumentError::TooManyLocals {
            func_index: 0,
            locals: 50_001
        }
    );
    instrument_checked(&wasm, false, "many locals without tracing");
}

#[test]
fn function_too_large() {
    // 600000 chained loads: 1.8 MB of input, more than 7.6 MB once every load calls a
    // hook.
    let wasm = one_function_module(0, |f| {
        let mut sink = f.instructions();
        sink.local_get(0);
        for _ in 0..600_000 {
            sink.i32_load(LOAD);
        }
        sink.end();
    });
    match err(&wasm, &InstrumentConfig::default()) {
        InstrumentError::FunctionTooLarge { func_index, size } => {
            assert_eq!(func_index, 0);
            assert!(size > wasmgrind_instrument::MAX_FUNCTION_SIZE);
        }
        other => panic!("{other:?}"),
    }
    instrument_checked(&wasm, false, "large function without tracing");
}

#[test]
fn invalid_input() {
    // `i32.add` with nothing on the stack parses but does not validate.
    let text = format!(
        "(module (memory 1) (func (param i32) local.get 0 i32.load i32.add drop) {})",
        patch_section(1)
    );
    let wasm = wat(&text);
    let e = err(&wasm, &InstrumentConfig::default());
    assert!(matches!(e, InstrumentError::InvalidInput(_)), "{e:?}");
    assert!(e.to_string().contains("not valid WebAssembly"));
    // Without validation the (equally invalid) output is returned as is.
    let cfg = InstrumentConfig {
        validate: false,
        ..InstrumentConfig::default()
    };
    assert!(instrument(&wasm, &cfg).is_ok());
}

/// Sampling adds two globals per sampled code site; past the engines' limit of globals
/// the error says how many and what to do, rather than writing a module no engine takes.
#[test]
fn sampling_past_the_engines_globals_limit_is_refused() {
    use wasm_encoder::{
        CodeSection, ConstExpr, CustomSection, Function, FunctionSection, GlobalSection,
        GlobalType, MemorySection, MemoryType, Module, TypeSection, ValType,
    };
    let build = |globals: u32| {
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut memory = MemorySection::new();
        memory.memory(MemoryType {
            minimum: 1,
            maximum: Some(1),
            memory64: false,
            shared: true,
            page_size_log2: None,
        });
        m.section(&memory);
        let mut g = GlobalSection::new();
        let ty = GlobalType {
            val_type: ValType::I32,
            mutable: false,
            shared: false,
        };
        for _ in 0..globals {
            g.global(ty, &ConstExpr::i32_const(0));
        }
        m.section(&g);
        let mut code = CodeSection::new();
        let mut f = Function::new([]);
        // i32.const 0, i32.load, end
        f.raw([0x41, 0x00, 0x28, 0x02, 0x00, 0x0b]);
        code.function(&f);
        m.section(&code);
        m.section(&CustomSection {
            name: "wasmgrind.patch".into(),
            data: [1u8, 0, 0, 0, 0, 0, 0, 0][..].into(),
        });
        m.finish()
    };
    let cfg = InstrumentConfig {
        sampling: true,
        validate: false,
        ..InstrumentConfig::default()
    };
    // 999,998 globals and the body's two: just at the limit.
    let at_limit = instrument(&build(999_998), &cfg).unwrap();
    assert_valid(&at_limit.wasm, "a module at the limit");
    let e = err(&build(999_999), &cfg);
    assert_eq!(
        e,
        InstrumentError::TooManyGlobals {
            sites: 1,
            globals: 1_000_001
        }
    );
    assert!(e.to_string().contains("instrument without sampling"), "{e}");
    // Without sampling the module gets no globals, and is instrumented.
    let full = InstrumentConfig {
        validate: false,
        ..InstrumentConfig::default()
    };
    instrument(&build(999_999), &full).unwrap();
}
