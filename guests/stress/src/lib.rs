//! Stress and benchmark scenarios: many spawn/join cycles, many threads alive at once,
//! cross-thread allocation, memory-heavy sorts with few threads and no locks, and a long
//! memory-heavy run of about 100 million traced accesses (`cargo xtask soak`).
//!
//! Every exported function is a scenario listed in `guests/manifest.json`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use support::arrive_and_wait;
use wasmgrind_guest::thread;

/// 2000 sequential spawn/join cycles: a runtime that leaks per-thread memory (stacks,
/// TLS blocks, instances) runs out here.
#[no_mangle]
pub extern "C" fn spawn_join_2000() {
    for i in 0..2000u32 {
        let h = thread::spawn(move || i ^ 0x5a5a);
        assert_eq!(h.join().expect("spawn_join_2000: join failed"), i ^ 0x5a5a);
    }
}

/// Threads of [`concurrent_64`].
const CONCURRENT: u32 = 64;

/// 64 threads alive at once: each one meets all the others at an atomic barrier, so none
/// can finish before the last one has started; then the main thread joins them all. A
/// runtime that starts one thread worker after the other is slow here.
#[no_mangle]
pub extern "C" fn concurrent_64() {
    let arrived = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let arrived = Arc::clone(&arrived);
            thread::spawn(move || {
                arrive_and_wait(&arrived, CONCURRENT);
                i * 3 + 1
            })
        })
        .collect();
    let sum: u32 = handles
        .into_iter()
        .map(|h| h.join().expect("concurrent_64: join failed"))
        .sum();
    assert_eq!(
        arrived.load(Ordering::SeqCst),
        CONCURRENT,
        "concurrent_64: not every thread arrived"
    );
    assert_eq!(
        sum,
        (0..CONCURRENT).map(|i| i * 3 + 1).sum::<u32>(),
        "concurrent_64: wrong results"
    );
}

/// A small deterministic pseudo-random generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// The byte pattern of block `i` of producer `p`.
fn pattern(p: u32, i: u32, k: usize) -> u8 {
    (p.wrapping_mul(31).wrapping_add(i).wrapping_mul(7) as usize + k) as u8
}

/// Four threads allocate 256 blocks each (8 bytes to 4 KiB) while churning short-lived
/// allocations; four other threads then verify the blocks and free them, so every block is
/// freed by another thread than the one that allocated it.
#[no_mangle]
pub extern "C" fn alloc_free_stress() {
    const PRODUCERS: u32 = 4;
    const BLOCKS: u32 = 256;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            thread::spawn(move || {
                let mut rng = Lcg(u64::from(p) + 1);
                let mut blocks = Vec::new();
                for i in 0..BLOCKS {
                    let size = 8 + (rng.next() % 4089) as usize;
                    let block: Vec<u8> = (0..size).map(|k| pattern(p, i, k)).collect();
                    blocks.push(block);
                    // Short-lived allocations, freed by the thread that made them.
                    let scratch = vec![i as u8; 1 + (rng.next() % 512) as usize];
                    assert!(scratch.iter().all(|&b| b == i as u8));
                }
                blocks
            })
        })
        .collect();
    let batches: Vec<Vec<Vec<u8>>> = producers
        .into_iter()
        .map(|h| h.join().expect("alloc_free_stress: producer join failed"))
        .collect();
    let consumers: Vec<_> = batches
        .into_iter()
        .enumerate()
        .map(|(p, blocks)| {
            thread::spawn(move || {
                let p = p as u32;
                for (i, block) in blocks.into_iter().enumerate() {
                    let ok = block
                        .iter()
                        .enumerate()
                        .all(|(k, &b)| b == pattern(p, i as u32, k));
                    assert!(
                        ok,
                        "alloc_free_stress: block {i} of producer {p} was corrupted"
                    );
                    drop(block);
                }
            })
        })
        .collect();
    for h in consumers {
        h.join().expect("alloc_free_stress: consumer join failed");
    }
}

/// Two threads each fill and sort 65536 pseudo-random numbers; the main thread merges
/// the halves and checks order and checksum. Memory-heavy, two threads, no locks.
#[no_mangle]
pub extern "C" fn sort_large_array() {
    sort_halves(1 << 16, 1, "sort_large_array");
}

/// The benchmark workload of `cargo xtask bench runtime`: [`sort_large_array`] with
/// halves of 1 << 21 numbers (8 MiB each), each filled and sorted 24 times, so that it
/// runs for more than a second untraced (about 1.5 s on an idle 2-core machine).
/// Memory-heavy, two threads, no locks.
#[no_mangle]
pub extern "C" fn sort_large_array_1s() {
    sort_halves(1 << 21, 24, "sort_large_array_1s");
}

/// Two threads each fill `half` pseudo-random numbers and sort them, `rounds` times over
/// (a fresh fill each round); the main thread merges the last halves and checks order and
/// checksum. `name` prefixes the panic messages.
fn sort_halves(half: usize, rounds: u32, name: &'static str) {
    let halves: Vec<_> = (0..2u64)
        .map(|seed| {
            thread::spawn(move || {
                let mut rng = Lcg(seed + 17);
                let mut v: Vec<u32> = Vec::with_capacity(half);
                let mut sum = 0;
                for _ in 0..rounds {
                    v.clear();
                    v.extend((0..half).map(|_| rng.next()));
                    sum = v.iter().fold(0u32, |s, &x| s.wrapping_add(x));
                    v.sort_unstable();
                }
                (v, sum)
            })
        })
        .collect();
    let mut parts = Vec::new();
    let mut expected_sum = 0u32;
    for h in halves {
        let (v, sum) = h
            .join()
            .unwrap_or_else(|e| panic!("{name}: join failed: {e:?}"));
        expected_sum = expected_sum.wrapping_add(sum);
        parts.push(v);
    }
    let (a, b) = (&parts[0], &parts[1]);
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            merged.push(a[i]);
            i += 1;
        } else {
            merged.push(b[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
    assert_eq!(merged.len(), 2 * half, "{name}: lost elements");
    assert!(
        merged.windows(2).all(|w| w[0] <= w[1]),
        "{name}: the result is not sorted"
    );
    let sum = merged.iter().fold(0u32, |s, &x| s.wrapping_add(x));
    assert_eq!(sum, expected_sum, "{name}: checksum mismatch");
}

/// Words that [`touch_distinct_10m`] writes: 10 Mi words, 40 MiB.
const TOUCH_WORDS: usize = 10 << 20;

/// One thread writes 10,485,760 distinct words once and sums them: about 21 million traced
/// accesses to ten million addresses, so the trace's metadata lists over ten million
/// variables (about 600 MB of JSON, more than one JavaScript string can hold). No locks,
/// no races. A soak run (`cargo xtask soak`): it needs about 3 GB.
#[no_mangle]
pub extern "C" fn touch_distinct_10m() {
    let sum = thread::spawn(|| {
        let mut words = vec![0u32; TOUCH_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = i as u32;
        }
        core::hint::black_box(&words)
            .iter()
            .map(|&w| u64::from(w))
            .sum::<u64>()
    })
    .join()
    .expect("touch_distinct_10m: join failed");
    let n = TOUCH_WORDS as u64;
    assert_eq!(sum, n * (n - 1) / 2, "touch_distinct_10m: wrong sum");
}

/// Threads of [`sum_buffers_100m`].
const SUM_THREADS: u32 = 4;
/// Words of each thread's buffer: 64 KiB.
const SUM_WORDS: usize = 16 * 1024;
/// Passes over its buffer that each thread makes.
const SUM_ROUNDS: u32 = 1536;

/// Four threads each fill a 64 KiB buffer of their own and sum it 1536 times: about
/// 100 million traced 4-byte loads in total (4 × 1536 × 16384 = 100,663,296), no locks and
/// no races. The soak test of streaming (`cargo xtask soak`), too long for `cargo xtask
/// test`.
#[no_mangle]
pub extern "C" fn sum_buffers_100m() {
    let workers: Vec<_> = (0..SUM_THREADS)
        .map(|t| {
            thread::spawn(move || {
                let buf: Vec<u32> = (0..SUM_WORDS as u32).map(|i| i ^ t).collect();
                let mut sum = 0u32;
                for _ in 0..SUM_ROUNDS {
                    // Opaque to the optimizer, so that every pass really loads every word.
                    let words = core::hint::black_box(&buf);
                    for &w in words.iter() {
                        sum = sum.wrapping_add(w);
                    }
                }
                sum
            })
        })
        .collect();
    for (t, h) in (0..SUM_THREADS).zip(workers) {
        let sum = h.join().expect("sum_buffers_100m: join failed");
        let once = (0..SUM_WORDS as u32).fold(0u32, |s, i| s.wrapping_add(i ^ t));
        assert_eq!(
            sum,
            once.wrapping_mul(SUM_ROUNDS),
            "sum_buffers_100m: thread {t} summed wrongly"
        );
    }
}
