//! Throughput of the transform (patch + instrument) against a floor, for
//! `cargo xtask bench transform`, which runs it in release mode:
//!
//! ```text
//! cargo run --release -p wasmgrind-instrument --example bench_transform -- [--min-time SECS] FILE.wasm...
//! ```
//!
//! For every file it measures, on the same input bytes:
//!
//! - **transform**: `wasmgrind_patch::patch` (without its own validation, as the runtime
//!   calls it) followed by `wasmgrind_instrument::instrument` with the default
//!   configuration (memory tracing on, input validated);
//! - **instrument**: `instrument` alone, on the already patched bytes;
//! - **floor**: wasmparser's `Validator::validate_all` plus a re-encoding of the module
//!   with `wasm_encoder::reencode::RoundtripReencoder`: parsing everything once, checking
//!   it and writing it back, the least a validated rewrite can cost.
//!
//! Throughput is input megabytes (10^6 bytes) per second of the fastest iteration (the
//! least disturbed by other processes; the machine may be busy). A file
//! that cannot be patched (a module built without threads, such as the wasm-bindgen
//! output of wasmgrind-js) gets an empty `wasmgrind.patch` section instead, and its
//! transform column measures the instrumenter alone; the row says so.
//!
//! The output is a Markdown table on stdout.

use std::time::{Duration, Instant};

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasmgrind_instrument::{instrument, InstrumentConfig};
use wasmgrind_patch::{patch, PatchConfig};

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_transform: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    let mut min_time = Duration::from_secs(1);
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        if a == "--min-time" {
            let v = args.next().ok_or("--min-time needs a value in seconds")?;
            let secs: f64 = v.parse().map_err(|_| format!("bad --min-time `{v}`"))?;
            min_time = Duration::from_secs_f64(secs);
        } else {
            files.push(a);
        }
    }
    if files.is_empty() {
        return Err("usage: bench_transform [--min-time SECS] FILE.wasm...".into());
    }
    if cfg!(debug_assertions) {
        return Err("run it with --release: debug-build figures mean nothing".into());
    }

    println!("| module | size (KB) | transform (MB/s) | instrument (MB/s) | floor (MB/s) | transform / floor | instrument / floor | output / input | locations |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut total_bytes, mut total_transform, mut total_floor) = (0usize, 0f64, 0f64);
    let mut total_instrument = 0f64;
    let mut notes = Vec::new();
    let patch_config = PatchConfig {
        validate: false,
        ..PatchConfig::default()
    };
    let config = InstrumentConfig::default();
    for file in &files {
        let wasm = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let name = std::path::Path::new(file)
            .file_name()
            .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        let (patched, patchable) = match patch(&wasm, &patch_config) {
            Ok(p) => (p, true),
            Err(e) => {
                notes.push(format!(
                    "`{name}` cannot be patched ({e}); its transform column is the \
                     instrumenter alone, after adding an empty `wasmgrind.patch` section."
                ));
                (with_empty_patch_section(&wasm)?, false)
            }
        };
        let once = instrument(&patched, &config).map_err(|e| format!("{name}: {e}"))?;

        let transform = measure(min_time, || {
            if patchable {
                let p = patch(&wasm, &patch_config).unwrap();
                instrument(&p, &config).unwrap();
            } else {
                instrument(&patched, &config).unwrap();
            }
        });
        let instrument_only = measure(min_time, || {
            instrument(&patched, &config).unwrap();
        });
        let floor = measure(min_time, || floor(&wasm));

        let mb = wasm.len() as f64 / 1e6;
        let ratio = floor.as_secs_f64() / transform.as_secs_f64();
        println!(
            "| {name}{} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
            if patchable { "" } else { " (*)" },
            wasm.len() as f64 / 1e3,
            mb / transform.as_secs_f64(),
            mb / instrument_only.as_secs_f64(),
            mb / floor.as_secs_f64(),
            ratio,
            floor.as_secs_f64() / instrument_only.as_secs_f64(),
            once.wasm.len() as f64 / wasm.len() as f64,
            once.locations.len(),
        );
        total_bytes += wasm.len();
        total_transform += transform.as_secs_f64();
        total_instrument += instrument_only.as_secs_f64();
        total_floor += floor.as_secs_f64();
    }
    let mb = total_bytes as f64 / 1e6;
    println!(
        "| **all** | {:.0} | {:.1} | {:.1} | {:.1} | **{:.2}** | **{:.2}** | | |",
        total_bytes as f64 / 1e3,
        mb / total_transform,
        mb / total_instrument,
        mb / total_floor,
        total_floor / total_transform,
        total_floor / total_instrument,
    );
    for n in notes {
        println!("\n(*) {n}");
    }
    Ok(())
}

/// The floor: validate, then re-encode every section with the round-trip re-encoder.
fn floor(wasm: &[u8]) {
    wasmparser::Validator::new().validate_all(wasm).unwrap();
    let mut module = wasm_encoder::Module::new();
    RoundtripReencoder
        .parse_core_module(&mut module, wasmparser::Parser::new(0), wasm)
        .unwrap();
    std::hint::black_box(module.finish());
}

/// Fastest time of `f`, run until `min_time` has passed (at least 5 times, after one
/// warm-up run).
fn measure(min_time: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || start.elapsed() < min_time {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.into_iter().min().expect("measured at least once")
}

/// `wasm` plus a `wasmgrind.patch` section that lists no injected function.
fn with_empty_patch_section(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut funcs = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::ImportSection(s) => {
                for i in s.into_imports() {
                    let i = i.map_err(|e| e.to_string())?;
                    if matches!(
                        i.ty,
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_)
                    ) {
                        funcs += 1;
                    }
                }
            }
            wasmparser::Payload::FunctionSection(s) => funcs += s.count(),
            _ => {}
        }
    }
    let mut data = funcs.to_le_bytes().to_vec();
    data.extend_from_slice(&0u32.to_le_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id; `encode` writes the size, name and payload
    wasm_encoder::Encode::encode(
        &wasm_encoder::CustomSection {
            name: wasmgrind_core::abi::PATCH_SECTION.into(),
            data: data.into(),
        },
        &mut out,
    );
    Ok(out)
}
