//! `cargo xtask demo`: runs a bundled guest in Node.js with tracing and shows the result.
//!
//! 1. builds the guests (`cargo xtask guests`; cargo skips them when nothing changed);
//! 2. builds `pkg/` (`cargo xtask dist`) if it is missing or older than its sources;
//! 3. runs the potential-deadlock scenario with the package's CLI,
//!    `node pkg/cli.js run target/guests/locks.wasm lock_order_inversion --out target/demo`,
//!    which prints the trace summary;
//! 4. lists the trace files it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::util::{self, root, Result};

/// The guest file of the demo (in `target/guests/`).
pub const GUEST: &str = "locks.wasm";
/// The demo's scenario: two threads take two locks in opposite orders, one after the
/// other, so the run succeeds but its trace shows a potential deadlock.
pub const SCENARIO: &str = "lock_order_inversion";
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

Builds what is missing (guests, pkg/), runs the potential-deadlock guest scenario
(locks.wasm, lock_order_inversion) in Node.js with tracing through pkg/cli.js, and prints
the trace summary and where the trace files are (target/demo/).

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
    println!(
        "Wasmgrind demo: {GUEST} `{SCENARIO}`: one thread takes lock A then B, a later thread \
         takes B then A.\nThe run cannot deadlock (the threads never overlap), but the trace \
         records both orders: a potential deadlock.\n"
    );
    util::run(
        Command::new("node")
            .current_dir(&root)
            .arg(Path::new("pkg").join("cli.js"))
            .arg("run")
            .arg(&guest)
            .arg(SCENARIO)
            .arg("--out")
            .arg(&out),
    )?;
    let std_path = root.join(&out).join("trace.std");
    let std_text = fs::read_to_string(&std_path)
        .map_err(|e| format!("the CLI did not write {}: {e}", std_path.display()))?;
    print!("\n{}", lock_order_report(&std_text)?);
    println!("\ntrace files:");
    for (name, what) in OUTPUTS {
        let path = root.join(&out).join(name);
        let len = fs::metadata(&path)
            .map_err(|e| format!("the CLI did not write {}: {e}", out.join(name).display()))?
            .len();
        println!("  {} ({len} bytes): {what}", path.display());
    }
    println!(
        "\nRun your own module with `node pkg/cli.js run <module.wasm> <function> --out DIR` \
         (`node pkg/cli.js --help`)."
    );
    Ok(())
}

/// What the demo says about the locks of a trace: the nested acquisitions and the
/// lock-order cycles, which are potential deadlocks.
fn lock_order_report(std_text: &str) -> Result<String> {
    let trace =
        wasmgrind_core::trace::std_text::decode(std_text).map_err(|e| format!("trace.std: {e}"))?;
    let order = wasmgrind_core::analysis::lock_order(&trace);
    let edges = &order.edges;
    let mut out = String::new();
    if edges.is_empty() {
        out.push_str("lock order: no lock was taken while another was held\n");
        return Ok(out);
    }
    out.push_str("lock order in the trace (a lock taken while another one is held):\n");
    for ((from, to), threads) in edges {
        let by: Vec<String> = threads
            .iter()
            .map(|(t, n)| format!("T{t} ({n}x)"))
            .collect();
        out.push_str(&format!("  L{from} then L{to}, by {}\n", by.join(", ")));
    }
    let cycles = order.cycles();
    if cycles.is_empty() {
        out.push_str("no lock-order cycle: these locks cannot deadlock each other\n");
    }
    for cycle in cycles {
        let path: Vec<String> = cycle
            .iter()
            .chain(cycle.first())
            .map(|l| format!("L{l}"))
            .collect();
        out.push_str(&format!(
            "potential deadlock: the locks are taken in the cycle {}; threads that do so at \
             the same time can block each other forever\n",
            path.join(" -> ")
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

    #[test]
    fn newest_finds_the_latest_file_below_a_directory() {
        let dir = std::env::temp_dir().join(format!("wasmgrind-demo-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("old.txt"), "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.join("a/b/new.txt"), "y").unwrap();
        let (path, _) = newest(&dir).unwrap().unwrap();
        assert_eq!(path, dir.join("a/b/new.txt"));
        assert!(newest(&dir.join("missing")).unwrap().is_none());
        fs::create_dir_all(dir.join("empty")).unwrap();
        assert!(newest(&dir.join("empty")).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_report_names_nested_locks_and_cycles() {
        let trace = "T0|fork(T1)|0\nT1|req(L0)|1\nT1|acq(L0)|1\nT1|acq(L1)|2\nT1|r(V0)|3\n\
                     T1|rel(L1)|4\nT1|rel(L0)|4\nT2|acq(L1)|5\nT2|acq(L0)|6\nT2|rel(L0)|7\n\
                     T2|rel(L1)|7\nT2|acq(L2)|8\nT2|rel(L2)|8\n";
        let report = lock_order_report(trace).unwrap();
        assert!(report.contains("L0 then L1, by T1 (1x)"), "{report}");
        assert!(report.contains("L1 then L0, by T2 (1x)"), "{report}");
        assert!(
            report.contains("potential deadlock: the locks are taken in the cycle L0 -> L1 -> L0"),
            "{report}"
        );
        let ordered = "T1|acq(L0)|0\nT1|acq(L1)|0\nT1|rel(L1)|0\nT1|rel(L0)|0\n";
        assert!(lock_order_report(ordered)
            .unwrap()
            .contains("no lock-order cycle"));
        assert!(lock_order_report("T0|w(V0)|0\n")
            .unwrap()
            .contains("no lock was taken"));
        assert!(lock_order_report("garbage").is_err());
    }

    #[test]
    fn the_demo_scenario_is_a_potential_deadlock_in_the_manifest() {
        let manifest =
            crate::guests::Manifest::load(&root().join("guests").join("manifest.json")).unwrap();
        let guest = &manifest.guests[GUEST.trim_end_matches(".wasm")];
        let scenario = &guest.scenarios[SCENARIO];
        assert!(scenario.potential_deadlock);
        assert_eq!(scenario.outcome, crate::guests::Outcome::Ok);
    }
}
