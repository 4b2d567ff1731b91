//! The detectors' cost per event as the runtime pays it, on a recorded trace:
//!
//! ```text
//! cargo run --release -p wasmgrind-core --example bench_stream -- [--runs N] [--chunk N] [--batch] [--findings FILE] TRACE
//! ```
//!
//! `TRACE` is a `trace.wgtrace` (Wasmgrind's own format, as `wasmgrind run --out` writes
//! it). Its events are decoded first (not timed), then fed to the detectors the way the
//! runtime's stream does with every chunk it drains (`Stream::consume` in wasmgrind-js):
//! in chunks of `--chunk` events (131,072 by default, the runtime's `chunkEvents`), each
//! event to [`Analyzer::event`], then the chunk to the lock and fork/join consistency
//! checks. With `--batch`, each chunk goes to [`Analyzer::events`] instead, as in
//! `wasmgrind analyze` (which feeds pieces of 1,048,576 events: pass `--chunk 1048576`).
//! Each of `--runs` runs (5 by default) prints its time per event, wall-clock and on the
//! CPU (Linux's `/proc/thread-self/schedstat`: on a busy machine, the time the detectors
//! really ran); the last line gives their medians. With `--findings FILE`, the findings of
//! the last run are written there as JSON, to compare the detectors' output before and
//! after a change.
//!
//! It also builds for `wasm32-wasip1-threads`, to measure the detectors compiled to
//! WebAssembly as the runtime runs them: run it with Node.js's `node:wasi`, the trace's
//! directory preopened and a shared memory of at most 16,384 pages as `env.memory`.

use std::path::PathBuf;
use std::time::Instant;

use wasmgrind_core::analysis::{Analyzer, Findings};
use wasmgrind_core::trace::{native, Event, ForkJoinChecker, LockChecker};

/// What the runtime's stream does with the detectors for each chunk. A function of its
/// own, called once a chunk, as in the runtime: compiled to WebAssembly, it is then
/// optimized by the engine (which optimizes a function when it is called, not while it
/// runs).
#[inline(never)]
fn consume(
    analyzer: &mut Analyzer,
    locks: &mut LockChecker,
    forks: &mut ForkJoinChecker,
    part: &[Event],
    batch: bool,
) {
    if batch {
        analyzer.events(part);
    } else {
        for e in part {
            analyzer.event(e);
        }
    }
    locks.events(part);
    forks.events(part);
}

/// One pass of the detectors over `events`, chunk by chunk.
fn run(events: &[Event], chunk: usize, batch: bool) -> Findings {
    let mut analyzer = Analyzer::new();
    let mut locks = LockChecker::new();
    let mut forks = ForkJoinChecker::new();
    for part in events.chunks(chunk) {
        consume(&mut analyzer, &mut locks, &mut forks, part, batch);
    }
    std::hint::black_box((locks.result().is_ok(), forks.result().is_ok()));
    analyzer.finish()
}

/// The time this thread has spent on a CPU, in nanoseconds, if Linux tells it.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The median of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Err(e) = main_result() {
        eprintln!("bench_stream: error: {e}");
        std::process::exit(1);
    }
}

fn main_result() -> Result<(), String> {
    let mut runs = 5usize;
    let mut chunk = 131_072usize;
    let mut findings_file: Option<PathBuf> = None;
    let mut batch = false;
    let mut trace: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{what} needs a value"));
        match a.as_str() {
            "--runs" => {
                runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--chunk" => {
                chunk = value("--chunk")?
                    .parse()
                    .map_err(|e| format!("--chunk: {e}"))?
            }
            "--batch" => batch = true,
            "--findings" => findings_file = Some(PathBuf::from(value("--findings")?)),
            _ if a.starts_with("--") => return Err(format!("unknown option `{a}`")),
            _ => trace = Some(PathBuf::from(a)),
        }
    }
    let trace = trace.ok_or("no trace given")?;
    let bytes =
        std::fs::read(&trace).map_err(|e| format!("cannot read {}: {e}", trace.display()))?;
    let events = native::decode(&bytes).map_err(|e| format!("{}: {e}", trace.display()))?;
    drop(bytes);
    let per_event = |ns: f64| ns / events.len().max(1) as f64;
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut findings = Findings::default();
    for i in 0..runs.max(1) {
        let cpu0 = cpu_ns();
        let start = Instant::now();
        findings = run(&events, chunk.max(1), batch);
        let w = per_event(start.elapsed().as_nanos() as f64);
        let c = cpu0.zip(cpu_ns()).map(|(a, b)| per_event((b - a) as f64));
        eprintln!("run {i}: {w:.2} ns/event (on CPU {c:.2?})");
        wall.push(w);
        cpu.extend(c);
    }
    let cpu = if cpu.is_empty() {
        "n/a".to_string()
    } else {
        format!("{:.2}", median(cpu))
    };
    println!(
        "{}: {} events, {} runs: median {:.2} ns/event, on CPU {cpu} ns/event; {} races, {} potential deadlocks",
        trace.display(),
        events.len(),
        wall.len(),
        median(wall),
        findings.races.len(),
        findings.potential_deadlocks.len()
    );
    if let Some(path) = findings_file {
        let json = serde_json::to_string_pretty(&findings).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
