//! Throughput and memory of the analyses, for `cargo xtask bench analysis`, which runs it
//! in release mode:
//!
//! ```text
//! cargo run --release -p wasmgrind-core --example bench_analysis -- [--runs N] [--events N] [TRACE]
//! ```
//!
//! It measures every analysis in [`ANALYSES`] on
//!
//! - a **synthetic trace** of `--events` events (10,000,000 by default), generated
//!   deterministically (see [`synthetic`]): many threads started and joined in waves,
//!   locks, private, lock-protected, shared read-only and atomic accesses, allocations,
//!   bulk writes and a few real races;
//! - the **recorded trace** `TRACE`, if one is given: a file in Wasmgrind's own format
//!   (`WGTRACE`), a RapidBin `trace.bin` with its metadata `trace.json` next to it (or a
//!   directory holding both), or JSON (a `Trace` object or an array of events). RapidBin
//!   has no allocation, read-modify-write or (without `atomics_as_locks`) atomic flag, so
//!   a trace read from it is not quite the recorded one.
//!
//! Each figure is the fastest of `--runs` runs (3 by default) over the events already in
//! memory; events per second is the trace's length divided by that time. Peak memory is
//! measured by a counting global allocator in this binary: the most bytes allocated at
//! once during a run, minus what was allocated before it (the trace itself is not
//! counted). It counts zeroed allocations in full, so it is an upper bound of the
//! resident memory the analysis needs.
//!
//! The output is a Markdown table on stdout, then notes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wasmgrind_core::analysis::deadlock::predict;
use wasmgrind_core::analysis::race::detect_races;
use wasmgrind_core::trace::{rapid_bin, Event, Metadata, Op, Trace};

// ---- peak memory -----------------------------------------------------------------------

/// The system allocator, counting the bytes allocated now and their peak.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---- the analyses ----------------------------------------------------------------------

/// An analysis to time: its name and what it does with a trace, returning a one-line
/// summary of what it found (which also keeps the result alive until it is counted).
type Analysis = (&'static str, fn(&[Event]) -> String);

/// Every analysis this benchmark measures; add a row to measure another one.
const ANALYSES: &[Analysis] = &[
    ("race detection", |events| {
        let races = detect_races(events);
        let seen: u64 = races.iter().map(|r| r.count).sum();
        format!("{} races ({seen} detections)", races.len())
    }),
    ("deadlock prediction", |events| {
        let prediction = predict(events);
        let complete = if prediction.is_complete() {
            ""
        } else {
            " (search limit hit)"
        };
        format!(
            "{} potential deadlocks, {} lock-order edges{complete}",
            prediction.deadlocks.len(),
            prediction.edges.len()
        )
    }),
];

/// One measurement.
struct Row {
    trace: String,
    events: usize,
    analysis: &'static str,
    /// Fastest wall-clock time.
    best: Duration,
    /// Fastest on-CPU time of this thread, if the OS tells it.
    best_cpu: Option<Duration>,
    peak: usize,
    found: String,
}

/// The time this thread has spent on a CPU, from Linux's `/proc/thread-self/schedstat`
/// (nanoseconds); `None` elsewhere. On a busy machine it is the time the analysis
/// really ran, while the wall-clock time also counts the time other processes had the
/// CPU.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Times `run` on `events`: the fastest of `runs` runs, and the peak memory of one.
fn measure(
    trace: &str,
    events: &[Event],
    analysis: &'static str,
    runs: usize,
    run: impl Fn(&[Event]) -> String,
) -> Row {
    let mut best = Duration::MAX;
    let mut best_cpu: Option<Duration> = None;
    let mut peak = 0;
    let mut found = String::new();
    for _ in 0..runs.max(1) {
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let cpu = cpu_time();
        let start = Instant::now();
        found = run(events);
        let wall = start.elapsed();
        if let (Some(a), Some(b)) = (cpu, cpu_time()) {
            best_cpu = Some(best_cpu.map_or(b - a, |c| c.min(b - a)));
        }
        best = best.min(wall);
        peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
        eprintln!(
            "{trace}: {analysis}: {wall:?} (on CPU {:?}), {found}",
            cpu_time().zip(cpu).map(|(b, a)| b - a)
        );
    }
    Row {
        trace: trace.to_string(),
        events: events.len(),
        analysis,
        best,
        best_cpu,
        peak,
        found,
    }
}

// ---- the synthetic trace ---------------------------------------------------------------

/// xorshift64*: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// Threads per wave.
const THREADS: u32 = 32;
/// Locks, each protecting its own 256 bytes of shared data.
const LOCKS: u32 = 16;
const LOCK_BASE: u32 = 0x0010_0000;
const LOCKED_BASE: u32 = 0x0020_0000;
/// Read-only input, written by the main thread before the workers start.
const INPUT_BASE: u32 = 0x0040_0000;
const INPUT_BYTES: u32 = 256 * 1024;
/// Atomic counters and flags.
const ATOMIC_BASE: u32 = 0x0030_0000;
/// A word some threads update without a lock: the races of the trace.
const RACY: u32 = 0x0030_1000;
/// Each thread's stack (hot) and heap (allocations and bulk writes).
const STACK_BASE: u32 = 0x0100_0000;
const HEAP_BASE: u32 = 0x0200_0000;
const PER_THREAD: u32 = 0x1_0000;

/// A deterministic trace of about `len` events: waves of [`THREADS`] workers that the
/// main thread forks and joins (reusing thread ids from wave to wave). Each step, a
/// random worker does one of:
///
/// - 55%: 1 to 8 accesses to its stack (widths 1 to 8, mostly 4 and 8, 2/3 reads);
/// - 20%: a critical section: take one of [`LOCKS`] locks, read and write 1 to 6 words
///   it protects, release it;
/// - 15%: 1 to 8 reads of the shared input;
/// - 8%: an atomic read of a flag, or an atomic read-modify-write of a counter;
/// - 2%: allocate a block of 64 to 4,096 bytes in its heap, fill it (one bulk write),
///   read some of it, free it;
/// - 1 step in 20,000 is followed by an unprotected read-modify-write (plain read, plain
///   write) of a shared word by that worker and another one at the same time: a race.
fn synthetic(len: usize) -> Vec<Event> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut events = Vec::with_capacity(len + 64);
    let push = |events: &mut Vec<Event>, thread: u32, op: Op, loc: u32| {
        events.push(Event::new(thread, op, Some(loc)));
    };
    let read = |addr, width| Op::Read {
        addr,
        width,
        atomic: false,
    };
    let write = |addr, width| Op::Write {
        addr,
        width,
        atomic: false,
    };
    // The main thread writes the input.
    for i in 0..INPUT_BYTES / 64 {
        push(&mut events, 0, write(INPUT_BASE + i * 64, 64), 1);
    }
    let waves = (len / 2_000_000).max(1);
    let per_wave = len / waves;
    for _ in 0..waves {
        let wave_end = (events.len() + per_wave).min(len);
        for t in 1..=THREADS {
            push(&mut events, 0, Op::Fork { child: t }, 2);
        }
        while events.len() < wave_end {
            let t = 1 + rng.below(THREADS);
            let stack = STACK_BASE + t * PER_THREAD;
            let heap = HEAP_BASE + t * PER_THREAD;
            let what = rng.below(1000);
            if what < 550 {
                for _ in 0..1 + rng.below(8) {
                    let width = [1, 2, 4, 4, 4, 8, 8, 8][rng.below(8) as usize];
                    let addr = stack + rng.below(4096 / width) * width;
                    let loc = 100 + rng.below(200);
                    if rng.below(3) == 0 {
                        push(&mut events, t, write(addr, width), loc);
                    } else {
                        push(&mut events, t, read(addr, width), loc);
                    }
                }
            } else if what < 750 {
                let l = rng.below(LOCKS);
                let lock = LOCK_BASE + l * 8;
                let data = LOCKED_BASE + l * 256;
                push(&mut events, t, Op::Request { lock }, 300);
                push(&mut events, t, Op::Acquire { lock }, 300);
                for _ in 0..1 + rng.below(6) {
                    let addr = data + rng.below(64) * 4;
                    let loc = 310 + rng.below(20);
                    push(&mut events, t, read(addr, 4), loc);
                    push(&mut events, t, write(addr, 4), loc + 20);
                }
                push(&mut events, t, Op::Release { lock }, 301);
            } else if what < 900 {
                for _ in 0..1 + rng.below(8) {
                    let addr = INPUT_BASE + rng.below(INPUT_BYTES / 8) * 8;
                    push(&mut events, t, read(addr, 8), 400 + rng.below(10));
                }
            } else if what < 980 {
                let addr = ATOMIC_BASE + rng.below(8) * 4;
                if rng.below(2) == 0 {
                    let op = Op::Read {
                        addr,
                        width: 4,
                        atomic: true,
                    };
                    push(&mut events, t, op, 500);
                } else {
                    push(&mut events, t, Op::Rmw { addr, width: 4 }, 501);
                }
            } else {
                let size = 64 << rng.below(7);
                let addr = heap + rng.below(PER_THREAD / size) * size;
                push(&mut events, t, Op::Alloc { addr, size }, 600);
                push(&mut events, t, write(addr, size), 601);
                for _ in 0..1 + rng.below(4) {
                    let a = addr + rng.below(size / 4) * 4;
                    push(&mut events, t, read(a, 4), 602);
                }
                push(&mut events, t, Op::Free { addr, size }, 603);
            }
            if rng.below(20_000) == 0 {
                // Two threads update the word at about the same time.
                let u = 1 + rng.below(THREADS);
                push(&mut events, t, read(RACY, 4), 700);
                push(&mut events, u, read(RACY, 4), 700);
                push(&mut events, t, write(RACY, 4), 701);
                push(&mut events, u, write(RACY, 4), 701);
            }
        }
        for t in 1..=THREADS {
            push(&mut events, 0, Op::Join { child: t }, 3);
        }
    }
    events
}

// ---- recorded traces -------------------------------------------------------------------

/// The events of the trace at `path` (see the module documentation for the formats).
fn load(path: &Path) -> Result<Vec<Event>, String> {
    let (bin, json) = if path.is_dir() {
        (Some(path.join("trace.bin")), path.join("trace.json"))
    } else if path.extension().is_some_and(|e| e == "json") {
        (None, path.to_path_buf())
    } else {
        let bytes = read(path)?;
        if bytes.starts_with(&wasmgrind_core::trace::native::MAGIC) {
            return wasmgrind_core::trace::native::decode(&bytes)
                .map_err(|e| format!("{}: {e}", path.display()));
        }
        let json = path.with_file_name("trace.json");
        let json = if json.is_file() {
            json
        } else {
            path.with_extension("json")
        };
        (Some(path.to_path_buf()), json)
    };
    let text = String::from_utf8(read(&json)?)
        .map_err(|e| format!("{}: not UTF-8: {e}", json.display()))?;
    match bin {
        None => {
            if let Ok(trace) = serde_json::from_str::<Trace>(&text) {
                return Ok(trace.events);
            }
            serde_json::from_str::<Vec<Event>>(&text).map_err(|e| {
                format!(
                    "{}: neither a trace nor an array of events: {e}",
                    json.display()
                )
            })
        }
        Some(bin) => {
            let metadata =
                Metadata::from_json(&text).map_err(|e| format!("{}: {e}", json.display()))?;
            let dense =
                rapid_bin::decode(&read(&bin)?).map_err(|e| format!("{}: {e}", bin.display()))?;
            metadata
                .resolve(&dense)
                .map_err(|e| format!("{} with {}: {e}", bin.display(), json.display()))
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

// ---- main ------------------------------------------------------------------------------

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_analysis: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut runs = 3usize;
    let mut len = 10_000_000usize;
    let mut trace: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |what: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{what} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{what} takes a number, got `{v}`"))
        };
        match a.as_str() {
            "--runs" => runs = number("--runs")?,
            "--events" => len = number("--events")?,
            _ if a.starts_with("--") => return Err(format!("unknown option `{a}`")),
            _ => trace = Some(PathBuf::from(a)),
        }
    }
    if cfg!(debug_assertions) {
        return Err("run it with --release: debug-build figures mean nothing".into());
    }

    let mut traces: Vec<(String, Vec<Event>)> = Vec::new();
    let start = Instant::now();
    let events = synthetic(len);
    eprintln!(
        "generated {} synthetic events in {:?}",
        events.len(),
        start.elapsed()
    );
    traces.push(("synthetic".to_string(), events));
    let mut notes = Vec::new();
    match &trace {
        Some(path) => {
            let events = load(path)?;
            // The file and the directory it is in (which the CLI's `--out` names).
            let name = path
                .components()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<PathBuf>()
                .display()
                .to_string();
            traces.push((format!("recorded: `{name}`"), events));
        }
        None => notes.push(
            "No recorded trace was given (pass the path of a saved trace of \
             `stress::sort_large_array`), so only the synthetic trace is measured."
                .to_string(),
        ),
    }

    let mut rows = Vec::new();
    for (name, events) in &traces {
        for &(analysis, f) in ANALYSES {
            rows.push(measure(name, events, analysis, runs, f));
        }
    }

    println!(
        "| trace | events | analysis | wall time (s) | events/s (wall) | CPU time (s) | \
         events/s (CPU) | peak memory (MiB) | found |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        let rate = |d: Duration| r.events as f64 / d.as_secs_f64() / 1e6;
        let (cpu, cpu_rate) = match r.best_cpu {
            Some(c) => (
                format!("{:.3}", c.as_secs_f64()),
                format!("{:.1} M", rate(c)),
            ),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "| {} | {} | {} | {:.3} | {:.1} M | {cpu} | {cpu_rate} | {:.1} | {} |",
            r.trace,
            r.events,
            r.analysis,
            r.best.as_secs_f64(),
            rate(r.best),
            r.peak as f64 / (1 << 20) as f64,
            r.found
        );
    }
    for n in notes {
        println!("\n{n}");
    }
    Ok(())
}
