//! Inputs that a fuzzer found to break the instrumenter: valid modules whose name section
//! is malformed, and function indices near `u32::MAX`, whose renumbering overflowed.

mod common;

use common::*;
use wasmgrind_instrument::{instrument, InstrumentConfig, InstrumentError};

/// A patched module (as far as the instrumenter checks) with two functions that access
/// memory, without a name section. `BODY` is replaced by the second function's body.
const MODULE: &str = r#"
(module
  (import "env" "memory" (memory 1 1 shared))
  (func (param i32) (result i32) local.get 0 i32.load)
  (func BODY)
  (@custom "wasmgrind.patch" "\02\00\00\00\00\00\00\00")
)
"#;

fn module(body: &str) -> Vec<u8> {
    wat(&MODULE.replace("BODY", body))
}

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

/// `wasm` with a custom section `name` of content `payload` appended.
fn with_custom(wasm: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    uleb(&mut content, name.len() as u32);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = wasm.to_vec();
    out.push(0);
    uleb(&mut out, content.len() as u32);
    out.extend_from_slice(&content);
    out
}

/// A name subsection: `id`, its size, `content`.
fn subsection(id: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    uleb(&mut out, content.len() as u32);
    out.extend_from_slice(content);
    out
}

/// A name map: `(index, name bytes)` entries as given, in the given order.
fn name_map(entries: &[(u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    uleb(&mut out, entries.len() as u32);
    for (index, name) in entries {
        uleb(&mut out, *index);
        uleb(&mut out, name.len() as u32);
        out.extend_from_slice(name);
    }
    out
}

/// The custom sections of `wasm`, by name.
fn custom_sections(wasm: &[u8]) -> Vec<(String, Vec<u8>)> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) => {
                Some((c.name().to_string(), c.data().to_vec()))
            }
            _ => None,
        })
        .collect()
}

/// The function names of the output's name section, if it has one.
fn function_names(wasm: &[u8]) -> Option<Vec<(u32, String)>> {
    let (_, data) = custom_sections(wasm)
        .into_iter()
        .find(|(name, _)| name == "name")?;
    let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(&data, 0));
    let mut out = Vec::new();
    for sub in reader {
        if let wasmparser::Name::Function(map) = sub.unwrap() {
            for naming in map {
                let naming = naming.unwrap();
                out.push((naming.index, naming.name.to_string()));
            }
        }
    }
    Some(out)
}

const TRACED_BODY: &str = "(param i32) local.get 0 i32.const 7 i32.store";

#[test]
fn a_malformed_name_section_is_dropped() {
    let valid = module(TRACED_BODY);
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "bad UTF-8",
            subsection(1, &name_map(&[(0, b"load"), (1, b"st\xffre")])),
        ),
        (
            "function names out of order",
            subsection(1, &name_map(&[(1, b"store"), (0, b"load")])),
        ),
        (
            "a truncated subsection",
            // Claims 40 bytes, has 6.
            [vec![1, 40], name_map(&[(0, b"load")])].concat(),
        ),
        (
            "subsections out of order",
            [
                subsection(2, &[0]),
                subsection(1, &name_map(&[(0, b"load")])),
            ]
            .concat(),
        ),
        (
            "local names out of order",
            subsection(
                2,
                &[
                    vec![2],
                    [vec![1], name_map(&[(0, b"p")])].concat(),
                    [vec![0], name_map(&[(0, b"q")])].concat(),
                ]
                .concat(),
            ),
        ),
    ];
    for (what, payload) in cases {
        let input = with_custom(&valid, "name", &payload);
        assert_valid(&input, what);
        for tracing in [true, false] {
            let out = instrument(&input, &config(tracing))
                .unwrap_or_else(|e| panic!("{what}, tracing {tracing}: {e}"));
            assert_valid(&out.wasm, what);
            assert_eq!(
                function_names(&out.wasm),
                None,
                "{what}: the section is dropped"
            );
            assert!(
                out.locations.iter().all(|l| l.func_name.is_none()),
                "{what}: {:?}",
                out.locations
            );
        }
    }
}

#[test]
fn a_well_formed_name_section_is_kept_and_renumbered() {
    let input = with_custom(
        &module(TRACED_BODY),
        "name",
        &subsection(1, &name_map(&[(0, b"load"), (1, b"store")])),
    );
    let out = instrument(&input, &InstrumentConfig::default()).unwrap();
    assert_eq!(
        function_names(&out.wasm),
        Some(vec![(3, "load".to_string()), (4, "store".to_string())])
    );
    assert!(out.locations.iter().all(|l| l.func_name.is_some()));
}

#[test]
fn names_of_functions_that_do_not_exist_are_dropped() {
    // Valid: the name section is not validated, and engines ignore such names. Index
    // u32::MAX - 1 used to overflow when renumbered by +3.
    let input = with_custom(
        &module(TRACED_BODY),
        "name",
        &[
            subsection(
                1,
                &name_map(&[(0, b"load"), (1, b"store"), (u32::MAX - 1, b"ghost")]),
            ),
            subsection(
                2,
                &[
                    vec![2],
                    [vec![0], name_map(&[(0, b"p")])].concat(),
                    [vec![0xfe, 0xff, 0xff, 0xff, 0x0f], name_map(&[(0, b"q")])].concat(),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    assert_valid(&input, "input");
    let out = instrument(&input, &InstrumentConfig::default()).unwrap();
    assert_valid(&out.wasm, "output");
    assert_eq!(
        function_names(&out.wasm),
        Some(vec![(3, "load".to_string()), (4, "store".to_string())])
    );
}

/// `instrument` with memory tracing (functions move up by 3) must fail with
/// `IndexOverflow` for `index`, saying where it appears, when it does not validate its
/// input; with validation (the default) the invalid input is `InvalidInput`.
#[track_caller]
fn assert_overflow(input: &[u8], index: u32, usage_part: &str) {
    let e = instrument(input, &InstrumentConfig::default()).unwrap_err();
    assert!(matches!(e, InstrumentError::InvalidInput(_)), "{e:?}");
    let unchecked = InstrumentConfig {
        validate: false,
        ..InstrumentConfig::default()
    };
    let e = instrument(input, &unchecked).unwrap_err();
    match &e {
        InstrumentError::IndexOverflow {
            space: "function",
            index: i,
            added: 3,
            usage,
        } if *i == index && usage.contains(usage_part) => {}
        _ => panic!("expected IndexOverflow of {index} ({usage_part}), got {e:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&format!("function index {index}")), "{msg}");
    assert!(msg.contains("4294967295"), "{msg}");
    assert!(msg.contains("malformed"), "{msg}");
}

#[test]
fn function_indices_near_u32_max_are_a_named_error() {
    for index in [u32::MAX - 2, u32::MAX - 1, u32::MAX] {
        assert_overflow(
            &module(&format!("call {index}")),
            index,
            "called by function 1 at code offset",
        );
        assert_overflow(
            &module(&format!("return_call {index}")),
            index,
            "called by function 1",
        );
        assert_overflow(
            &module(&format!("ref.func {index} drop")),
            index,
            "`ref.func` in function 1",
        );
    }
    let index = u32::MAX;
    let base = module("");
    let text = |extra: &str| wat(&MODULE.replace("(func BODY)", &format!("(func) {extra}")));
    assert_overflow(
        &text(&format!("(export \"f\" (func {index}))")),
        index,
        "exported as `f`",
    );
    assert_overflow(&text(&format!("(start {index})")), index, "start function");
    assert_overflow(
        &text(&format!(
            "(table 1 funcref) (elem (i32.const 0) func {index})"
        )),
        index,
        "element segment",
    );
    assert_overflow(
        &text(&format!("(global funcref (ref.func {index}))")),
        index,
        "global initializer",
    );
    // Below the overflow, an index out of range is an invalid input as before.
    let e = instrument(&module("call 100"), &InstrumentConfig::default()).unwrap_err();
    assert!(matches!(e, InstrumentError::InvalidInput(_)), "{e:?}");
    // Without memory tracing nothing is renumbered: the invalid input is reported.
    let e = instrument(&module(&format!("call {index}")), &config(false)).unwrap_err();
    assert!(matches!(e, InstrumentError::InvalidInput(_)), "{e:?}");
    instrument(&base, &InstrumentConfig::default()).unwrap();
}

/// A section: `id`, its size, `content`.
fn section(id: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    uleb(&mut out, content.len() as u32);
    out.extend_from_slice(content);
    out
}

#[test]
fn a_function_count_the_function_section_cannot_hold_is_malformed() {
    // The function and code sections declare almost 2^32 functions in a few bytes, and
    // the patch section agrees; the instrumenter must not size its tables by that count.
    let count = u32::MAX - 15;
    let mut functions = Vec::new();
    uleb(&mut functions, count);
    functions.push(0);
    let mut patch = 0u32.to_le_bytes().to_vec();
    patch.extend_from_slice(&count.to_le_bytes());
    // The name section comes first: custom sections may be anywhere.
    let header = with_custom(
        b"\0asm\x01\0\0\0",
        "name",
        &subsection(1, &name_map(&[(0, b"f")])),
    );
    let wasm = [
        header,
        section(1, &[1, 0x60, 0, 0]),
        section(3, &functions),
        // The code section declares as many bodies, and has none.
        section(10, &functions[..functions.len() - 1]),
    ]
    .concat();
    let wasm = with_custom(&wasm, "wasmgrind.patch", &patch);
    for tracing in [true, false] {
        let e = instrument(&wasm, &config(tracing)).unwrap_err();
        assert!(matches!(e, InstrumentError::Malformed(_)), "{e:?}");
        assert!(e.to_string().contains("declares 4294967280"), "{e}");
    }
}
