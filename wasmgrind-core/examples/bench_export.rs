//! The export cost per event, natively: the fast loop for tuning the exporter.
//!
//! ```text
//! cargo run --release -p wasmgrind-core --example bench_export -- [--runs N] [--chunk N] TRACE
//! ```
//!
//! `TRACE` is a trace in Wasmgrind's own format (`trace.wgtrace`, as `node pkg/cli.js run
//! ... --out DIR` writes it; `cargo xtask bench analysis` records the one of
//! `stress::sort_large_array` into `target/bench/sort_large_array/`). The events are fed to
//! an [`Exporter`] in chunks of `--chunk` events (131,072 by default, the runtime's
//! `chunkEvents`), as the runtime's stream does: each chunk gets its dense ids, then its
//! RapidBin words and its STD lines are written from them into fresh buffers. Each phase
//! is timed over all chunks; the figure is the fastest of `--runs` runs (3 by default),
//! in nanoseconds per recorded event, wall-clock and on-CPU (Linux).
//!
//! The runtime runs the same code as wasm32 in the engine, where it is several times
//! slower than native code and where other things are slow (a 64-bit byte swap, for
//! example, has no instruction): `cargo xtask bench runtime` measures it there
//! (`timings.export`). To run this example in V8 as well, build it for
//! `wasm32-wasip1-threads` and run it with Node.js's `node:wasi` (a shared memory of at
//! most 16,384 pages as `env.memory`, the trace's directory preopened).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmgrind_core::location::Location;
use wasmgrind_core::trace::{
    native, rapid_bin, std_text, DenseEvent, Event, ExportOptions, Exporter,
};

/// The time this thread has spent on a CPU: from Linux's `/proc/thread-self/schedstat`,
/// or in WASI from the thread's CPU-time clock; `None` elsewhere.
#[cfg(target_os = "wasi")]
fn cpu_time() -> Option<Duration> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }
    /// WASI's `clockid::thread_cputime_id`.
    const THREAD_CPUTIME: u32 = 3;
    let mut ns = 0u64;
    // SAFETY: the WASI function writes one u64 through the pointer, which is valid.
    let errno = unsafe { clock_time_get(THREAD_CPUTIME, 1, &mut ns) };
    (errno == 0).then(|| Duration::from_nanos(ns))
}

#[cfg(not(target_os = "wasi"))]
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall-clock and on-CPU time of one phase, summed over the chunks.
#[derive(Default, Clone, Copy)]
struct Phase {
    wall: Duration,
    cpu: Duration,
}

impl Phase {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let cpu = cpu_time();
        let start = Instant::now();
        let r = f();
        self.wall += start.elapsed();
        if let (Some(a), Some(b)) = (cpu, cpu_time()) {
            self.cpu += b - a;
        }
        r
    }
}

// Each phase is a function of its own, called once per chunk, as in the runtime: an engine
// that compiles WebAssembly in tiers (V8) optimizes a function that is called again, not
// one long-running call.

#[inline(never)]
fn dense_phase(
    exporter: &mut Exporter,
    events: &[Event],
    dense: &mut Vec<DenseEvent>,
) -> Result<(), wasmgrind_core::trace::FormatError> {
    exporter.dense_into(events, dense)
}

#[inline(never)]
fn rapid_bin_phase(dense: &[DenseEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    rapid_bin::encode_events_into(dense, &mut out);
    out
}

#[inline(never)]
fn std_phase(dense: &[DenseEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    std_text::encode_bytes_into(dense, &mut out);
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runs = 3usize;
    let mut chunk = 131_072usize;
    let mut path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" | "--chunk" => {
                let v = args.next().ok_or(format!("{a} needs a number"))?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("{a} takes a number, got `{v}`"))?;
                if a == "--runs" {
                    runs = n.max(1);
                } else {
                    chunk = n.max(1);
                }
            }
            other if other.starts_with("--") => {
                return Err(format!("unknown argument `{other}`").into())
            }
            p if path.is_none() => path = Some(p.into()),
            p => return Err(format!("one trace only, got a second one: `{p}`").into()),
        }
    }
    let path = path.ok_or(
        "usage: bench_export [--runs N] [--chunk N] TRACE.wgtrace (record one with \
         `node pkg/cli.js run target/guests/stress.wasm sort_large_array --out DIR`)",
    )?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let events: Vec<Event> =
        native::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    drop(bytes);
    // The exporter only copies locations into the metadata: placeholders will do.
    let table_len = events
        .iter()
        .filter_map(|e| e.location)
        .max()
        .map_or(0, |m| m as usize + 1);
    let locations: Vec<Location> = (0..table_len)
        .map(|i| Location {
            func_index: i as u32,
            func_name: None,
            code_offset: 0,
            instr: String::new(),
        })
        .collect();

    let n = events.len() as f64;
    let per = |d: Duration| d.as_secs_f64() * 1e9 / n;
    let mut best: Option<[Phase; 3]> = None;
    for run in 0..runs {
        let mut phases = [Phase::default(); 3];
        let mut exporter = Exporter::new(locations.clone(), ExportOptions::default());
        let mut dense: Vec<DenseEvent> = Vec::new();
        let (mut bin_bytes, mut std_bytes) = (0usize, 0usize);
        for part in events.chunks(chunk) {
            dense.clear();
            phases[0].time(|| dense_phase(&mut exporter, part, &mut dense))?;
            let bin = phases[1].time(|| rapid_bin_phase(&dense));
            let std = phases[2].time(|| std_phase(&dense));
            bin_bytes += bin.len();
            std_bytes += std.len();
        }
        eprintln!(
            "run {run}: dense {:.1} ns/event, RapidBin {:.1}, STD {:.1} (wall; on CPU {:.1}, \
             {:.1}, {:.1}); {bin_bytes} RapidBin bytes, {std_bytes} STD bytes",
            per(phases[0].wall),
            per(phases[1].wall),
            per(phases[2].wall),
            per(phases[0].cpu),
            per(phases[1].cpu),
            per(phases[2].cpu),
        );
        best = Some(match best {
            None => phases,
            Some(b) => std::array::from_fn(|i| Phase {
                wall: b[i].wall.min(phases[i].wall),
                cpu: b[i].cpu.min(phases[i].cpu),
            }),
        });
    }
    let b = best.expect("at least one run");
    println!(
        "{} events in chunks of {chunk}, fastest of {runs} runs, ns/event (wall / on CPU):",
        events.len()
    );
    // Each row: the phases it adds up (the exported formats include the dense ids).
    let rows: [(&str, &[usize]); 5] = [
        ("dense ids", &[0]),
        ("RapidBin words", &[1]),
        ("STD lines", &[2]),
        ("RapidBin (+dense)", &[0, 1]),
        ("STD (+dense)", &[0, 2]),
    ];
    for (name, parts) in rows {
        let wall: Duration = parts.iter().map(|&i| b[i].wall).sum();
        let cpu: Duration = parts.iter().map(|&i| b[i].cpu).sum();
        println!("  {name:<18} {:6.1} / {:6.1}", per(wall), per(cpu));
    }
    Ok(())
}
