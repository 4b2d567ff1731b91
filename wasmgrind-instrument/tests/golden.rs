//! Golden tests: every `tests/fixtures/*.wat` is instrumented and printed with
//! wasmprinter, followed by its location table, and compared with `tests/golden/`.
//! Run with `BLESS=1` to rewrite the golden files after an intended change.
//!
//! A fixture is instrumented with memory tracing on; its line `;; modes: trace` may name
//! more modes after `trace`, each with a golden file of its own: `notrace` adds
//! `<name>.notrace.wat` with memory tracing off, `values` one named `<name>.values.wat`
//! with the atomic value hook (lock recognition) on, and `sampled` one named
//! `<name>.sampled.wat` with sampling on (`;; modes: trace values notrace`: both).

mod common;

use std::fmt::Write;
use std::fs;

use common::*;

/// What a golden file shows.
#[derive(Clone, Copy)]
enum Mode {
    Trace,
    NoTrace,
    Values,
    Sampled,
}

fn render(fixture: &str, mode: Mode) -> String {
    let path = crate_dir().join("tests/fixtures").join(fixture);
    let input = wat_file(&path);
    assert_valid(&input, fixture);
    let trace = !matches!(mode, Mode::NoTrace);
    let out = if let Mode::Values | Mode::Sampled = mode {
        let cfg = wasmgrind_instrument::InstrumentConfig {
            memory_tracing: true,
            validate: false,
            validate_output: false,
            atomic_values: matches!(mode, Mode::Values),
            sampling: matches!(mode, Mode::Sampled),
        };
        let out = wasmgrind_instrument::instrument(&input, &cfg).unwrap();
        assert_valid(&out.wasm, fixture);
        let checked = wasmgrind_instrument::InstrumentConfig {
            validate: true,
            validate_output: true,
            ..cfg
        };
        assert_eq!(
            wasmgrind_instrument::instrument(&input, &checked).unwrap(),
            out
        );
        out
    } else {
        let out = instrument_checked(&input, trace, fixture);
        // Validating the input and the output changes nothing of a valid module.
        let checked = wasmgrind_instrument::InstrumentConfig {
            validate_output: true,
            ..config(trace)
        };
        let checked = wasmgrind_instrument::instrument(&input, &checked).unwrap();
        assert_eq!(checked, out);
        out
    };
    let mut text = wasmprinter::print_bytes(&out.wasm).unwrap();
    text.push_str(";; locations (id: func_index func_name +code_offset instr)\n");
    for (i, l) in out.locations.iter().enumerate() {
        writeln!(
            text,
            ";; {i}: {} {} +{:#x} {}",
            l.func_index,
            l.func_name.as_deref().unwrap_or("-"),
            l.code_offset,
            l.instr
        )
        .unwrap();
    }
    text
}

#[test]
fn fixtures_match_golden_output() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut fixtures: Vec<String> = fs::read_dir(crate_dir().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wat"))
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty());
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let stem = fixture.trim_end_matches(".wat");
        let source = fs::read_to_string(crate_dir().join("tests/fixtures").join(fixture)).unwrap();
        // The words after `;; modes: trace` on the fixture's modes line.
        let extra: Vec<&str> = source
            .lines()
            .find_map(|l| l.trim().strip_prefix(";; modes: trace"))
            .map(|rest| rest.split_whitespace().collect())
            .unwrap_or_default();
        let mut modes = vec![(Mode::Trace, format!("{stem}.wat"))];
        for word in extra {
            let mode = match word {
                "notrace" => Mode::NoTrace,
                "values" => Mode::Values,
                "sampled" => Mode::Sampled,
                other => panic!("{fixture}: unknown mode `{other}` on its `;; modes:` line"),
            };
            modes.push((mode, format!("{stem}.{word}.wat")));
        }
        for (mode, golden) in modes {
            let actual = render(fixture, mode);
            let path = crate_dir().join("tests/golden").join(&golden);
            if bless {
                fs::write(&path, &actual).unwrap();
                continue;
            }
            match fs::read_to_string(&path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{golden} differs (run with BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}"
                )),
                Err(e) => failures.push(format!(
                    "{golden}: {e} (run with BLESS=1 to create it)\n--- actual\n{actual}"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
