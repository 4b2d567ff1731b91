//! `cargo xtask fuzz [--seconds N] [--seed S]`: fuzzes the patcher and the instrumenter.
//!
//! Every input goes through `wasmgrind_patch::patch` (with its validation on and off) and
//! `wasmgrind_instrument::instrument` (on every module the patcher accepts, with memory
//! tracing on, on with sampling, and off, each with its validation on and off). A failure is
//!
//! - a panic (the worker is built with overflow checks, so an overflow is one);
//! - an `Ok` output that does not validate (wasmparser, threads enabled);
//! - an "internal error" (`InvalidOutput`) from either crate;
//! - with the crates' own validation off, an invalid output from a valid input;
//! - a valid input rejected as unreadable (`PatchError::Parse`, `InstrumentError::Malformed`:
//!   only its custom sections can be at fault, and engines ignore those);
//! - a well-formed name section turned into a malformed one (or dropped);
//! - different patched modules with the patcher's validation on and off;
//! - from `wasmgrind_patch::refresh_bounds`, which also sees every input and every
//!   instrumented module: a panic, an invalid output from a valid input, or an error
//!   for a valid input.
//!
//! The inputs come from four sources:
//!
//! 1. **Hand-shaped modules** with the imports and exports the patcher needs, built with
//!    wasm-encoder: their required functions may be imports exported again (so they may
//!    have no function or code section), with a start function and data segments now
//!    and then.
//! 2. **wasm-smith** modules shaped the same way: the generator's `module_shape` imports
//!    a shared memory and some `wasmgrind.*` imports and exports the globals and
//!    functions the patcher needs; the features and limits vary per input.
//!
//!    Both are then spliced with a `__stack_pointer` (a new global named so, an existing
//!    global given the name, or none, for the patcher's heuristic) and a name section
//!    (allocator names among its function names; sometimes malformed). Each item has a
//!    small chance of being missing or of the wrong type, and a quarter of these inputs
//!    also get their patched form mutated before the instrumenter sees it.
//! 3. **Mutated guests**, `target/guests/*.wasm` without their DWARF sections: bytes
//!    flipped, 5-byte LEBs (indices, offsets) and vector counts replaced by interesting
//!    values, sections truncated, duplicated, swapped or removed.
//! 4. **Mutated patched guests**, fed to the instrumenter directly, which they reach with
//!    a `wasmgrind.patch` section that is more or less intact, and mutated wasi-threads
//!    programs (`target/guests/wasi/*.wasm`), which the runtime instruments unpatched.
//!    (Source 3 feeds those to the patcher too, which must refuse them with an error.)
//!
//! Debug builds are too slow to fuzz, so this command builds the worker, which is this
//! binary run as `fuzz --worker`, in the `release-checked` profile (release with overflow
//! checks, see the root `Cargo.toml`) and runs it. It prints the throughput and how many
//! inputs each stage accepted and rejected (by error). One input of each different
//! failure is saved under `target/fuzz/` with a `.txt` that says what failed, and the
//! command exits non-zero. A worker that crashes or hangs (no input may take a minute)
//! is reported too: the input it was working on is generated again from the seed and
//! saved. `cargo xtask fuzz --check FILE...` repeats the checks on saved inputs.
//!
//! Everything is derived from the seed (printed at the start): `--seed S` repeats a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmgrind_core::abi;
use wasmgrind_instrument::{instrument, InstrumentConfig, InstrumentError};
use wasmgrind_patch::{patch, refresh_bounds, PatchConfig, PatchError};

use crate::util::{self, Result};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--seed S]
       cargo xtask fuzz --check FILE.wasm...   (repeat the checks on saved inputs)";

/// The cargo profile of the worker: release with overflow checks.
const PROFILE: &str = "release-checked";

/// Fuzzing time when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// A worker that spends this long on one input is hung.
const HANG: Duration = Duration::from_secs(60);

/// The worker stops after this many different failures (see [`signature`]).
const MAX_FAILURES: usize = 10;

/// Exit code of a worker whose watchdog saw a hang.
const HANG_EXIT: i32 = 3;

/// What the command line asks for.
struct Options {
    seconds: u64,
    seed: Option<u64>,
    /// Inputs to check instead of fuzzing (`--check`).
    check: Vec<String>,
    mode: Mode,
}

enum Mode {
    /// Build the worker and run it (what a user calls).
    Drive,
    /// Fuzz in this process.
    Worker,
    /// Generate input number `case` of the seed again and save it.
    SaveCase(u64),
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut opts = Options {
            seconds: DEFAULT_SECONDS,
            seed: None,
            check: Vec::new(),
            mode: Mode::Drive,
        };
        let mut it = args.iter();
        let number = |flag: &str, v: Option<&String>| -> Result<u64> {
            let v = v.ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            v.parse()
                .map_err(|_| format!("{flag} takes a whole number, got `{v}`\n{USAGE}").into())
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "--seconds" => opts.seconds = number("--seconds", it.next())?,
                "--seed" => opts.seed = Some(number("--seed", it.next())?),
                "--check" => opts.check.extend(it.by_ref().cloned()),
                // Internal: how the command runs its release-checked worker.
                "--worker" => opts.mode = Mode::Worker,
                "--save-case" => opts.mode = Mode::SaveCase(number("--save-case", it.next())?),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
            }
        }
        Ok(opts)
    }
}

/// Entry point of `cargo xtask fuzz`.
pub fn run(args: &[String]) -> Result {
    let opts = Options::parse(args)?;
    match opts.mode {
        Mode::Drive => drive(&opts),
        Mode::Worker => worker(&opts),
        Mode::SaveCase(case) => {
            let seed = opts.seed.ok_or("--save-case needs --seed")?;
            let corpus = Corpus::load(&util::root())?;
            let case_input = generate(seed, case, &corpus);
            let path = save(&format!("crash-{seed}-{case}"), &case_input.bytes, "")?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

/// The directory of saved inputs.
fn fuzz_dir() -> PathBuf {
    util::root().join("target").join("fuzz")
}

/// The guests the fuzzer mutates: `target/guests/*.wasm` (Wasmgrind ABI) and
/// `target/guests/wasi/*.wasm` (wasi-threads programs, which the runtime instruments
/// without patching).
fn guest_files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("target").join("guests");
    let wasm_in = |dir: &Path| -> Vec<PathBuf> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let mut files = wasm_in(&dir);
    files.extend(wasm_in(&dir.join("wasi")));
    files.sort();
    Ok(files)
}

/// Whether `wasm` is a wasi-threads program: it imports `wasi.thread-spawn` or a
/// `wasi_snapshot_preview1` function (the runtime's rule, `moduleAbi`).
fn is_wasi(wasm: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(reader)) => {
                return reader.into_imports().flatten().any(|i| {
                    (i.module == "wasi" && i.name == "thread-spawn")
                        || i.module == "wasi_snapshot_preview1"
                });
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    false
}

/// Builds the worker in the `release-checked` profile and runs it.
fn drive(opts: &Options) -> Result {
    let root = util::root();
    if opts.check.is_empty() && guest_files(&root)?.is_empty() {
        eprintln!("fuzz: no guest in target/guests; building them first");
        crate::guests::build()?;
    }
    let seed = opts.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() ^ u64::from(now.subsec_nanos()) << 20 ^ u64::from(std::process::id())
    });
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    util::run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--profile",
        PROFILE,
        "-p",
        "xtask",
    ]))?;
    let worker = target_dir(&cargo, &root)?.join(PROFILE).join("xtask");
    if !opts.check.is_empty() {
        return util::run(
            Command::new(&worker)
                .args(["fuzz", "--worker", "--check"])
                .args(&opts.check),
        );
    }
    let status = Command::new(&worker)
        .current_dir(&root)
        .args(["fuzz", "--worker", "--seconds"])
        .arg(opts.seconds.to_string())
        .args(["--seed", &seed.to_string()])
        .status()
        .map_err(|e| format!("cannot start the fuzz worker {}: {e}", worker.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        // The worker printed its failures and where it saved them.
        Some(1) => {
            Err("the fuzzer found failures (see above); their inputs are in target/fuzz".into())
        }
        _ => {
            // A crash (abort, stack overflow) or a hang: save the input it was on.
            let what = if status.code() == Some(HANG_EXIT) {
                "hung".to_string()
            } else {
                format!("crashed ({status})")
            };
            let case = std::fs::read(fuzz_dir().join("current-case"))
                .ok()
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| {
                    format!("the fuzz worker {what}, and its current input is unknown")
                })?;
            let saved = util::output(
                Command::new(&worker)
                    .current_dir(&root)
                    .args(["fuzz", "--seed", &seed.to_string(), "--save-case"])
                    .arg(case.to_string()),
            )?;
            Err(format!(
                "the fuzz worker {what} on input {case} of seed {seed}; the input is saved as {}",
                saved.trim()
            )
            .into())
        }
    }
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or the workspace's `target`).
fn target_dir(cargo: &str, root: &Path) -> Result<PathBuf> {
    let meta = util::output(Command::new(cargo).current_dir(root).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ]))?;
    let meta: serde_json::Value = serde_json::from_str(&meta)?;
    let dir = meta["target_directory"]
        .as_str()
        .ok_or("`cargo metadata` names no target_directory")?;
    Ok(PathBuf::from(dir))
}

// --- the worker ----------------------------------------------------------------------

/// The message of the last panic, recorded by the panic hook instead of printed.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
/// The input being checked, and when its check started (ms since the worker started).
static CURRENT_CASE: AtomicU64 = AtomicU64::new(0);
static CASE_STARTED_MS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Runs `f`, turning a panic into `Err(message)`.
fn guarded<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Whether arithmetic overflow panics in this build.
fn overflow_checks_on() -> bool {
    let max = std::hint::black_box(u32::MAX);
    let one = std::hint::black_box(1u32);
    std::panic::catch_unwind(|| max + one).is_err()
}

fn worker(opts: &Options) -> Result {
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
    }));
    let checks = overflow_checks_on();
    // The hook stays: the panics of the fuzzed code are recorded, not printed.
    if !checks {
        return Err(format!(
            "the fuzz worker was built without overflow checks: build it with `--profile \
             {PROFILE}` (as `cargo xtask fuzz` does)"
        )
        .into());
    }
    if cfg!(debug_assertions) {
        eprintln!("fuzz: warning: a debug build of the worker is slow; use --profile {PROFILE}");
    }
    if !opts.check.is_empty() {
        return check_files(&opts.check);
    }
    let seed = opts.seed.ok_or("the fuzz worker needs --seed")?;
    let root = util::root();
    let corpus = Corpus::load(&root)?;
    std::fs::create_dir_all(fuzz_dir())?;
    let current = std::fs::File::create(fuzz_dir().join("current-case"))?;
    eprintln!(
        "fuzz: seed {seed}, {} s, {} guests from target/guests ({} for the instrumenter as they \
         are: patched, or wasi-threads programs), overflow checks on",
        opts.seconds,
        corpus.guests.len(),
        corpus.patched.len()
    );

    let started = Instant::now();
    std::thread::spawn(move || watchdog(started));
    let deadline = started + Duration::from_secs(opts.seconds);
    let mut stats = Stats::default();
    // Failures by signature: (count, a description with the saved input).
    let mut failures: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut next_report = started + Duration::from_secs(10);
    let mut case = 0u64;
    while Instant::now() < deadline && failures.len() < MAX_FAILURES {
        case += 1;
        current.write_all_at(&case.to_le_bytes(), 0)?;
        CURRENT_CASE.store(case, Ordering::Relaxed);
        CASE_STARTED_MS.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let input = match guarded(|| generate(seed, case, &corpus)) {
            Ok(input) => input,
            Err(panic) => {
                // A bug of the generator (wasm-smith's or ours), not of the crates.
                let what = format!("generating input {case} panicked: {panic}");
                eprintln!("fuzz: FAILURE: {what}");
                failures.entry(signature(&what)).or_insert((0, what)).0 += 1;
                continue;
            }
        };
        stats.inputs += 1;
        *stats.sources.entry(input.source.name()).or_default() += 1;
        let t = Instant::now();
        if let Err(failure) = check(&input, &mut stats) {
            let entry = failures
                .entry(signature(&failure.what))
                .or_insert((0, String::new()));
            entry.0 += 1;
            if entry.0 > 1 {
                // Seen before: counted, not saved again.
                continue;
            }
            let name = format!("{}-{seed}-{case}", input.source.name());
            let mut text = format!(
                "{}\n\ninput {case} of `cargo xtask fuzz --seed {seed}`, from {}\n",
                failure.what,
                input.source.describe()
            );
            if let Some(derived) = &failure.stage_input {
                let _ = writeln!(
                    text,
                    "the failing stage's own input is {name}.stage.wasm (derived from {name}.wasm)"
                );
                save(&format!("{name}.stage"), derived, "")?;
            }
            let path = save(&name, &input.bytes, &text)?;
            eprintln!(
                "fuzz: FAILURE: {}\n  input saved to {}",
                failure.what,
                path.display()
            );
            entry.1 = format!("{}\n    input: {}", failure.what, path.display());
        }
        let took = t.elapsed();
        if took > stats.slowest.0 {
            stats.slowest = (took, format!("input {case} ({})", input.source.name()));
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(10);
            eprintln!("fuzz: {}", stats.progress(started.elapsed()));
        }
    }
    CASE_STARTED_MS.store(u64::MAX, Ordering::Relaxed);
    let total: u64 = failures.values().map(|(n, _)| n).sum();
    print!("{}", stats.summary(started.elapsed(), seed, total));
    for (n, what) in failures.values() {
        println!("fuzz:   {n} x {what}");
    }
    std::io::stdout().flush()?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{total} failing inputs, {} different failures; one input of each is saved in \
             target/fuzz",
            failures.len()
        )
        .into())
    }
}

/// What makes two failures the same: the message without its numbers (indices, offsets,
/// input numbers; every word that starts with a digit) and without the stage's input.
fn signature(what: &str) -> String {
    let mut out = String::with_capacity(what.len());
    let mut word = String::new();
    for c in what.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() {
            word.push(c);
            continue;
        }
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(&word);
        }
        word.clear();
        out.push(c);
    }
    out.replace(" the mutated patched input", " X")
        .replace(" the patched input", " X")
        .replace(" the input", " X")
}

/// Runs the checks of the fuzzer on saved inputs: a module with a `wasmgrind.patch`
/// section is instrumented, any other is patched and then instrumented.
fn check_files(files: &[String]) -> Result {
    let mut failed = 0;
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let patched = wasmparser::Parser::new(0).parse_all(&bytes).any(|p| {
            matches!(p, Ok(wasmparser::Payload::CustomSection(c)) if c.name() == abi::PATCH_SECTION)
        });
        let case = Case {
            source: if patched {
                Source::PatchedGuest
            } else {
                Source::Guest
            },
            bytes,
            mutate_patched: None,
        };
        match check(&case, &mut Stats::default()) {
            Ok(()) => println!("fuzz: {file}: ok"),
            Err(f) => {
                failed += 1;
                println!("fuzz: {file}: FAILURE: {}", f.what);
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} inputs fail", files.len()).into());
    }
    Ok(())
}

/// Ends the process if one input takes longer than [`HANG`].
fn watchdog(started: Instant) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let since = CASE_STARTED_MS.load(Ordering::Relaxed);
        if since == u64::MAX {
            continue;
        }
        let now = started.elapsed().as_millis() as u64;
        if now.saturating_sub(since) > HANG.as_millis() as u64 {
            eprintln!(
                "fuzz: FAILURE: input {} has been running for more than {} s",
                CURRENT_CASE.load(Ordering::Relaxed),
                HANG.as_secs()
            );
            std::process::exit(HANG_EXIT);
        }
    }
}

/// Saves `bytes` as `target/fuzz/<name>.wasm` and `text` (if any) beside it.
fn save(name: &str, bytes: &[u8], text: &str) -> Result<PathBuf> {
    let dir = fuzz_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !text.is_empty() {
        let txt = dir.join(format!("{name}.txt"));
        std::fs::write(&txt, text).map_err(|e| format!("cannot write {}: {e}", txt.display()))?;
    }
    Ok(path)
}

// --- statistics ----------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    inputs: u64,
    sources: BTreeMap<&'static str, u64>,
    patch_ok: u64,
    patch_rejected: BTreeMap<String, u64>,
    instrument_ok: u64,
    instrument_rejected: BTreeMap<String, u64>,
    refresh_ok: u64,
    refresh_rejected: u64,
    slowest: (Duration, String),
}

impl Stats {
    fn progress(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        format!(
            "{:.0} s: {} inputs ({:.0}/s); patch accepted {} rejected {}; instrument accepted {} \
             rejected {}",
            secs,
            self.inputs,
            self.inputs as f64 / secs,
            self.patch_ok,
            self.patch_rejected.values().sum::<u64>(),
            self.instrument_ok,
            self.instrument_rejected.values().sum::<u64>(),
        )
    }

    fn summary(&self, elapsed: Duration, seed: u64, failures: u64) -> String {
        let secs = elapsed.as_secs_f64();
        let list = |m: &BTreeMap<String, u64>| {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1));
            v.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sources = self
            .sources
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "fuzz: seed {seed}: {} inputs in {secs:.1} s, {:.0} inputs/s ({sources})\n\
             fuzz:   patch:      {} accepted, {} rejected ({})\n\
             fuzz:   instrument: {} accepted, {} rejected ({}) [tracing on and off]\n\
             fuzz:   refresh_bounds: {} accepted, {} rejected [inputs and instrumented modules]\n\
             fuzz:   slowest input: {:.0} ms, {}\n\
             fuzz:   failures: {failures}\n",
            self.inputs,
            self.inputs as f64 / secs,
            self.patch_ok,
            self.patch_rejected.values().sum::<u64>(),
            list(&self.patch_rejected),
            self.instrument_ok,
            self.instrument_rejected.values().sum::<u64>(),
            list(&self.instrument_rejected),
            self.refresh_ok,
            self.refresh_rejected,
            self.slowest.0.as_secs_f64() * 1000.0,
            self.slowest.1,
        )
    }
}

/// The variant name of an error's `Debug` form.
fn variant(debug: &str) -> String {
    debug
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or(debug)
        .to_string()
}

// --- checking one input --------------------------------------------------------------

/// Why an input failed.
struct Failure {
    what: String,
    /// The failing stage's input when it is not the case's input (a patched module).
    stage_input: Option<Vec<u8>>,
}

fn fail(what: String) -> Failure {
    Failure {
        what,
        stage_input: None,
    }
}

/// Validates with the features Wasmgrind's modules use.
fn validate(wasm: &[u8]) -> std::result::Result<(), String> {
    wasmparser::Validator::new_with_features(
        wasmparser::WasmFeatures::default() | wasmparser::WasmFeatures::THREADS,
    )
    .validate_all(wasm)
    .map(|_| ())
    .map_err(|e| e.to_string())
}

fn check(input: &Case, stats: &mut Stats) -> std::result::Result<(), Failure> {
    check_refresh(&input.bytes, stats, "the input")?;
    match input.source {
        Source::PatchedGuest => check_instrument(&input.bytes, stats, "the input"),
        Source::Shape | Source::Smith | Source::Guest => {
            let patched = check_patch(&input.bytes, stats)?;
            if let Some(patched) = patched {
                check_instrument(&patched, stats, "the patched input").map_err(|f| Failure {
                    stage_input: Some(patched.clone()),
                    ..f
                })?;
                if let Some(mutation) = input.mutate_patched {
                    let mut rng = Rng(mutation);
                    let mut mutated = patched;
                    mutate(&mut rng, &mut mutated);
                    check_instrument(&mutated, stats, "the mutated patched input").map_err(
                        |f| Failure {
                            stage_input: Some(mutated.clone()),
                            ..f
                        },
                    )?;
                }
            }
            Ok(())
        }
    }
}

/// `refresh_bounds` on `input`: it must not panic, must write a valid module for a valid
/// input, and must not call a valid input unreadable.
fn check_refresh(input: &[u8], stats: &mut Stats, what: &str) -> std::result::Result<(), Failure> {
    let result = guarded(|| refresh_bounds(input))
        .map_err(|p| fail(format!("refresh_bounds panicked on {what}: {p}")))?;
    match result {
        Ok(out) => match validate(&out) {
            Err(e) if validate(input).is_ok() => Err(fail(format!(
                "refresh_bounds wrote an invalid module for {what}, which is valid: {e}"
            ))),
            _ => {
                stats.refresh_ok += 1;
                Ok(())
            }
        },
        Err(e) if validate(input).is_ok() => Err(fail(format!(
            "refresh_bounds rejected {what}, which is valid: {e}"
        ))),
        Err(_) => {
            stats.refresh_rejected += 1;
            Ok(())
        }
    }
}

/// Patches `input` with and without validation; returns the patched module if the
/// patcher accepted it.
fn check_patch(input: &[u8], stats: &mut Stats) -> std::result::Result<Option<Vec<u8>>, Failure> {
    let checked = guarded(|| patch(input, &PatchConfig::default()))
        .map_err(|p| fail(format!("patch panicked: {p}")))?;
    let unchecked_config = PatchConfig {
        validate: false,
        ..PatchConfig::default()
    };
    let unchecked = guarded(|| patch(input, &unchecked_config))
        .map_err(|p| fail(format!("patch (validation off) panicked: {p}")))?;
    match &unchecked {
        Ok(out) => {
            if let Err(e) = validate(out) {
                if validate(input).is_ok() {
                    return Err(fail(format!(
                        "patch (validation off) wrote an invalid module for a valid input: {e}"
                    )));
                }
            }
        }
        Err(e) if checked.is_ok() => {
            return Err(fail(format!(
                "patch accepted the input with validation on but not off: {e}"
            )))
        }
        Err(_) => {}
    }
    match checked {
        Ok(out) => {
            if let Err(e) = validate(&out) {
                return Err(fail(format!("patch returned an invalid module: {e}")));
            }
            if unchecked.as_ref().ok() != Some(&out) {
                return Err(fail(
                    "patch wrote different modules with validation on and off".into(),
                ));
            }
            if names_well_formed(input) == Some(true) && names_well_formed(&out) != Some(true) {
                return Err(fail(
                    "patch turned a well-formed name section into a malformed one".into(),
                ));
            }
            stats.patch_ok += 1;
            Ok(Some(out))
        }
        Err(e @ PatchError::InvalidOutput(_)) => Err(fail(format!("patch: {e}"))),
        Err(e @ PatchError::Parse(_)) if validate(input).is_ok() => Err(fail(format!(
            "patch rejected a valid module as unreadable: {e}"
        ))),
        Err(e) => {
            *stats
                .patch_rejected
                .entry(variant(&format!("{e:?}")))
                .or_default() += 1;
            Ok(None)
        }
    }
}

/// Instruments `input` with memory tracing on (with and without sampling) and off, each
/// with and without validation.
fn check_instrument(
    input: &[u8],
    stats: &mut Stats,
    what: &str,
) -> std::result::Result<(), Failure> {
    let mut input_valid: Option<bool> = None;
    for (memory_tracing, sampling) in [(true, false), (true, true), (false, false)] {
        let tracing = match (memory_tracing, sampling) {
            (true, false) => "on",
            (true, true) => "on, sampled",
            _ => "off",
        };
        let config = InstrumentConfig {
            memory_tracing,
            validate: true,
            validate_output: true,
            atomic_values: memory_tracing,
            sampling,
        };
        let result = guarded(|| instrument(input, &config)).map_err(|p| {
            fail(format!(
                "instrument (memory tracing {tracing}) panicked on {what}: {p}"
            ))
        })?;
        match result {
            Ok(out) => {
                if let Err(e) = validate(&out.wasm) {
                    return Err(fail(format!(
                        "instrument (memory tracing {tracing}) returned an invalid module for \
                         {what}: {e}"
                    )));
                }
                if names_well_formed(input) == Some(true)
                    && names_well_formed(&out.wasm) != Some(true)
                {
                    return Err(fail(format!(
                        "instrument (memory tracing {tracing}) turned the well-formed name \
                         section of {what} into a malformed one or dropped it"
                    )));
                }
                check_refresh(
                    &out.wasm,
                    stats,
                    &format!("the instrumented module of {what}"),
                )?;
                stats.instrument_ok += 1;
            }
            Err(e @ InstrumentError::InvalidOutput(_)) => {
                return Err(fail(format!(
                    "instrument (memory tracing {tracing}) on {what}: {e}"
                )))
            }
            Err(e @ InstrumentError::Malformed(_))
                if *input_valid.get_or_insert_with(|| validate(input).is_ok()) =>
            {
                return Err(fail(format!(
                    "instrument (memory tracing {tracing}) rejected {what}, which is valid, as \
                     malformed: {e}"
                )))
            }
            Err(e) => {
                *stats
                    .instrument_rejected
                    .entry(variant(&format!("{e:?}")))
                    .or_default() += 1;
            }
        }
        let unchecked = InstrumentConfig {
            memory_tracing,
            validate: false,
            validate_output: false,
            atomic_values: memory_tracing,
            sampling,
        };
        let result = guarded(|| instrument(input, &unchecked)).map_err(|p| {
            fail(format!(
                "instrument (memory tracing {tracing}, validation off) panicked on {what}: {p}"
            ))
        })?;
        if let Ok(out) = result {
            if let Err(e) = validate(&out.wasm) {
                let valid = *input_valid.get_or_insert_with(|| validate(input).is_ok());
                if valid {
                    return Err(fail(format!(
                        "instrument (memory tracing {tracing}, validation off) wrote an invalid \
                         module for {what}, which is valid: {e}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether the (first) name section of `wasm` decodes completely; `None` without one.
fn names_well_formed(wasm: &[u8]) -> Option<bool> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else { return None };
        let wasmparser::Payload::CustomSection(c) = payload else {
            continue;
        };
        let wasmparser::KnownCustom::Name(reader) = c.as_known() else {
            continue;
        };
        let ok = reader.into_iter().all(|sub| {
            let map_ok = |m: wasmparser::NameMap<'_>| m.into_iter().all(|n| n.is_ok());
            let indirect_ok = |m: wasmparser::IndirectNameMap<'_>| {
                m.into_iter()
                    .all(|n| n.is_ok_and(|n| n.names.into_iter().all(|n| n.is_ok())))
            };
            use wasmparser::Name as N;
            match sub {
                Err(_) => false,
                Ok(
                    N::Function(m)
                    | N::Type(m)
                    | N::Table(m)
                    | N::Memory(m)
                    | N::Global(m)
                    | N::Element(m)
                    | N::Data(m)
                    | N::Tag(m),
                ) => map_ok(m),
                Ok(
                    N::Local(m) | N::Label(m) | N::Field(m) | N::Parameter(m) | N::TagParameter(m),
                ) => indirect_ok(m),
                Ok(N::Module { .. } | N::Unknown { .. }) => true,
            }
        });
        return Some(ok);
    }
    None
}

// --- inputs --------------------------------------------------------------------------

/// Where an input comes from.
#[derive(Clone, Copy)]
enum Source {
    Shape,
    Smith,
    Guest,
    PatchedGuest,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Shape => "shape",
            Source::Smith => "wasm-smith",
            Source::Guest => "guest",
            Source::PatchedGuest => "patched-guest",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Source::Shape => "a hand-shaped module (patched, then instrumented)",
            Source::Smith => "wasm-smith (patched, then instrumented)",
            Source::Guest => "a mutated guest (patched, then instrumented)",
            Source::PatchedGuest => "a mutated patched guest (instrumented)",
        }
    }
}

/// One input.
struct Case {
    source: Source,
    bytes: Vec<u8>,
    /// If set, the patched module is also mutated (with this RNG state) and instrumented.
    mutate_patched: Option<u64>,
}

/// The guests, without their DWARF sections, and their patched forms.
struct Corpus {
    guests: Vec<Vec<u8>>,
    patched: Vec<Vec<u8>>,
}

impl Corpus {
    fn load(root: &Path) -> Result<Corpus> {
        let mut guests = Vec::new();
        let mut patched = Vec::new();
        for path in guest_files(root)? {
            let wasm =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut sections = Sections::split(&wasm);
            sections
                .list
                .retain(|(id, content)| *id != 0 || !custom_name(content).starts_with(".debug"));
            let wasm = sections.join();
            if is_wasi(&wasm) {
                // Not patched: the instrumenter takes a wasi-threads program as it is.
                patched.push(wasm.clone());
            } else if let Ok(p) = patch(&wasm, &PatchConfig::default()) {
                patched.push(p);
            }
            guests.push(wasm);
        }
        Ok(Corpus { guests, patched })
    }
}

/// Generates input number `case` of the run with `seed`.
fn generate(seed: u64, case: u64, corpus: &Corpus) -> Case {
    let mut rng = Rng::new(seed, case);
    let roll = rng.below(16);
    if roll < 2 {
        let shape = module_shape(&mut rng, true);
        let mut bytes = splice(&mut rng, shape);
        if rng.chance(10) {
            mutate(&mut rng, &mut bytes);
        }
        let mutate_patched = rng.chance(25).then(|| rng.next());
        Case {
            source: Source::Shape,
            bytes,
            mutate_patched,
        }
    } else if roll < 11 || corpus.guests.is_empty() {
        let mut bytes = smith_module(&mut rng);
        if rng.chance(10) {
            mutate(&mut rng, &mut bytes);
        }
        let mutate_patched = rng.chance(25).then(|| rng.next());
        Case {
            source: Source::Smith,
            bytes,
            mutate_patched,
        }
    } else if roll < 14 || corpus.patched.is_empty() {
        let mut bytes = rng.pick(&corpus.guests).clone();
        if !rng.chance(3) {
            mutate(&mut rng, &mut bytes);
        }
        Case {
            source: Source::Guest,
            bytes,
            mutate_patched: None,
        }
    } else {
        let mut bytes = rng.pick(&corpus.patched).clone();
        mutate(&mut rng, &mut bytes);
        Case {
            source: Source::PatchedGuest,
            bytes,
            mutate_patched: None,
        }
    }
}

/// A small PRNG (SplitMix64): the fuzzer needs speed and reproducibility, not quality.
struct Rng(u64);

impl Rng {
    /// The generator of input `case` of the run with `seed`.
    fn new(seed: u64, case: u64) -> Rng {
        let mut rng = Rng(seed ^ case.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with the given probability in percent.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// --- wasm-smith modules --------------------------------------------------------------

/// A module from wasm-smith whose imports and exports are what the patcher needs (each
/// with a small chance of being missing or of the wrong type), spliced with a stack
/// pointer and a name section.
fn smith_module(rng: &mut Rng) -> Vec<u8> {
    let shape = module_shape(rng, false);
    let mut config = wasm_smith::Config {
        module_shape: Some(shape),
        max_types: rng.range(0, 30) as usize,
        max_funcs: rng.range(0, 40) as usize,
        max_globals: rng.range(0, 12) as usize,
        max_instructions: rng.range(0, 300) as usize,
        max_data_segments: rng.range(0, 4) as usize,
        max_element_segments: rng.range(0, 4) as usize,
        max_elements: rng.range(0, 20) as usize,
        max_tables: rng.range(0, 2) as usize,
        max_tags: rng.range(0, 3) as usize,
        max_memories: 1,
        min_uleb_size: if rng.chance(30) { 5 } else { 1 },
        threads_enabled: true,
        bulk_memory_enabled: rng.chance(90),
        reference_types_enabled: rng.chance(80),
        simd_enabled: rng.chance(60),
        multi_value_enabled: rng.chance(80),
        exceptions_enabled: rng.chance(40),
        tail_call_enabled: rng.chance(50),
        memory64_enabled: rng.chance(10),
        extended_const_enabled: rng.chance(10),
        allow_floats: rng.chance(80),
        disallow_traps: rng.chance(10),
        compact_imports_enabled: false,
        ..wasm_smith::Config::default()
    };
    config.relaxed_simd_enabled = config.simd_enabled && rng.chance(30);
    config.gc_enabled = config.reference_types_enabled && rng.chance(20);
    let len = rng.range(16, 4096) as usize;
    let data = rng.bytes(len);
    let mut u = arbitrary::Unstructured::new(&data);
    let wasm = match wasm_smith::Module::new(config, &mut u) {
        Ok(m) => m.to_bytes(),
        // Out of data: a module is generated anyway in most cases; otherwise the shape
        // alone is an input too.
        Err(_) => module_shape(rng, false),
    };
    splice(rng, wasm)
}

/// A module with the imports and exports a Wasmgrind guest has: the `module_shape` of
/// wasm-smith, or (`direct`) an input of its own, whose required functions may be
/// imports that are exported again (so that it may have no function and no code
/// section), with a start function and data segments now and then.
fn module_shape(rng: &mut Rng, direct: bool) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, ConstExpr, DataCountSection, DataSection, EntityType, ExportKind,
        ExportSection, Function, FunctionSection, GlobalSection, GlobalType, ImportSection,
        MemoryType, Module, RefType, StartSection, TableType, TypeSection, ValType,
    };
    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut ty = |params: &[ValType], results: &[ValType]| -> u32 {
        let t = (params.to_vec(), results.to_vec());
        let i = types.iter().position(|x| *x == t).unwrap_or_else(|| {
            types.push(t);
            types.len() - 1
        });
        i as u32
    };
    let abi_ty = |t: &abi::ValType| match t {
        abi::ValType::I32 => ValType::I32,
        abi::ValType::I64 => ValType::I64,
    };
    let mut imports = ImportSection::new();
    let min = rng.range(0, 20);
    let max = if rng.chance(85) {
        65536
    } else {
        rng.range(min, 65536)
    };
    let shared = rng.chance(98);
    imports.import(
        "env",
        "memory",
        MemoryType {
            minimum: min,
            maximum: Some(max),
            memory64: false,
            shared,
            page_size_log2: None,
        },
    );
    let mut func_imports = 0u32;
    // The runtime imports, each maybe, with the ABI's type or (rarely) another.
    let mut runtime: Vec<abi::FuncSig> = abi::IMPORTS.to_vec();
    if rng.chance(2) {
        runtime.push(abi::MEM_READ);
    }
    for sig in runtime {
        if !rng.chance(50) {
            continue;
        }
        let t = if rng.chance(1) {
            ty(&[ValType::I32], &[ValType::I64])
        } else {
            let params: Vec<_> = sig.params.iter().map(abi_ty).collect();
            let results: Vec<_> = sig.results.iter().map(abi_ty).collect();
            ty(&params, &results)
        };
        imports.import(abi::IMPORT_MODULE, sig.name, EntityType::Function(t));
        func_imports += 1;
    }
    let mut start = None;
    if direct && rng.chance(30) {
        imports.import("env", "init", EntityType::Function(ty(&[], &[])));
        start = Some(func_imports);
        func_imports += 1;
    } else if rng.chance(30) {
        imports.import("env", "other", EntityType::Function(ty(&[], &[])));
        func_imports += 1;
    }
    // Imports of other kinds, which the patcher re-encodes.
    if rng.chance(15) {
        let table = TableType {
            element_type: RefType::FUNCREF,
            minimum: 1,
            maximum: None,
            table64: false,
            shared: false,
        };
        imports.import("env", "table", table);
    }
    let global_imports = u32::from(rng.chance(15));
    if global_imports > 0 {
        let g = GlobalType {
            val_type: ValType::I32,
            mutable: false,
            shared: false,
        };
        imports.import("env", "g", g);
    }

    // Exported functions: name and type; imported ones (direct only) are exported again.
    let i32s = |n: usize| vec![ValType::I32; n];
    let mut defined: Vec<u32> = Vec::new();
    let mut func_exports: Vec<(&str, u32)> = Vec::new();
    let wanted: [(&str, Vec<ValType>, Vec<ValType>, u64); 6] = [
        (abi::INIT_TLS, i32s(1), vec![], 99),
        (abi::MALLOC.name, i32s(2), i32s(1), 99),
        (abi::FREE.name, i32s(3), vec![], 99),
        (abi::THREAD_START.name, i32s(1), vec![], 90),
        (abi::GUEST_INIT.name, vec![], vec![], 50),
        (abi::THREAD_DESTROY.name, i32s(2), vec![], 1),
    ];
    let reexport = direct && rng.chance(60);
    let mut defined_exports = Vec::new();
    for (name, params, results, percent) in wanted {
        if rng.chance(percent) {
            let t = if rng.chance(1) {
                ty(&[], &[ValType::F32])
            } else {
                ty(&params, &results)
            };
            if reexport && rng.chance(90) {
                imports.import("env", name, EntityType::Function(t));
                func_exports.push((name, func_imports));
                func_imports += 1;
            } else {
                defined_exports.push((name, t));
            }
        }
    }
    for (name, t) in defined_exports {
        func_exports.push((name, func_imports + defined.len() as u32));
        defined.push(t);
    }
    if direct && start.is_none() && rng.chance(20) {
        start = Some(func_imports + defined.len() as u32);
        defined.push(ty(&[], &[]));
    }
    // Exported globals: name, mutable.
    let mut globals: Vec<(&str, GlobalType)> = Vec::new();
    for (name, mutable) in [
        (abi::HEAP_BASE, false),
        (abi::TLS_SIZE, false),
        (abi::TLS_ALIGN, false),
        (abi::TLS_BASE, true),
    ] {
        if rng.chance(99) {
            let odd = rng.chance(1);
            globals.push((
                name,
                GlobalType {
                    val_type: if odd && rng.chance(50) {
                        ValType::I64
                    } else {
                        ValType::I32
                    },
                    mutable: mutable != (odd && rng.chance(50)),
                    shared: false,
                },
            ));
        }
    }

    let mut module = Module::new();
    let mut type_section = TypeSection::new();
    for (params, results) in &types {
        type_section
            .ty()
            .function(params.iter().copied(), results.iter().copied());
    }
    module.section(&type_section);
    module.section(&imports);
    let mut function_section = FunctionSection::new();
    let mut code = CodeSection::new();
    for t in &defined {
        function_section.function(*t);
        let mut f = Function::new([]);
        f.instructions().unreachable().end();
        code.function(&f);
    }
    if !defined.is_empty() || !direct || rng.chance(30) {
        module.section(&function_section);
    }
    let mut global_section = GlobalSection::new();
    for (name, g) in &globals {
        let init = match g.val_type {
            ValType::I64 => ConstExpr::i64_const(0),
            _ if *name == abi::HEAP_BASE && direct => {
                ConstExpr::i32_const(rng.range(0, 1 << 24) as i32)
            }
            _ => ConstExpr::i32_const(0),
        };
        global_section.global(*g, &init);
    }
    module.section(&global_section);
    let mut exports = ExportSection::new();
    for (name, index) in &func_exports {
        exports.export(name, ExportKind::Func, *index);
    }
    for (i, (name, _)) in globals.iter().enumerate() {
        exports.export(name, ExportKind::Global, global_imports + i as u32);
    }
    module.section(&exports);
    if let Some(function_index) = start {
        module.section(&StartSection { function_index });
    }
    let data_segments = if direct && rng.chance(30) { 1 } else { 0 };
    if data_segments > 0 && rng.chance(50) {
        module.section(&DataCountSection {
            count: data_segments,
        });
    }
    if !defined.is_empty() || !direct || rng.chance(30) {
        module.section(&code);
    }
    if data_segments > 0 {
        let mut data = DataSection::new();
        if rng.chance(50) {
            data.passive(b"wasmgrind".iter().copied());
        } else {
            data.active(0, &ConstExpr::i32_const(1024), b"wasmgrind".iter().copied());
        }
        module.section(&data);
    }
    module.finish()
}

/// Facts about a generated module that the splice needs.
#[derive(Default)]
struct Facts {
    funcs: u32,
    globals: u32,
    /// Defined, mutable, `i32`, not exported: what the patcher's heuristic looks for.
    stack_pointer_candidates: Vec<u32>,
}

fn facts(wasm: &[u8]) -> Facts {
    let mut f = Facts::default();
    let mut exported = Vec::new();
    let mut candidates = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else { break };
        match payload {
            wasmparser::Payload::ImportSection(r) => {
                for imp in r.into_imports().flatten() {
                    match imp.ty {
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_) => {
                            f.funcs += 1
                        }
                        wasmparser::TypeRef::Global(_) => f.globals += 1,
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::FunctionSection(r) => f.funcs += r.count(),
            wasmparser::Payload::GlobalSection(r) => {
                for g in r.into_iter().flatten() {
                    if g.ty.mutable && g.ty.content_type == wasmparser::ValType::I32 {
                        candidates.push(f.globals);
                    }
                    f.globals += 1;
                }
            }
            wasmparser::Payload::ExportSection(r) => {
                for e in r.into_iter().flatten() {
                    if e.kind == wasmparser::ExternalKind::Global {
                        exported.push(e.index);
                    }
                }
            }
            _ => {}
        }
    }
    candidates.retain(|g| !exported.contains(g));
    f.stack_pointer_candidates = candidates;
    f
}

/// Adds what wasm-smith cannot be asked for: a stack pointer (a new global named
/// `__stack_pointer`, an existing one given that name, or none) and a name section,
/// which names allocator functions too and is now and then malformed.
fn splice(rng: &mut Rng, wasm: Vec<u8>) -> Vec<u8> {
    let facts = facts(&wasm);
    let mut sections = Sections::split(&wasm);
    let mut named_globals: Vec<(u32, Vec<u8>)> = Vec::new();
    match rng.below(10) {
        0..=6 => {
            // A new global, appended to the global section (or a new one).
            let mut global = vec![0x7f, 0x01, 0x41];
            sleb(&mut global, rng.range(0, 1 << 20) as i64);
            global.push(0x0b);
            match sections.list.iter_mut().find(|(id, _)| *id == 6) {
                Some((_, content)) => {
                    let (count, len) = read_uleb(content).unwrap_or((0, 0));
                    let mut new = Vec::new();
                    uleb(&mut new, count + 1);
                    new.extend_from_slice(&content[len..]);
                    new.extend_from_slice(&global);
                    *content = new;
                }
                None => {
                    // Before the first section that follows the global section.
                    let at = sections
                        .list
                        .iter()
                        .position(|(id, _)| matches!(id, 7..=12))
                        .unwrap_or(sections.list.len());
                    sections.list.insert(at, (6, [vec![1], global].concat()));
                }
            }
            named_globals.push((facts.globals, b"__stack_pointer".to_vec()));
        }
        7 | 8 => {
            // An existing global gets the name (the right kind, mostly).
            let g = if !facts.stack_pointer_candidates.is_empty() && rng.chance(80) {
                *rng.pick(&facts.stack_pointer_candidates)
            } else {
                rng.range(0, u64::from(facts.globals)) as u32
            };
            named_globals.push((g, b"__stack_pointer".to_vec()));
        }
        _ => {}
    }
    if !named_globals.is_empty() || rng.chance(50) {
        let names = name_section(rng, &facts, &named_globals);
        sections.list.push((0, names));
    }
    sections.join()
}

/// The content of a custom section `name`: function names (allocator names among
/// them), maybe local names, the given global names; with a small chance of a defect.
fn name_section(rng: &mut Rng, facts: &Facts, globals: &[(u32, Vec<u8>)]) -> Vec<u8> {
    const NAMES: [&[u8]; 10] = [
        b"dlmalloc::dlmalloc::Dlmalloc<A>::malloc",
        b"__rust_alloc",
        b"__rdl_dealloc",
        b"malloc",
        b"free",
        b"main",
        b"worker",
        b"core::panicking::panic",
        b"\xce\xbb",
        b"",
    ];
    let mut funcs: Vec<(u32, Vec<u8>)> = Vec::new();
    for f in 0..facts.funcs {
        if rng.chance(70) {
            funcs.push((f, rng.pick(&NAMES).to_vec()));
        }
    }
    let mut globals = globals.to_vec();
    let defect = if rng.chance(12) { rng.below(6) } else { 6 };
    match defect {
        0 if !funcs.is_empty() => {
            // Bad UTF-8.
            let i = rng.below(funcs.len());
            funcs[i].1.push(0xff);
        }
        1 if funcs.len() > 1 => {
            // Out of order.
            let i = rng.below(funcs.len() - 1);
            funcs.swap(i, i + 1);
        }
        2 => {
            // An index that names no function, maybe near u32::MAX.
            let index = if rng.chance(50) {
                u32::MAX - rng.range(0, 3) as u32
            } else {
                facts.funcs + rng.range(0, 3) as u32
            };
            funcs.push((index, b"ghost".to_vec()));
        }
        3 => globals.push((u32::MAX, b"ghost".to_vec())),
        _ => {}
    }
    let map = |entries: &[(u32, Vec<u8>)]| {
        let mut out = Vec::new();
        uleb(&mut out, entries.len() as u64);
        for (index, name) in entries {
            uleb(&mut out, u64::from(*index));
            uleb(&mut out, name.len() as u64);
            out.extend_from_slice(name);
        }
        out
    };
    let sub = |out: &mut Vec<u8>, id: u8, content: &[u8]| {
        out.push(id);
        uleb(out, content.len() as u64);
        out.extend_from_slice(content);
    };
    let mut out = Vec::new();
    uleb(&mut out, 4);
    out.extend_from_slice(b"name");
    sub(&mut out, 1, &map(&funcs));
    if rng.chance(30) && !funcs.is_empty() {
        // Local names of the first named function.
        let mut locals = Vec::new();
        uleb(&mut locals, 1);
        uleb(&mut locals, u64::from(funcs[0].0));
        locals.extend_from_slice(&map(&[(0, b"x".to_vec()), (1, b"y".to_vec())]));
        sub(&mut out, 2, &locals);
    }
    if !globals.is_empty() {
        sub(&mut out, 7, &map(&globals));
    }
    match defect {
        4 => {
            // Truncated.
            let cut = rng.range(5, out.len() as u64) as usize;
            out.truncate(cut);
        }
        5 => {
            // Subsections out of order.
            sub(&mut out, 1, &map(&[]));
        }
        _ => {}
    }
    out
}

// --- mutations -----------------------------------------------------------------------

/// A module cut into sections; anything that does not parse as sections is kept as
/// `tail`.
struct Sections {
    header: Vec<u8>,
    list: Vec<(u8, Vec<u8>)>,
    tail: Vec<u8>,
}

impl Sections {
    fn split(wasm: &[u8]) -> Sections {
        let header_len = wasm.len().min(8);
        let mut s = Sections {
            header: wasm[..header_len].to_vec(),
            list: Vec::new(),
            tail: Vec::new(),
        };
        let mut rest = &wasm[header_len..];
        while !rest.is_empty() {
            let id = rest[0];
            let Some((size, len)) = read_uleb(&rest[1..]) else {
                break;
            };
            let start = 1 + len;
            let Some(end) = usize::try_from(size)
                .ok()
                .and_then(|s| start.checked_add(s))
            else {
                break;
            };
            if end > rest.len() {
                break;
            }
            s.list.push((id, rest[start..end].to_vec()));
            rest = &rest[end..];
        }
        s.tail = rest.to_vec();
        s
    }

    fn join(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        for (id, content) in &self.list {
            out.push(*id);
            uleb(&mut out, content.len() as u64);
            out.extend_from_slice(content);
        }
        out.extend_from_slice(&self.tail);
        out
    }
}

/// The name of a custom section, from its content (empty if unreadable).
fn custom_name(content: &[u8]) -> &str {
    read_uleb(content)
        .and_then(|(n, len)| content.get(len..len.checked_add(n as usize)?))
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
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

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0) {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads an unsigned LEB128 of at most 5 bytes (a `u32`): `(value, bytes read)`.
fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Values that break index and size arithmetic.
const INTERESTING: [u32; 14] = [
    0,
    1,
    2,
    3,
    0x7f,
    0x80,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    u32::MAX - 3,
    u32::MAX - 2,
    u32::MAX - 1,
    u32::MAX,
    50_000,
];

/// Applies one to three random mutations to `wasm`.
fn mutate(rng: &mut Rng, wasm: &mut Vec<u8>) {
    for _ in 0..rng.range(1, 3) {
        let mut s = Sections::split(wasm);
        if s.list.is_empty() {
            flip(rng, wasm);
            continue;
        }
        let i = rng.below(s.list.len());
        match rng.below(13) {
            0..=3 => flip(rng, &mut s.list[i].1),
            12 => {
                // Replace the item count of a vector section (or a custom section's name
                // length) by an interesting value.
                let content = &mut s.list[i].1;
                let len = read_uleb(content).map_or(0, |(_, len)| len);
                let mut leb = Vec::new();
                uleb(&mut leb, u64::from(*rng.pick(&INTERESTING)));
                content.splice(..len, leb);
            }
            4 | 5 => interesting_leb(rng, &mut s.list[i].1),
            6 => {
                // Truncate a section's content (its size shrinks with it).
                let content = &mut s.list[i].1;
                let cut = rng.range(0, content.len() as u64) as usize;
                content.truncate(cut);
            }
            7 => {
                let copy = s.list[i].clone();
                s.list.insert(i, copy);
            }
            8 => {
                s.list.remove(i);
            }
            9 => {
                let j = rng.below(s.list.len());
                s.list.swap(i, j);
            }
            10 => {
                // Insert or delete a few bytes inside a section.
                let content = &mut s.list[i].1;
                let at = rng.range(0, content.len() as u64) as usize;
                if rng.chance(50) {
                    let n = rng.range(1, 4) as usize;
                    let bytes = rng.bytes(n);
                    content.splice(at..at, bytes);
                } else {
                    let end = (at + rng.range(1, 4) as usize).min(content.len());
                    content.drain(at..end);
                }
            }
            _ => {
                // Cut the module anywhere, even inside a section header.
                *wasm = s.join();
                let cut = rng.range(0, wasm.len() as u64) as usize;
                wasm.truncate(cut);
                continue;
            }
        }
        *wasm = s.join();
    }
}

/// Sets a few bytes of `bytes` to random values.
fn flip(rng: &mut Rng, bytes: &mut [u8]) {
    if bytes.is_empty() {
        return;
    }
    for _ in 0..rng.range(1, 4) {
        let i = rng.below(bytes.len());
        bytes[i] = match rng.below(4) {
            0 => bytes[i] ^ (1 << rng.below(8)),
            1 => 0xff,
            2 => 0,
            _ => rng.next() as u8,
        };
    }
}

/// Replaces a 5-byte (padded) LEB128 in `bytes`, as wasm-ld writes function indices and
/// other relocated values, by an interesting value of the same length; without one, a
/// short LEB after a `call` opcode is replaced (which changes the length).
fn interesting_leb(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let padded: Vec<usize> = (0..bytes.len().saturating_sub(4))
        .filter(|&i| bytes[i..i + 4].iter().all(|b| b & 0x80 != 0) && bytes[i + 4] < 0x10)
        .collect();
    let value = if rng.chance(20) {
        rng.next() as u32
    } else {
        *rng.pick(&INTERESTING)
    };
    if !padded.is_empty() {
        let at = *rng.pick(&padded);
        let mut v = value;
        for k in 0..5 {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            bytes[at + k] = if k < 4 { b | 0x80 } else { b };
        }
        return;
    }
    let calls: Vec<usize> = (0..bytes.len().saturating_sub(1))
        .filter(|&i| bytes[i] == 0x10 && bytes[i + 1] < 0x80)
        .collect();
    if calls.is_empty() {
        flip(rng, bytes);
        return;
    }
    let at = *rng.pick(&calls) + 1;
    let mut leb = Vec::new();
    uleb(&mut leb, u64::from(value));
    bytes.splice(at..at + 1, leb);
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: Corpus = Corpus {
        guests: Vec::new(),
        patched: Vec::new(),
    };

    #[test]
    fn sections_split_and_join_to_the_same_bytes() {
        let wasm = splice(&mut Rng::new(1, 1), module_shape(&mut Rng::new(1, 1), true));
        assert_eq!(Sections::split(&wasm).join(), wasm);
        // Garbage after the last section is kept as it is.
        let mut cut = wasm.clone();
        cut.extend_from_slice(&[0x0a, 0xff]);
        assert_eq!(Sections::split(&cut).join(), cut);
    }

    #[test]
    fn shapes_are_valid_modules() {
        for case in 0..200 {
            for direct in [false, true] {
                let wasm = module_shape(&mut Rng::new(7, case), direct);
                validate(&wasm).unwrap_or_else(|e| panic!("case {case}, {direct}: {e}"));
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_mostly_patchable() {
        let mut patched = 0;
        let cases = 150;
        for case in 0..cases {
            let a = generate(3, case, &EMPTY);
            let b = generate(3, case, &EMPTY);
            assert_eq!(a.bytes, b.bytes, "case {case}");
            if patch(&a.bytes, &PatchConfig::default()).is_ok() {
                patched += 1;
            }
        }
        // The shaping works: most inputs get past the patcher's checks.
        assert!(
            patched * 3 > cases,
            "only {patched} of {cases} inputs patch"
        );
    }

    #[test]
    fn signatures_ignore_numbers_and_the_stage() {
        assert_eq!(
            signature("instrument on the patched input: unknown function 11 (at offset 0x1d5)"),
            signature("instrument on the input: unknown function 7 (at offset 0xed8)")
        );
        assert_ne!(
            signature("names out of order (at offset 0x12)"),
            signature("malformed UTF-8 encoding (at offset 0x12)")
        );
    }

    /// A module with `funcs` functions `() -> ()` (by hand: xtask does not depend on
    /// `wat`), and a name section with `names` as its content if given.
    fn module(funcs: u8, names: Option<&[u8]>) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
        m.extend_from_slice(&[3, 1 + funcs, funcs]);
        m.extend(std::iter::repeat_n(0, funcs.into()));
        m.extend_from_slice(&[10, 1 + 3 * funcs, funcs]);
        for _ in 0..funcs {
            m.extend_from_slice(&[2, 0, 0x0b]);
        }
        if let Some(names) = names {
            let content = [b"\x04name".as_slice(), names].concat();
            m.push(0);
            uleb(&mut m, content.len() as u64);
            m.extend_from_slice(&content);
        }
        m
    }

    #[test]
    fn name_sections_are_judged_completely() {
        assert_eq!(names_well_formed(&module(2, None)), None);
        // Function names: 0 "f", 1 "g".
        let good = [1, 7, 2, 0, 1, b'f', 1, 1, b'g'];
        let wasm = module(2, Some(&good));
        validate(&wasm).unwrap();
        assert_eq!(names_well_formed(&wasm), Some(true));
        // Out of order: 1 "g" before 0 "f".
        let bad = [1, 7, 2, 1, 1, b'g', 0, 1, b'f'];
        assert_eq!(names_well_formed(&module(2, Some(&bad))), Some(false));
        // Bad UTF-8 in a local name.
        let bad = [2, 6, 1, 0, 1, 0, 1, 0xff];
        assert_eq!(names_well_formed(&module(2, Some(&bad))), Some(false));
    }
}
