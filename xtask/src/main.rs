//! `cargo xtask <command>`: the project's build, test and release automation.
//!
//! Every command is plain Rust so that a fresh clone needs nothing but cargo. Commands
//! install what they need (the pinned nightly, npm packages, Chromium, mdbook) themselves.

mod bench;
mod bench_runtime;
mod book;
mod browser;
mod bundler;
mod demo;
mod dist;
mod fuzz;
mod guests;
mod new_guest;
mod soak;
mod test;
mod toolchain;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

commands:
  guests          build every guest program into target/guests/*.wasm (installs the pinned nightly)
  new-guest PATH  create a guest crate in PATH that builds with the settings of guests/
                  (Cargo.toml, src/lib.rs, .cargo/config.toml, rust-toolchain.toml)
  dist            build pkg/, the npm package (wasm-bindgen output, JS runtime, CLI)
  test            build what is needed and run every test, clippy and the fmt check
  bundler         the bundler test alone: pkg/ packed into the Vite app of tests/bundler,
                  built and run in Chromium (needs `dist` and `guests` first)
  demo            run a bundled guest in Node with tracing and print the trace summary
  soak            a ~100M-event traced run through the CLI: events, wall time, peak RSS
                  (must stay below 4 GiB); not part of `test`
  bench <what>    run a benchmark: `transform`, `runtime` or `analysis`
  fuzz            fuzz the patcher and the instrumenter (`--seconds N`, default 60; `--seed S`)
  book            build the mdBook into book/book
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{HELP}");
        return ExitCode::FAILURE;
    };
    let result = match cmd.as_str() {
        "guests" => guests::run(rest),
        "new-guest" => new_guest::run(rest),
        "dist" => dist::run(rest),
        "test" => test::run(rest),
        "bundler" => bundler::run(rest),
        "demo" => demo::run(rest),
        "soak" => soak::run(rest),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "book" => book::run(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{HELP}").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
