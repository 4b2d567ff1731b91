//! `cargo xtask bench <what>`: benchmarks whose figures go into `BENCHMARKS.md`.
//!
//! - `transform [--min-time SECS]`: throughput of patch + instrument over every guest
//!   (`target/guests/*.wasm`, built first) and the wasm-bindgen module of wasmgrind-js if
//!   it has been built, against a floor of wasmparser validation plus a round-trip
//!   re-encoding of the same bytes. The measurement is the example
//!   `wasmgrind-instrument/examples/bench_transform.rs`, run with `cargo run --release`
//!   (the `cargo xtask` alias builds xtask in debug mode, and timing debug code would be
//!   meaningless); this module only gathers the inputs and writes the report.
//! - `runtime [--quick] [--no-record]`: the slowdown of tracing, the export cost per
//!   event, the peak memory, the 64-thread start, the create+join latency and the page's
//!   smoothness, in Node and Chromium; see `bench_runtime.rs`.
//!
//! Each benchmark owns one section of `BENCHMARKS.md`, delimited by
//! `<!-- bench:<name>:begin -->` and `<!-- bench:<name>:end -->`, and replaces only that
//! section (see [`write_section`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, Result};

const USAGE: &str = "usage: cargo xtask bench transform [--min-time SECS]
       cargo xtask bench runtime [--quick] [--no-record] (--help says what it measures)";

/// Entry point of `cargo xtask bench`.
pub fn run(args: &[String]) -> Result {
    match args.split_first() {
        Some((what, rest)) if what == "transform" => transform(rest),
        Some((what, rest)) if what == "runtime" => crate::bench_runtime::run(rest),
        Some((what, _)) => Err(format!("unknown benchmark `{what}`\n{USAGE}").into()),
        None => Err(USAGE.into()),
    }
}

fn transform(args: &[String]) -> Result {
    let mut min_time = "1".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--min-time" => {
                min_time = it
                    .next()
                    .ok_or("--min-time needs a value in seconds")?
                    .clone();
                min_time
                    .parse::<f64>()
                    .map_err(|_| format!("--min-time takes seconds, got `{min_time}`"))?;
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }

    let root = util::root();
    let mut inputs = crate::guests::build()?;
    inputs.sort();
    if inputs.is_empty() {
        return Err("`cargo xtask guests` produced no guest in target/guests".into());
    }
    let js = wasmgrind_js_module(&root);
    let js_note = match &js {
        Some(p) => format!(
            "The wasm-bindgen module of wasmgrind-js is `{}`.",
            p.strip_prefix(&root).unwrap_or(p).display()
        ),
        None => "The wasm-bindgen module of wasmgrind-js was not found (build it with \
                 `cargo xtask dist`), so it is not measured."
            .to_string(),
    };
    inputs.extend(js);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let example = [
        "--release",
        "-p",
        "wasmgrind-instrument",
        "--example",
        "bench_transform",
    ];
    // Build with visible progress first; the run below captures the output.
    util::run(
        Command::new(&cargo)
            .current_dir(&root)
            .arg("build")
            .args(example),
    )?;
    let table = util::output(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["run", "--quiet"])
            .args(example)
            .arg("--")
            .args(["--min-time", &min_time])
            .args(&inputs),
    )?;
    print!("{table}");

    let body = format!(
        "## Transform: patch + instrument\n\n\
         `cargo xtask bench transform` on {machine}.\n\n\
         For every module, on the same input bytes, in release mode:\n\n\
         - **transform**: `wasmgrind_patch::patch` (its own validation off, as the runtime \
         calls it) then `wasmgrind_instrument::instrument` with the default configuration \
         (memory tracing on, output validated);\n\
         - **instrument**: `instrument` alone on the patched bytes;\n\
         - **floor**: wasmparser `Validator::validate_all` plus a re-encoding with \
         `wasm_encoder::reencode::RoundtripReencoder`.\n\n\
         Throughput is input MB (10^6 bytes) per second of the fastest run, out of at \
         least five runs and at least {min_time} s of runs per figure; \
         `transform / floor` is the ratio of the throughputs (the target is at least 0.5). \
         `output / input` compares the instrumented size with the input's. {js_note}\n\n\
         {table}",
        machine = machine(),
    );
    let path = root.join("BENCHMARKS.md");
    write_section(&path, "transform", &body)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The wasm-bindgen output of wasmgrind-js, if it has been built.
fn wasmgrind_js_module(root: &Path) -> Option<PathBuf> {
    let pkg = root.join("pkg");
    let mut found = Vec::new();
    for dir in [pkg.clone(), pkg.join("node"), pkg.join("web")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "wasm") {
                    found.push(p);
                }
            }
        }
    }
    found.sort();
    if let Some(p) = found.into_iter().next() {
        return Some(p);
    }
    [
        "target/wasmgrind-js/wasm32-unknown-unknown/release/wasmgrind_js.wasm",
        "target/wasm32-unknown-unknown/release/wasmgrind_js.wasm",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.is_file())
}

/// "CPU model (N threads), rustc version".
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = util::output(Command::new("rustc").arg("--version"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "an unknown rustc".into());
    format!("{cpu} ({threads} threads), {rustc}")
}

/// Replaces the section `name` of the Markdown file at `path` (creating the file or the
/// section if needed) with `body`.
pub fn write_section(path: &Path, name: &str, body: &str) -> Result {
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n\n\
             Figures written by `cargo xtask bench <what>`; each benchmark replaces its own \
             section.\n"
            .to_string(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    };
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &old[..b], &old[e + end.len()..])
        }
        (None, None) => format!("{}\n{section}\n", old.trim_end()),
        _ => {
            return Err(format!(
                "{} has a broken `{name}` section (unmatched {begin} / {end}): fix or delete it",
                path.display()
            )
            .into())
        }
    };
    std::fs::write(path, new).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}
