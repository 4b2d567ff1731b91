//! `cargo xtask soak`: a long, memory-heavy traced run through the CLI, with its wall time
//! and peak memory.
//!
//! It builds what is missing (the guests, `pkg/`) and runs
//! `node pkg/cli.js run target/guests/<guest>.wasm <scenario> --out target/soak/<scenario>`
//! on each soak scenario of `guests/manifest.json` (by default [`DEFAULT_SCENARIOS`]:
//! `stress::sum_buffers_100m`, about 100 million traced memory events, and
//! `stress::touch_distinct_10m`, whose metadata lists over ten million variables). Node
//! is started with a hook that prints the process's peak resident set size
//! (`process.resourceUsage().maxRSS`) when it exits; the run's workers are threads of that
//! one process, so it is the peak of the whole runtime:
//! recorder buffers, utility and target memories, the manager's chunks and the CLI's
//! writes. It then prints the events (recorded, and exported to RapidBin), the wall time,
//! the peak RSS and the sizes of the trace files, and fails
//!
//! - if the run does not end as the manifest says (the soak scenarios return and have no
//!   findings: exit status 0), or its fork count differs;
//! - if the files are not what their headers announce (RapidBin: 18 + 8 × events bytes;
//!   the native trace: 24 + 20 × recorded events);
//! - if the peak RSS reaches [`MAX_RSS_BYTES`] (4 GiB), the bound the streaming design
//!   promises for a run of 100M events.
//!
//! The trace files (several GB) are deleted afterwards unless `--keep` is given.
//! `cargo xtask test` does not run this (see `tests/soak_only.mjs`).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::guests::{Manifest, Outcome};
use crate::util::{self, root, Result};

/// The peak memory a soak run must stay below.
pub const MAX_RSS_BYTES: u64 = 4 << 30;

/// The scenarios `cargo xtask soak` runs by default, one after the other.
pub const DEFAULT_SCENARIOS: [&str; 2] = ["sum_buffers_100m", "touch_distinct_10m"];

/// Prefix of the line the exit hook prints.
const RSS_MARK: &str = "wasmgrind-soak: maxRSS KiB ";

const HELP: &str = "\
cargo xtask soak [--scenario NAME] [--timeout S] [--keep]

Runs long traced scenarios (default: sum_buffers_100m, about 100M memory events, then
touch_distinct_10m, ten million distinct addresses) through `node pkg/cli.js run`, writing
the trace to target/soak/NAME, and prints the events, the wall time and the peak RSS of
the runtime process. Fails if a run does not return as guests/manifest.json says, if the
trace files are inconsistent, or if the peak RSS reaches 4 GiB.

  --scenario NAME   only this scenario of guests/manifest.json
  --timeout S       the run's --timeout in seconds (default: 3600)
  --keep            keep the trace files (several GB) instead of deleting them
";

/// Entry point of `cargo xtask soak`.
pub fn run(args: &[String]) -> Result {
    let mut scenario: Option<String> = None;
    let mut timeout = "3600".to_string();
    let mut keep = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scenario" => {
                scenario = Some(it.next().ok_or("--scenario needs a name")?.clone());
            }
            "--timeout" => {
                timeout = it
                    .next()
                    .ok_or("--timeout needs a number of seconds")?
                    .clone();
            }
            "--keep" => keep = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}").into()),
        }
    }
    let scenarios = match scenario {
        Some(one) => vec![one],
        None => DEFAULT_SCENARIOS.iter().map(|s| s.to_string()).collect(),
    };
    for scenario in &scenarios {
        soak(scenario, &timeout, keep)?;
    }
    Ok(())
}

/// One soak run of `scenario`; see the module docs.
fn soak(scenario: &str, timeout: &str, keep: bool) -> Result {
    let root = root();
    let manifest = Manifest::load(&root.join("guests").join("manifest.json"))?;
    let (file, expected) = manifest
        .guests
        .values()
        .find_map(|g| {
            g.scenarios
                .get(scenario)
                .map(|s| (g.file.clone(), s.clone()))
        })
        .ok_or_else(|| format!("guests/manifest.json has no scenario `{scenario}`"))?;
    if expected.outcome != Outcome::Ok || !expected.findings.is_empty() {
        return Err(format!(
            "`{scenario}` is not a soak scenario: soak runs must return and have no findings"
        )
        .into());
    }
    crate::guests::build()?;
    crate::demo::ensure_pkg(false)?;

    let out = root.join("target").join("soak").join(scenario);
    if out.exists() {
        fs::remove_dir_all(&out).map_err(|e| format!("cannot remove {}: {e}", out.display()))?;
    }
    let hook = format!(
        "data:text/javascript,process.on('exit',()=>process.stderr.write('{RSS_MARK}'+\
         process.resourceUsage().maxRSS+'\\n'))"
    );
    let guest = root.join("target").join("guests").join(&file);
    let mut cmd = Command::new("node");
    cmd.current_dir(&root)
        .arg("--import")
        .arg(&hook)
        .arg("pkg/cli.js")
        .arg("run")
        .arg(&guest)
        .arg(scenario)
        .args(["--timeout", timeout, "--out"])
        .arg(&out)
        .stdin(Stdio::null());
    eprintln!("$ {}", util::show(&cmd));
    let started = Instant::now();
    let output = cmd
        .output()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    for line in stderr.lines().filter(|l| !l.starts_with(RSS_MARK)) {
        eprintln!("{line}");
    }
    let rss_kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix(RSS_MARK))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("the run printed no peak RSS (the exit hook did not run)")?;
    let rss = rss_kib * 1024;
    if output.status.code() != Some(0) {
        return Err(format!(
            "the run of `{scenario}` exited with {}, but the manifest expects it to return \
             without findings (exit 0)",
            output.status
        )
        .into());
    }
    if let Some(forks) = expected.forks {
        let want = format!("forks:     {forks} ");
        if !stdout.contains(&want) {
            return Err(format!("the run did not report `{}`", want.trim()).into());
        }
    }

    let size = |name: &str| -> Result<u64> {
        let p = out.join(name);
        Ok(fs::metadata(&p)
            .map_err(|e| format!("{} is missing: {e}", p.display()))?
            .len())
    };
    let (bin, std, native) = (
        size("trace.bin")?,
        size("trace.std")?,
        size("trace.wgtrace")?,
    );
    let exported = exported_events(&out.join("trace.json"))?;
    let recorded = native.saturating_sub(24) / 20;
    if bin != 18 + 8 * exported {
        return Err(format!(
            "trace.bin has {bin} bytes, but its metadata counts {exported} events (18 + 8 × \
             events bytes)"
        )
        .into());
    }
    if native != 24 + 20 * recorded {
        return Err(format!("trace.wgtrace has {native} bytes, not 24 + 20 × events").into());
    }

    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!("soak `{scenario}`:");
    println!("  events:    {recorded} recorded, {exported} exported to RapidBin/STD");
    println!("  wall time: {:.1} s", wall.as_secs_f64());
    println!(
        "  peak RSS:  {:.0} MiB (limit {:.0} MiB)",
        mib(rss),
        mib(MAX_RSS_BYTES)
    );
    println!(
        "  trace:     {:.0} MiB RapidBin, {:.0} MiB STD, {:.0} MiB native",
        mib(bin),
        mib(std),
        mib(native)
    );
    if !keep {
        fs::remove_dir_all(&out).map_err(|e| format!("cannot remove {}: {e}", out.display()))?;
    }
    if rss >= MAX_RSS_BYTES {
        return Err(format!(
            "the peak RSS of {:.0} MiB reached the limit of {:.0} MiB",
            mib(rss),
            mib(MAX_RSS_BYTES)
        )
        .into());
    }
    Ok(())
}

/// `counts.events` of the metadata in `path`.
fn exported_events(path: &Path) -> Result<u64> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    json["counts"]["events"]
        .as_u64()
        .ok_or_else(|| format!("{} has no counts.events", path.display()).into())
}
