//! `cargo xtask demo`: runs a bundled program in Node.js with tracing and shows the result.
//!
//! 1. builds the guests (`cargo xtask guests`; cargo skips them when nothing changed),
//!    among them `guests-wasi/std-scenarios`, a program written against plain `std` and
//!    built on stable for `wasm32-wasip1-threads`;
//! 2. builds `pkg/` (`cargo xtask dist`) if it is missing or older than its sources;
//! 3. runs its lock-order scenario with the package's CLI, `node pkg/cli.js run
//!    target/guests/wasi/std_scenarios.wasm --out target/demo -- lock_order_inversion`,
//!    which prints the program's output, the report and the trace summary, and exits with
//!    66 because it found the potential deadlock (any other exit status fails the demo);
//! 4. reads the trace back (`trace.std` with `trace.json`) and prints what the deadlock
//!    predictor ([`wasmgrind_core::analysis::deadlock`]) finds: the lock-order edges, the
//!    potential deadlocks, and why a lock-order cycle was not one;
//! 5. lists the trace files it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::util::{self, root, Result};

/// The program of the demo (in `target/guests/`): plain `std`, built on stable.
pub const GUEST: &str = "wasi/std_scenarios.wasm";
/// Its crate's name, the key of its entry in the manifest's `wasi_guests`.
const GUEST_CRATE: &str = "std_scenarios";
/// The demo's scenario (the program's argument): two threads take two `std::sync::Mutex`es
/// in opposite orders, one after the other, so the run succeeds and its trace has a
/// lock-order cycle.
pub const SCENARIO: &str = "lock_order_inversion";
/// The CLI's exit status when the detectors found something (as ThreadSanitizer's).
const EXIT_FOUND: i32 = 66;
/// The files the CLI writes, and what each holds.
const OUTPUTS: [(&str, &str); 3] = [
    ("trace.bin", "RapidBin, for RAPID-style analysis tools"),
    ("trace.std", "STD text, one event per line"),
    (
        "trace.json",
        "metadata: dense ids back to threads, locks, addresses and code",
    ),
];

const HELP: &str = "\
cargo xtask demo [--rebuild]

Builds what is missing (guests, pkg/), runs a program written against plain std and
built on stable for wasm32-wasip1-threads (guests-wasi/std-scenarios, its scenario
lock_order_inversion) in Node.js with tracing through pkg/cli.js, and prints the report,
the trace summary, the deadlock predictor's lock-order edges and where the trace files are
(target/demo/). The CLI exits with 66 there, as it found the potential deadlock.

  --rebuild   build pkg/ even if it looks up to date
";

/// Entry point of `cargo xtask demo`.
pub fn run(args: &[String]) -> Result {
    let mut rebuild = false;
    for a in args {
        match a.as_str() {
            "--rebuild" => rebuild = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}").into()),
        }
    }
    let root = root();
    crate::browser::ensure_node()?;
    crate::guests::build()?;
    let guest = Path::new("target").join("guests").join(GUEST);
    if !root.join(&guest).exists() {
        return Err(format!(
            "`cargo xtask guests` did not produce {}; is `{GUEST}` still in guests/manifest.json?",
            guest.display()
        )
        .into());
    }
    ensure_pkg(rebuild)?;

    let out = Path::new("target").join("demo");
    for (name, _) in OUTPUTS {
        // A file left from an earlier run must not pass for this run's output.
        let _ = fs::remove_file(root.join(&out).join(name));
    }
    let manifest = crate::guests::Manifest::load(&root.join("guests").join("manifest.json"))?;
    let description = manifest
        .wasi_guests
        .get(GUEST_CRATE)
        .and_then(|g| g.scenarios.get(SCENARIO))
        .map(|s| s.description.clone())
        .ok_or_else(|| {
            format!("guests/manifest.json has no wasi scenario `{SCENARIO}` of {GUEST}")
        })?;
    println!("Wasmgrind demo: {GUEST} {SCENARIO} (plain std, built on stable): {description}\n");
    let mut cli = Command::new("node");
    cli.current_dir(&root)
        .arg(Path::new("pkg").join("cli.js"))
        .arg("run")
        .arg(&guest)
        .arg("--out")
        .arg(&out)
        .arg("--")
        .arg(SCENARIO);
    eprintln!("$ {}", util::show(&cli));
    let status = cli
        .status()
        .map_err(|e| format!("cannot start node: {e}"))?;
    if status.code() != Some(EXIT_FOUND) {
        return Err(format!(
            "`{}` exited with {status}; the demo expects {EXIT_FOUND} (the potential deadlock found)",
            util::show(&cli)
        )
        .into());
    }
    println!("\n(exit status {EXIT_FOUND}: the CLI found something, as ThreadSanitizer says it)");
    let read = |name: &str| {
        let path = root.join(&out).join(name);
        fs::read_to_string(&path)
            .map_err(|e| format!("the CLI did not write {}: {e}", path.display()))
    };
    let (std_text, metadata) = (read("trace.std")?, read("trace.json")?);
    print!("\n{}", deadlock_report(&std_text, &metadata)?);
    println!("\ntrace files:");
    for (name, what) in OUTPUTS {
        let path = root.join(&out).join(name);
        let len = fs::metadata(&path)
            .map_err(|e| format!("the CLI did not write {}: {e}", out.join(name).display()))?
            .len();
        println!("  {} ({len} bytes): {what}", path.display());
    }
    println!(
        "\nRun your own program with `node pkg/cli.js run <program.wasm> --out DIR -- ARGS` \
         (`node pkg/cli.js --help`)."
    );
    Ok(())
}

/// What the demo says about the locks of a trace (STD text and its JSON metadata): the
/// lock-order edges, the potential deadlocks the predictor finds and, for a lock-order
/// cycle that is none, why.
fn deadlock_report(std_text: &str, metadata_json: &str) -> Result<String> {
    use wasmgrind_core::analysis::deadlock;
    use wasmgrind_core::trace::{std_text as std_format, Metadata};

    let dense = std_format::decode(std_text).map_err(|e| format!("trace.std: {e}"))?;
    let metadata = Metadata::from_json(metadata_json).map_err(|e| format!("trace.json: {e}"))?;
    let events = metadata
        .resolve(&dense)
        .map_err(|e| format!("trace.std does not match trace.json: {e}"))?;
    let prediction = deadlock::predict(&events);
    let place = |at: Option<u32>| {
        let info = at.and_then(|id| metadata.locations.iter().flatten().find(|l| l.id == id));
        match info {
            Some(l) => {
                let name = l.location.func_name.as_deref().unwrap_or("<unnamed>");
                format!(
                    "{name}+{:#x} ({})",
                    l.location.code_offset, l.location.instr
                )
            }
            None => "an unknown location".to_string(),
        }
    };

    let mut out = String::new();
    if prediction.edges.is_empty() {
        out.push_str("lock order: no lock was taken while another was held\n");
        return Ok(out);
    }
    out.push_str("lock order in the trace (a lock requested while another one is held):\n");
    for e in &prediction.edges {
        let edge = &e.edge;
        out.push_str(&format!(
            "  thread {}: lock {:#x} (taken at {}), then lock {:#x} (at {}), {}x\n",
            edge.thread,
            edge.held,
            place(edge.held_at),
            edge.next,
            place(edge.next_at),
            e.count
        ));
    }
    for d in &prediction.deadlocks {
        out.push_str(&format!(
            "potential deadlock of {} threads (seen {}x):\n",
            d.cycle.len(),
            d.count
        ));
        for edge in &d.cycle {
            out.push_str(&format!(
                "  thread {} holds lock {:#x} (taken at {}) and requests lock {:#x} (at {})\n",
                edge.thread,
                edge.held,
                place(edge.held_at),
                edge.next,
                place(edge.next_at)
            ));
        }
    }
    if prediction.deadlocks.is_empty() {
        if prediction.cyclic_locks.is_empty() {
            out.push_str("no lock-order cycle: these locks cannot deadlock each other\n");
        } else {
            for locks in &prediction.cyclic_locks {
                let locks: Vec<String> = locks.iter().map(|l| format!("{l:#x}")).collect();
                out.push_str(&format!(
                    "the locks {} are taken in a cycle, but no potential deadlock: in every such \
                     cycle the edges are taken by one thread, under a common lock, or by threads \
                     that fork/join order keeps apart\n",
                    locks.join(", ")
                ));
            }
        }
    }
    if !prediction.is_complete() {
        out.push_str(&format!(
            "note: the cycle search hit a limit (cycles of more than {} threads: {}, {} steps: \
             {}); other cycles may exist\n",
            deadlock::MAX_CYCLE_LENGTH,
            prediction.cycle_length_limit_hit,
            deadlock::MAX_SEARCH_STEPS,
            prediction.step_limit_hit
        ));
    }
    Ok(out)
}

/// Builds `pkg/` (`cargo xtask dist`) if it is missing, older than its sources, or
/// `force` is set.
pub fn ensure_pkg(force: bool) -> Result {
    let why = match pkg_staleness(&root())? {
        Some(why) => why,
        None if force => "a rebuild was asked for".into(),
        None => return Ok(()),
    };
    eprintln!("xtask: building pkg/ ({why})");
    crate::dist::run(&[])
}

/// The files `pkg/` is built from.
fn pkg_sources(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("wasmgrind-js").join("js")];
    for krate in [
        "wasmgrind-js",
        "wasmgrind-core",
        "wasmgrind-patch",
        "wasmgrind-instrument",
    ] {
        dirs.push(root.join(krate).join("src"));
        dirs.push(root.join(krate).join("Cargo.toml"));
    }
    dirs.push(root.join("Cargo.lock"));
    dirs
}

/// Why `pkg/` must be built (missing, or older than a source), or `None` if it is up to date.
fn pkg_staleness(root: &Path) -> Result<Option<String>> {
    let pkg = crate::dist::pkg_dir();
    let mut built = None::<SystemTime>;
    for name in crate::dist::JS_FILES.iter().map(|f| f.to_string()).chain([
        format!("{}_bg.wasm", crate::dist::BINDGEN_STEM),
        "package.json".into(),
    ]) {
        let path = pkg.join(&name);
        let Ok(modified) = fs::metadata(&path).and_then(|m| m.modified()) else {
            return Ok(Some(format!("pkg/{name} is missing")));
        };
        built = Some(built.map_or(modified, |b| b.min(modified)));
    }
    let built = built.expect("pkg has files");
    for source in pkg_sources(root) {
        if let Some((path, modified)) = newest(&source)? {
            if modified > built {
                return Ok(Some(format!(
                    "{} changed since it was built",
                    path.strip_prefix(root).unwrap_or(&path).display()
                )));
            }
        }
    }
    Ok(None)
}

/// The most recently modified file at or below `path`, if there is one.
fn newest(path: &Path) -> Result<Option<(PathBuf, SystemTime)>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if meta.is_file() {
        let modified = meta
            .modified()
            .map_err(|e| format!("cannot read the time of {}: {e}", path.display()))?;
        return Ok(Some((path.to_path_buf(), modified)));
    }
    let mut best: Option<(PathBuf, SystemTime)> = None;
    let entries = fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Some((p, t)) = newest(&entry.path())? {
            if best.as_ref().is_none_or(|(_, b)| t > *b) {
                best = Some((p, t));
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::{Duration, SystemTime};

    use wasmgrind_core::location::Location;
    use wasmgrind_core::trace::{export, Event, ExportOptions, Op, Trace};

    /// Sets the modification time of the file at `path`.
    fn touch(path: &Path, time: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn newest_finds_the_latest_file_below_a_directory() {
        let dir = std::env::temp_dir().join(format!("wasmgrind-demo-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("old.txt"), "x").unwrap();
        fs::write(dir.join("a/b/new.txt"), "y").unwrap();
        fs::write(dir.join("a/middle.txt"), "z").unwrap();
        // Explicit times, not the clock: the files are written within one timestamp tick.
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        touch(&dir.join("old.txt"), base);
        touch(&dir.join("a/middle.txt"), base + Duration::from_secs(60));
        touch(&dir.join("a/b/new.txt"), base + Duration::from_secs(120));
        let (path, time) = newest(&dir).unwrap().unwrap();
        assert_eq!(path, dir.join("a/b/new.txt"));
        assert_eq!(time, base + Duration::from_secs(120));
        touch(&dir.join("old.txt"), base + Duration::from_secs(180));
        assert_eq!(newest(&dir).unwrap().unwrap().0, dir.join("old.txt"));
        assert!(newest(&dir.join("missing")).unwrap().is_none());
        fs::create_dir_all(dir.join("empty")).unwrap();
        assert!(newest(&dir.join("empty")).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The STD text and metadata JSON the CLI would write for `events`.
    fn exported(events: Vec<Event>) -> (String, String) {
        let locations = (0..8)
            .map(|i| Location {
                func_index: 3,
                func_name: Some("worker".into()),
                code_offset: 0x100 + 0x10 * i,
                instr: "call start_lock".into(),
            })
            .collect();
        let options = ExportOptions {
            lock_requests: true,
            ..ExportOptions::default()
        };
        let export = export(&Trace::new(events, locations), options).unwrap();
        (export.std_text(), export.metadata_json())
    }

    /// Thread `t` takes `first` (requested at `at`), then `second` (at `at + 1`).
    fn nested(t: u32, first: u32, second: u32, at: u32) -> Vec<Event> {
        vec![
            Event::new(t, Op::Request { lock: first }, Some(at)),
            Event::new(t, Op::Acquire { lock: first }, Some(at)),
            Event::new(t, Op::Request { lock: second }, Some(at + 1)),
            Event::new(t, Op::Acquire { lock: second }, Some(at + 1)),
            Event::new(t, Op::Release { lock: second }, None),
            Event::new(t, Op::Release { lock: first }, None),
        ]
    }

    fn report(events: Vec<Event>) -> String {
        let (std_text, metadata) = exported(events);
        deadlock_report(&std_text, &metadata).unwrap()
    }

    #[test]
    fn the_report_names_edges_and_potential_deadlocks() {
        let (a, b) = (0x1000, 0x2000);
        let fork = |c| Event::new(0, Op::Fork { child: c }, None);
        let join = |c| Event::new(0, Op::Join { child: c }, None);

        // Concurrent threads in opposite orders: a potential deadlock.
        let mut events = vec![fork(1), fork(2)];
        events.extend(nested(1, a, b, 0));
        events.extend(nested(2, b, a, 2));
        let text = report(events);
        assert!(
            text.contains(
                "thread 1: lock 0x1000 (taken at worker+0x100 (call start_lock)), then lock \
                 0x2000 (at worker+0x110 (call start_lock)), 1x"
            ),
            "{text}"
        );
        assert!(
            text.contains("potential deadlock of 2 threads (seen 1x):"),
            "{text}"
        );
        assert!(
            text.contains(
                "  thread 2 holds lock 0x2000 (taken at worker+0x120 (call start_lock)) and \
                 requests lock 0x1000 (at worker+0x130 (call start_lock))"
            ),
            "{text}"
        );

        // The demo's scenario: the first thread is joined before the second starts.
        let mut events = vec![fork(1)];
        events.extend(nested(1, a, b, 0));
        events.extend([join(1), fork(2)]);
        events.extend(nested(2, b, a, 2));
        events.push(join(2));
        let text = report(events);
        assert!(!text.contains("potential deadlock of"), "{text}");
        assert!(
            text.contains(
                "the locks 0x1000, 0x2000 are taken in a cycle, but no potential deadlock"
            ),
            "{text}"
        );

        // One order only.
        let mut events = nested(1, a, b, 0);
        events.extend(nested(2, a, b, 0));
        assert!(report(events).contains("no lock-order cycle"));

        // No nesting at all.
        let events = vec![Event::new(
            1,
            Op::Write {
                addr: 0x10,
                width: 4,
                atomic: false,
            },
            Some(0),
        )];
        assert!(report(events).contains("no lock was taken"));

        let (_, metadata) = exported(nested(1, a, b, 0));
        assert!(deadlock_report("garbage", &metadata).is_err());
        assert!(deadlock_report("T0|acq(L0)|0\n", "{}").is_err());
    }

    #[test]
    fn the_demo_scenario_runs_to_completion_in_the_manifest() {
        let manifest =
            crate::guests::Manifest::load(&root().join("guests").join("manifest.json")).unwrap();
        let guest = &manifest.wasi_guests[GUEST_CRATE];
        assert_eq!(
            Path::new("wasi").join(format!("{GUEST_CRATE}.wasm")),
            Path::new(GUEST)
        );
        assert_eq!(Path::new(&guest.file), Path::new(GUEST));
        let scenario = &guest.scenarios[SCENARIO];
        // It ends by itself, and the demo's exit status 66 comes from its finding.
        assert_eq!(scenario.outcome, crate::guests::WasiOutcome::Ok);
        assert!(scenario.potential_deadlock);
        assert!(!scenario.description.is_empty());
    }
}
