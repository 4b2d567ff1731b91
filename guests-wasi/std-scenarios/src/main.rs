//! Ordinary `std::thread` and `std::sync` programs, one per scenario, built on stable Rust
//! for `wasm32-wasip1-threads` (or for the host, to compare). Nothing here knows about
//! Wasmgrind.
//!
//! ```text
//! std_scenarios <scenario>
//! ```
//!
//! Each scenario checks its own result, panics if it is wrong and prints it to stdout.
//! Without an argument, or with an unknown one, the program prints the scenarios to
//! stderr and exits with status 2. `guests/manifest.json` (key `wasi_guests`) states what
//! a traced run of each must show; `cargo xtask guests` checks that its scenarios are
//! exactly the names of [`SCENARIOS`].
//!
//! The functions whose names the detectors' findings must show are `#[inline(never)]`
//! and have distinctive names (`racy_static_increment`, `lock_both_in_order`, ...).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock};
use std::thread;

/// Every scenario: its name (the program's first argument), what it runs, and one line
/// about it. `cargo xtask guests` reads the names from this table in the source.
const SCENARIOS: &[(&str, fn(), &str)] = &[
    (
        "spawn_join",
        spawn_join,
        "4 threads sum ranges; main joins them",
    ),
    (
        "scope",
        scope,
        "thread::scope: 4 threads square disjoint chunks",
    ),
    (
        "mutex_counter",
        mutex_counter,
        "Arc<Mutex<u64>>: 4 threads add 1000 each",
    ),
    (
        "condvar_queue",
        condvar_queue,
        "bounded queue, Mutex and two Condvars",
    ),
    (
        "mpsc",
        mpsc_channel,
        "3 producers send 50 numbers each over mpsc",
    ),
    (
        "rwlock",
        rwlock,
        "1 writer and 3 readers share a pair behind an RwLock",
    ),
    (
        "once_lock",
        once_lock,
        "4 threads race to initialize one OnceLock",
    ),
    (
        "atomic_flag",
        atomic_flag,
        "a buffer published with Release/Acquire atomics",
    ),
    (
        "static_mut_race",
        static_mut_race,
        "2 threads increment a static mut (data race)",
    ),
    (
        "unsafecell_race",
        unsafecell_race,
        "2 threads write one UnsafeCell (data race)",
    ),
    (
        "lock_order_inversion",
        lock_order_inversion,
        "2 threads take 2 Mutexes in opposite orders, one after the other",
    ),
    (
        "inversion_held_at_exit",
        inversion_held_at_exit,
        "lock_order_inversion, then exit while main holds one of the Mutexes",
    ),
    (
        "freed_lock_reuse",
        freed_lock_reuse,
        "A->B, then B->A' where A' reuses the freed memory of A",
    ),
    (
        "relock",
        relock,
        "a thread locks a Mutex it holds (a deadlock of one thread)",
    ),
    (
        "join_deadlock",
        join_deadlock,
        "main joins a thread that waits for a Mutex main holds",
    ),
    (
        "deadlock",
        deadlock,
        "2 threads each hold one Mutex and wait for the other",
    ),
];

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match SCENARIOS
        .iter()
        .find(|(name, _, _)| Some(*name) == arg.as_deref())
    {
        Some((_, run, _)) => {
            run();
            ExitCode::SUCCESS
        }
        None => {
            match &arg {
                None => eprintln!("usage: std_scenarios <scenario>"),
                Some(arg) => eprintln!("unknown scenario `{arg}`"),
            }
            eprintln!("scenarios:");
            for (name, _, about) in SCENARIOS {
                eprintln!("  {name:<22} {about}");
            }
            ExitCode::from(2)
        }
    }
}

/// 4 threads sum disjoint ranges of 1..=4000; main joins them and adds the results.
fn spawn_join() {
    let handles: Vec<_> = (0..4u64)
        .map(|i| thread::spawn(move || (i * 1000 + 1..=(i + 1) * 1000).sum::<u64>()))
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 4000 * 4001 / 2);
    println!("sum = {total}");
}

/// `thread::scope`: 4 threads square the numbers of their own chunk of a borrowed vector
/// and read a borrowed offset; no `Arc`, no join handles kept.
fn scope() {
    let mut numbers: Vec<u64> = (1..=400).collect();
    let offset = 1u64;
    thread::scope(|s| {
        for chunk in numbers.chunks_mut(100) {
            let offset = &offset;
            s.spawn(move || {
                for n in chunk {
                    *n = *n * *n + offset;
                }
            });
        }
    });
    let total: u64 = numbers.iter().sum();
    assert_eq!(total, (1..=400u64).map(|n| n * n + 1).sum::<u64>());
    println!("sum of squares + 1 = {total}");
}

/// `Arc<Mutex<u64>>`: 4 threads add 1 a thousand times each.
fn mutex_counter() {
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..1000 {
                    *counter.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = *counter.lock().unwrap();
    assert_eq!(total, 4000);
    println!("counter = {total}");
}

/// A queue of at most 4 items behind a `Mutex`, with one `Condvar` for "not empty" and
/// one for "not full": a producer pushes 1..=100 and then `None`; a consumer sums.
fn condvar_queue() {
    struct Queue {
        items: Mutex<VecDeque<Option<u64>>>,
        not_empty: Condvar,
        not_full: Condvar,
    }
    const CAPACITY: usize = 4;
    let queue = Arc::new(Queue {
        items: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            for item in (1..=100).map(Some).chain([None]) {
                let mut items = queue
                    .not_full
                    .wait_while(queue.items.lock().unwrap(), |items| items.len() == CAPACITY)
                    .unwrap();
                items.push_back(item);
                queue.not_empty.notify_one();
            }
        })
    };
    let consumer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let (mut count, mut sum) = (0u64, 0u64);
            loop {
                let mut items = queue
                    .not_empty
                    .wait_while(queue.items.lock().unwrap(), |items| items.is_empty())
                    .unwrap();
                let item = items.pop_front().unwrap();
                queue.not_full.notify_one();
                match item {
                    Some(n) => {
                        count += 1;
                        sum += n;
                    }
                    None => return (count, sum),
                }
            }
        })
    };
    producer.join().unwrap();
    let (count, sum) = consumer.join().unwrap();
    assert_eq!((count, sum), (100, 5050));
    println!("consumed {count} items, sum = {sum}");
}

/// 3 producers send 50 numbers each through one `mpsc` channel; main receives until
/// every sender is gone.
fn mpsc_channel() {
    let (tx, rx) = mpsc::channel::<u64>();
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 1..=50 {
                    tx.send(p * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let (mut count, mut sum) = (0u64, 0u64);
    for n in rx {
        count += 1;
        sum += n;
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!((count, sum), (150, 3 * 1275 + 50 * (1000 + 2000)));
    println!("received {count} messages, sum = {sum}");
}

/// 1 writer sets a pair to (i, i) for i in 1..=100 behind an `RwLock`; 3 readers read it
/// 100 times each and check that its halves agree.
fn rwlock() {
    let pair = Arc::new(RwLock::new((0u64, 0u64)));
    let writer = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || {
            for i in 1..=100 {
                let mut p = pair.write().unwrap();
                p.0 = i;
                p.1 = i;
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let mut reads = 0;
                for _ in 0..100 {
                    let p = pair.read().unwrap();
                    assert_eq!(p.0, p.1, "a reader saw a half-written pair");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let last = *pair.read().unwrap();
    assert_eq!((last, reads), ((100, 100), 300));
    println!("final = {last:?}, reads = {reads}");
}

/// 4 threads call `get_or_init` on one `OnceLock` at the same time; the initializer runs
/// once and every thread sees its value.
fn once_lock() {
    static VALUE: OnceLock<Vec<u64>> = OnceLock::new();
    static INITS: AtomicUsize = AtomicUsize::new(0);
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let v = VALUE.get_or_init(|| {
                    INITS.fetch_add(1, Ordering::Relaxed);
                    (1..=10).collect()
                });
                v.iter().sum::<u64>()
            })
        })
        .collect();
    let sums: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let inits = INITS.load(Ordering::Relaxed);
    assert_eq!((sums, inits), (vec![55; 4], 1));
    println!("every thread saw sum = 55; initialized {inits} time");
}

/// A plain buffer that a writer fills and then publishes with a `Release` store of a flag;
/// the reader spins on an `Acquire` load of the flag and reads the buffer, and hands the
/// sum back through an `AtomicUsize` the same way. Race-free without any lock.
fn atomic_flag() {
    struct Mailbox {
        ready: AtomicBool,
        data: UnsafeCell<[u64; 64]>,
        answer: AtomicUsize,
    }
    // SAFETY: `data` is written only before `ready` is set (Release) and read only after
    // it was seen set (Acquire).
    unsafe impl Sync for Mailbox {}
    let mailbox = Arc::new(Mailbox {
        ready: AtomicBool::new(false),
        data: UnsafeCell::new([0; 64]),
        answer: AtomicUsize::new(0),
    });
    let reader = {
        let mailbox = Arc::clone(&mailbox);
        thread::spawn(move || {
            while !mailbox.ready.load(Ordering::Acquire) {
                thread::yield_now();
            }
            // SAFETY: see `Mailbox`.
            let sum: u64 = unsafe { (*mailbox.data.get()).iter().sum() };
            mailbox.answer.store(sum as usize + 1, Ordering::Release);
        })
    };
    // SAFETY: the reader does not read `data` before `ready` is set.
    unsafe {
        for (i, slot) in (*mailbox.data.get()).iter_mut().enumerate() {
            *slot = i as u64 + 1;
        }
    }
    mailbox.ready.store(true, Ordering::Release);
    let answer = loop {
        match mailbox.answer.load(Ordering::Acquire) {
            0 => thread::yield_now(),
            n => break n - 1,
        }
    };
    reader.join().unwrap();
    assert_eq!(answer, 64 * 65 / 2);
    println!("reader summed {answer}");
}

/// The counter of [`static_mut_race`].
static mut COUNTER: u64 = 0;

/// Adds 1 to [`COUNTER`] `times` times, without synchronization.
#[inline(never)]
fn racy_static_increment(times: u64) {
    for _ in 0..times {
        // SAFETY: none; two threads do this at the same time: a data race.
        unsafe { COUNTER += 1 };
    }
}

/// Two threads meet at a `Barrier` and then each run [`racy_static_increment`]: a data
/// race on a `static mut`. The total may lose updates, so it is printed as a range.
fn static_mut_race() {
    let start = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                racy_static_increment(1000);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // SAFETY: both threads were joined.
    let total = unsafe { COUNTER };
    assert!((1000..=2000).contains(&total), "counter = {total}");
    println!("counter = {total} (up to 2000; updates may be lost)");
}

/// An `UnsafeCell` that claims to be `Sync`: the mistake of [`unsafecell_race`].
struct SharedCell(UnsafeCell<u64>);

// SAFETY: none: two threads write the cell without synchronization.
unsafe impl Sync for SharedCell {}

/// Writes `value` into the cell, without synchronization.
#[inline(never)]
fn racy_cell_write(cell: &SharedCell, value: u64) {
    // SAFETY: none; see `SharedCell`.
    unsafe { std::ptr::write_volatile(cell.0.get(), value) };
}

/// Two scoped threads meet at a `Barrier` and write one `UnsafeCell` shared through a
/// `Sync` wrapper: a data race. Either write may be the last one.
fn unsafecell_race() {
    let cell = SharedCell(UnsafeCell::new(0));
    let start = Barrier::new(2);
    thread::scope(|s| {
        for value in [1, 2] {
            let (cell, start) = (&cell, &start);
            s.spawn(move || {
                start.wait();
                racy_cell_write(cell, value);
            });
        }
    });
    let last = cell.0.into_inner();
    assert!(last == 1 || last == 2, "cell = {last}");
    println!("cell = {last} (1 or 2: the last write wins)");
}

/// Locks `first`, then `second` while holding `first`, and adds 1 to both.
#[inline(never)]
fn lock_both_in_order(first: &Mutex<u64>, second: &Mutex<u64>) {
    let mut a = first.lock().unwrap();
    let mut b = second.lock().unwrap();
    *a += 1;
    *b += 1;
}

/// [`lock_order_inversion`]'s two threads, then main locks A and ends the program with
/// `std::process::exit` while it holds A: a lock held at the end is still a lock (it was
/// locked and unlocked before), so the potential deadlock is reported as without the exit.
fn inversion_held_at_exit() {
    let locks = inversion_threads();
    let a = locks.0.lock().unwrap();
    println!("a = {}", *a);
    std::process::exit(0);
}

/// Two threads run at the same time; one takes A then B, the other B then A. An atomic
/// turn makes the second wait until the first is done, so this run cannot deadlock, but
/// another schedule could: a potential deadlock. (Joining the first before spawning the
/// second would order them by fork/join, and the cycle would be no potential deadlock.)
fn lock_order_inversion() {
    let locks = inversion_threads();
    // One lock at a time: the joins order these after both threads, but on this target
    // the joins happen in wasi-libc (a futex), which the deadlock predictor does not see
    // as joins; holding both here would show as a second, infeasible cycle (see the book).
    let a = *locks.0.lock().unwrap();
    let b = *locks.1.lock().unwrap();
    assert_eq!((a, b), (2, 2));
    println!("a = {a}, b = {b}");
}

/// The threads of [`lock_order_inversion`]: both run at once, the first takes Mutexes A
/// and B in that order, the second (after an atomic turn says the first is done) B and A.
/// Returns the two Mutexes after joining both threads.
fn inversion_threads() -> Arc<(Mutex<u64>, Mutex<u64>)> {
    let locks = Arc::new((Mutex::new(0u64), Mutex::new(0u64)));
    let turn = Arc::new(AtomicBool::new(false));
    let first = {
        let (locks, turn) = (Arc::clone(&locks), Arc::clone(&turn));
        thread::spawn(move || {
            lock_both_in_order(&locks.0, &locks.1);
            turn.store(true, Ordering::Release);
        })
    };
    let second = {
        let (locks, turn) = (Arc::clone(&locks), Arc::clone(&turn));
        thread::spawn(move || {
            while !turn.load(Ordering::Acquire) {
                thread::yield_now();
            }
            lock_both_in_order(&locks.1, &locks.0);
        })
    };
    first.join().unwrap();
    second.join().unwrap();
    locks
}

/// Two concurrent threads: the first takes Mutex A, then B. Main joins it, drops A and
/// makes a new Mutex A', which the allocator places in A's memory, and hands it to the
/// second thread (running since before the join), which takes B, then A'. A and A' never
/// exist at the same time, so no schedule can deadlock: not a potential deadlock,
/// although the same two addresses are taken in both orders. Panics if A' does not reuse
/// A's memory (the scenario would prove nothing then): the second thread waits at a
/// `Barrier` (which allocates nothing) while main drops A and makes A', so that nothing
/// else allocates in between.
fn freed_lock_reuse() {
    let b = Arc::new(Mutex::new(0u64));
    let slot: Arc<Mutex<Option<Arc<Mutex<u64>>>>> = Arc::new(Mutex::new(None));
    let barrier = Arc::new(Barrier::new(2));
    let a = Arc::new(Mutex::new(0u64));
    let first = {
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        thread::spawn(move || lock_both_in_order(&a, &b))
    };
    let second = {
        let (b, slot, barrier) = (Arc::clone(&b), Arc::clone(&slot), Arc::clone(&barrier));
        thread::spawn(move || {
            barrier.wait(); // started
            barrier.wait(); // A' is in the slot
            let a2 = slot.lock().unwrap().take().unwrap();
            lock_both_in_order(&b, &a2);
            let value = *a2.lock().unwrap();
            value
        })
    };
    first.join().unwrap();
    barrier.wait();
    let a_address = Arc::as_ptr(&a) as usize;
    drop(a);
    let a2 = Arc::new(Mutex::new(0u64));
    let reused = Arc::as_ptr(&a2) as usize == a_address;
    *slot.lock().unwrap() = Some(a2);
    barrier.wait();
    assert!(
        reused,
        "the allocator did not reuse the memory of the first Mutex"
    );
    let a2 = second.join().unwrap();
    let b = *b.lock().unwrap();
    assert_eq!((a2, b), (1, 2));
    println!("a' = {a2}, b = {b}");
}

/// Locks `mutex`, which the caller holds: std's `Mutex` is not reentrant, so this waits
/// for ever (the documentation allows a panic too; on this target it waits).
#[inline(never)]
fn lock_again(mutex: &Mutex<u64>) -> u64 {
    *mutex.lock().unwrap()
}

/// Main locks a Mutex and, holding it, locks it again: it waits for itself. Prints
/// nothing.
fn relock() {
    let mutex = Mutex::new(1u64);
    let guard = mutex.lock().unwrap();
    let again = lock_again(&mutex);
    println!("{} {again}", *guard);
}

/// Locks `mutex` and adds 1: the spawned thread of [`join_deadlock`].
#[inline(never)]
fn lock_in_child(mutex: &Mutex<u64>) {
    *mutex.lock().unwrap() += 1;
}

/// Main locks a Mutex, spawns a thread that locks it too, and joins that thread while it
/// still holds the Mutex: the thread waits for main's lock, main waits for the thread to
/// end. (A `Barrier` makes sure main holds the lock first.) Prints nothing.
fn join_deadlock() {
    let mutex = Arc::new(Mutex::new(0u64));
    let barrier = Arc::new(Barrier::new(2));
    let guard = mutex.lock().unwrap();
    let child = {
        let (mutex, barrier) = (Arc::clone(&mutex), Arc::clone(&barrier));
        thread::spawn(move || {
            barrier.wait();
            lock_in_child(&mutex);
        })
    };
    barrier.wait();
    child.join().unwrap();
    println!("{}", *guard);
}

/// Locks `held`, waits at `barrier` until the other thread holds its lock too, then
/// requests `wanted`, which the other thread holds: the request never succeeds. (The code
/// after it is the ordinary code it would be in a program that does not always deadlock,
/// so that the compiler inlines `Mutex::lock` here as it does elsewhere.)
#[inline(never)]
fn hold_and_request(held: &Mutex<u64>, wanted: &Mutex<u64>, barrier: &Barrier) {
    let mut held = held.lock().unwrap();
    barrier.wait();
    let mut wanted = wanted.lock().unwrap();
    *held += 1;
    *wanted += 1;
}

/// Thread 1 holds A and requests B, thread 2 holds B and requests A; a `Barrier` makes
/// sure both hold their first lock before either requests the second, so it always
/// deadlocks. Main blocks joining them. Prints nothing.
fn deadlock() {
    let locks = Arc::new((Mutex::new(0u64), Mutex::new(0u64)));
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = [false, true]
        .into_iter()
        .map(|swap| {
            let (locks, barrier) = (Arc::clone(&locks), Arc::clone(&barrier));
            thread::spawn(move || {
                let (held, wanted) = if swap {
                    (&locks.1, &locks.0)
                } else {
                    (&locks.0, &locks.1)
                };
                hold_and_request(held, wanted, &barrier);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    unreachable!("the threads deadlock");
}
