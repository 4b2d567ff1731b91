//! `cargo xtask bench runtime`: the JS runtime's speed, in Node.js and in Chromium.
//!
//! It builds what is missing (the guests, `pkg/`), makes Chromium and the npm packages of
//! `tests/browser/` ready, and runs `node tests/browser/bench.mjs`, which measures
//!
//! - the median thread create+join latency in Node.js and in Chromium (target <= 1 ms),
//! - the slowdown of tracing on the memory-heavy guest `stress::sort_large_array`, traced
//!   ÷ untraced, with locks-only tracing (target <= 1.1x) and with full memory tracing
//!   (target <= 3x),
//!
//! prints the numbers and whether each target is met, and writes `target/bench/runtime.json`
//! and the Markdown section that this command puts into `BENCHMARKS.md` (the `runtime`
//! section; the other sections are left as they are). The script's header says exactly
//! how each number is measured.

use std::fs;

use crate::util::{root, Result};

const HELP: &str = "\
cargo xtask bench runtime [--quick] [--no-record]

Measures the thread create+join latency in Node.js and Chromium and the slowdown of
tracing on a memory-heavy guest, and records the figures in BENCHMARKS.md.

  --quick       fewer repetitions (a rough figure in about half a minute)
  --no-record   print the figures without changing BENCHMARKS.md
";

/// Entry point of `cargo xtask bench runtime` (`args` are the arguments after `runtime`).
pub fn run(args: &[String]) -> Result {
    let mut quick = false;
    let mut record = true;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "--no-record" => record = false,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}").into()),
        }
    }
    crate::guests::build()?;
    crate::demo::ensure_pkg(false)?;
    let out = root().join("target").join("bench");
    let out_arg = out.to_string_lossy().into_owned();
    let mut script_args = vec!["--out", out_arg.as_str()];
    if quick {
        script_args.push("--quick");
    }
    crate::browser::run_script("bench.mjs", &script_args)?;
    let md = out.join("runtime.md");
    let body = fs::read_to_string(&md)
        .map_err(|e| format!("bench.mjs did not write {}: {e}", md.display()))?;
    if record {
        let path = root().join("BENCHMARKS.md");
        crate::bench::write_section(&path, "runtime", &body)?;
        eprintln!("xtask: recorded the figures in {}", path.display());
    }
    Ok(())
}
