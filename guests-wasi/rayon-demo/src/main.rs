//! A rayon program as a user writes it: `rayon` from crates.io, built on stable Rust for
//! `wasm32-wasip1-threads` (or for the host, to compare). Nothing here knows about
//! Wasmgrind.
//!
//! ```text
//! rayon_demo <scenario>
//! ```
//!
//! Each scenario checks its result against a serial computation, panics if it is wrong
//! and prints it to stdout. Without an argument, or with an unknown one, the program
//! prints the scenarios to stderr and exits with status 2.
//!
//! The thread pool: rayon sizes its global pool by `std::thread::available_parallelism`,
//! which fails on `wasm32-wasip1-threads` (`Unsupported`), and then runs everything on a
//! single worker thread. So the program configures the global pool the way the rayon
//! documentation shows, with `ThreadPoolBuilder::new().num_threads(4)`: every run, on
//! every host, has the same 4 worker threads (which stay alive until the program ends,
//! as rayon's global pool does).

use std::process::ExitCode;

use rayon::prelude::*;

/// Worker threads of the global pool.
const THREADS: usize = 4;

/// Every scenario: its name (the program's first argument), what it runs, and one line
/// about it. `cargo xtask guests` reads the names from this table in the source.
const SCENARIOS: &[(&str, fn(), &str)] = &[
    (
        "par_sum",
        par_sum,
        "(0..100000).into_par_iter().map(..).sum()",
    ),
    (
        "par_sort",
        par_sort,
        "par_sort of 20000 pseudo-random numbers",
    ),
];

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match SCENARIOS
        .iter()
        .find(|(name, _, _)| Some(*name) == arg.as_deref())
    {
        Some((_, run, _)) => {
            rayon::ThreadPoolBuilder::new()
                .num_threads(THREADS)
                .build_global()
                .expect("the global pool is built once, before any parallel work");
            run();
            ExitCode::SUCCESS
        }
        None => {
            match &arg {
                None => eprintln!("usage: rayon_demo <scenario>"),
                Some(arg) => eprintln!("unknown scenario `{arg}`"),
            }
            eprintln!("scenarios:");
            for (name, _, about) in SCENARIOS {
                eprintln!("  {name:<10} {about}");
            }
            ExitCode::from(2)
        }
    }
}

/// The value that [`par_sum`] adds up for `x`.
fn term(x: u64) -> u64 {
    x * x % 1009
}

/// A parallel map and sum over 100,000 numbers, checked against the serial sum.
fn par_sum() {
    const N: u64 = 100_000;
    let parallel: u64 = (0..N).into_par_iter().map(term).sum();
    let serial: u64 = (0..N).map(term).sum();
    assert_eq!(parallel, serial);
    println!("par_sum = {parallel} (serial sum {serial})");
}

/// 20,000 pseudo-random numbers (xorshift32, fixed seed) sorted with `par_sort`, checked
/// sorted and checked to be the same numbers as a serial sort gives.
fn par_sort() {
    const N: usize = 20_000;
    let mut state = 0x2545_f491u32;
    let mut numbers: Vec<u32> = (0..N)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state % 1_000_000
        })
        .collect();
    let mut serial = numbers.clone();
    serial.sort_unstable();
    numbers.par_sort();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "not sorted");
    assert!(numbers == serial, "par_sort changed the numbers");
    println!(
        "sorted {N} numbers: first {}, median {}, last {}",
        numbers[0],
        numbers[N / 2],
        numbers[N - 1]
    );
}
