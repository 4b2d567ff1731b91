//! Scenarios for the race detector. Race-free: data guarded by std's `Mutex`, `Condvar`
//! and `mpsc` channels, `Arc`-shared read-only data, a buffer published by an atomic
//! flag, and 64 KiB blocks that one thread allocates and another frees. Racy: accesses of
//! different widths to overlapping bytes, a `memory.fill` racing with a load, and a race
//! between two threads spawned by a thread.
//!
//! Every exported function is a scenario listed in `guests/manifest.json`. Racy accesses
//! are made in `#[inline(never)]` functions with distinctive names (`racy_*`), which the
//! manifest's `findings` name. In each racy scenario the racing threads meet at an atomic
//! barrier right before their racy accesses, so the accesses overlap in every run.
#![feature(stdarch_wasm_atomic_wait)]

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Condvar};

use core::arch::wasm32::{memory_atomic_notify, memory_atomic_wait32};
use support::arrive_and_wait;
use wasmgrind_guest::thread;

/// Four threads each push 250 numbers to a `Vec` behind a `std::sync::Mutex` (which
/// grows it, so the guarded data moves between allocations); the main thread checks that
/// all 1000 arrived.
#[no_mangle]
pub extern "C" fn std_mutex_vec() {
    const THREADS: u32 = 4;
    const PUSHES: u32 = 250;
    let shared = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                for i in 0..PUSHES {
                    shared
                        .lock()
                        .expect("std_mutex_vec: poisoned")
                        .push(t * PUSHES + i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("std_mutex_vec: join failed");
    }
    let mut all = shared.lock().expect("std_mutex_vec: poisoned").clone();
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(0..THREADS * PUSHES),
        "std_mutex_vec: pushes were lost or doubled"
    );
}

/// The slot that [`std_condvar_handoff`]'s threads hand items through.
struct Slot {
    /// The item on its way, if any.
    item: Option<Box<[u32; 64]>>,
    /// Items taken so far.
    taken: u32,
}

/// A producer hands 50 heap-allocated arrays, one at a time, through a slot guarded by a
/// `std::sync::Mutex` and two `Condvar`s (slot full, slot empty) to a consumer, which
/// checks their contents and frees them.
#[no_mangle]
pub extern "C" fn std_condvar_handoff() {
    const ITEMS: u32 = 50;
    let shared = Arc::new((
        std::sync::Mutex::new(Slot {
            item: None,
            taken: 0,
        }),
        Condvar::new(),
        Condvar::new(),
    ));
    let producer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let (slot, filled, emptied) = &*shared;
            for i in 0..ITEMS {
                let mut item = Box::new([0u32; 64]);
                for (k, v) in item.iter_mut().enumerate() {
                    *v = i * 64 + k as u32;
                }
                let guard = slot.lock().expect("std_condvar_handoff: poisoned");
                let mut guard = emptied
                    .wait_while(guard, |s| s.item.is_some())
                    .expect("std_condvar_handoff: poisoned");
                guard.item = Some(item);
                filled.notify_one();
            }
        })
    };
    let consumer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let (slot, filled, emptied) = &*shared;
            let mut sum = 0u64;
            for i in 0..ITEMS {
                let guard = slot.lock().expect("std_condvar_handoff: poisoned");
                let mut guard = filled
                    .wait_while(guard, |s| s.item.is_none())
                    .expect("std_condvar_handoff: poisoned");
                let item = guard.item.take().expect("the slot is full");
                guard.taken += 1;
                emptied.notify_one();
                drop(guard);
                assert!(
                    item.iter()
                        .enumerate()
                        .all(|(k, &v)| v == i * 64 + k as u32),
                    "std_condvar_handoff: item {i} arrived corrupted"
                );
                sum += item.iter().map(|&v| u64::from(v)).sum::<u64>();
            }
            sum
        })
    };
    producer
        .join()
        .expect("std_condvar_handoff: producer join failed");
    let sum = consumer
        .join()
        .expect("std_condvar_handoff: consumer join failed");
    let n = u64::from(ITEMS) * 64;
    assert_eq!(sum, n * (n - 1) / 2, "std_condvar_handoff: wrong sum");
    let taken = shared
        .0
        .lock()
        .expect("std_condvar_handoff: poisoned")
        .taken;
    assert_eq!(taken, ITEMS, "std_condvar_handoff: wrong number of items");
}

/// Two producers send 20 heap-allocated chunks of 100 numbers each through a
/// `std::sync::mpsc` channel to a consumer, which sums them and sends the total to the
/// main thread through a rendezvous `sync_channel(0)`.
#[no_mangle]
pub extern "C" fn std_mpsc_pipeline() {
    const CHUNKS: u32 = 20;
    const LEN: u32 = 100;
    let (tx, rx) = mpsc::channel::<VecDeque<u32>>();
    let (total_tx, total_rx) = mpsc::sync_channel::<u64>(0);
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for c in 0..CHUNKS {
                    let first = (p * CHUNKS + c) * LEN;
                    let chunk: VecDeque<u32> = (first..first + LEN).collect();
                    tx.send(chunk).expect("std_mpsc_pipeline: receiver gone");
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = thread::spawn(move || {
        let mut total = 0u64;
        let mut chunks = 0;
        // Ends when both producers have dropped their senders.
        for chunk in rx {
            assert_eq!(chunk.len(), LEN as usize, "std_mpsc_pipeline: short chunk");
            total += chunk.iter().map(|&v| u64::from(v)).sum::<u64>();
            chunks += 1;
        }
        assert_eq!(chunks, 2 * CHUNKS, "std_mpsc_pipeline: chunks were lost");
        total_tx.send(total).expect("std_mpsc_pipeline: main gone");
    });
    let total = total_rx.recv().expect("std_mpsc_pipeline: no total");
    for h in producers {
        h.join().expect("std_mpsc_pipeline: producer join failed");
    }
    consumer
        .join()
        .expect("std_mpsc_pipeline: consumer join failed");
    let n = u64::from(2 * CHUNKS * LEN);
    assert_eq!(total, n * (n - 1) / 2, "std_mpsc_pipeline: wrong total");
}

/// Read-only data that [`arc_shared_readonly`] shares.
struct Table {
    name: String,
    values: Vec<u64>,
}

/// The main thread builds a table, shares it through an `Arc` with four threads that meet
/// at a barrier and then all read all of it at once; nobody writes it after the spawn.
#[no_mangle]
pub extern "C" fn arc_shared_readonly() {
    const THREADS: u32 = 4;
    let table = Arc::new(Table {
        name: String::from("squares"),
        values: (0..4096u64).map(|v| v * v).collect(),
    });
    let arrived = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (table, arrived) = (Arc::clone(&table), Arc::clone(&arrived));
            thread::spawn(move || {
                arrive_and_wait(&arrived, THREADS);
                assert_eq!(table.name, "squares", "arc_shared_readonly: wrong name");
                table.values.iter().fold(0u64, |s, &v| s.wrapping_add(v))
            })
        })
        .collect();
    let expected = table.values.iter().fold(0u64, |s, &v| s.wrapping_add(v));
    for h in handles {
        let sum = h.join().expect("arc_shared_readonly: join failed");
        assert_eq!(
            sum, expected,
            "arc_shared_readonly: a thread read other values"
        );
    }
}

/// A buffer that one thread fills and then publishes with an atomic flag.
struct Mailbox {
    /// 0 until the buffer is complete, then 1 (stored with `Release`).
    ready: AtomicU32,
    data: UnsafeCell<[u32; 1024]>,
}

// SAFETY: `data` is written only before `ready` is set (Release) and read only after it
// was seen set (Acquire).
unsafe impl Sync for Mailbox {}

/// Fills the mailbox's buffer with plain stores. Never inlined.
#[inline(never)]
fn fill_mailbox(data: *mut [u32; 1024]) {
    for i in 0..1024 {
        // SAFETY: `data` is valid; no other thread reads it before the flag is set.
        unsafe { (*data)[i] = i as u32 * 7 + 1 };
    }
}

/// Sums the mailbox's buffer with plain loads. Never inlined.
#[inline(never)]
fn sum_mailbox(data: *const [u32; 1024]) -> u64 {
    // SAFETY: `data` is valid and complete: the caller saw the flag set.
    unsafe { (*data).iter().map(|&v| u64::from(v)).sum() }
}

/// A writer fills a 4 KiB buffer with plain stores and publishes it with
/// `store(1, Release)` on a flag; a reader, which met the writer at a barrier first,
/// spins on `load(Acquire)` (sleeping in `memory.atomic.wait32` between looks) and then
/// reads the buffer with plain loads. The flag is the only order between the two.
#[no_mangle]
pub extern "C" fn atomic_flag_publish() {
    let mailbox = Arc::new(Mailbox {
        ready: AtomicU32::new(0),
        data: UnsafeCell::new([0; 1024]),
    });
    let arrived = Arc::new(AtomicU32::new(0));
    let writer = {
        let (mailbox, arrived) = (Arc::clone(&mailbox), Arc::clone(&arrived));
        thread::spawn(move || {
            arrive_and_wait(&arrived, 2);
            fill_mailbox(mailbox.data.get());
            mailbox.ready.store(1, Ordering::Release);
            // SAFETY: a valid atomic in shared memory.
            unsafe { memory_atomic_notify(mailbox.ready.as_ptr().cast(), u32::MAX) };
        })
    };
    let reader = {
        let (mailbox, arrived) = (Arc::clone(&mailbox), Arc::clone(&arrived));
        thread::spawn(move || {
            arrive_and_wait(&arrived, 2);
            while mailbox.ready.load(Ordering::Acquire) == 0 {
                // Sleeps only while the flag is still 0; the writer sets it first.
                // SAFETY: a valid atomic in shared memory; no timeout.
                unsafe { memory_atomic_wait32(mailbox.ready.as_ptr().cast(), 0, -1) };
            }
            sum_mailbox(mailbox.data.get())
        })
    };
    writer
        .join()
        .expect("atomic_flag_publish: writer join failed");
    let sum = reader
        .join()
        .expect("atomic_flag_publish: reader join failed");
    let expected: u64 = (0..1024u64).map(|i| i * 7 + 1).sum();
    assert_eq!(
        sum, expected,
        "atomic_flag_publish: the reader saw a partial buffer"
    );
}

/// The size of the blocks of [`large_blocks_across_threads`]: 64 KiB.
const BLOCK: usize = 64 * 1024;
/// The distance between the stamps written into a block: 4 KiB.
const PAGE: usize = 4096;

/// The byte that block `b` of producer `p` in round `round` is filled with.
fn fill_byte(round: u32, p: u32, b: u32) -> u8 {
    (round * 97 + p * 13 + b * 5 + 1) as u8
}

/// The stamp at the start of 4 KiB page `k` of that block.
fn stamp(round: u32, p: u32, b: u32, k: usize) -> u32 {
    (round << 24 | p << 16 | b << 8) ^ k as u32
}

/// Allocates a 64 KiB block, fills it (one `memory.fill`) and stamps each 4 KiB page.
fn make_block(round: u32, p: u32, b: u32) -> Vec<u8> {
    let mut block = vec![fill_byte(round, p, b); BLOCK];
    for (k, page) in block.chunks_exact_mut(PAGE).enumerate() {
        page[..4].copy_from_slice(&stamp(round, p, b, k).to_le_bytes());
    }
    block
}

/// Whether `block` is what [`make_block`] made: its stamps and the last byte of every
/// page.
fn check_block(block: &[u8], round: u32, p: u32, b: u32) -> bool {
    block.len() == BLOCK
        && block.chunks_exact(PAGE).enumerate().all(|(k, page)| {
            page[..4] == stamp(round, p, b, k).to_le_bytes()
                && page[PAGE - 1] == fill_byte(round, p, b)
        })
}

/// 64 KiB blocks change threads, 3 rounds: in each, 4 producers allocate 2 blocks each
/// and fill them; the main thread joins them and hands each producer's blocks to one of 4
/// consumers, which check and free them. Each round's consumers run while the next
/// round's producers allocate, so memory that one thread frees another may get at once.
/// 24 threads.
#[no_mangle]
pub extern "C" fn large_blocks_across_threads() {
    const ROUNDS: u32 = 3;
    const THREADS: u32 = 4;
    const BLOCKS: u32 = 2;
    let mut consumers = Vec::new();
    for round in 0..ROUNDS {
        let producers: Vec<_> = (0..THREADS)
            .map(|p| {
                thread::spawn(move || {
                    (0..BLOCKS)
                        .map(|b| make_block(round, p, b))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let batches: Vec<_> = producers
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("large_blocks_across_threads: producer join failed")
            })
            .collect();
        for h in consumers.drain(..) {
            join_consumer(h);
        }
        consumers = batches
            .into_iter()
            .zip(0..)
            .map(|(blocks, p)| {
                thread::spawn(move || {
                    for (block, b) in blocks.into_iter().zip(0..) {
                        assert!(
                            check_block(&block, round, p, b),
                            "large_blocks_across_threads: block {b} of producer {p} in \
                             round {round} was corrupted"
                        );
                        drop(block);
                    }
                })
            })
            .collect();
    }
    for h in consumers {
        join_consumer(h);
    }
}

/// Joins a consumer of [`large_blocks_across_threads`].
fn join_consumer(h: thread::JoinHandle<()>) {
    h.join()
        .expect("large_blocks_across_threads: consumer join failed");
}

/// A `u64` at an 8-aligned address, shared without synchronization.
#[repr(C, align(8))]
struct Word(UnsafeCell<u64>);

// SAFETY: it is not: this type exists to make data races that the trace shows.
unsafe impl Sync for Word {}

/// The high half that [`racy_write_u64`] stores.
const HIGH: u32 = 0x1111_2222;

/// Writes the whole `u64` at `word` `rounds` times with plain (volatile) 8-byte stores.
/// Never inlined.
#[inline(never)]
fn racy_write_u64(word: *mut u64, rounds: u32) {
    for i in 0..rounds {
        // SAFETY: none; the race is the point. Volatile keeps every store.
        unsafe { word.write_volatile((u64::from(HIGH) << 32) | u64::from(i)) };
    }
}

/// Reads the high half of the `u64` at `word` (the `u32` at byte offset 4) `rounds`
/// times with plain (volatile) 4-byte loads; returns how many values were neither the old
/// high half (0) nor the new one ([`HIGH`]). Never inlined.
#[inline(never)]
fn racy_read_high_u32(word: *const u64, rounds: u32) -> u32 {
    // wasm32 is little-endian: the high half is the second u32.
    let high = word.cast::<u32>().wrapping_add(1);
    let mut strange = 0;
    for _ in 0..rounds {
        // SAFETY: none; the race is the point. Volatile keeps every load.
        let v = unsafe { high.read_volatile() };
        strange += u32::from(v != 0 && v != HIGH);
    }
    strange
}

/// Accesses of different widths to overlapping bytes: after a barrier, one thread writes
/// a `u64` at an 8-aligned address (8-byte plain stores) while another reads the `u32` at
/// its byte offset 4 (4-byte plain loads).
#[no_mangle]
pub extern "C" fn mixed_width_race() {
    let word = Arc::new(Word(UnsafeCell::new(0)));
    let arrived = Arc::new(AtomicU32::new(0));
    let writer = {
        let (word, arrived) = (Arc::clone(&word), Arc::clone(&arrived));
        thread::spawn(move || {
            arrive_and_wait(&arrived, 2);
            racy_write_u64(word.0.get(), 100);
        })
    };
    let reader = {
        let (word, arrived) = (Arc::clone(&word), Arc::clone(&arrived));
        thread::spawn(move || {
            arrive_and_wait(&arrived, 2);
            racy_read_high_u32(word.0.get(), 100)
        })
    };
    writer.join().expect("mixed_width_race: writer join failed");
    let strange = reader.join().expect("mixed_width_race: reader join failed");
    assert_eq!(
        strange, 0,
        "mixed_width_race: the reader saw a high half that nobody wrote"
    );
    // SAFETY: both threads are joined.
    let last = unsafe { word.0.get().read_volatile() };
    assert_eq!(
        last,
        (u64::from(HIGH) << 32) | 99,
        "mixed_width_race: lost the last store"
    );
}

/// A 4 KiB buffer shared without synchronization.
struct Buffer(UnsafeCell<[u8; 4096]>);

// SAFETY: it is not: this type exists to make a data race that the trace shows.
unsafe impl Sync for Buffer {}

/// Fills the whole buffer with 0xAB: `core::ptr::write_bytes` of 4096 bytes, which
/// compiles to one `memory.fill` (the guests are built with bulk memory). Never inlined.
#[inline(never)]
fn racy_fill(buf: *mut [u8; 4096]) {
    // SAFETY: none for the race; `buf` is valid for 4096 bytes.
    unsafe { core::ptr::write_bytes(buf.cast::<u8>(), 0xAB, 4096) };
}

/// Reads the `u32` at byte offset 1024 of the buffer with plain (volatile) 4-byte loads,
/// `rounds` times; returns the last value. Never inlined.
#[inline(never)]
fn racy_read_filled(buf: *const [u8; 4096], rounds: u32) -> u32 {
    let word = buf.cast::<u8>().wrapping_add(1024).cast::<u32>();
    let mut last = 0;
    for _ in 0..rounds {
        // SAFETY: none; the race is the point. Volatile keeps every load.
        last = unsafe { word.read_volatile() };
    }
    last
}

/// A `memory.fill` racing with a load: after a barrier, one thread fills a 4 KiB buffer
/// with `write_bytes` while another reads a `u32` inside it.
#[no_mangle]
pub extern "C" fn memory_fill_race() {
    let buffer = Arc::new(Buffer(UnsafeCell::new([0; 4096])));
    let arrived = Arc::new(AtomicU32::new(0));
    let filler = {
        let (buffer, arrived) = (Arc::clone(&buffer), Arc::clone(&arrived));
        thread::spawn(move || {
            arrive_and_wait(&arrived, 2);
            racy_fill(buffer.0.get());
        })
    };
    let reader = {
        let (buffer, arrived) = (Arc::clone(&buffer), Arc::clone(&arrived));
        thread::spawn(move || {
            arrive_and_wait(&arrived, 2);
            racy_read_filled(buffer.0.get(), 16)
        })
    };
    filler.join().expect("memory_fill_race: filler join failed");
    std::hint::black_box(reader.join().expect("memory_fill_race: reader join failed"));
    // SAFETY: both threads are joined.
    let filled = unsafe { &*buffer.0.get() };
    assert!(
        filled.iter().all(|&b| b == 0xAB),
        "memory_fill_race: the buffer is not filled"
    );
}

/// A counter without synchronization.
struct Racy(UnsafeCell<u32>);

// SAFETY: it is not: this type exists to make a data race that the trace shows.
unsafe impl Sync for Racy {}

/// Adds 1 to `*counter` `times` times, each with a plain (volatile) read and write, and
/// returns the last value written. Never inlined.
#[inline(never)]
fn racy_add_in_grandchild(counter: *mut u32, times: u32) -> u32 {
    let mut last = 0;
    for _ in 0..times {
        // SAFETY: none; the race is the point. Volatile keeps every access.
        unsafe {
            last = counter.read_volatile() + 1;
            counter.write_volatile(last);
        }
    }
    last
}

/// A race inside a thread that was spawned by a thread: the main thread spawns A; A
/// spawns B and C, which meet at a barrier and then increment a counter 500 times each
/// without synchronization; A joins both, the main thread joins A.
#[no_mangle]
pub extern "C" fn nested_thread_race() {
    let a = thread::spawn(|| {
        let counter = Arc::new(Racy(UnsafeCell::new(0)));
        let arrived = Arc::new(AtomicU32::new(0));
        let children: Vec<_> = (0..2)
            .map(|_| {
                let (counter, arrived) = (Arc::clone(&counter), Arc::clone(&arrived));
                thread::spawn(move || {
                    arrive_and_wait(&arrived, 2);
                    racy_add_in_grandchild(counter.0.get(), 500)
                })
            })
            .collect();
        let lasts: Vec<u32> = children
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("nested_thread_race: grandchild join failed")
            })
            .collect();
        // SAFETY: both writers are joined.
        let total = unsafe { counter.0.get().read_volatile() };
        // The thread that wrote last left its own last value.
        assert!(
            lasts.contains(&total),
            "nested_thread_race: the total {total} is nobody's last write ({lasts:?})"
        );
        total
    });
    std::hint::black_box(a.join().expect("nested_thread_race: join failed"));
}
