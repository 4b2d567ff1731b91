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
//! - `analysis [--runs N] [--events N] [TRACE]`: throughput (events per second) and peak
//!   memory of the analyses on a generated trace of 10M events and, if `TRACE` (a saved
//!   trace: `trace.wgtrace`, a directory with `trace.bin` and `trace.json`, or JSON) is
//!   given, on that recorded trace. The measurement is the example
//!   `wasmgrind-core/examples/bench_analysis.rs`, run with `cargo run --release`.
//!
//! Each benchmark owns one section of `BENCHMARKS.md`, delimited by
//! `<!-- bench:<name>:begin -->` and `<!-- bench:<name>:end -->`, and replaces only that
//! section (see [`write_section`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, Result};

const USAGE: &str = "usage: cargo xtask bench transform [--min-time SECS]
       cargo xtask bench runtime [--quick] [--no-record] (--help says what it measures)
       cargo xtask bench analysis [--runs N] [--events N] [TRACE]";

/// Entry point of `cargo xtask bench`.
pub fn run(args: &[String]) -> Result {
    match args.split_first() {
        Some((what, rest)) if what == "transform" => transform(rest),
        Some((what, rest)) if what == "runtime" => crate::bench_runtime::run(rest),
        Some((what, rest)) if what == "analysis" => analysis(rest),
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
            // glibc gives every buffer of a few megabytes a fresh mapping and unmaps it when
            // it is freed, so each patched module would be written into new pages whose
            // faults (measured with perf: more than the patch itself) belong to the host's
            // allocator, not to the transform. The runtime runs the transform in the
            // utility module, whose allocator keeps freed memory; so does the benchmark.
            .env(
                "GLIBC_TUNABLES",
                "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=268435456",
            )
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
         (memory tracing on, input validated; the output is not: the engine validates it \
         when it compiles it);\n\
         - **instrument**: `instrument` alone on the patched bytes;\n\
         - **floor**: wasmparser `Validator::validate_all` plus a re-encoding with \
         `wasm_encoder::reencode::RoundtripReencoder`.\n\n\
         Throughput is input MB (10^6 bytes) per second of the fastest run, out of at \
         least five runs and at least {min_time} s of runs per figure; \
         `transform / floor` and `instrument / floor` are ratios of the throughputs (the \
         targets: at least 0.5 for the transform, and at least 0.75 for the instrumenter, \
         which writes every instruction through wasm-encoder's `Instruction`). The guests \
         carry their DWARF sections, which every column copies as they are, so their \
         ratios are near 1; `wasmgrind_js_bg.wasm`, almost all code, is the demanding one: \
         the instrumenter writes an output 1.75 times the size of the input there. \
         `output / input` compares the instrumented size with the input's. The process \
         keeps freed memory for reuse (`GLIBC_TUNABLES` raises glibc's mmap and trim \
         thresholds to 256 MiB), as the utility module's allocator does in the runtime: \
         with glibc's defaults every module the patcher writes lands in freshly mapped \
         pages, and their page faults took more time than the patch (transform / floor \
         0.38 instead of 0.90 on `basics.wasm`). {js_note}\n\n\
         {table}",
        machine = machine(),
    );
    let path = root.join("BENCHMARKS.md");
    write_section(&path, "transform", &body)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Records the real trace of `stress::sort_large_array` through the CLI (building the
/// guests and `pkg/` when they are missing) into `target/bench/sort_large_array/`, and
/// returns its `trace.wgtrace`.
fn record_sort_large_array(root: &std::path::Path) -> Result<PathBuf> {
    crate::guests::run(&[])?;
    crate::dist::run(&[])?;
    let out = root.join("target/bench/sort_large_array");
    util::run(
        Command::new("node")
            .current_dir(root)
            .args([
                "pkg/cli.js",
                "run",
                "target/guests/stress.wasm",
                "sort_large_array",
                "--out",
            ])
            .arg(&out),
    )?;
    Ok(out.join("trace.wgtrace"))
}

fn analysis(args: &[String]) -> Result {
    let mut pass: Vec<String> = Vec::new();
    let mut trace: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" | "--events" => {
                let v = it.next().ok_or(format!("{a} needs a number"))?;
                v.parse::<u64>()
                    .map_err(|_| format!("{a} takes a number, got `{v}`"))?;
                pass.extend([a.clone(), v.clone()]);
            }
            other if other.starts_with("--") => {
                return Err(format!("unknown argument `{other}`\n{USAGE}").into())
            }
            path if trace.is_none() => {
                // The example runs in the repository root: make the path absolute.
                let path = std::env::current_dir()?.join(path);
                if !path.exists() {
                    return Err(format!("no trace at {}", path.display()).into());
                }
                trace = Some(path);
            }
            other => return Err(format!("more than one trace: `{other}`\n{USAGE}").into()),
        }
    }

    let root = util::root();
    if trace.is_none() {
        trace = Some(record_sort_large_array(&root)?);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let example = [
        "--release",
        "-p",
        "wasmgrind-core",
        "--example",
        "bench_analysis",
    ];
    // Build with visible progress first; the run below captures the output.
    util::run(
        Command::new(&cargo)
            .current_dir(&root)
            .arg("build")
            .args(example),
    )?;
    let load_before = load_average();
    let mut run = Command::new(&cargo);
    run.current_dir(&root)
        .args(["run", "--quiet"])
        .args(example)
        .arg("--")
        .args(&pass);
    if let Some(t) = &trace {
        run.arg(t);
    }
    let table = util::output(&mut run)?;
    let load_after = load_average();
    print!("{table}");

    let date = util::output(Command::new("date").arg("+%Y-%m-%d"))
        .map(|d| format!(" on {}", d.trim()))
        .unwrap_or_default();
    let body = format!(
        "## Analyses\n\n\
         `cargo xtask bench analysis{args}`{date} on {machine}; load average (1, 5, 15 min) \
         {load_before} before and {load_after} after the runs (other work on the machine \
         shares its cores).\n\n\
         The measurement is `wasmgrind-core/examples/bench_analysis.rs` in release mode. \
         The **synthetic** trace is generated deterministically: 32 threads forked and \
         joined by the main thread in waves of about 2M events (thread ids reused from \
         wave to wave); a random thread at each step makes 1 to 8 accesses to its stack \
         (55%), a critical section under one of 16 locks (20%), 1 to 8 reads of a 256 KiB \
         input that the main thread wrote before the forks (15%), an atomic load or \
         read-modify-write of one of 8 counters (8%), or allocates, fills (one bulk \
         write), reads and frees a block of 64 to 4,096 bytes (2%); about one step in \
         20,000 is followed by an unprotected update of a shared word by two threads (the \
         races). A **recorded** trace, if given, is analyzed as read from its file; to \
         measure `stress::sort_large_array`, `cargo xtask bench analysis` without a trace \
         records it with `node pkg/cli.js run target/guests/stress.wasm sort_large_array \
         --out target/bench/sort_large_array` and analyzes its `trace.wgtrace`.\n\n\
         Each figure is the fastest of the runs over the events already in memory. \
         *Wall* is the elapsed time; *CPU* the time the benchmark's thread was on a CPU \
         (Linux's `/proc/thread-self/schedstat`), the better figure on a busy machine. \
         *Peak memory* is measured by a counting global allocator in the benchmark: the \
         most bytes allocated at once during a run, beyond what was allocated before it \
         (the trace itself is not counted; zeroed shadow pages count in full, so it is an \
         upper bound of the resident memory). The target is at least 20M events/s.\n\n\
         {table}",
        args = args.iter().fold(String::new(), |s, a| s + " " + a),
        machine = machine(),
    );
    let path = root.join("BENCHMARKS.md");
    write_section(&path, "analysis", &body)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The load averages of the last 1, 5 and 15 minutes, as `/proc/loadavg` gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "unknown".into())
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
