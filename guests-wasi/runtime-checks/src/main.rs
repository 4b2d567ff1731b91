//! Checks of the runtime's wasi-threads ABI and WASI preview1 functions, written against
//! plain `std` and built on stable for `wasm32-wasip1-threads`.
//!
//! The first argument names the scenario; without one the program prints the list and
//! exits with 2. The tests in `tests/node/wasi.test.mjs` and `tests/browser/` run them.

use std::io::Write;
use std::time::{Duration, Instant};

/// The scenarios: name, what it checks.
const SCENARIOS: &[(&str, &str)] = &[
    (
        "hello",
        "writes to stdout and stderr and echoes its arguments and WASMGRIND_GREETING",
    ),
    (
        "spawn_join",
        "spawns 4 threads that each print a line, joins them, prints the sum of their results",
    ),
    (
        "spawn_held",
        "spawns 4 threads that all wait at a std Barrier with main, so that 5 threads are alive at once, then joins them",
    ),
    (
        "child_trap",
        "a child thread traps (an explicit unreachable) while main joins it",
    ),
    (
        "child_panic",
        "a child thread panics (on this target: the message, then an abort)",
    ),
    (
        "child_exit",
        "a child thread calls std::process::exit(3) while main waits",
    ),
    (
        "many_threads",
        "spawns and joins threads one after the other (count: second argument, default 2000)",
    ),
    (
        "sleep",
        "sleeps 50 ms in main and in a child thread and checks the clock moved",
    ),
    (
        "ordered_output",
        "4 threads one after the other each print 20,000 lines (1.3 MB in all), main a line after each",
    ),
    (
        "binary_output",
        "writes bytes that are no UTF-8 to stdout (ff 00 80 c3), then a character split between two writes",
    ),
    (
        "abandoned_lock",
        "a child forgets a std Mutex's guard and ends; main then locks it and waits for ever",
    ),
    (
        "no_files",
        "opens a file and reads stdin: both fail or end cleanly (no files, no preopens)",
    ),
    (
        "sum_bytes",
        "a child thread fills a buffer of MB mebibytes (second argument, default 1) and sums it byte by byte",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(name) = args.get(1) else {
        eprintln!("usage: runtime_checks SCENARIO [ARGS...]; scenarios:");
        for (name, what) in SCENARIOS {
            eprintln!("  {name:<14} {what}");
        }
        std::process::exit(2);
    };
    match name.as_str() {
        "hello" => hello(&args),
        "spawn_join" => spawn_join(),
        "spawn_held" => spawn_held(),
        "child_trap" => child_trap(),
        "child_panic" => child_panic(),
        "child_exit" => child_exit(),
        "many_threads" => {
            let count = args.get(2).map_or(2000, |c| {
                c.parse()
                    .unwrap_or_else(|_| panic!("the count must be a number, not {c:?}"))
            });
            many_threads(count)
        }
        "sleep" => sleep(),
        "no_files" => no_files(),
        "ordered_output" => ordered_output(),
        "binary_output" => binary_output(),
        "abandoned_lock" => abandoned_lock(),
        "sum_bytes" => {
            let mb: usize = args.get(2).map_or(1, |c| {
                c.parse()
                    .unwrap_or_else(|_| panic!("the size must be a number, not {c:?}"))
            });
            sum_bytes(mb)
        }
        other => {
            eprintln!("unknown scenario {other:?}; run without arguments for the list");
            std::process::exit(2);
        }
    }
}

fn hello(args: &[String]) {
    println!("hello from stdout");
    eprintln!("hello from stderr");
    println!("args: {}", args[2..].join(" "));
    let greeting = std::env::var("WASMGRIND_GREETING").unwrap_or_else(|_| "(unset)".into());
    println!("WASMGRIND_GREETING={greeting}");
    // Several writes in one line, flushed at the end, as print! does.
    let mut out = std::io::stdout().lock();
    for i in 0..3 {
        write!(out, "{i} ").unwrap();
    }
    writeln!(out, "done").unwrap();
}

/// One byte-wide access per byte of `mb` MiB, each a variable of the trace: the state of
/// the trace's analysis and export grows with them (a run with tens of MiB fills the
/// utility module's memory).
fn sum_bytes(mb: usize) {
    let sum = std::thread::spawn(move || {
        let buffer = vec![1u8; mb << 20];
        buffer.iter().map(|&b| u64::from(b)).sum::<u64>()
    })
    .join()
    .unwrap();
    println!("{sum}");
}

fn spawn_join() {
    let handles: Vec<_> = (1..=4u64)
        .map(|i| {
            std::thread::spawn(move || {
                println!("thread {i} running");
                i * 10
            })
        })
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("sum: {sum}");
}

/// 4 threads that cannot end before all 4 were spawned: each waits at a barrier that main
/// reaches only after its last spawn.
fn spawn_held() {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(5));
    let handles: Vec<_> = (1..=4u64)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                i
            })
        })
        .collect();
    barrier.wait();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("sum: {sum}");
}

fn child_trap() {
    let h = std::thread::spawn(|| {
        eprintln!("child: about to trap");
        core::arch::wasm32::unreachable()
    });
    let _ = h.join();
    println!("main: not reached");
}

fn child_panic() {
    let h = std::thread::spawn(|| {
        let v: Vec<u32> = Vec::new();
        if v.is_empty() {
            panic!("child thread gives up: the list is empty");
        }
    });
    let _ = h.join();
    println!("main: not reached");
}

fn child_exit() {
    let h = std::thread::spawn(|| {
        println!("child: exiting with 3");
        std::process::exit(3);
    });
    let _ = h.join();
    // The run has ended with the child's exit: main never gets here.
    println!("main: not reached");
    std::process::exit(1);
}

fn many_threads(count: u32) {
    let mut total = 0u64;
    for i in 0..count {
        total += std::thread::spawn(move || u64::from(i) % 7).join().unwrap();
    }
    println!("{count} threads joined, total {total}");
}

fn sleep() {
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(50));
    let child = std::thread::spawn(|| {
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        t.elapsed()
    });
    let child_slept = child.join().unwrap();
    let main_slept = t0.elapsed();
    assert!(
        child_slept >= Duration::from_millis(50),
        "the child slept only {child_slept:?}"
    );
    assert!(
        main_slept >= Duration::from_millis(100),
        "main slept only {main_slept:?}"
    );
    println!("slept");
}

fn no_files() {
    match std::fs::read_to_string("data.txt") {
        Ok(_) => println!("open: read a file"),
        Err(e) => println!("open: failed ({e})"),
    }
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(n) => println!("stdin: {n} bytes"),
        Err(e) => println!("stdin: failed ({e})"),
    }
    // std seeds its hash maps with random_get, and panics if that fails.
    let mut seen = std::collections::HashMap::new();
    seen.insert("key", 1);
    println!("random: seeded a HashMap with {} entry", seen.len());
}

fn abandoned_lock() {
    let mutex = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let child = {
        let mutex = std::sync::Arc::clone(&mutex);
        std::thread::spawn(move || std::mem::forget(mutex.lock().unwrap()))
    };
    child.join().unwrap();
    // Never returns: the lock's holder ended without releasing it.
    let value = *mutex.lock().unwrap();
    println!("locked an abandoned mutex: {value}");
}

fn binary_output() {
    let mut out = std::io::stdout().lock();
    out.write_all(&[0xff, 0x00, 0x80, 0xc3]).unwrap();
    out.flush().unwrap();
    // "é" (c3 a9), its two bytes in two writes.
    out.write_all(&[b'\n', 0xc3]).unwrap();
    out.flush().unwrap();
    out.write_all(&[0xa9, b'\n']).unwrap();
    out.flush().unwrap();
}

fn ordered_output() {
    for t in 0..4 {
        std::thread::spawn(move || {
            let mut out = std::io::stdout().lock();
            for line in 0..20_000 {
                writeln!(out, "thread {t} line {line}").unwrap();
            }
        })
        .join()
        .unwrap();
        println!("main after thread {t}");
    }
}
