//! The patcher appends the names of its functions and globals to the name section. A
//! name of an index the module does not have (valid: the name section is not validated)
//! names nothing and is dropped, so that the new names, which follow, stay in order and
//! the name section stays well-formed (a fuzzer found the names out of order).

use wasmgrind_patch::{patch, PatchConfig};
use wasmparser::{Name, NameSectionReader, Parser, Payload};

fn uleb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A name subsection with the given map.
fn subsection(id: u8, entries: &[(u32, &str)]) -> Vec<u8> {
    let mut map = Vec::new();
    uleb(&mut map, entries.len() as u32);
    for (index, name) in entries {
        uleb(&mut map, *index);
        uleb(&mut map, name.len() as u32);
        map.extend_from_slice(name.as_bytes());
    }
    let mut out = vec![id];
    uleb(&mut out, map.len() as u32);
    out.extend_from_slice(&map);
    out
}

/// A patchable module without `$` names (so wat writes no name section): 3 functions,
/// 5 globals, the stack pointer first.
const UNNAMED: &str = r#"
(module
  (import "env" "memory" (memory 17 16384 shared))
  (global (mut i32) (i32.const 1048576))
  (global (mut i32) (i32.const 0))
  (global i32 (i32.const 16))
  (global i32 (i32.const 8))
  (global i32 (i32.const 1049904))
  (export "__tls_base" (global 1))
  (export "__tls_size" (global 2))
  (export "__tls_align" (global 3))
  (export "__heap_base" (global 4))
  (export "__wasm_init_tls" (func 0))
  (export "__wasmgrind_malloc" (func 1))
  (export "__wasmgrind_free" (func 2))
  (func (param i32))
  (func (param i32 i32) (result i32) i32.const 0)
  (func (param i32 i32 i32))
)
"#;

/// [`UNNAMED`] with a name section of `payload` appended.
fn with_names(payload: &[u8]) -> Vec<u8> {
    append_names(wat::parse_str(UNNAMED).unwrap(), payload)
}

/// `wasm` with a name section of `payload` appended.
fn append_names(mut wasm: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    uleb(&mut content, 4);
    content.extend_from_slice(b"name");
    content.extend_from_slice(payload);
    wasm.push(0);
    uleb(&mut wasm, content.len() as u32);
    wasm.extend_from_slice(&content);
    wasm
}

/// A decoded name map.
type Names = Vec<(u32, String)>;

/// The function (1) and global (7) name maps of the first name section, decoded
/// completely (a decoding error fails the test).
fn names(wasm: &[u8]) -> (Names, Names) {
    let mut funcs = Vec::new();
    let mut globals = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::CustomSection(c) = payload.unwrap() else {
            continue;
        };
        if c.name() != "name" {
            continue;
        }
        let reader = NameSectionReader::new(wasmparser::BinaryReader::new(c.data(), 0));
        for sub in reader {
            let (out, map) = match sub.expect("a well-formed name section") {
                Name::Function(m) => (&mut funcs, m),
                Name::Global(m) => (&mut globals, m),
                _ => continue,
            };
            for naming in map {
                let naming = naming.expect("well-formed names, in order");
                out.push((naming.index, naming.name.to_string()));
            }
        }
        break;
    }
    (funcs, globals)
}

#[test]
fn names_of_indices_the_module_does_not_have_are_dropped() {
    let payload = [
        subsection(1, &[(1, "malloc"), (3, "ghost"), (u32::MAX, "ghost")]),
        subsection(7, &[(0, "__stack_pointer"), (5, "ghost")]),
    ]
    .concat();
    let out = patch(&with_names(&payload), &PatchConfig::default()).unwrap();
    let (funcs, globals) = names(&out);
    let strings = |v: &[(u32, &str)]| -> Vec<(u32, String)> {
        v.iter().map(|(i, n)| (*i, n.to_string())).collect()
    };
    // The new functions and globals follow the module's 3 functions and 5 globals.
    assert_eq!(
        funcs,
        strings(&[
            (1, "malloc"),
            (3, "__wasmgrind_start"),
            (4, "__wasmgrind_thread_destroy"),
            (5, "__wasmgrind_lock"),
        ])
    );
    assert_eq!(
        globals,
        strings(&[
            (0, "__stack_pointer"),
            (5, "__wasmgrind_stack_base"),
            (6, "__wasmgrind_tls_block"),
        ])
    );
}

#[test]
fn each_name_section_keeps_its_own_names() {
    // A module should have one name section; with two, each is patched on its own (the
    // patcher used to write the last one's names in place of every one).
    let first = [
        subsection(1, &[(1, "malloc")]),
        subsection(7, &[(0, "__stack_pointer")]),
    ]
    .concat();
    let second = subsection(1, &[(2, "free")]);
    let out = patch(
        &append_names(with_names(&first), &second),
        &PatchConfig::default(),
    )
    .unwrap();
    let (funcs, globals) = names(&out);
    let names: Vec<&str> = funcs.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "malloc",
            "__wasmgrind_start",
            "__wasmgrind_thread_destroy",
            "__wasmgrind_lock"
        ]
    );
    assert_eq!(globals[0], (0, "__stack_pointer".to_string()));
}
