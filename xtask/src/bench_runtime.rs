//! `cargo xtask bench runtime`: the JS runtime's speed, in Node.js and in Chromium.
//!
//! It builds what is missing (the guests, `pkg/`), makes Chromium and the npm packages of
//! `tests/browser/` ready, and runs `node tests/browser/bench.mjs`, which measures side by
//! side, with medians of several runs:
//!
//! - the slowdown of tracing on the memory-heavy guest `stress::sort_large_array_1s` (more
//!   than 1 s untraced): locks-only (target <= 1.1x) and full memory tracing (target <=
//!   3x) ÷ untraced, and for reference the same on the short `stress::sort_large_array`;
//! - the export cost per event (RapidBin, target <= 20 ns; STD, within 3x of that);
//! - the peak memory (max RSS) of the runtime process;
//! - the start of 64 threads alive at once (`stress::concurrent_64`, target <= 0.5 s) in
//!   Node.js and Chromium;
//! - the thread create+join latency in Node.js and Chromium (target <= 1 ms);
//! - the longest main-thread gap of a page that calls `wasmgrind()` five times (target <=
//!   16 ms), in Chromium;
//!
//! prints each figure with its target and says which targets are missed and by how much,
//! and writes `target/bench/runtime.json` and the Markdown section that this command puts
//! into `BENCHMARKS.md` (the `runtime` section, with the machine and its load; the other
//! sections are left as they are). The script's header says exactly how each number is
//! measured. Benchmarks are not part of `cargo xtask test`.

use std::fs;

use crate::util::{root, Result};

const HELP: &str = "\
cargo xtask bench runtime [--quick] [--no-record]

Measures side by side, in one run: the slowdown of locks-only and full memory tracing on
a memory-heavy guest that runs more than 1 s untraced, the export cost per event, the
peak memory of the runtime process, the start of 64 threads alive at once (Node.js and
Chromium), the thread create+join latency (Node.js and Chromium) and the main-thread
smoothness of a page that calls wasmgrind() five times. Prints every figure with its
target, says which targets are missed and by how much, and records the figures, the
machine and its load in BENCHMARKS.md. Takes several minutes.

  --quick       fewer repetitions, no full-tracing attempt on the 1 s guest
  --no-record   print the figures without changing BENCHMARKS.md
  -h, --help    show this help
";

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Args {
    Help,
    Run { quick: bool, record: bool },
}

fn parse(args: &[String]) -> Result<Args> {
    let mut quick = false;
    let mut record = true;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "--no-record" => record = false,
            "-h" | "--help" => return Ok(Args::Help),
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}").into()),
        }
    }
    Ok(Args::Run { quick, record })
}

/// Entry point of `cargo xtask bench runtime` (`args` are the arguments after `runtime`).
pub fn run(args: &[String]) -> Result {
    let (quick, record) = match parse(args)? {
        Args::Help => {
            print!("{HELP}");
            return Ok(());
        }
        Args::Run { quick, record } => (quick, record),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_options() {
        assert_eq!(
            parse(&args(&[])).unwrap(),
            Args::Run {
                quick: false,
                record: true
            }
        );
        assert_eq!(
            parse(&args(&["--quick", "--no-record"])).unwrap(),
            Args::Run {
                quick: true,
                record: false
            }
        );
        assert_eq!(parse(&args(&["--quick", "--help"])).unwrap(), Args::Help);
        assert_eq!(parse(&args(&["-h"])).unwrap(), Args::Help);
    }

    #[test]
    fn refuses_unknown_arguments_with_the_help() {
        let e = parse(&args(&["--fast"])).unwrap_err().to_string();
        assert!(e.contains("unknown argument `--fast`"), "{e}");
        assert!(e.contains("--no-record"), "{e}");
    }

    #[test]
    fn the_help_names_every_measurement_and_option() {
        for what in [
            "locks-only",
            "full memory tracing",
            "export cost",
            "peak memory",
            "64 threads",
            "create+join",
            "main-thread",
            "BENCHMARKS.md",
            "--quick",
            "--no-record",
        ] {
            assert!(HELP.contains(what), "{what}");
        }
    }
}
